// Package money converts between decimal strings at Satu's edges and the
// integer minor units used everywhere inside: an amount of an asset with
// scale s is an int64 count of 10^-s units. No float is ever involved.
package money

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/satu-exchange/satu/internal/apperr"
)

// MaxScale is the largest scale an asset may have and still fit int64 minor units usefully.
const MaxScale = 18

// Parse reads a plain decimal string ("0.5", "12", "50000000.00") as minor
// units of an asset with the given scale. It refuses signs, exponents,
// empty parts, more fractional digits than scale (TOO_PRECISE) and values
// that do not fit in int64 (INVALID_QUANTITY). Zero is accepted; callers
// that need a positive amount check it.
func Parse(s string, scale int) (int64, error) {
	if scale < 0 || scale > MaxScale {
		return 0, fmt.Errorf("money: scale %d out of range", scale)
	}
	if s == "" {
		return 0, apperr.New(apperr.InvalidQuantity, "amount is empty")
	}
	intPart, frac, hasPoint := strings.Cut(s, ".")
	if intPart == "" || (hasPoint && frac == "") {
		return 0, apperr.New(apperr.InvalidQuantity, "amount %q is not a plain decimal number", s)
	}
	if !allDigits(intPart) || !allDigits(frac) {
		if strings.HasPrefix(s, "-") {
			return 0, apperr.New(apperr.InvalidQuantity, "amount %q is negative", s)
		}
		return 0, apperr.New(apperr.InvalidQuantity, "amount %q is not a plain decimal number", s)
	}
	// Trailing zeros beyond the scale carry no precision.
	trimmed := strings.TrimRight(frac, "0")
	if len(trimmed) > scale {
		return 0, apperr.New(apperr.TooPrecise, "amount %q has more than %d decimal places", s, scale)
	}
	var v uint64
	digits := intPart + trimmed + strings.Repeat("0", scale-len(trimmed))
	for _, c := range digits {
		d := uint64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, apperr.New(apperr.InvalidQuantity, "amount %q is too large", s)
		}
		v = v*10 + d
	}
	return int64(v), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Format writes minor units as a decimal string with exactly scale
// fractional digits: Format(150000000, 8) == "1.50000000".
func Format(minor int64, scale int) string {
	var buf [48]byte
	return string(AppendFormat(buf[:0], minor, scale))
}

// AppendFormat appends Format(minor, scale) to dst.
func AppendFormat(dst []byte, minor int64, scale int) []byte {
	neg := minor < 0
	var u uint64
	if neg {
		u = uint64(-(minor + 1)) + 1 // safe for math.MinInt64
	} else {
		u = uint64(minor)
	}
	var d [20]byte
	digits := strconv.AppendUint(d[:0], u, 10)
	if neg {
		dst = append(dst, '-')
	}
	if pad := scale + 1 - len(digits); pad > 0 { // below 1: "0." and zeros before the digits
		dst = append(dst, '0', '.')
		for range pad - 1 {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[:len(digits)-scale]...)
	if scale > 0 {
		dst = append(dst, '.')
		dst = append(dst, digits[len(digits)-scale:]...)
	}
	return dst
}
