package postgres_test

import (
	"context"
	"github.com/satu-exchange/satu/compliance"
	compliancepg "github.com/satu-exchange/satu/compliance/postgres"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
	"github.com/satu-exchange/satu/settlement"
	"github.com/satu-exchange/satu/settlement/postgres"
)

// benchDB is the database a benchmark settles into: the test harness's
// (fast, not durable: fsync off) unless SATU_BENCH_PG_URL names a durable
// server's database, which the benchmark empties first. BENCHMARKS.md
// quotes the durable figures.
func benchDB(b *testing.B) *pgxpool.Pool {
	url := os.Getenv("SATU_BENCH_PG_URL")
	if url == "" {
		return testenv.PG(b)
	}
	db, err := pgxpool.New(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	// The ledger is append-only; a scratch benchmark database is emptied
	// with the guards lifted, in one transaction.
	_, err = db.Exec(context.Background(), `BEGIN; SET LOCAL session_replication_role = replica;
		TRUNCATE obligation_fills, excluded_fills, fills, ledger_entries, custody_movements, balances, engine_balances,
			settlement_positions, settlement_batches, log_hashes, log_entries, log_fill_runs, log_checkpoints;
		UPDATE log_state SET size = 0; COMMIT`)
	if err != nil {
		b.Fatal(err)
	}
	return db
}

// sliceSource serves pre-made events as the events stream would.
type sliceSource struct {
	envs  []matching.Envelope
	index map[string]int // stream ID → position
}

func newSliceSource(evs []matching.Event) *sliceSource {
	s := &sliceSource{index: map[string]int{"0": -1}}
	for i, ev := range evs {
		last := i == len(evs)-1 || evs[i+1].Seq != ev.Seq
		s.envs = append(s.envs, matching.Envelope{StreamID: ev.ID(), Last: last, Event: ev})
		s.index[ev.ID()] = i
	}
	return s
}

// ReadEvents returns the events of up to max commands, as reads of the
// events stream are bounded.
func (s *sliceSource) ReadEvents(_ context.Context, after string, max int64, _ time.Duration) ([]matching.Envelope, error) {
	from := s.index[after] + 1
	to := from
	for n := int64(0); to < len(s.envs) && n < max; to++ {
		if s.envs[to].Last {
			n++
		}
	}
	return s.envs[from:to], nil
}

// settleWith runs a consumer until it has settled every event of src and
// returns the elapsed time and the fills settled.
func settleWith(b *testing.B, store *postgres.Store, src settlement.EventSource, lastSeq uint64) (time.Duration, int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fills := 0
	c := &settlement.Consumer{Shard: "s1", Source: src, Store: store, Log: zap.NewNop(), Wait: time.Millisecond,
		Settled: func(bt *settlement.Batch) {
			fills += len(bt.Fills)
			if bt.LastSeq == lastSeq {
				cancel()
			}
		}}
	start := time.Now()
	if err := c.Run(ctx); err != nil {
		b.Fatal(err)
	}
	return time.Since(start), fills
}

// flowWithTrades runs a flow until it has made at least n trades.
func flowWithTrades(b *testing.B, n int) (*flow, []matching.Event) {
	f, evs := newFlow(b, 200, 42)
	for made := 0; made < n; {
		start := len(evs)
		evs = f.step(b, evs)
		made += trades(evs[start:])
	}
	return f, evs
}

// BenchmarkSettle settles the events of a flow of real engine commands with
// b.N fills — fills, postings, custody movements, netted balances, the
// engine's balance view and the position, in batches of the events of up
// to 8,000 commands (the default) — through the consumer's pipeline, from memory (no
// Redis). The events are made before the timer starts.
//
//	go test -run xxx -bench 'Settle$' -benchtime 200000x ./settlement/postgres/
func BenchmarkSettle(b *testing.B) {
	_, evs := flowWithTrades(b, b.N)
	store, err := postgres.NewStore(context.Background(), benchDB(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	elapsed, fills := settleWith(b, store, newSliceSource(evs), evs[len(evs)-1].Seq)
	b.StopTimer()
	b.ReportMetric(float64(fills)/elapsed.Seconds(), "fills/s")
	b.ReportMetric(float64(len(evs))/elapsed.Seconds(), "events/s")
}

// BenchmarkSettleWithCompliance is BenchmarkSettle with the production
// wiring: compliance's FillSink sees every batch in its transaction. The
// flow's accounts are no miners', so this measures the sink's fixed cost —
// one lookup of the batch's sellers per batch — and the fills' symbol index.
// Since the transparency log, the sink also appends every fill to the log
// in the batch's transaction (one leaf per fill, one run of stored hashes
// per batch): the difference from BenchmarkSettle is the log's cost.
//
//	go test -run xxx -bench 'SettleWithCompliance' -benchtime 200000x ./settlement/postgres/
func BenchmarkSettleWithCompliance(b *testing.B) {
	_, evs := flowWithTrades(b, b.N)
	store := productionStore(b, benchDB(b))
	b.ResetTimer()
	elapsed, fills := settleWith(b, store, newSliceSource(evs), evs[len(evs)-1].Seq)
	b.StopTimer()
	b.ReportMetric(float64(fills)/elapsed.Seconds(), "fills/s")
}

// productionStore is the ledger store as satu serve and satu settle wire
// it: compliance's sink attributes miners' sales and appends every fill to
// the transparency log in each batch's transaction.
func productionStore(b *testing.B, db *pgxpool.Pool) *postgres.Store {
	ctx := context.Background()
	rules, err := compliance.LoadRuleBook()
	if err != nil {
		b.Fatal(err)
	}
	law, _ := rules.Get(compliance.DefaultRuleSet)
	sink, err := compliancepg.NewStore(ctx, db, law)
	if err != nil {
		b.Fatal(err)
	}
	store, err := postgres.NewStore(ctx, db, sink)
	if err != nil {
		b.Fatal(err)
	}
	return store
}

// BenchmarkSettleFromRedis is BenchmarkSettleWithCompliance reading the real events
// stream: the flow's commands go through the inbox and the engine runner
// into Redis first; then the timer runs while the consumer reads, decodes
// and settles them.
//
//	go test -run xxx -bench SettleFromRedis -benchtime 200000x ./settlement/postgres/
func BenchmarkSettleFromRedis(b *testing.B) {
	ctx := context.Background()
	f, _ := flowWithTrades(b, b.N)
	rdb, ns := testenv.Redis(b)
	keys := redisbus.KeysFor(ns)
	for start := 0; start < len(f.commands); start += 1000 {
		if err := redisbus.Append(ctx, rdb, keys, f.commands[start:min(start+1000, len(f.commands))]); err != nil {
			b.Fatal(err)
		}
	}
	engine, _ := matching.New(matching.DefaultSymbols())
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- redisbus.NewRunner(rdb, keys, engine, zap.NewNop(), nil).Run(runCtx) }()
	for {
		seq, err := rdb.HGet(ctx, keys.Engine, "seq").Result()
		if err == nil && seq == strconv.Itoa(len(f.commands)) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	store := productionStore(b, benchDB(b))
	b.ResetTimer()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	elapsed, fills := settleWith(b, store, redisbus.EventReader{RDB: rdb, Keys: keys}, uint64(len(f.commands)))
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	b.StopTimer()
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(fills), "client-cpu-µs/fill")
	b.ReportMetric(float64(fills)/elapsed.Seconds(), "fills/s")
}

// BenchmarkSettlementLag offers a steady 10,000 fills/s end to end: a
// paced submitter appends a flow's commands to the inbox (pipelined, every
// 10 ms), the engine runner applies them and writes the events, and the
// consumer settles them — all on this machine at once. Each fill's lag runs
// from its command's sequencing (the inbox entry's time) to the moment its
// batch committed; the benchmark reports the percentiles over all fills.
// b.N is the number of fills (-benchtime 300000x: about 30 s).
//
//	go test -run xxx -bench SettlementLag -benchtime 300000x ./settlement/postgres/
func BenchmarkSettlementLag(b *testing.B) {
	const rate = 10_000 // fills per second offered
	ctx := context.Background()
	f, evs := flowWithTrades(b, b.N)
	perCommand := float64(trades(evs)) / float64(len(f.commands))
	rdb, ns := testenv.Redis(b)
	keys := redisbus.KeysFor(ns)
	store := productionStore(b, benchDB(b))
	engine, _ := matching.New(matching.DefaultSymbols())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	engineDone := make(chan error, 1)
	go func() { engineDone <- redisbus.NewRunner(rdb, keys, engine, zap.NewNop(), nil).Run(runCtx) }()

	var lags []time.Duration
	lastSeq := uint64(len(f.commands))
	settleCtx, settled := context.WithCancel(ctx)
	c := &settlement.Consumer{Shard: "s1", Source: redisbus.EventReader{RDB: rdb, Keys: keys},
		Store: store, Log: zap.NewNop(), Wait: 5 * time.Millisecond,
		Settled: func(bt *settlement.Batch) {
			now := time.Now()
			for _, fl := range bt.Fills {
				lags = append(lags, now.Sub(time.UnixMilli(fl.Event.Time)))
			}
			if bt.LastSeq == lastSeq {
				settled()
			}
		}}
	consumerDone := make(chan error, 1)
	go func() { consumerDone <- c.Run(settleCtx) }()

	b.ResetTimer()
	start := time.Now()
	perTick := rate / perCommand / 100 // commands per 10 ms
	sent := 0
	for tick := 1; sent < len(f.commands); tick++ {
		upTo := min(int(float64(tick)*perTick), len(f.commands))
		if upTo > sent {
			if err := redisbus.Append(ctx, rdb, keys, f.commands[sent:upTo]); err != nil {
				b.Fatal(err)
			}
			sent = upTo
		}
		time.Sleep(time.Until(start.Add(time.Duration(tick) * 10 * time.Millisecond)))
	}
	offered := time.Since(start)
	if err := <-consumerDone; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	<-engineDone
	slices.Sort(lags)
	pct := func(p float64) float64 { return float64(lags[int(p*float64(len(lags)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(float64(len(lags))/offered.Seconds(), "offered-fills/s")
	b.ReportMetric(float64(len(lags))/elapsed.Seconds(), "settled-fills/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
}
