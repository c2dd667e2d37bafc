package miningfee

import (
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"strconv"

	"github.com/satu-exchange/satu/internal/apperr"
)

// tengePattern is a decimal tenge figure: no sign, no exponent, no leading
// zeros, at most two decimals (tiyn) and at most 15 integer digits, so the
// value in tiyn always fits in an int64.
var tengePattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,14})(?:\.([0-9]{1,2}))?$`)

// parseTenge reads a decimal tenge string such as "10", "7.5" or "0.25" as
// int64 tiyn. Figures in the file are strings, never JSON numbers, so no
// float ever touches them.
func parseTenge(s string) (int64, error) {
	m := tengePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a decimal tenge figure with at most two decimals", s)
	}
	whole, _ := strconv.ParseInt(m[1], 10, 64) // ≤ 15 digits: cannot fail
	var frac int64
	switch len(m[2]) {
	case 1:
		frac = int64(m[2][0]-'0') * 10
	case 2:
		frac = int64(m[2][0]-'0')*10 + int64(m[2][1]-'0')
	}
	return whole*100 + frac, nil
}

// formatRate writes a rate in tiyn as tenge, without decimals when it is a
// whole number of tenge ("10 ₸", "1.50 ₸"): the form the sources use.
func formatRate(tiyn int64) string {
	if tiyn%100 == 0 {
		return fmt.Sprintf("%d ₸", tiyn/100)
	}
	return fmt.Sprintf("%d.%02d ₸", tiyn/100, tiyn%100)
}

// formatPrice writes a price in tiyn as tenge with two decimals ("7.50").
func formatPrice(tiyn int64) string { return fmt.Sprintf("%d.%02d", tiyn/100, tiyn%100) }

// mulTiyn returns kWh × rate, refusing with apperr.InvalidQuantity when the
// product does not fit an int64. Both are non-negative.
func mulTiyn(kwh, rateTiyn int64) (int64, error) {
	hi, lo := bits.Mul64(uint64(kwh), uint64(rateTiyn))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, apperr.New(apperr.InvalidQuantity,
			"%d kWh at %s/kWh overflows the amount in tiyn", kwh, formatRate(rateTiyn))
	}
	return int64(lo), nil
}

// addChecked returns a + b for non-negative a and b, or false when the sum
// does not fit an int64.
func addChecked(a, b int64) (int64, bool) {
	s := a + b
	return s, s >= a
}

// u128 is an unsigned 128-bit integer. The average-price numerator Σ kWh ×
// price (tiyn·kWh) can exceed an int64 for sums whose fee still fits, so it
// is kept exact in 128 bits rather than refused.
type u128 struct{ hi, lo uint64 }

// mul128 returns a × b exactly.
func mul128(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

// add returns x + y. It cannot wrap where it is used: the numerator is at
// most (Σ kWh) × (max price) < 2⁶³ × 2⁶³ = 2¹²⁶, because Σ kWh is checked to
// fit an int64 first.
func (x u128) add(y u128) u128 {
	lo, carry := bits.Add64(x.lo, y.lo, 0)
	hi, _ := bits.Add64(x.hi, y.hi, carry)
	return u128{hi, lo}
}

// cmp returns -1, 0 or +1 as x is less than, equal to or greater than y.
func (x u128) cmp(y u128) int {
	switch {
	case x.hi < y.hi || x.hi == y.hi && x.lo < y.lo:
		return -1
	case x == y:
		return 0
	default:
		return 1
	}
}

// avgPrice is an exact kWh-weighted average price: num tiyn·kWh over den
// kWh, den > 0. It is never rounded to decide anything; floor is only for
// display.
type avgPrice struct {
	num u128
	den int64
}

// cmpTiyn compares the average with a price p in tiyn by cross-multiplying:
// num/den ⋚ p ⇔ num ⋚ p × den. Exact, so no rounding decides a bracket.
func (a avgPrice) cmpTiyn(p int64) int { return a.num.cmp(mul128(uint64(p), uint64(a.den))) }

// floor returns the average truncated to whole tiyn and whether it is exact.
// The quotient fits: the average is at most the largest price, an int64, so
// num.hi < den and Div64 cannot overflow.
func (a avgPrice) floor() (tiyn int64, exact bool) {
	q, r := bits.Div64(a.num.hi, a.num.lo, uint64(a.den))
	return int64(q), r == 0
}

// String writes the average in tenge with two decimals, followed by "+" when
// the exact value lies strictly above the figure shown ("23.99+" is between
// 23.99 and 24.00 exclusive). Truncation plus the mark is never misleading at
// a bracket bound, where either rounding alone would be.
func (a avgPrice) String() string {
	f, exact := a.floor()
	if exact {
		return formatPrice(f)
	}
	return formatPrice(f) + "+"
}
