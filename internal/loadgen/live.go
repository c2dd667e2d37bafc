package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// liveLatency counts answers by latency while a run goes on, so that each
// progress line can give its interval's quantiles: a tail that comes and
// goes (a snapshot, a rewrite of Redis's append-only file) shows when it
// came instead of only in the run's totals. Buckets are a quarter of an
// octave of microseconds wide; a quantile is read as the upper bound of
// its bucket, at most 25 % above the true value.
type liveLatency struct {
	n [liveBuckets]atomic.Int64
}

// liveBuckets covers 1 µs to about 2^40 µs (12 days).
const liveBuckets = 4 * 40

func (l *liveLatency) add(d time.Duration) { l.n[liveBucket(d)].Add(1) }

// liveBucket is the bucket of latency d: 4·e + s for d in
// [(4+s)·2^e/4, (5+s)·2^e/4) µs.
func liveBucket(d time.Duration) int {
	us := uint64(max(d.Microseconds(), 1))
	e := bits.Len64(us) - 1 // us in [2^e, 2^(e+1))
	var s int
	if e >= 2 {
		s = int(us>>(e-2)) & 3
	} else {
		s = int(us<<(2-e)) & 3
	}
	return min(4*e+s, liveBuckets-1)
}

// liveUpper is the upper bound of bucket i.
func liveUpper(i int) time.Duration {
	e, s := i/4, i%4
	return time.Duration((5+s)<<e) * time.Microsecond / 4
}

// liveCounts are the counts of a liveLatency at one moment.
type liveCounts [liveBuckets]int64

// read returns the counts now and, from prev (the counts at the last
// read), the quantiles qs of the answers counted since, and their number.
func (l *liveLatency) read(prev *liveCounts, qs ...float64) (now liveCounts, n int64, at []time.Duration) {
	var diff liveCounts
	for i := range l.n {
		now[i] = l.n[i].Load()
		diff[i] = now[i] - prev[i]
		n += diff[i]
	}
	at = make([]time.Duration, len(qs))
	if n == 0 {
		return now, 0, at
	}
	for k, q := range qs {
		want := int64(rank(q, int(n))) // the rank of quantile q, as percentiles() counts it
		var seen int64
		for i, c := range diff {
			if seen += c; seen >= want {
				at[k] = liveUpper(i)
				break
			}
		}
	}
	return now, n, at
}

// roundLive rounds a bucket bound for printing: three significant digits.
func roundLive(d time.Duration) time.Duration {
	for r := time.Duration(1); ; r *= 10 {
		if d < 1000*r {
			return d.Round(r)
		}
	}
}
