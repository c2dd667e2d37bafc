package compliance

import (
	"math/big"
	"math/bits"
	"strings"

	"github.com/satu-exchange/satu/internal/apperr"
)

// maxShareDecimals is the most fractional digits a share may have: 10^18 is
// the largest power of ten that fits the int64 denominator.
const maxShareDecimals = 18

// Share is an exact fraction Num/Den of a mined volume, 0 ≤ Num/Den ≤ 1.
// ParseShare keeps the decimal denominator ("0.75" is 75/100), so String
// gives back the figure the rule set was written with. The zero Share is
// invalid (Den 0); use ParseShare or write Num and Den out.
type Share struct {
	Num, Den int64
}

// ParseShare reads a plain decimal between 0 and 1 ("0", "0.5", "0.75", "1")
// into an exact Share with denominator 10^(fractional digits). It refuses
// signs, exponents, empty parts, leading zeros, more than 18 fractional digits
// and values above 1, with apperr.InvalidParameter.
func ParseShare(s string) (Share, error) {
	bad := func(why string) (Share, error) {
		return Share{}, apperr.New(apperr.InvalidParameter,
			"share %q %s: want a plain decimal from 0 to 1 such as \"0.75\"", s, why)
	}
	intPart, frac, hasPoint := strings.Cut(s, ".")
	switch {
	case intPart != "0" && intPart != "1":
		return bad("is not a decimal from 0 to 1")
	case hasPoint && (frac == "" || !allDigits(frac)):
		return bad("is not a plain decimal")
	case len(frac) > maxShareDecimals:
		return bad("has more than 18 decimal places")
	}
	den := int64(1)
	num := int64(intPart[0] - '0')
	for i := 0; i < len(frac); i++ {
		den *= 10
		num = num*10 + int64(frac[i]-'0')
	}
	if num > den {
		return bad("is above 1")
	}
	return Share{Num: num, Den: den}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Validate checks the invariant every computation relies on: Den > 0 and
// 0 ≤ Num ≤ Den. It returns apperr.InvalidParameter otherwise.
func (s Share) Validate() error {
	if s.Den <= 0 || s.Num < 0 || s.Num > s.Den {
		return apperr.New(apperr.InvalidParameter, "share %d/%d is not a fraction from 0 to 1", s.Num, s.Den)
	}
	return nil
}

// String writes the share as a plain decimal with no trailing zeros ("0.75",
// "0.5", "0", "1"). A fraction with no finite decimal form (1/3), which no
// rule-set file can produce, is written "1/3".
func (s Share) String() string {
	if s.Den == 0 {
		return big.NewInt(s.Num).String() + "/0"
	}
	r := new(big.Rat).SetFrac64(s.Num, s.Den)
	if prec, exact := r.FloatPrec(); exact {
		return r.FloatString(prec)
	}
	return r.String()
}

// MarshalText writes the share as String does, so it appears in JSON as "0.75".
func (s Share) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a share as ParseShare does.
func (s *Share) UnmarshalText(text []byte) error {
	v, err := ParseShare(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Required returns the least whole number of minor units that is at least
// this share of mined: ceil(mined × Num / Den). The product is formed in
// 128 bits, so every int64 mined value is exact and nothing overflows; the
// result never exceeds mined. A negative mined volume is refused with
// apperr.InvalidQuantity, an invalid share with apperr.InvalidParameter.
func (s Share) Required(mined int64) (int64, error) {
	if err := s.Validate(); err != nil {
		return 0, err
	}
	if mined < 0 {
		return 0, apperr.New(apperr.InvalidQuantity, "mined volume %d is negative", mined)
	}
	hi, lo := bits.Mul64(uint64(mined), uint64(s.Num))
	// mined < 2^63 and Num ≤ Den, so hi < Num/2 < Den: Div64 cannot overflow,
	// and the quotient is at most mined.
	q, rem := bits.Div64(hi, lo, uint64(s.Den))
	if rem != 0 {
		// q < mined here (q == mined only when Num == Den, which leaves no
		// remainder), so rounding up stays within int64.
		q++
	}
	return int64(q), nil
}
