package wsclient

import (
	"testing"
	"time"
)

// TestAnswerID: answers as the gateway writes them are routed by the id
// read off their front; anything else is decoded to find its id, and a
// message without one is a pushed message.
func TestAnswerID(t *testing.T) {
	for _, tc := range []struct {
		msg, id string
		bad     bool
	}{
		{msg: `{"id":17,"status":200,"result":{"orderId":3}}`, id: "17"},
		{msg: `{"id":9}`, id: "9"},
		{msg: `{"id":"a-1","status":200}`, id: `"a-1"`},                          // not the fast path's: decoded
		{msg: `{"status":400,"id":12,"error":{"code":"X","msg":"y"}}`, id: "12"}, // id not first
		{msg: `{"id":12x,"status":200}`, bad: true},                              // the fast path refuses it, the decoder too
		{msg: `{"stream":"btckzt@trade","data":{}}`, id: ""},                     // pushed
		{msg: `{"id":`, bad: true},
		{msg: `not json`, bad: true},
	} {
		id, err := answerID([]byte(tc.msg))
		if (err != nil) != tc.bad || string(id) != tc.id {
			t.Errorf("answerID(%s) = %q, %v; want %q, error %v", tc.msg, id, err, tc.id, tc.bad)
		}
	}
}

// TestSigningTimeIsUniquePerKey: requests of one key signed in a burst —
// by several goroutines, as connections logging on together — each get a
// millisecond of their own, so none repeats another's signature; another
// key's are counted apart.
func TestSigningTimeIsUniquePerKey(t *testing.T) {
	const goroutines, each = 4, 250
	got := make(chan int64, goroutines*each)
	done := make(chan struct{})
	for range goroutines {
		go func() {
			for range each {
				got <- signingTime("burst").UnixMilli()
			}
			done <- struct{}{}
		}()
	}
	for range goroutines {
		<-done
	}
	close(got)
	seen := map[int64]bool{}
	for ms := range got {
		if seen[ms] {
			t.Fatalf("two requests signed at %d", ms)
		}
		seen[ms] = true
	}
	if other := signingTime("another key").UnixMilli(); other > time.Now().UnixMilli() {
		t.Errorf("another key's first request is signed ahead of the clock, at %d", other)
	}
}
