package postgres_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement/postgres"
)

// flowEvents generates the events of a random flow with at least n trades.
func flowEvents(b *testing.B, accounts, n int) []matching.Event {
	f, evs := newFlow(b, accounts, 42)
	for trades(evs) < n {
		evs = f.step(b, evs)
	}
	return evs
}

// BenchmarkSettle settles b.N fills — with every other event of the flow
// that produced them: postings, custody movements, netted balances, the
// engine's balance view and the position — into PostgreSQL, in batches of
// about 4,000 events ending on a command boundary, as the consumer does.
// It reports fills/s; the events are made before the timer starts.
//
//	go test -run xxx -bench Settle -benchtime 200000x ./settlement/postgres/
func BenchmarkSettle(b *testing.B) {
	for _, size := range []int{4000} {
		b.Run("batch="+strconv.Itoa(size), func(b *testing.B) {
			evs := flowEvents(b, 200, b.N)
			db := testenv.PG(b)
			if x := os.Getenv("BENCH_SQL"); x != "" {
				if _, err := db.Exec(context.Background(), x); err != nil {
					b.Fatal(err)
				}
			}
			store, err := postgres.NewStore(context.Background(), db, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			batches := settleAll(b, store, "s1", evs, size)
			elapsed := time.Since(start)
			b.StopTimer()
			fills, postings := 0, 0
			for _, bt := range batches {
				fills += len(bt.Fills)
				postings += len(bt.Postings)
			}
			b.ReportMetric(float64(fills)/elapsed.Seconds(), "fills/s")
			b.ReportMetric(float64(postings)/elapsed.Seconds(), "postings/s")
			b.ReportMetric(float64(len(evs))/elapsed.Seconds(), "events/s")
		})
	}
}
