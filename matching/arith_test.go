package matching

// The fast paths of the engine's arithmetic agree with the plain ones.

import (
	"math/rand/v2"
	"testing"
)

func TestMulDivPow10MatchesMulDiv(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 300_000; i++ {
		var a, b int64
		switch i % 3 {
		case 0:
			a, b = r.Int64(), r.Int64()
		case 1:
			a, b = r.Int64N(1<<40), r.Int64N(1<<24)
		default:
			a, b = r.Int64N(1e6), r.Int64N(1e6)
		}
		k := r.IntN(19)
		for _, c := range []bool{false, true} {
			q1, ok1 := mulDivPow10(a, b, k, c)
			q2, ok2 := mulDiv(a, b, pow10[k], c)
			if q1 != q2 || ok1 != ok2 {
				t.Fatalf("%d %d %d %v: %d %v vs %d %v", a, b, k, c, q1, ok1, q2, ok2)
			}
		}
	}
}

func TestDivisorMatchesRemainder(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	ds := []int64{1, 2, 3, 4, 10, 100, 1000, 10000, 1 << 40, 3 << 20, 1e18, 1<<63 - 1, 7, 12, 1_000_000}
	for i := 0; i < 200; i++ {
		ds = append(ds, 1+r.Int64N(1<<20), 1+r.Int64())
	}
	for _, d := range ds {
		v := newDivisor(d)
		xs := []int64{0, 1, d, 2 * d, d - 1, d + 1, 1<<63 - 1}
		for j := 0; j < 2000; j++ {
			xs = append(xs, r.Int64(), r.Int64N(1<<30), d*r.Int64N((1<<63-1)/d))
		}
		for _, x := range xs {
			if x < 0 {
				continue
			}
			if got, want := v.divides(x), x%d == 0; got != want {
				t.Fatalf("%d | %d: %v, want %v", d, x, got, want)
			}
		}
	}
}
