package matching

import (
	"fmt"
	"math/bits"
)

// Symbol is one market's configuration. Prices are integers in minor units of
// the quote asset per one whole unit of the base asset (tiyn per BTC);
// quantities are integers in minor units of the base asset (satoshi).
type Symbol struct {
	Name       string `json:"name"`  // "BTCKZT"
	Base       string `json:"base"`  // "BTC"
	Quote      string `json:"quote"` // "KZT"
	BaseScale  int    `json:"baseScale"`
	QuoteScale int    `json:"quoteScale"`
	TickSize   int64  `json:"tickSize"` // price step, quote minor units per whole base unit
	LotSize    int64  `json:"lotSize"`  // quantity step, base minor units
	MinQty     int64  `json:"minQty"`
	MaxQty     int64  `json:"maxQty"`
}

// DefaultSymbols are the markets Satu ships with. BTC trades down to one
// satoshi at one-tenge ticks; at 50,000,000 ₸ per BTC, price × quantity
// overflows int64 near 18 BTC, hence the 128-bit notional below.
func DefaultSymbols() []Symbol {
	return []Symbol{
		{Name: "BTCKZT", Base: "BTC", Quote: "KZT", BaseScale: 8, QuoteScale: 2,
			TickSize: 100, LotSize: 1, MinQty: 1, MaxQty: 1_000 * 100_000_000},
		{Name: "ETHKZT", Base: "ETH", Quote: "KZT", BaseScale: 9, QuoteScale: 2,
			TickSize: 100, LotSize: 1_000, MinQty: 1_000, MaxQty: 10_000 * 1_000_000_000},
		{Name: "USDTKZT", Base: "USDT", Quote: "KZT", BaseScale: 6, QuoteScale: 2,
			TickSize: 1, LotSize: 10_000, MinQty: 10_000, MaxQty: 10_000_000 * 1_000_000},
	}
}

// Validate checks that a symbol's configuration is usable.
func (s Symbol) Validate() error {
	switch {
	case s.Name == "" || s.Base == "" || s.Quote == "" || s.Base == s.Quote:
		return fmt.Errorf("symbol %q: name, base and distinct quote are required", s.Name)
	case s.BaseScale < 0 || s.BaseScale > 18 || s.QuoteScale < 0 || s.QuoteScale > 18:
		return fmt.Errorf("symbol %s: scales must be 0..18", s.Name)
	case s.TickSize <= 0 || s.LotSize <= 0:
		return fmt.Errorf("symbol %s: tick and lot must be positive", s.Name)
	case s.MinQty <= 0 || s.MinQty%s.LotSize != 0 || s.MaxQty < s.MinQty:
		return fmt.Errorf("symbol %s: min quantity must be a positive multiple of the lot, max ≥ min", s.Name)
	}
	return nil
}

var pow10 = [19]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// Notional is the quote amount of quantity at price, in quote minor units,
// rounded down: price × quantity / 10^BaseScale computed in 128 bits. ok is
// false when the result does not fit int64. Both sides of a trade use the
// same rounded figure, so the ledger stays balanced; the buyer's hold is
// computed with NotionalCeil and is therefore always enough.
func (s Symbol) Notional(price, qty int64) (amount int64, ok bool) {
	return mulDiv(price, qty, pow10[s.BaseScale], false)
}

// NotionalCeil is Notional rounded up: what a buy order must hold.
func (s Symbol) NotionalCeil(price, qty int64) (amount int64, ok bool) {
	return mulDiv(price, qty, pow10[s.BaseScale], true)
}

func mulDiv(a, b int64, d uint64, ceil bool) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= d {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, d)
	if ceil && r != 0 {
		q++
	}
	if q > 1<<63-1 {
		return 0, false
	}
	return int64(q), true
}
