package wsgateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// The interval depth streams, driven command by command with a clock of
// the test's own; TestDepthIntervalStreams in cmd/satu runs them against
// the real service.

var testSymbol = matching.Symbol{Name: "BTCKZT", Base: "BTC", Quote: "KZT", BaseScale: 8, QuoteScale: 2}

// recorder is a subscriber that keeps what it is pushed.
type recorder struct {
	mu   sync.Mutex
	msgs [][]byte
	at   []time.Time
}

func (r *recorder) push(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, b)
	r.at = append(r.at, time.Now())
}

func (r *recorder) take() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.msgs
	r.msgs, r.at = nil, nil
	return out
}

func (r *recorder) last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.msgs) == 0 {
		return nil
	}
	return r.msgs[len(r.msgs)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// update decodes a pushed depthUpdate of stream.
func update(t *testing.T, b []byte, stream string) wsapi.DepthUpdate {
	t.Helper()
	var m struct {
		Stream string            `json:"stream"`
		Data   wsapi.DepthUpdate `json:"data"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Stream != stream || m.Data.Event != "depthUpdate" || m.Data.Symbol != "BTCKZT" {
		t.Fatalf("pushed %s (%v); want a depthUpdate on %s", b, err, stream)
	}
	return m.Data
}

func level(seq uint64, side matching.Side, price, qty int64) matching.Event {
	return matching.Event{Seq: seq, Time: int64(seq) * 1000, Kind: matching.EvLevel, Symbol: "BTCKZT", Side: side, Price: price, Quantity: qty}
}

func TestIntervalDepthMerges(t *testing.T) {
	h := newHub(nil, nil, []matching.Symbol{testSymbol}, zap.NewNop())
	st := newBookState("BTCKZT", 10) // the snapshot: sequence 10
	st.set(true, 10000, 1)
	h.books["BTCKZT"] = st
	fast, fast2, slow, every := &recorder{}, &recorder{}, &recorder{}, &recorder{}
	h.subscribe(fast, []string{"btckzt@depth@100ms"})
	h.subscribe(fast2, []string{"btckzt@depth@100ms", "btckzt@trade"})
	h.subscribe(slow, []string{"btckzt@depth@1000ms"})
	h.subscribe(every, []string{"btckzt@depth"})
	t0 := time.Unix(1_800_000_000, 0)

	h.flushDue(t0)
	if fast.count()+slow.count() != 0 || h.block(t0) != readBlock {
		t.Fatalf("pushed %d, %d and would wait %v without a change", fast.count(), slow.count(), h.block(t0))
	}
	// A change after a quiet time is pushed at the next check.
	h.publish([]matching.Event{level(11, matching.Buy, 10000, 3)})
	if d := h.block(t0); d != time.Millisecond {
		t.Fatalf("a push is due, yet the hub would wait %v", d)
	}
	h.flushDue(t0)
	for _, r := range []*recorder{fast, fast2, slow} {
		stream := "btckzt@depth@100ms"
		if r == slow {
			stream = "btckzt@depth@1000ms"
		}
		msgs := r.take()
		if len(msgs) != 1 {
			t.Fatalf("%s: %d messages", stream, len(msgs))
		}
		if d := update(t, msgs[0], stream); d.First != 11 || d.Last != 11 || fmt.Sprint(d.Bids, d.Asks) != "[[100.00 0.00000003]] []" || d.Time != 11000 {
			t.Fatalf("%s: %+v", stream, d)
		}
	}

	// Commands 12–15 within the next 100 ms; 12 and 16 do not touch the
	// book. The level at 200.00 comes and goes: it is sent as 0.
	h.publish([]matching.Event{{Seq: 12, Kind: matching.EvPhase, Symbol: "BTCKZT"}})
	h.publish([]matching.Event{level(13, matching.Sell, 20000, 5)})
	h.publish([]matching.Event{level(14, matching.Sell, 20000, 0), level(14, matching.Sell, 20100, 2)})
	h.publish([]matching.Event{level(15, matching.Buy, 9900, 1), level(15, matching.Sell, 20100, 4)})
	h.publish([]matching.Event{{Seq: 16, Kind: matching.EvPhase, Symbol: "BTCKZT"}})
	h.flushDue(t0.Add(50 * time.Millisecond))
	if n := fast.count(); n != 0 {
		t.Fatalf("%d messages 50 ms after the last", n)
	}
	if d := h.block(t0.Add(60 * time.Millisecond)); d != 40*time.Millisecond {
		t.Fatalf("the next push is due in 40 ms, yet the hub would wait %v", d)
	}
	h.flushDue(t0.Add(100 * time.Millisecond))
	msgs, msgs2 := fast.take(), fast2.take()
	if len(msgs) != 1 || len(msgs2) != 1 || &msgs[0][0] != &msgs2[0][0] {
		t.Fatalf("%d and %d messages; want one, encoded once for both subscribers", len(msgs), len(msgs2))
	}
	d := update(t, msgs[0], "btckzt@depth@100ms")
	if d.First != 12 || d.Last != 15 || fmt.Sprint(d.Bids) != "[[99.00 0.00000001]]" ||
		fmt.Sprint(d.Asks) != "[[200.00 0.00000000] [201.00 0.00000004]]" || d.Time != 15000 {
		t.Fatalf("merged update %+v", d)
	}
	if n := slow.count(); n != 0 {
		t.Fatalf("@depth@1000ms pushed %d messages within its second", n)
	}

	// An interval without a change pushes nothing; the next message still
	// starts right after the last one's u.
	h.flushDue(t0.Add(200 * time.Millisecond))
	if n := fast.count(); n != 0 {
		t.Fatalf("%d messages for an interval without changes", n)
	}
	h.publish([]matching.Event{{Seq: 17, Kind: matching.EvPhase, Symbol: "BTCKZT"}})
	h.publish([]matching.Event{level(18, matching.Buy, 9900, 0)})
	h.flushDue(t0.Add(250 * time.Millisecond))
	msgs = fast.take()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if d := update(t, msgs[0], "btckzt@depth@100ms"); d.First != 16 || d.Last != 18 || fmt.Sprint(d.Bids, d.Asks) != "[[99.00 0.00000000]] []" {
		t.Fatalf("after a quiet interval: %+v", d)
	}

	// The second stream: everything since its first message, merged.
	h.flushDue(t0.Add(time.Second))
	msgs = slow.take()
	if len(msgs) != 1 {
		t.Fatalf("@depth@1000ms: %d messages", len(msgs))
	}
	if d := update(t, msgs[0], "btckzt@depth@1000ms"); d.First != 12 || d.Last != 18 || fmt.Sprint(d.Bids) != "[[99.00 0.00000000]]" ||
		fmt.Sprint(d.Asks) != "[[200.00 0.00000000] [201.00 0.00000004]]" {
		t.Fatalf("@depth@1000ms: %+v", d)
	}

	// @depth is still one update per command that changed the book.
	var prev uint64 = 10
	for _, b := range every.take() {
		d := update(t, b, "btckzt@depth")
		if d.First != prev+1 {
			t.Fatalf("@depth U=%d after u=%d", d.First, prev)
		}
		prev = d.Last
	}
	if prev != 18 {
		t.Fatalf("@depth ended at %d", prev)
	}

	// Without subscribers the changes are dropped and the sequence goes on.
	h.unsubscribe(fast)
	h.unsubscribe(fast2)
	h.publish([]matching.Event{level(19, matching.Buy, 9800, 7)})
	h.flushDue(t0.Add(2 * time.Second))
	h.subscribe(fast, []string{"btckzt@depth@100ms"})
	h.publish([]matching.Event{level(20, matching.Buy, 9700, 7)})
	h.flushDue(t0.Add(3 * time.Second))
	msgs = fast.take()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if d := update(t, msgs[0], "btckzt@depth@100ms"); d.First != 20 || d.Last != 20 || fmt.Sprint(d.Bids) != "[[97.00 0.00000007]]" {
		t.Fatalf("after resubscribing: %+v", d)
	}
}

func TestParseIntervalStreams(t *testing.T) {
	h := newHub(nil, nil, []matching.Symbol{testSymbol}, zap.NewNop())
	if names, err := h.parseStreams("btckzt@depth@100ms/btckzt@depth@1000ms/btckzt@depth"); err != nil || len(names) != 3 {
		t.Fatalf("parse: %v %v", names, err)
	}
	for _, bad := range []string{"btckzt@depth@7ms", "btckzt@depth@", "btckzt@depth@100MS", "btckzt@depth@100ms@x", "btckzt@depth@1s"} {
		if _, err := h.parseStreams(bad); err == nil || !strings.Contains(err.Error(), "update speed") {
			t.Fatalf("%s: %v", bad, err)
		}
	}
	if _, err := h.parseStreams("btckzt@trade@100ms"); err == nil || !strings.Contains(err.Error(), "kind must be") {
		t.Fatalf("btckzt@trade@100ms: %v", err)
	}
}

// source is an events stream in memory: ReadEvents waits up to its block
// for commands sent on cmds.
type source struct {
	cmds chan []matching.Event
}

func (s *source) ReadEvents(ctx context.Context, after string, max int64, block time.Duration) ([]matching.Envelope, error) {
	t := time.NewTimer(block)
	defer t.Stop()
	var out []matching.Envelope
	add := func(evs []matching.Event) {
		id := strconv.FormatUint(evs[0].Seq, 10) + "-0"
		for i, e := range evs {
			out = append(out, matching.Envelope{StreamID: id, Last: i == len(evs)-1, Event: e})
		}
	}
	select {
	case evs := <-s.cmds:
		add(evs)
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for int64(len(out)) < max {
		select {
		case evs := <-s.cmds:
			add(evs)
		default:
			return out, nil
		}
	}
	return out, nil
}

// TestIntervalDepthTimely runs the hub's loop on the wall clock: a command
// every millisecond for 600 ms reaches @depth@100ms in about six messages
// that chain, the last one soon after the last command.
func TestIntervalDepthTimely(t *testing.T) {
	src := &source{cmds: make(chan []matching.Event, 1024)}
	h := newHub(src, &books{}, []matching.Symbol{testSymbol}, zap.NewNop())
	runHub(t, h)
	<-h.ready
	r := &recorder{}
	h.subscribe(r, []string{"btckzt@depth@100ms"})

	start := time.Now()
	var seq uint64
	for time.Since(start) < 600*time.Millisecond {
		seq++
		src.cmds <- []matching.Event{level(seq, matching.Buy, 10000+int64(seq%50), int64(seq))}
		time.Sleep(time.Millisecond)
	}
	sent := time.Now()
	for b := r.last(); b == nil || update(t, b, "btckzt@depth@100ms").Last != seq; b = r.last() {
		if time.Since(sent) > 2*time.Second {
			t.Fatalf("the last command, %d, not pushed after 2 s", seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if late := r.at[len(r.at)-1].Sub(sent); late > 300*time.Millisecond {
		t.Errorf("the last command pushed %v after it", late)
	}
	var prev uint64
	book := map[string]string{}
	for i, b := range r.msgs {
		d := update(t, b, "btckzt@depth@100ms")
		if d.First != prev+1 {
			t.Fatalf("message %d: U=%d after u=%d", i, d.First, prev)
		}
		prev = d.Last
		for _, l := range d.Bids {
			book[l[0]] = l[1]
		}
		if i > 0 {
			if gap := r.at[i].Sub(r.at[i-1]); gap < 80*time.Millisecond {
				t.Errorf("message %d pushed %v after the one before", i, gap)
			}
		}
	}
	if n := len(r.msgs); n < 3 || n > 9 {
		t.Errorf("%d messages for %d commands in %v", n, seq, sent.Sub(start))
	}
	for p, q := range h.books["BTCKZT"].bids {
		if book[wsapi.Level(testSymbol, p, q)[0]] != wsapi.Level(testSymbol, p, q)[1] {
			t.Fatalf("level %d: the stream says %s, the hub's book %d", p, book[wsapi.Level(testSymbol, p, q)[0]], q)
		}
	}
}
