package wsgateway

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// commands is a source already holding cmds, and room for more.
func commands(cmds ...[]matching.Event) *source {
	src := &source{cmds: make(chan []matching.Event, 16)}
	for _, evs := range cmds {
		src.cmds <- evs
	}
	return src
}

// books is a Redis order book whose state the test sets.
type books struct {
	mu   sync.Mutex
	seq  uint64
	bids []matching.Level
}

func (b *books) Depth(_ context.Context, _ string, limit int) (uint64, []matching.Level, []matching.Level, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if limit > 0 && len(b.bids) > limit {
		return b.seq, b.bids[:limit], nil, nil
	}
	return b.seq, b.bids, nil, nil
}

// closer is a user-data subscriber that notes being closed.
type closer struct {
	recorder
	closed chan int
}

func (c *closer) close(code int, _ string) { c.closed <- code }

// runHub runs h until the returned stop is called (at the latest when the
// test ends).
func runHub(t *testing.T, h *hub) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.run(ctx) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

// waitCount waits until r holds n messages, at most 5 s.
func waitCount(t *testing.T, r *recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages; want %d", r.count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHubSeesMissedEvents: when the events the hub reads skip commands (a
// trimmed stream), or go back (another history, after a failover), it
// reads the books again — the next depth update's U does not follow the
// last u, so a client following the recipe resynchronises — and closes the
// user-data streams, whose events in between are lost.
func TestHubSeesMissedEvents(t *testing.T) {
	book := &books{seq: 10, bids: []matching.Level{{Price: 10000, Quantity: 1}}}
	src := commands([]matching.Event{level(11, matching.Buy, 10000, 3)})
	h := newHub(src, book, []matching.Symbol{testSymbol}, zap.NewNop())
	depth := &recorder{}
	user := &closer{closed: make(chan int, 1)}
	h.subscribe(depth, []string{"btckzt@depth"})
	h.subscribeUser(user, "acct-1")
	stop := runHub(t, h)
	waitFor := func(n int) [][]byte {
		t.Helper()
		waitCount(t, depth, n)
		return depth.take()
	}
	if d := update(t, waitFor(1)[0], "btckzt@depth"); d.First != 11 || d.Last != 11 {
		t.Fatalf("first update %+v", d)
	}
	// next sets the Redis order book at seq with bids, sends the command
	// ev and returns the depth update the hub makes of it.
	next := func(seq uint64, bids []matching.Level, ev matching.Event) wsapi.DepthUpdate {
		t.Helper()
		book.mu.Lock()
		book.seq, book.bids = seq, bids
		book.mu.Unlock()
		src.cmds <- []matching.Event{ev}
		return update(t, waitFor(1)[0], "btckzt@depth")
	}
	// Commands 12–14 are gone; the book has moved on to 14.
	if d := next(14, []matching.Level{{Price: 10000, Quantity: 3}, {Price: 9900, Quantity: 2}}, level(15, matching.Buy, 9800, 1)); d.First != 15 || d.Last != 15 {
		t.Fatalf("after the gap: %+v; want U 15 (not 12: the client must see the gap)", d)
	}
	select {
	case code := <-user.closed:
		if code != 1013 {
			t.Fatalf("user data closed with %d; want 1013", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the user-data subscriber was not closed")
	}
	// Another history: a failover lost 14 and 15, and the new leader's
	// next command is 14 again, on a book at 13.
	if d := next(13, []matching.Level{{Price: 10000, Quantity: 3}}, level(14, matching.Buy, 9700, 4)); d.First != 14 || d.Last != 14 {
		t.Fatalf("after the sequence went back: %+v; want U 14 after u 15 (the client must resynchronise)", d)
	}
	// The hub's own book is the one read again, plus command 14.
	stop()
	if b := h.books["BTCKZT"]; len(b.bids) != 2 || b.bids[10000] != 3 || b.bids[9700] != 4 {
		t.Fatalf("the hub's book after the new history: %v", b.bids)
	}
}

// TestHubTellsTheBestAfterAGap: when the books are read again after
// missed events and the best bid moved in the gap, bookTicker subscribers
// are told at once, at the sequence of the book read — they have no U to
// see the gap by.
func TestHubTellsTheBestAfterAGap(t *testing.T) {
	book := &books{seq: 10, bids: []matching.Level{{Price: 10000, Quantity: 1}}}
	src := commands([]matching.Event{level(11, matching.Buy, 10000, 2)})
	h := newHub(src, book, []matching.Symbol{testSymbol}, zap.NewNop())
	ticker := &recorder{}
	h.subscribe(ticker, []string{"btckzt@bookTicker"})
	runHub(t, h)
	waitCount(t, ticker, 1)
	// Commands 12 and 13 are gone; the book at 13 has another best.
	book.mu.Lock()
	book.seq, book.bids = 13, []matching.Level{{Price: 9000, Quantity: 5}}
	book.mu.Unlock()
	src.cmds <- []matching.Event{level(14, matching.Buy, 8000, 1)}
	waitCount(t, ticker, 2)
	time.Sleep(50 * time.Millisecond) // command 14 leaves the best where it is: no third message
	msgs := ticker.take()
	want := []wsapi.BookTicker{
		{Event: "bookTicker", Symbol: "BTCKZT", Seq: 11, Bid: "100.00", BidQty: "0.00000002"},
		{Event: "bookTicker", Symbol: "BTCKZT", Seq: 13, Bid: "90.00", BidQty: "0.00000005"},
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d bookTicker messages: %q; want 2", len(msgs), msgs)
	}
	for i, b := range msgs {
		var m struct{ Data wsapi.BookTicker }
		if err := json.Unmarshal(b, &m); err != nil || m.Data != want[i] {
			t.Fatalf("message %d: %s (%v); want %+v", i, b, err, want[i])
		}
	}
}
