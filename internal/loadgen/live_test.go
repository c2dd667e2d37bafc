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

// TestPercentileRanks: percentiles are nearest ranks — the smallest value
// with at least the quantile's share of the values at or below it.
func TestPercentileRanks(t *testing.T) {
	seq := func(n int) []time.Duration {
		d := make([]time.Duration, n)
		for i := range d {
			d[i] = time.Duration(n - i) // 1…n, shuffled by the sort
		}
		return d
	}
	for _, tc := range []struct {
		n                   int
		p50, p90, p99, p999 time.Duration
	}{
		{1, 1, 1, 1, 1},
		{10, 5, 9, 10, 10},
		{160, 80, 144, 159, 160},   // 0.99 × 160 = 158.4: the 159th
		{600, 300, 540, 594, 600},  // 0.999 × 600 = 599.4: the largest
		{1000, 500, 900, 990, 999}, // exact ranks
	} {
		p := percentiles(seq(tc.n))
		if p.P50 != tc.p50 || p.P90 != tc.p90 || p.P99 != tc.p99 || p.P999 != tc.p999 || p.Max != time.Duration(tc.n) {
			t.Errorf("n %d: %+v; want p50 %d p90 %d p99 %d p99.9 %d", tc.n, p, tc.p50, tc.p90, tc.p99, tc.p999)
		}
	}
}

// TestValidateAddress: only host:port of a loopback host, the port a port.
func TestValidateAddress(t *testing.T) {
	base := Config{OperatorKey: "k", Conns: 1, InFlight: 1, Duration: time.Second, Mix: Mix{Rest: 100}}
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080":           true,
		"localhost:8080":           true,
		"[::1]:8080":               true,
		"127.0.0.1:80@192.0.2.1":   false,
		"127.0.0.1:80/x@192.0.2.1": false,
		"127.0.0.1:0":              false,
		"127.0.0.1:65536":          false,
		"127.0.0.1:http":           false,
		"192.0.2.1:8080":           false,
		"127.0.0.1":                false,
	} {
		c := base
		c.Addr = addr
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v; want ok %v", addr, err, ok)
		}
	}
}
