package postgres

import (
	"database/sql/driver"
	"errors"
	"math/big"
	"strconv"

	"github.com/jackc/pgx/v5/pgtype"
)

// Minor is the exact decimal V × 10^-Scale: an amount held as int64 minor
// units of an asset with Scale decimal places (0..18). It encodes as a
// PostgreSQL numeric whose display scale is Scale, so V=100000000, Scale=8
// reads back as 1.00000000.
//
// On a type map prepared by RegisterMinor it encodes without big.Int work;
// anywhere else it still encodes correctly through pgx's own numeric codec
// (it is a pgtype.NumericValuer).
type Minor struct {
	V     int64
	Scale int32
}

// MaxMinorScale is the largest Scale a Minor may have.
const MaxMinorScale = 18

var errMinorScale = errors.New("settlement: Minor scale out of range 0..18")

// NumericValue implements pgtype.NumericValuer: the slow, general path used
// where RegisterMinor has not been called.
func (x Minor) NumericValue() (pgtype.Numeric, error) {
	if x.Scale < 0 || x.Scale > MaxMinorScale {
		return pgtype.Numeric{}, errMinorScale
	}
	return pgtype.Numeric{Int: big.NewInt(x.V), Exp: -x.Scale, Valid: true}, nil
}

// String returns the exact decimal text, e.g. "-0.00000005" for V=-5,
// Scale=8. A Scale outside 0..18 formats as V "e-" Scale (for debugging;
// such a Minor does not encode).
func (x Minor) String() string {
	b, err := appendMinorText(make([]byte, 0, 24), x)
	if err != nil {
		return strconv.FormatInt(x.V, 10) + "e-" + strconv.FormatInt(int64(x.Scale), 10)
	}
	return string(b)
}

// RegisterMinor makes m encode Minor (and *Minor) values for numeric
// parameters and COPY columns with a fast exact encoder. Every other use of
// the numeric type — other Go values, scanning, decoding, formats — goes to
// the codec that was registered for numeric before (pgx's NumericCodec
// unless something else replaced it), unchanged.
//
// It is idempotent and, once m is prepared, costs one map look-up: calling
// it again does not re-register (re-registering would flush m's memoized
// encode plans). Call it per connection, e.g. from pgxpool's AfterConnect
// with conn.TypeMap().
func RegisterMinor(m *pgtype.Map) {
	t, ok := m.TypeForOID(pgtype.NumericOID)
	var next pgtype.Codec = pgtype.NumericCodec{}
	name := "numeric"
	if ok {
		if _, done := t.Codec.(minorCodec); done {
			return
		}
		next, name = t.Codec, t.Name
	}
	m.RegisterType(&pgtype.Type{Name: name, OID: pgtype.NumericOID, Codec: minorCodec{next: next}})
}

// MinorRegistered reports whether RegisterMinor has prepared m.
func MinorRegistered(m *pgtype.Map) bool {
	t, ok := m.TypeForOID(pgtype.NumericOID)
	if !ok {
		return false
	}
	_, done := t.Codec.(minorCodec)
	return done
}

// minorCodec is the numeric codec with a fast path for encoding Minor.
type minorCodec struct{ next pgtype.Codec }

func (c minorCodec) FormatSupported(format int16) bool { return c.next.FormatSupported(format) }

func (c minorCodec) PreferredFormat() int16 { return c.next.PreferredFormat() }

func (c minorCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	switch value.(type) {
	case Minor:
		switch format {
		case pgtype.BinaryFormatCode:
			return minorBinaryPlan{}
		case pgtype.TextFormatCode:
			return minorTextPlan{}
		}
	case *Minor:
		switch format {
		case pgtype.BinaryFormatCode:
			return minorPtrBinaryPlan{}
		case pgtype.TextFormatCode:
			return minorPtrTextPlan{}
		}
	}
	return c.next.PlanEncode(m, oid, format, value)
}

func (c minorCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	return c.next.PlanScan(m, oid, format, target)
}

func (c minorCodec) DecodeDatabaseSQLValue(m *pgtype.Map, oid uint32, format int16, src []byte) (driver.Value, error) {
	return c.next.DecodeDatabaseSQLValue(m, oid, format, src)
}

func (c minorCodec) DecodeValue(m *pgtype.Map, oid uint32, format int16, src []byte) (any, error) {
	return c.next.DecodeValue(m, oid, format, src)
}

type (
	minorBinaryPlan    struct{}
	minorTextPlan      struct{}
	minorPtrBinaryPlan struct{}
	minorPtrTextPlan   struct{}
)

func (minorBinaryPlan) Encode(value any, buf []byte) ([]byte, error) {
	return appendMinorBinary(buf, value.(Minor))
}

func (minorTextPlan) Encode(value any, buf []byte) ([]byte, error) {
	return appendMinorText(buf, value.(Minor))
}

// A nil *Minor is SQL NULL (a nil returned buffer); pgx usually catches it
// before the plan is reached.
func (minorPtrBinaryPlan) Encode(value any, buf []byte) ([]byte, error) {
	p := value.(*Minor)
	if p == nil {
		return nil, nil
	}
	return appendMinorBinary(buf, *p)
}

func (minorPtrTextPlan) Encode(value any, buf []byte) ([]byte, error) {
	p := value.(*Minor)
	if p == nil {
		return nil, nil
	}
	return appendMinorText(buf, *p)
}

// appendMinorBinary appends x in PostgreSQL's binary numeric format:
// int16 ndigits, int16 weight, uint16 sign, int16 dscale, then ndigits
// base-10000 digits, most significant first, without leading or trailing
// zero digits (as PostgreSQL's own strip_var leaves them). The value is
// Σ digit[i] × 10000^(weight-i); dscale is x.Scale. Zero is ndigits=0,
// weight=0, positive.
func appendMinorBinary(buf []byte, x Minor) ([]byte, error) {
	s := x.Scale
	if s < 0 || s > MaxMinorScale {
		return nil, errMinorScale
	}
	mag := uint64(x.V)
	var sign uint16
	if x.V < 0 {
		mag = -mag // two's complement: exact for math.MinInt64 too
		sign = 0x4000
	}

	// Base-10000 digits, least significant first. The decimal point must
	// fall between two digits, so the fraction is padded on the right with
	// pad zeros to fracDigits×4 decimal places: the lowest digit takes the
	// last 4-pad decimal digits of mag shifted up by pad places, and what
	// is left of mag then splits evenly into base-10000 digits. Every
	// division is by a constant (no big.Int, no 128-bit arithmetic).
	var d [8]uint16 // ≤ 6 needed: 20 decimal digits + 3 padding
	n := 0
	pad := (4 - s%4) % 4
	fracDigits := int((s + pad) / 4)
	switch pad {
	case 1:
		d[0] = uint16(mag%1000) * 10
		mag /= 1000
		n = 1
	case 2:
		d[0] = uint16(mag%100) * 100
		mag /= 100
		n = 1
	case 3:
		d[0] = uint16(mag%10) * 1000
		mag /= 10
		n = 1
	}
	for mag != 0 || n < fracDigits {
		d[n] = uint16(mag % 10000)
		mag /= 10000
		n++
	}
	// d[n-1] is the most significant digit, with weight n-1-fracDigits.
	weight := n - 1 - fracDigits
	for n > 0 && d[n-1] == 0 { // leading zeros: only fraction digits can be
		n--
		weight--
	}
	lo := 0
	for lo < n && d[lo] == 0 { // trailing zeros
		lo++
	}
	if lo == n { // zero
		n, lo, weight, sign = 0, 0, 0, 0
	}
	nd := n - lo

	buf = append(buf,
		byte(nd>>8), byte(nd),
		byte(uint16(int16(weight))>>8), byte(int16(weight)),
		byte(sign>>8), byte(sign),
		byte(s>>8), byte(s),
	)
	for i := n - 1; i >= lo; i-- {
		buf = append(buf, byte(d[i]>>8), byte(d[i]))
	}
	return buf, nil
}

// appendMinorText appends x as exact decimal text with exactly x.Scale
// fraction digits: V=-5, Scale=8 → "-0.00000005"; V=7, Scale=0 → "7".
func appendMinorText(buf []byte, x Minor) ([]byte, error) {
	s := x.Scale
	if s < 0 || s > MaxMinorScale {
		return nil, errMinorScale
	}
	mag := uint64(x.V)
	if x.V < 0 {
		mag = -mag
		buf = append(buf, '-')
	}
	if s == 0 {
		return strconv.AppendUint(buf, mag, 10), nil
	}
	p := pow10[s]
	buf = strconv.AppendUint(buf, mag/p, 10)
	frac := mag % p
	var f [MaxMinorScale + 1]byte
	f[0] = '.'
	for i := s; i >= 1; i-- {
		f[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(buf, f[:s+1]...), nil
}

var pow10 = [MaxMinorScale + 1]uint64{
	1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000,
	10_000_000_000, 100_000_000_000, 1_000_000_000_000, 10_000_000_000_000, 100_000_000_000_000,
	1_000_000_000_000_000, 10_000_000_000_000_000, 100_000_000_000_000_000, 1_000_000_000_000_000_000,
}
