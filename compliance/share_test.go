package compliance_test

import (
	"math"
	"math/big"
	"testing"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/apperr"
)

func TestParseShare(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			in       string
			num, den int64
			str      string
		}{
			{"0", 0, 1, "0"},
			{"1", 1, 1, "1"},
			{"0.5", 5, 10, "0.5"},
			{"0.50", 50, 100, "0.5"},
			{"0.75", 75, 100, "0.75"},
			{"0.80", 80, 100, "0.8"},
			{"1.000", 1000, 1000, "1"},
			{"0.000000000000000001", 1, 1e18, "0.000000000000000001"},
		} {
			s, err := compliance.ParseShare(tc.in)
			if err != nil {
				t.Fatalf("ParseShare(%q): %v", tc.in, err)
			}
			if s.Num != tc.num || s.Den != tc.den {
				t.Errorf("ParseShare(%q) = %d/%d, want %d/%d", tc.in, s.Num, s.Den, tc.num, tc.den)
			}
			if got := s.String(); got != tc.str {
				t.Errorf("ParseShare(%q).String() = %q, want %q", tc.in, got, tc.str)
			}
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for _, in := range []string{
			"", ".", "0.", ".5", "-0.5", "+0.5", "1.5", "1.01", "2", "00.5", "01",
			"0.5e1", "5e-1", "0,5", " 0.5", "0.5 ", "50%", "0.0000000000000000001", "NaN", "0x1",
		} {
			_, err := compliance.ParseShare(in)
			wantCode(t, err, apperr.InvalidParameter)
		}
	})
}

func TestShare_String(t *testing.T) {
	for _, tc := range []struct {
		s    compliance.Share
		want string
	}{
		{compliance.Share{Num: 3, Den: 4}, "0.75"},
		{compliance.Share{Num: 4, Den: 5}, "0.8"},
		{compliance.Share{Num: 1, Den: 3}, "1/3"},
		{compliance.Share{Num: 7, Den: 7}, "1"},
		{compliance.Share{}, "0/0"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%d/%d.String() = %q, want %q", tc.s.Num, tc.s.Den, got, tc.want)
		}
	}
}

func TestShare_Text(t *testing.T) {
	var s compliance.Share
	if err := s.UnmarshalText([]byte("0.75")); err != nil {
		t.Fatal(err)
	}
	b, err := s.MarshalText()
	if err != nil || string(b) != "0.75" {
		t.Fatalf("MarshalText = %q, %v; want \"0.75\"", b, err)
	}
	wantCode(t, s.UnmarshalText([]byte("0.9.1")), apperr.InvalidParameter)
}

func TestShare_Required(t *testing.T) {
	half := compliance.Share{Num: 50, Den: 100}
	threeQuarters := compliance.Share{Num: 75, Den: 100}
	all := compliance.Share{Num: 1, Den: 1}
	none := compliance.Share{Num: 0, Den: 1}
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			share compliance.Share
			mined int64
			want  int64
		}{
			{"1.00000001 BTC at 0.75 rounds up", threeQuarters, 100_000_001, 75_000_001},
			{"1.00000001 BTC at 0.5 rounds up", half, 100_000_001, 50_000_001},
			{"1 BTC at 0.75 is exact", threeQuarters, 100_000_000, 75_000_000},
			{"4 sat at 0.75 is exact", threeQuarters, 4, 3},
			{"1 sat at 0.75 is 1", threeQuarters, 1, 1},
			{"1 sat at 0.5 is 1", half, 1, 1},
			{"2 sat at 0.5 is 1", half, 2, 1},
			{"zero mined", threeQuarters, 0, 0},
			{"share 0", none, 100_000_001, 0},
			{"share 1", all, 100_000_001, 100_000_001},
			{"max int64 at 0.75", threeQuarters, math.MaxInt64, 6917529027641081856},
			{"max int64 at 0.5", half, math.MaxInt64, 4611686018427387904},
			{"max int64 at 1", all, math.MaxInt64, math.MaxInt64},
			{"max int64 at 1 with decimal denominator", compliance.Share{Num: 1e18, Den: 1e18}, math.MaxInt64, math.MaxInt64},
			{"max int64 at 1e-18", compliance.Share{Num: 1, Den: 1e18}, math.MaxInt64, 10},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := tc.share.Required(tc.mined)
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("Required(%d) at %s = %d, want %d", tc.mined, tc.share, got, tc.want)
				}
			})
		}
	})
	t.Run("ErrNegativeMined", func(t *testing.T) {
		_, err := threeQuarters.Required(-1)
		wantCode(t, err, apperr.InvalidQuantity)
	})
	t.Run("ErrInvalidShare", func(t *testing.T) {
		for _, s := range []compliance.Share{{}, {Num: 1, Den: 0}, {Num: -1, Den: 2}, {Num: 3, Den: 2}, {Num: 1, Den: -2}} {
			_, err := s.Required(10)
			wantCode(t, err, apperr.InvalidParameter)
		}
	})
}

// FuzzRequired checks Required against math/big: the result is the least
// integer ≥ mined × Num / Den, for every valid share and non-negative mined.
func FuzzRequired(f *testing.F) {
	f.Add(int64(100_000_001), int64(75), int64(100))
	f.Add(int64(100_000_001), int64(50), int64(100))
	f.Add(int64(math.MaxInt64), int64(75), int64(100))
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64-1), int64(math.MaxInt64))
	f.Add(int64(0), int64(0), int64(1))
	f.Add(int64(1), int64(1), int64(1e18))
	f.Fuzz(func(t *testing.T, mined, num, den int64) {
		s := compliance.Share{Num: num, Den: den}
		got, err := s.Required(mined)
		if den <= 0 || num < 0 || num > den {
			wantCode(t, err, apperr.InvalidParameter)
			return
		}
		if mined < 0 {
			wantCode(t, err, apperr.InvalidQuantity)
			return
		}
		if err != nil {
			t.Fatalf("Required(%d) at %d/%d: %v", mined, num, den, err)
		}
		// ceil(p / d) for p ≥ 0, d > 0 is (p + d - 1) / d.
		p := new(big.Int).Mul(big.NewInt(mined), big.NewInt(num))
		d := big.NewInt(den)
		want := new(big.Int).Quo(p.Add(p, new(big.Int).Sub(d, big.NewInt(1))), d)
		if !want.IsInt64() || want.Int64() != got {
			t.Fatalf("Required(%d) at %d/%d = %d, want %s", mined, num, den, got, want)
		}
		if got > mined {
			t.Fatalf("Required(%d) at %d/%d = %d exceeds mined", mined, num, den, got)
		}
	})
}

// FuzzParseShare checks that ParseShare accepts exactly the plain decimals
// from 0 to 1, that the value is exact, and that String round-trips.
func FuzzParseShare(f *testing.F) {
	for _, s := range []string{"0", "1", "0.5", "0.75", "0.80", "1.0", "1.01", "-0", ".5", "1e0", "0.000000000000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := compliance.ParseShare(in)
		if err != nil {
			wantCode(t, err, apperr.InvalidParameter)
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("ParseShare(%q) = %d/%d, invalid: %v", in, s.Num, s.Den, err)
		}
		want, ok := new(big.Rat).SetString(in)
		if !ok || want.Cmp(big.NewRat(s.Num, s.Den)) != 0 {
			t.Fatalf("ParseShare(%q) = %d/%d, want %v", in, s.Num, s.Den, want)
		}
		back, err := compliance.ParseShare(s.String())
		if err != nil || big.NewRat(back.Num, back.Den).Cmp(want) != 0 {
			t.Fatalf("ParseShare(%q).String() = %q does not round-trip: %v", in, s.String(), err)
		}
	})
}
