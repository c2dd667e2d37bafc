package wsgateway

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// TestBestFollowsTheBook: the best bid and ask kept through level changes
// equal a scan of the book after every change, and each side's prices stay
// in order.
func TestBestFollowsTheBook(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	st := newBookState("BTCKZT", 0)
	for step := range 20000 {
		bid := rng.IntN(2) == 0
		price, qty := 100+rng.Int64N(40), rng.Int64N(3) // a third of changes remove a level
		st.set(bid, price, qty)
		if rng.IntN(3) > 0 { // published after some commands, not every one
			continue
		}
		for i, b := range []bool{true, false} {
			levels := st.asks
			if b {
				levels = st.bids
			}
			if got, want := st.best(b), scanBest(levels, b); got != want {
				t.Fatalf("step %d, bid side %v: kept %v, scan %v", step, b, got, want)
			}
			if len(st.prices[i]) != len(levels) || !slices.IsSortedFunc(st.prices[i], st.order(b)) {
				t.Fatalf("step %d, bid side %v: prices %v for %d levels", step, b, st.prices[i], len(levels))
			}
		}
	}
}

// scanBest scans a side for its best (price, quantity); zero when empty.
func scanBest(levels map[int64]int64, bid bool) [2]int64 {
	var out [2]int64
	for p, q := range levels {
		if out[0] == 0 || bid && p > out[0] || !bid && p < out[0] {
			out = [2]int64{p, q}
		}
	}
	return out
}

// TestBookTickerBeyondTheFirstLevels: the hub reads up to 100,000 levels
// a side at start, so that when the best 5,500 of 6,000 bid levels trade away the
// best bid it publishes is the next level the book holds, not one it never
// read (it read only the best 5,000 before).
func TestBookTickerBeyondTheFirstLevels(t *testing.T) {
	const levels, gone = 6000, 5500
	book := &books{seq: 10}
	for i := range levels { // best first, as the Redis order book returns them
		book.bids = append(book.bids, matching.Level{Price: int64(20000 - i), Quantity: 1, Orders: 1})
	}
	var sweep []matching.Event
	for i := range gone {
		sweep = append(sweep, level(11, matching.Buy, int64(20000-i), 0))
	}
	src := commands(sweep)
	h := newHub(src, book, []matching.Symbol{testSymbol}, zap.NewNop())
	ticker := &recorder{}
	h.subscribe(ticker, []string{"btckzt@bookTicker"})
	runHub(t, h)
	waitCount(t, ticker, 1)
	var m struct {
		Data wsapi.BookTicker `json:"data"`
	}
	if err := json.Unmarshal(ticker.last(), &m); err != nil {
		t.Fatal(err)
	}
	if want := money.Format(20000-gone, testSymbol.QuoteScale); m.Data.Seq != 11 || m.Data.Bid != want || m.Data.BidQty != money.Format(1, testSymbol.BaseScale) {
		t.Fatalf("bookTicker %+v; want the bid %s (quantity 1) at 11", m.Data, want)
	}
}

// TestCommandAcrossSymbols: one command that changes levels of two
// symbols (a cancel-all of an account's orders everywhere) makes one depth
// update and one bookTicker per symbol, each continuing that symbol's
// sequence, in the symbols' order; a stream nobody follows costs nothing
// and still moves its U on.
func TestCommandAcrossSymbols(t *testing.T) {
	eth := testSymbol
	eth.Name, eth.Base = "ETHKZT", "ETH"
	h := newHub(nil, nil, []matching.Symbol{testSymbol, eth}, zap.NewNop())
	for _, name := range []string{"BTCKZT", "ETHKZT"} {
		st := newBookState(name, 10)
		st.set(true, 10000, 1)
		st.set(true, 9000, 2)
		st.bid = st.best(true)
		h.books[name] = st
	}
	rec := &recorder{}
	h.subscribe(rec, []string{"btckzt@depth", "ethkzt@depth", "ethkzt@bookTicker"})
	lvl := func(seq uint64, sym string, price, qty int64) matching.Event {
		ev := level(seq, matching.Buy, price, qty)
		ev.Symbol = sym
		return ev
	}
	h.publish([]matching.Event{lvl(11, "BTCKZT", 10000, 0)}) // BTCKZT alone first
	h.publish([]matching.Event{lvl(12, "ETHKZT", 10000, 0), lvl(12, "BTCKZT", 9000, 0), lvl(12, "ETHKZT", 9000, 5)})
	msgs := rec.take()
	if len(msgs) != 4 {
		t.Fatalf("%d messages; want 4: %q", len(msgs), msgs)
	}
	if d := update(t, msgs[0], "btckzt@depth"); d.First != 11 || d.Last != 11 || len(d.Bids) != 1 {
		t.Fatalf("first: %+v", d)
	}
	if d := update(t, msgs[1], "btckzt@depth"); d.First != 12 || d.Last != 12 || len(d.Bids) != 1 || d.Bids[0][0] != "90.00" || d.Bids[0][1] != "0.00000000" {
		t.Fatalf("BTCKZT at 12: %+v", d)
	}
	var m struct{ Data wsapi.DepthUpdate }
	if err := json.Unmarshal(msgs[2], &m); err != nil || m.Data.Symbol != "ETHKZT" || m.Data.First != 11 || m.Data.Last != 12 || len(m.Data.Bids) != 2 {
		t.Fatalf("ETHKZT at 12: %s (%v)", msgs[2], err)
	}
	var tk struct{ Data wsapi.BookTicker }
	if err := json.Unmarshal(msgs[3], &tk); err != nil || tk.Data.Symbol != "ETHKZT" || tk.Data.Bid != "90.00" || tk.Data.BidQty != "0.00000005" {
		t.Fatalf("ETHKZT bookTicker: %s (%v)", msgs[3], err)
	}
}
