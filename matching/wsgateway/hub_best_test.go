package wsgateway

import (
	"math/rand/v2"
	"testing"
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
