package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestLiveBuckets: every latency falls in a bucket whose upper bound is
// above it and at most a quarter above it, and buckets follow each other.
func TestLiveBuckets(t *testing.T) {
	for us := int64(1); us < 1<<30; us = us*17/16 + 1 {
		d := time.Duration(us) * time.Microsecond
		i := liveBucket(d)
		up := liveUpper(i)
		if up <= d || float64(up) > 1.25*float64(d)+float64(time.Microsecond) {
			t.Fatalf("%v: bucket %d, upper bound %v", d, i, up)
		}
		if i > 0 && liveUpper(i-1) > d {
			t.Fatalf("%v: bucket %d, but bucket %d ends at %v", d, i, i-1, liveUpper(i-1))
		}
	}
}

// TestLiveQuantiles: an interval's quantiles are those of the answers
// counted in it (not before), read within a bucket's width of the exact
// ones.
func TestLiveQuantiles(t *testing.T) {
	var l liveLatency
	var prev liveCounts
	for range 1000 {
		l.add(time.Second) // an earlier interval
	}
	prev, _, _ = l.read(&prev)
	rng := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 10_000 {
		d := time.Duration(rng.ExpFloat64() * float64(3*time.Millisecond))
		all = append(all, d)
		l.add(d)
	}
	_, n, at := l.read(&prev, 0.5, 0.99)
	if n != 10_000 {
		t.Fatalf("%d answers in the interval, want 10000", n)
	}
	slices.Sort(all)
	for k, q := range []float64{0.5, 0.99} {
		exact := all[int(q*float64(len(all)))-1]
		if at[k] < exact || float64(at[k]) > 1.25*float64(exact)+float64(time.Microsecond) {
			t.Fatalf("quantile %v: %v, exact %v", q, at[k], exact)
		}
	}
	if _, n, at := l.read(&prev); n != 10_000 || len(at) != 0 {
		t.Fatalf("reading again from the same counts: %d, %v", n, at)
	}
}
