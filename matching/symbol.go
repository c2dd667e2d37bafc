package matching

import (
	"fmt"
	"math/bits"
	"sort"
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
	// MinNotional is the smallest price × quantity of a limit order, in quote
	// minor units (0: none).
	MinNotional int64 `json:"minNotional"`

	// MakerFeeBps and TakerFeeBps are fees in basis points of the quote
	// amount, charged in the quote asset to both sides of every trade and
	// credited to the engine's fee account. Auction trades charge the maker
	// fee to both sides.
	MakerFeeBps int64 `json:"makerFeeBps"`
	TakerFeeBps int64 `json:"takerFeeBps"`

	// PriceBandBps: a continuous-trading execution more than this many basis
	// points away from the reference price is not made; the symbol enters a
	// volatility auction of VolatilityAuctionMs instead (0: no band).
	PriceBandBps        int64 `json:"priceBandBps"`
	VolatilityAuctionMs int64 `json:"volatilityAuctionMs"`
	// RefPrice is the reference price before the first trade (0: none; the
	// band applies from the first trade on).
	RefPrice int64 `json:"refPrice"`

	// Schedule, when set, drives the phases by sequenced time: each step
	// names the phase that starts at a minute of the local day (UTC offset
	// UTCOffsetMinutes; Almaty is +300). Without a schedule the symbol starts
	// in InitialPhase (default continuous: 24/7 crypto trading).
	Schedule         []ScheduleStep `json:"schedule,omitempty"`
	UTCOffsetMinutes int            `json:"utcOffsetMinutes,omitempty"`
	InitialPhase     Phase          `json:"initialPhase,omitempty"`
}

// ScheduleStep starts Phase at minute Minute (0–1439) of the local day.
type ScheduleStep struct {
	Minute int   `json:"minute"`
	Phase  Phase `json:"phase"`
}

// DefaultSymbols are the markets Satu ships with: 24/7 continuous crypto
// markets with a ±10 % price band and a five-minute volatility auction. BTC
// trades down to one satoshi at one-tenge ticks; at 50,000,000 ₸ per BTC,
// price × quantity overflows int64 near 18 BTC, hence the 128-bit notional.
func DefaultSymbols() []Symbol {
	common := func(s Symbol) Symbol {
		s.MakerFeeBps, s.TakerFeeBps = 10, 20
		s.PriceBandBps, s.VolatilityAuctionMs = 1_000, 5*60_000
		return s
	}
	return []Symbol{
		common(Symbol{Name: "BTCKZT", Base: "BTC", Quote: "KZT", BaseScale: 8, QuoteScale: 2,
			TickSize: 100, LotSize: 1, MinQty: 1, MaxQty: 1_000 * 100_000_000, MinNotional: 100 * 100}),
		common(Symbol{Name: "ETHKZT", Base: "ETH", Quote: "KZT", BaseScale: 9, QuoteScale: 2,
			TickSize: 100, LotSize: 1_000, MinQty: 1_000, MaxQty: 10_000 * 1_000_000_000, MinNotional: 100 * 100}),
		common(Symbol{Name: "USDTKZT", Base: "USDT", Quote: "KZT", BaseScale: 6, QuoteScale: 2,
			TickSize: 1, LotSize: 10_000, MinQty: 10_000, MaxQty: 10_000_000 * 1_000_000, MinNotional: 100 * 100}),
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
	case s.MinNotional < 0:
		return fmt.Errorf("symbol %s: min notional must not be negative", s.Name)
	case s.MakerFeeBps < 0 || s.TakerFeeBps < 0 || s.MakerFeeBps > 1_000 || s.TakerFeeBps > 1_000:
		return fmt.Errorf("symbol %s: fees must be 0..1000 basis points", s.Name)
	case s.PriceBandBps < 0 || s.PriceBandBps >= 10_000:
		return fmt.Errorf("symbol %s: price band must be 0..9999 basis points", s.Name)
	case s.PriceBandBps > 0 && s.VolatilityAuctionMs <= 0:
		return fmt.Errorf("symbol %s: a price band needs a positive volatility auction length", s.Name)
	case s.RefPrice < 0 || s.RefPrice%s.TickSize != 0:
		return fmt.Errorf("symbol %s: reference price must be a non-negative multiple of the tick", s.Name)
	case s.UTCOffsetMinutes < -14*60 || s.UTCOffsetMinutes > 14*60:
		return fmt.Errorf("symbol %s: UTC offset out of range", s.Name)
	case s.InitialPhase == PhaseVolatilityAuction || int(s.InitialPhase) >= len(phaseNames):
		return fmt.Errorf("symbol %s: invalid initial phase", s.Name)
	}
	for i, st := range s.Schedule {
		if st.Minute < 0 || st.Minute >= 1440 || st.Phase == 0 || st.Phase == PhaseVolatilityAuction || int(st.Phase) >= len(phaseNames) {
			return fmt.Errorf("symbol %s: schedule step %d is invalid", s.Name, i)
		}
		if i > 0 && st.Minute <= s.Schedule[i-1].Minute {
			return fmt.Errorf("symbol %s: schedule steps must be in increasing minute order", s.Name)
		}
	}
	return nil
}

var pow10 = [19]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// Notional is the quote amount of quantity at price, in quote minor units,
// rounded down: price × quantity / 10^BaseScale computed in 128 bits. ok is
// false when the result does not fit int64. Both sides of a trade use the
// same rounded figure, so the ledger stays balanced; the buyer's hold is
// computed with NotionalCeil and is therefore always enough.
func (s *Symbol) Notional(price, qty int64) (amount int64, ok bool) {
	return mulDivPow10(price, qty, s.BaseScale, false)
}

// NotionalCeil is Notional rounded up: what a buy order must hold.
func (s *Symbol) NotionalCeil(price, qty int64) (amount int64, ok bool) {
	return mulDivPow10(price, qty, s.BaseScale, true)
}

// Fee is the fee on a quote amount at bps basis points, rounded down (in
// the client's favour). Rounding down is what makes holds sufficient: the
// fees of several partial fills never add up to more than the fee on their
// sum.
func Fee(amount, bps int64) int64 {
	f, _ := mulDivPow10(amount, bps, 4, false) // amount ≤ MaxInt64, bps ≤ 1000: fits
	return f
}

// maxFeeBps is the larger of the two fees: what a buy order holds for.
func (s *Symbol) maxFeeBps() int64 { return max(s.MakerFeeBps, s.TakerFeeBps) }

// buyHold is what a buy of qty at price must hold: the notional rounded up
// plus the larger fee on it. ok is false on overflow.
func (s *Symbol) buyHold(price, qty int64) (int64, bool) {
	n, ok := s.NotionalCeil(price, qty)
	if !ok {
		return 0, false
	}
	f := Fee(n, s.maxFeeBps())
	if n > 1<<63-1-f {
		return 0, false
	}
	return n + f, true
}

// mulDivPow10 is mulDiv by 10^k (k ≤ 18). When the product fits 64 bits —
// nearly always — it divides by a constant, which the compiler turns into a
// multiplication: a 128-bit division costs tens of cycles, and a trade
// makes several of them (notional, two fees, the holds).
func mulDivPow10(a, b int64, k int, ceil bool) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 {
		return mulDiv(a, b, pow10[k], ceil)
	}
	q := divPow10(lo, k)
	if ceil && q*pow10[k] != lo {
		q++
	}
	if q > 1<<63-1 {
		return 0, false
	}
	return int64(q), true
}

// divPow10 is x / 10^k for k ≤ 18, each case by a constant divisor.
func divPow10(x uint64, k int) uint64 {
	switch k {
	case 0:
		return x
	case 1:
		return x / 10
	case 2:
		return x / 100
	case 3:
		return x / 1e3
	case 4:
		return x / 1e4
	case 5:
		return x / 1e5
	case 6:
		return x / 1e6
	case 7:
		return x / 1e7
	case 8:
		return x / 1e8
	case 9:
		return x / 1e9
	case 10:
		return x / 1e10
	case 11:
		return x / 1e11
	case 12:
		return x / 1e12
	case 13:
		return x / 1e13
	case 14:
		return x / 1e14
	case 15:
		return x / 1e15
	case 16:
		return x / 1e16
	case 17:
		return x / 1e17
	}
	return x / 1e18
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

// qtyForBudget is the largest multiple of lot, at most MaxQty, whose
// notional at price plus the fee at bps fits within budget: what a market
// buy by quote amount can afford at one price. The estimate budget ×
// 10^scale × 10000 / (price × (10000 + bps)), computed in 128 bits, is
// usually exact or a lot off; largestLots settles it against the exact
// rounded figures in at most a few dozen steps whatever the estimate (a
// lot-by-lot correction had taken 2·10⁸ steps for a budget beyond MaxQty).
func (s *Symbol) qtyForBudget(budget, price, bps int64) int64 {
	if budget <= 0 || price <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(budget), pow10[s.BaseScale])
	if hi >= uint64(price) {
		return s.MaxQty // affordable beyond any order size
	}
	q0, _ := bits.Div64(hi, lo, uint64(price))
	if q0 > uint64(s.MaxQty) {
		q0 = uint64(s.MaxQty)
	}
	q, _ := mulDiv(int64(q0), 10_000, uint64(10_000+bps), false)
	fits := func(lots int64) bool {
		n, ok := s.Notional(price, lots*s.LotSize)
		return ok && n+Fee(n, bps) <= budget
	}
	return largestLots(s.MaxQty/s.LotSize, q/s.LotSize, fits) * s.LotSize
}

// largestLots is the largest k in [0, n] with fits(k), for fits true at 0
// and monotone (true up to some k, false beyond), starting from the guess
// est: two calls when the guess is right, and a binary search (about
// 2·log₂ n calls) when it is not.
func largestLots(n, est int64, fits func(int64) bool) int64 {
	est = max(0, min(est, n))
	if fits(est) && (est == n || !fits(est+1)) {
		return est
	}
	return int64(sort.Search(int(n)+1, func(k int) bool { return !fits(int64(k)) })) - 1
}

// sliceBelowMinNotional reports whether an iceberg's slice of display at
// price is worth less than the minimum notional.
func (s *Symbol) sliceBelowMinNotional(price, display int64) bool {
	n, ok := s.Notional(price, display)
	return ok && n < s.MinNotional
}

// divisor tests divisibility by a fixed positive d without a division
// instruction (tens of cycles; every order checks its price against the
// tick and its quantity against the lot): with d = d₀·2ˢ, d₀ odd, a
// non-negative x is a multiple of d exactly when its low s bits are zero
// and (x >> s)·d₀⁻¹ mod 2⁶⁴ — the multiplicative inverse exists because d₀
// is odd — is at most ⌊(2⁶⁴−1)/d₀⌋ (Granlund and Montgomery).
type divisor struct {
	shift uint
	inv   uint64 // d₀⁻¹ mod 2⁶⁴
	limit uint64 // ⌊(2⁶⁴−1)/d₀⌋
}

func newDivisor(d int64) divisor {
	s := uint(bits.TrailingZeros64(uint64(d)))
	d0 := uint64(d) >> s
	inv := d0 // Newton's iteration: each step doubles the correct low bits
	for range 5 {
		inv *= 2 - d0*inv
	}
	return divisor{shift: s, inv: inv, limit: ^uint64(0) / d0}
}

// divides reports whether x (≥ 0) is a multiple of d.
func (v divisor) divides(x int64) bool {
	u := uint64(x)
	return u&(1<<v.shift-1) == 0 && (u>>v.shift)*v.inv <= v.limit
}
