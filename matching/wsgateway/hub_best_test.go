package wsgateway

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// TestBestFollowsTheBook: the best bid and ask kept through level changes
// equal a scan of the book after every change.
func TestBestFollowsTheBook(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	st := &bookState{bids: map[int64]int64{}, asks: map[int64]int64{}}
	for step := range 20000 {
		bid := rng.IntN(2) == 0
		side := st.asks
		if bid {
			side = st.bids
		}
		price, qty := 100+rng.Int64N(40), rng.Int64N(3) // a third of changes remove a level
		if qty == 0 {
			delete(side, price)
		} else {
			side[price] = qty
		}
		st.touch(bid, price, qty)
		if rng.IntN(3) > 0 { // published after some commands, not every one
			continue
		}
		for _, b := range []bool{true, false} {
			levels := st.asks
			if b {
				levels = st.bids
			}
			if got, want := st.best(b), best(levels, b); got != want {
				t.Fatalf("step %d, bid side %v: kept %v, scan %v", step, b, got, want)
			}
		}
	}
}

// TestBookTickerBeyondTheFirstLevels: the hub reads the whole book at
// start, so that when the best 5,500 of 6,000 bid levels trade away the
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
	src := &feed{cmds: [][]matching.Event{sweep}}
	h := newHub(src, book, []matching.Symbol{testSymbol}, zap.NewNop())
	ticker := &recorder{}
	h.subscribe(ticker, []string{"btckzt@bookTicker"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(5 * time.Second)
	for ticker.last() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no bookTicker message")
		}
		time.Sleep(5 * time.Millisecond)
	}
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
