package wsclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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
		{msg: `{"id":"a-1","status":200}`, id: `"a-1"`},                          // a string id, off the front too
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

// server starts a websocket server that runs serve on each connection.
func server(t *testing.T, serve func(*websocket.Conn)) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		serve(ws)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// TestNullIDAnswersAreCounted: an answer with a null id (a request the
// server refused unread) reaches no call; it is counted, and the call
// waits for its own answer.
func TestNullIDAnswersAreCounted(t *testing.T) {
	url := server(t, func(ws *websocket.Conn) {
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var req struct{ ID json.RawMessage }
			_ = json.Unmarshal(msg, &req)
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"id":null,"status":429,"error":{"code":"RATE_LIMITED","msg":"wait"}}`))
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"id":`+string(req.ID)+`,"status":200,"result":{}}`))
		}
	})
	c, err := Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if err := c.Call(context.Background(), "ping", nil, nil); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := c.Unmatched(); n != 3 {
		t.Fatalf("Unmatched() = %d; want 3", n)
	}
}

// TestUnreadableMessageClosesTheConnection: a message that is not JSON
// ends the client's reading, and the client closes the socket rather
// than leave it open unread; waiting calls fail, later ones are not sent.
func TestUnreadableMessageClosesTheConnection(t *testing.T) {
	closed := make(chan struct{})
	url := server(t, func(ws *websocket.Conn) {
		defer close(closed)
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`not json`))
		for { // until the client closes
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	c, err := Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Call(context.Background(), "ping", nil, nil); err == nil {
		t.Fatal("the call succeeded on an unreadable answer")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the client left the connection open after it stopped reading it")
	}
	if err := c.Call(context.Background(), "ping", nil, nil); !errors.Is(err, ErrNotSent) {
		t.Fatalf("a call after the end: %v; want ErrNotSent", err)
	}
}

// TestCloseIsNotHeldByAStuckWrite: with a server that does not read, a
// large request's write blocks; Close still returns at once, and the
// write then fails as not sent.
func TestCloseIsNotHeldByAStuckWrite(t *testing.T) {
	stop := make(chan struct{})
	url := server(t, func(*websocket.Conn) { <-stop }) // never reads
	defer close(stop)
	c, err := Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 64<<20) // far more than the sockets buffer
	sent := make(chan error, 1)
	go func() { sent <- c.Call(context.Background(), "ping", map[string]string{"pad": big}, nil) }()
	time.Sleep(300 * time.Millisecond) // the write is under way, and stuck
	closed := make(chan struct{})
	go func() { _ = c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close waited for a stuck write")
	}
	select {
	case err := <-sent:
		if !errors.Is(err, ErrNotSent) {
			t.Fatalf("the stuck call ended with %v; want ErrNotSent", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck call did not end after Close")
	}
}

// TestSigningTimeStaysNearTheClock: a burst of one key's signatures runs
// ahead of the clock by at most maxSignAhead (the gateway refuses more
// than a second ahead).
func TestSigningTimeStaysNearTheClock(t *testing.T) {
	var ahead time.Duration
	for range 1500 {
		ahead = max(ahead, time.Until(signingTime("flood")))
	}
	if ahead > maxSignAhead+time.Millisecond {
		t.Fatalf("signed %v ahead of the clock; at most %v allowed", ahead, maxSignAhead)
	}
}
