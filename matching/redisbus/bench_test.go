package redisbus_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// BenchmarkRunner measures the sequencer path: b.N order commands already in
// the inbox (alternating resting sells and crossing buys), read in batches,
// applied and their events written with the batch transaction. One op = one
// command.
func BenchmarkRunner(b *testing.B) {
	ctx := context.Background()
	rdb, keys, cmds := runnerInbox(b)
	engine, _ := matching.New(matching.DefaultSymbols())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	b.ResetTimer()
	go redisbus.NewRunner(rdb, keys, engine, zap.NewNop(), nil).Run(runCtx)
	want := strconv.Itoa(len(cmds))
	for {
		if seq, _ := rdb.HGet(ctx, keys.Engine, "seq").Result(); seq == want {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
}

// runnerInbox fills a shard's inbox with runnerCommands(b.N).
func runnerInbox(b *testing.B) (redis.UniversalClient, redisbus.Keys, []matching.Command) {
	rdb, ns := testenv.Redis(b)
	keys := redisbus.KeysFor(ns)
	cmds := runnerCommands(b.N)
	for start := 0; start < len(cmds); start += 1000 {
		if err := redisbus.Append(context.Background(), rdb, keys, cmds[start:min(start+1000, len(cmds))]); err != nil {
			b.Fatal(err)
		}
	}
	return rdb, keys, cmds
}

// runnerCommands opens two funded accounts and places n orders,
// alternately a resting sell and a buy that fills it.
func runnerCommands(n int) []matching.Command {
	cmds := make([]matching.Command, 0, 4+n)
	cmds = append(cmds,
		matching.Command{Kind: matching.CmdOpenAccount, Account: "s", Owner: "s", AccountKind: matching.KindTrader},
		matching.Command{Kind: matching.CmdOpenAccount, Account: "b", Owner: "b", AccountKind: matching.KindTrader},
		matching.Command{Kind: matching.CmdDeposit, Account: "s", Asset: "BTC", Amount: 1 << 60, ExtRef: "s"},
		matching.Command{Kind: matching.CmdDeposit, Account: "b", Asset: "KZT", Amount: 1 << 62, ExtRef: "b"})
	for i := range n {
		c := matching.Command{Kind: matching.CmdPlaceOrder, Account: "s", Symbol: "BTCKZT", ClientID: strconv.Itoa(i),
			Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 4_300_000_000, Quantity: 1_000_000}
		if i%2 == 1 {
			c.Account, c.Side = "b", matching.Buy
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// BenchmarkReplay measures the other half of a restart: the inbox
// commands after the restored snapshot, whose events are already written
// (the engine hash's position is past them), read and applied again
// without writing — here b.N of BenchmarkRunner's commands from an empty
// engine. One op = one command replayed.
//
//	go test -run xxx -bench Replay -benchtime 1000000x ./matching/redisbus/
func BenchmarkReplay(b *testing.B) {
	ctx := context.Background()
	rdb, keys, cmds := runnerInbox(b)
	last, err := rdb.XRevRangeN(ctx, keys.Inbox, "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		b.Fatal(last, err)
	}
	if err := rdb.HSet(ctx, keys.Engine, "seq", len(cmds), "inbox", last[0].ID).Err(); err != nil {
		b.Fatal(err)
	}
	engine, _ := matching.New(matching.DefaultSymbols())
	r := redisbus.NewRunner(rdb, keys, engine, zap.NewNop(), nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	b.ResetTimer()
	go func() { done <- r.Run(runCtx) }()
	for r.Seq() != uint64(len(cmds)) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if n, _ := rdb.XLen(ctx, keys.Events).Result(); n != 0 {
		b.Fatalf("the replay wrote %d events entries", n)
	}
}

// BenchmarkRecovery measures a restart: an engine with 100,000 accounts
// and 1,000,000 resting orders (500 price levels a side) is snapshotted
// to Redis; the timer runs while a new runner restores the snapshot
// (chunks, checksum, decode, restore, state-hash check) and is ready to
// serve. Building the state is not timed. One op = one recovery.
//
//	go test -run xxx -bench Recovery -benchtime 1x ./matching/redisbus/
func BenchmarkRecovery(b *testing.B) {
	rdb, ns := testenv.Redis(b)
	keys := redisbus.KeysFor(ns)
	ctx := context.Background()
	e := largeEngine(b)
	// The inbox must hold the command the snapshot ends at; one entry stands for it.
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Inbox, Values: []any{"c", `{"kind":"tick"}`, "ref", ""}}).Result()
	if err != nil {
		b.Fatal(err)
	}
	meta, err := redisbus.SaveSnapshot(ctx, rdb, keys, e.Snapshot(), id, 2)
	if err != nil {
		b.Fatal(err)
	}
	if err := rdb.HSet(ctx, keys.Engine, "seq", e.Seq(), "inbox", id).Err(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		fresh, _ := matching.New(matching.DefaultSymbols())
		r := redisbus.NewRunner(rdb, keys, fresh, zap.NewNop(), nil)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(runCtx) }()
		for r.Seq() != e.Seq() {
			time.Sleep(time.Millisecond)
		}
		b.StopTimer()
		stop()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(meta.Bytes)/(1<<20), "snapshot-MiB") // after ResetTimer, which drops reported metrics
}

// largeEngine is an engine with 100,000 accounts and 1,000,000 resting
// orders (500 price levels a side), each with a remembered client ID.
func largeEngine(b *testing.B) *matching.Engine {
	const accounts, orders = 100_000, 1_000_000
	e, _ := matching.New(matching.DefaultSymbols())
	var out []matching.Event
	apply := func(c matching.Command) {
		c.Seq, c.Time = e.Seq()+1, 1_700_000_000_000
		var err error
		if out, err = e.Apply(c, out[:0]); err != nil {
			b.Fatal(err)
		}
	}
	for i := range accounts {
		a := "acct-" + strconv.Itoa(i)
		apply(matching.Command{Kind: matching.CmdOpenAccount, Account: a, Owner: a, AccountKind: matching.KindTrader})
		apply(matching.Command{Kind: matching.CmdDeposit, Account: a, Asset: "BTC", Amount: 1_000 * 100_000_000, ExtRef: "b" + a})
		apply(matching.Command{Kind: matching.CmdDeposit, Account: a, Asset: "KZT", Amount: 1_000_000_000_000, ExtRef: "k" + a})
	}
	for i := range orders {
		side, price := matching.Buy, int64(30_000_000_00-100_000-(i%500)*100)
		if i%2 == 1 {
			side, price = matching.Sell, int64(30_000_000_00+100_000+(i%500)*100)
		}
		apply(matching.Command{Kind: matching.CmdPlaceOrder, Account: "acct-" + strconv.Itoa(i%accounts), Symbol: "BTCKZT",
			ClientID: "o" + strconv.Itoa(i), Side: side, Type: matching.Limit, TIF: matching.GTC, Price: price, Quantity: 1_000})
	}
	if n := len(e.BookOrders("BTCKZT", matching.Buy)) + len(e.BookOrders("BTCKZT", matching.Sell)); n != orders {
		b.Fatalf("%d resting orders", n)
	}
	return e
}

// BenchmarkSnapshotTake measures what taking a snapshot costs the runner:
// Engine.SnapshotLaterIn, the copy of the state it makes between two
// batches while no command is applied, for the engine of
// BenchmarkRecovery. As in the runner, every snapshot is copied into the
// memory of the one before (the first, into fresh memory, is not timed).
// Completing the snapshot from the copy (sorting and grouping: finish-ms),
// encoding and writing it happen in the background and are not timed. One
// op = one snapshot.
//
//	go test -run xxx -bench SnapshotTake -benchtime 5x ./matching/redisbus/
func BenchmarkSnapshotTake(b *testing.B) {
	e := largeEngine(b)
	var mem matching.SnapshotMemory
	e.SnapshotLaterIn(&mem)()
	var finishing time.Duration
	b.ResetTimer()
	for range b.N {
		finish := e.SnapshotLaterIn(&mem)
		b.StopTimer()
		t := time.Now()
		if s := finish(); s.Seq != e.Seq() {
			b.Fatalf("snapshot at %d, engine at %d", s.Seq, e.Seq())
		}
		finishing += time.Since(t)
		b.StartTimer()
	}
	b.ReportMetric(float64(finishing)/float64(b.N)/float64(time.Millisecond), "finish-ms")
}

// BenchmarkSnapshotEncode measures the encoding of the snapshot of
// BenchmarkRecovery's engine (Snapshot.AppendBinary, in the background),
// into the buffer of the encoding before, as the runner does. One op = one
// encoding.
//
//	go test -run xxx -bench SnapshotEncode -benchtime 5x ./matching/redisbus/
func BenchmarkSnapshotEncode(b *testing.B) {
	s := largeEngine(b).Snapshot()
	buf, err := s.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if buf, err = s.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAckLatency offers a steady rate of commands through
// redisbus.Client — what gateways use — from 64 concurrent submitters, and
// measures each command's acknowledgement latency: from the submit to its
// events coming back, written (p50-ms, p99-ms, max-ms). The submitters
// wait for their answers, so when answers are slow, commands fall due
// while all 64 are busy and are sent late; due-p50-ms and due-p99-ms count
// from the moment each command was due instead, which includes that
// queueing (what an unbounded population of clients would see). The
// commands alternate resting sells and crossing buys. b.N is the number of
// commands; the rate is 50,000/s.
//
// The client shares the runner's Redis client, as in satu serve, so the
// runner answers it right after each write (local.go).
//
//	go test -run xxx -bench AckLatency -benchtime 200000x ./matching/redisbus/
func BenchmarkAckLatency(b *testing.B) { benchmarkAckLatency(b, false) }

// BenchmarkAckLatencyOpen offers the same rate open-loop: one pacer
// submits, each time it wakes, every command that has fallen due, as one
// DoBatch on a goroutine of its own (the way a gateway submits a
// batchOrders request), and never waits for answers before sending the
// next ones. So no command waits for a free submitter, and its latency
// counted from the moment it was due (due-p50-ms, due-p99-ms, due-max-ms)
// includes no harness queueing: only the pacer's wake-up, the append, the
// engine, the write and the answer.
// batch/op is how many commands a wake-up submitted on average, and
// pacer-late-ms the longest the pacer woke up after a command was due.
//
//	GOMAXPROCS=1 go test -run xxx -bench AckLatencyOpen -benchtime 200000x ./matching/redisbus/
func BenchmarkAckLatencyOpen(b *testing.B) {
	ctx, client, stop := startAckPath(b, false)
	defer stop()
	var failed atomic.Int64
	paceOpen(b, func(from, n int, answered func(k int)) {
		// Commands are made as they fall due, like a client's, rather
		// than all at once: b.N of them held from the start are a heap of
		// strings for the collector to mark, which no gateway carries
		// (that made this benchmark's own GC pauses its tail).
		cmds := make([]matching.Command, n)
		for i := range cmds {
			cmds[i] = ackCommand(int64(from + i))
		}
		client.DoBatch(ctx, cmds, nil, func(k int, evs []matching.Event, err error) {
			if err != nil || len(evs) == 0 {
				failed.Add(1)
			}
			answered(k)
		})
	})
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d commands failed", n)
	}
}

// BenchmarkRedisRoundTripOpen is BenchmarkAckLatencyOpen's pacer with
// nothing behind it but one pipelined PING per command, each wake-up's
// PINGs one pipeline on a goroutine of its own: the latency this machine
// gives a single Redis round trip, offered open-loop at the same rate
// through the same harness — the floor under the ack path, which makes
// three round trips in a row (the append, the engine's read, its write)
// and two hand-overs between goroutines.
//
//	go test -run xxx -bench 'RedisRoundTripOpen|AckLatencyOpen' -benchtime 500000x ./matching/redisbus/
func BenchmarkRedisRoundTripOpen(b *testing.B) {
	rdb, _ := testenv.Redis(b)
	ctx := context.Background()
	var failed atomic.Int64
	paceOpen(b, func(_, n int, answered func(k int)) {
		pipe := rdb.Pipeline()
		for range n {
			pipe.Ping(ctx)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			failed.Add(1)
		}
		for k := range n {
			answered(k)
		}
	})
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d pipelines failed", n)
	}
}

// paceOpen offers b.N operations at 50,000/s open-loop: each time its
// pacer wakes it calls submit, on a goroutine of its own, with the
// operations that have fallen due since (from, n of them), and never
// waits for answers before submitting the next ones; submit calls
// answered(k) when operation from+k is answered. It reports the
// operations per second, latency from the submit and from the due time
// (reportAck), batch/op (operations per wake-up) and pacer-late-ms (the
// longest the pacer woke up after an operation was due: Go's timers
// sleep at least a millisecond when the process is idle).
func paceOpen(b *testing.B, submit func(from, n int, answered func(k int))) {
	const rate = 50_000
	late := make([]time.Duration, b.N)   // from the moment it was due
	lat := make([]time.Duration, b.N)    // from the submit
	sentAt := make([]time.Duration, b.N) // since start: no pointers for the collector to mark
	var wg sync.WaitGroup
	wakeups := 0
	b.ResetTimer()
	start := time.Now()
	due := func(i int) time.Duration { return time.Duration(i) * time.Second / rate }
	var gap time.Duration // the pacer's longest sleep past a due time
	for sent := 0; sent < b.N; {
		n := min(b.N, int(time.Since(start)*rate/time.Second)+1) // due by now
		if n > sent {
			now := time.Since(start)
			gap = max(gap, now-due(sent))
			from := sent
			wakeups++
			for i := from; i < n; i++ {
				sentAt[i] = now
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				submit(from, n-from, func(k int) {
					at := time.Since(start)
					late[from+k], lat[from+k] = at-due(from+k), at-sentAt[from+k]
				})
			}()
			sent = n
		}
		if sent < b.N {
			time.Sleep(due(sent) - time.Since(start))
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reportAck(b, elapsed, lat, late)
	b.ReportMetric(float64(b.N)/float64(wakeups), "batch/op")
	b.ReportMetric(float64(gap)/float64(time.Millisecond), "pacer-late-ms")
}

// ackCommand is the latency benchmarks' command i: resting sells and
// buys that fill them, alternately.
func ackCommand(i int64) matching.Command {
	c := matching.Command{Kind: matching.CmdPlaceOrder, Account: "s", Symbol: "BTCKZT", ClientID: strconv.FormatInt(i, 10),
		Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 4_300_000_000, Quantity: 1_000_000}
	if i%2 == 1 {
		c.Account, c.Side = "b", matching.Buy
	}
	return c
}

// BenchmarkAckLatencyRemote is BenchmarkAckLatency with the client on a
// Redis client of its own, like a gateway in another process: it is
// answered by its tail of the events stream.
func BenchmarkAckLatencyRemote(b *testing.B) { benchmarkAckLatency(b, true) }

func benchmarkAckLatency(b *testing.B, remote bool) {
	const rate, workers = 50_000, 64
	ctx, client, stop := startAckPath(b, remote)
	defer stop()
	lat := make([]time.Duration, b.N)  // from the submit
	late := make([]time.Duration, b.N) // from the moment it was due
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var evs []matching.Event // reused from answer to answer, as a gateway's request worker does
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				due := start.Add(time.Duration(i) * time.Second / rate)
				time.Sleep(time.Until(due)) // paced: command i is due at i/rate
				c := ackCommand(i)
				t0 := time.Now()
				var err error
				if evs, err = client.DoInto(ctx, c, evs); err != nil {
					b.Error(err)
					return
				}
				lat[i], late[i] = time.Since(t0), time.Since(due)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reportAck(b, elapsed, lat, late)
}

// startAckPath starts a runner and a client for the latency benchmarks —
// the client on the runner's Redis client, as in satu serve, or (remote)
// on one of its own, like a gateway in another process — and opens and
// funds their seller and buyer; stop stops them.
func startAckPath(b *testing.B, remote bool) (ctx context.Context, client *redisbus.Client, stop func()) {
	rdb, ns := testenv.Redis(b)
	keys := redisbus.KeysFor(ns)
	ctx, stop = context.WithCancel(context.Background())
	e, _ := matching.New(matching.DefaultSymbols())
	go func() { _ = redisbus.NewRunner(rdb, keys, e, zap.NewNop(), nil).Run(ctx) }()
	crdb := rdb
	if remote {
		crdb, _ = testenv.Redis(b) // the same server, another connection pool
	}
	client = redisbus.NewClient(crdb, keys, zap.NewNop())
	go func() { _ = client.Run(ctx) }()
	for _, c := range []matching.Command{
		{Kind: matching.CmdOpenAccount, Account: "s", Owner: "s", AccountKind: matching.KindTrader},
		{Kind: matching.CmdOpenAccount, Account: "b", Owner: "b", AccountKind: matching.KindTrader},
		{Kind: matching.CmdDeposit, Account: "s", Asset: "BTC", Amount: 1 << 60, ExtRef: "s"},
		{Kind: matching.CmdDeposit, Account: "b", Asset: "KZT", Amount: 1 << 62, ExtRef: "b"},
	} {
		if evs, err := client.Do(ctx, c); err != nil || matching.Rejection(evs) != nil {
			stop()
			b.Fatal(err, matching.Rejection(evs))
		}
	}
	return ctx, client, stop
}

// reportAck reports the latency benchmarks' figures: commands per second,
// and latencies from the submit (lat) and from the due time (late).
func reportAck(b *testing.B, elapsed time.Duration, lat, late []time.Duration) {
	slices.Sort(lat)
	slices.Sort(late)
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "cmds/s")
	b.ReportMetric(pct(lat, 0.5), "p50-ms")
	b.ReportMetric(pct(lat, 0.99), "p99-ms")
	b.ReportMetric(pct(lat, 1), "max-ms")
	b.ReportMetric(pct(late, 0.5), "due-p50-ms")
	b.ReportMetric(pct(late, 0.99), "due-p99-ms")
	b.ReportMetric(pct(late, 1), "due-max-ms")
}
