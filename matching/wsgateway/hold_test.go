package wsgateway

import (
	"fmt"
	"testing"
)

// TestHandOverKeepsOrder: what the hub pushes between a stream's
// subscription and the connection's upgrade reaches the connection first,
// in order, and later messages go straight to it.
func TestHandOverKeepsOrder(t *testing.T) {
	h := newHub(nil, nil, nil, nil)
	publish := func(stream, msg string) { // as publish does: under hub.mu
		h.mu.Lock()
		defer h.mu.Unlock()
		for s := range h.subs[stream] {
			s.push([]byte(msg))
		}
	}
	held := &holding{}
	h.subscribe(held, []string{"btckzt@depth", "btckzt@trade"})
	publish("btckzt@depth", "d1")
	publish("btckzt@trade", "t1")
	publish("ethkzt@depth", "other")
	c := &conn{out: make(chan []byte, 8), closing: make(chan struct{})}
	h.handOver(held, c)
	publish("btckzt@depth", "d2")
	var got []string
	for len(c.out) > 0 {
		got = append(got, string(<-c.out))
	}
	if fmt.Sprint(got) != "[d1 t1 d2]" {
		t.Fatalf("the connection got %v; want [d1 t1 d2]", got)
	}
	for name, subs := range h.subs {
		if _, ok := subs[held]; ok {
			t.Fatalf("the hold is still subscribed to %s", name)
		}
	}

	// A hold that cannot keep up is marked, not grown without bound.
	h.unsubscribe(c)
	over := &holding{}
	h.subscribe(over, []string{"btckzt@depth"})
	for i := range StreamQueue + 1 {
		publish("btckzt@depth", fmt.Sprint(i))
	}
	if !over.overflow || len(over.msgs) != StreamQueue {
		t.Fatalf("overflow %v with %d messages kept", over.overflow, len(over.msgs))
	}
}
