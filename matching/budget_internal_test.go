package matching

import (
	"math/rand/v2"
	"testing"
)

// TestLargestLotsIsFewSteps: largestLots finds the largest fitting k for
// any cut-off and any guess, in two calls when the guess is right and a
// few dozen at most otherwise — a lot-by-lot correction had taken about
// 2·10⁸ for a market buy whose budget bought more than MaxQty.
func TestLargestLotsIsFewSteps(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 10_000 {
		n := rng.Int64N(1 << 40)
		cut := rng.Int64N(n + 1) // the largest that fits
		est := cut
		switch rng.IntN(3) {
		case 1:
			est = rng.Int64N(n + 1)
		case 2:
			est = cut + rng.Int64N(3) - 1
		}
		calls := 0
		got := largestLots(n, est, func(k int64) bool { calls++; return k <= cut })
		if got != cut {
			t.Fatalf("n %d, cut %d, guess %d: got %d", n, cut, est, got)
		}
		if est == cut && calls > 2 || calls > 2+2*41 {
			t.Fatalf("n %d, cut %d, guess %d: %d calls", n, cut, est, calls)
		}
	}
}

// TestQtyForBudget: the largest affordable multiple of the lot, checked
// against a plain search on small figures, and the case that had taken
// 2·10⁸ steps: a budget buying far more than MaxQty at a low price.
func TestQtyForBudget(t *testing.T) {
	s := Symbol{Name: "XYZKZT", Base: "XYZ", Quote: "KZT", BaseScale: 2, QuoteScale: 2, TickSize: 1, LotSize: 3,
		MinQty: 3, MaxQty: 30_000, MinNotional: 1}
	rng := rand.New(rand.NewPCG(8, 8))
	for range 2_000 {
		budget, price, bps := 1+rng.Int64N(1_000_000), 1+rng.Int64N(10_000), rng.Int64N(100)
		want := int64(0)
		for q := s.LotSize; q <= s.MaxQty; q += s.LotSize {
			if n, _ := s.Notional(price, q); n+Fee(n, bps) <= budget {
				want = q
			}
		}
		if got := s.qtyForBudget(budget, price, bps); got != want {
			t.Fatalf("budget %d at %d, %d bps: %d; want %d", budget, price, bps, got, want)
		}
	}
	btc := DefaultSymbols()[0]
	// 1,000,000 ₸ at 998 ₸/BTC buys ~1,000 BTC: capped at MaxQty.
	if got := btc.qtyForBudget(100_000_000, 99_800, btc.TakerFeeBps); got != btc.MaxQty {
		t.Fatalf("a budget beyond MaxQty: %d; want %d", got, btc.MaxQty)
	}
}
