package money_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/money"
)

func TestParse(t *testing.T) {
	ok := []struct {
		in    string
		scale int
		want  int64
	}{
		{"0", 8, 0},
		{"1", 8, 100000000},
		{"0.5", 8, 50000000},
		{"0.00000001", 8, 1},
		{"1.50000000000", 8, 150000000}, // zeros past the scale are fine
		{"50000000.00", 2, 5000000000},
		{"92233720368.54775807", 8, math.MaxInt64},
		{"7", 0, 7},
	}
	for _, c := range ok {
		got, err := money.Parse(c.in, c.scale)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q, %d) = %d, %v; want %d", c.in, c.scale, got, err, c.want)
		}
	}
	bad := []struct {
		in    string
		scale int
		code  apperr.Code
	}{
		{"", 8, apperr.InvalidQuantity},
		{"-1", 8, apperr.InvalidQuantity},
		{"+1", 8, apperr.InvalidQuantity},
		{"1e8", 8, apperr.InvalidQuantity},
		{"abc", 8, apperr.InvalidQuantity},
		{".5", 8, apperr.InvalidQuantity},
		{"5.", 8, apperr.InvalidQuantity},
		{"1.2.3", 8, apperr.InvalidQuantity},
		{"0.000000001", 8, apperr.TooPrecise},
		{"0.001", 2, apperr.TooPrecise},
		{"92233720368.54775808", 8, apperr.InvalidQuantity},
		{"1 ", 8, apperr.InvalidQuantity},
	}
	for _, c := range bad {
		_, err := money.Parse(c.in, c.scale)
		if got := apperr.CodeOf(err); got != c.code {
			t.Errorf("Parse(%q, %d) code = %q (%v); want %q", c.in, c.scale, got, err, c.code)
		}
	}
}

func TestFormat(t *testing.T) {
	cases := []struct {
		minor int64
		scale int
		want  string
	}{
		{0, 8, "0.00000000"},
		{1, 8, "0.00000001"},
		{150000000, 8, "1.50000000"},
		{-5, 2, "-0.05"},
		{7, 0, "7"},
		{math.MinInt64, 0, "-9223372036854775808"},
	}
	for _, c := range cases {
		if got := money.Format(c.minor, c.scale); got != c.want {
			t.Errorf("Format(%d, %d) = %q; want %q", c.minor, c.scale, got, c.want)
		}
	}
}

func FuzzParseFormat(f *testing.F) {
	f.Add("1.5", 8)
	f.Add("0.00000001", 8)
	f.Fuzz(func(t *testing.T, s string, scale int) {
		if scale < 0 || scale > money.MaxScale {
			return
		}
		v, err := money.Parse(s, scale)
		if err != nil {
			return
		}
		back, err := money.Parse(money.Format(v, scale), scale)
		if err != nil || back != v {
			t.Fatalf("round trip of %q (scale %d): %d -> %q -> %d, %v", s, scale, v, money.Format(v, scale), back, err)
		}
	})
}

// TestFormatMatchesReference: the allocation-free Format writes what the
// plain fmt-based formatting writes, for edge values and random ones at
// every scale an asset may have.
func TestFormatMatchesReference(t *testing.T) {
	reference := func(minor int64, scale int) string {
		neg := minor < 0
		u := uint64(minor)
		if neg {
			u = uint64(-(minor + 1)) + 1
		}
		digits := fmt.Sprintf("%0*d", scale+1, u)
		out := digits
		if scale > 0 {
			out = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
		}
		if neg {
			out = "-" + out
		}
		return out
	}
	rng := rand.New(rand.NewPCG(7, 9))
	values := []int64{0, 1, -1, 9, 10, 99, 100, 12345, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	for range 20000 {
		values = append(values, rng.Int64()>>rng.IntN(63), -(rng.Int64() >> rng.IntN(63)))
	}
	for scale := 0; scale <= 18; scale++ {
		for _, v := range values {
			if got, want := money.Format(v, scale), reference(v, scale); got != want {
				t.Fatalf("Format(%d, %d) = %q; want %q", v, scale, got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = money.Format(150000000, 8) }); n > 1 {
		t.Fatalf("Format allocates %v times; want 1 (the string)", n)
	}
}
