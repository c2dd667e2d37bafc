package miningfee

import (
	"fmt"
	"regexp"
)

// Bracket is one interval of average purchased-power price and the rate for
// it. The brackets of a table cover [0, ∞) without gap or overlap, so every
// average price falls in exactly one; a bracket whose rate is not confirmed
// is kept in the file so that the refusal is data, not code.
type Bracket struct {
	// Low is the lower bound in tiyn per kWh; LowInclusive says whether a
	// price equal to it is inside.
	Low          int64
	LowInclusive bool
	// High is the upper bound in tiyn per kWh, unused when Unbounded;
	// HighInclusive says whether a price equal to it is inside.
	High          int64
	HighInclusive bool
	// Unbounded says the bracket has no upper bound ("[24, ∞)").
	Unbounded bool
	// Rate is the fee for an average price in the bracket.
	Rate Rate
}

// intervalPattern is the file's bracket notation: "[5, 10]", "(10, 24)",
// "[24, ∞)". An unbounded bracket must end with ")".
var intervalPattern = regexp.MustCompile(`^([\[(])([0-9.]+), ([0-9.]+|∞)([\])])$`)

// parseBracketPrice reads a bracket's interval notation.
func parseBracketPrice(s string) (Bracket, error) {
	m := intervalPattern.FindStringSubmatch(s)
	if m == nil {
		return Bracket{}, fmt.Errorf("price %q is not an interval such as \"[5, 10]\", \"(10, 24)\" or \"[24, ∞)\"", s)
	}
	var b Bracket
	var err error
	b.LowInclusive = m[1] == "["
	if b.Low, err = parseTenge(m[2]); err != nil {
		return Bracket{}, fmt.Errorf("price %q: lower bound %v", s, err)
	}
	b.HighInclusive = m[4] == "]"
	if m[3] == "∞" {
		if b.HighInclusive {
			return Bracket{}, fmt.Errorf("price %q: an interval open to ∞ ends with \")\"", s)
		}
		b.Unbounded = true
	} else if b.High, err = parseTenge(m[3]); err != nil {
		return Bracket{}, fmt.Errorf("price %q: upper bound %v", s, err)
	}
	if !b.Unbounded && (b.High < b.Low || b.High == b.Low && !(b.LowInclusive && b.HighInclusive)) {
		return Bracket{}, fmt.Errorf("price %q is an empty interval", s)
	}
	return b, nil
}

// String writes the bracket in the file's notation, with bounds in tenge
// ("[5, 10]", "(10, 24)", "[24, ∞)").
func (b Bracket) String() string {
	opening, closing := "(", ")"
	if b.LowInclusive {
		opening = "["
	}
	high := "∞"
	if !b.Unbounded {
		high = trimTenge(b.High)
		if b.HighInclusive {
			closing = "]"
		}
	}
	return opening + trimTenge(b.Low) + ", " + high + closing
}

// trimTenge writes tiyn as tenge without the unit and without decimals when
// whole ("5", "4.99").
func trimTenge(tiyn int64) string {
	if tiyn%100 == 0 {
		return fmt.Sprintf("%d", tiyn/100)
	}
	return formatPrice(tiyn)
}

// contains reports whether the exact average price a lies in the bracket.
func (b Bracket) contains(a avgPrice) bool {
	lo := a.cmpTiyn(b.Low)
	if lo < 0 || lo == 0 && !b.LowInclusive {
		return false
	}
	if b.Unbounded {
		return true
	}
	hi := a.cmpTiyn(b.High)
	return hi < 0 || hi == 0 && b.HighInclusive
}
