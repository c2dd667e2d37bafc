package redisbus_test

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// TestLocalClientAnsweredByAnotherLeader: a client shares its process and
// Redis client with the leading runner, which answers it directly and
// spares it reading the events stream. When that runner stalls before a
// write and a standby elsewhere (its own Redis client) takes over, the
// client is still answered — its tail reads what the new leader wrote —
// and the stalled runner's write is fenced when it wakes.
func TestLocalClientAnsweredByAnotherLeader(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	other, _ := testenv.Redis(t) // another process's connection
	keys := redisbus.KeysFor(ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ttl := 600 * time.Millisecond

	leader := newRunner(t, rdb, keys)
	leader.Lease = &redisbus.Lease{Owner: "leader", TTL: ttl}
	var stall atomic.Bool
	wake := make(chan struct{})
	redisbus.SetBeforeWrite(leader, func() {
		if stall.Load() {
			<-wake
		}
	})
	leaderDone := make(chan error, 1)
	go func() { leaderDone <- leader.Run(ctx) }()
	client := redisbus.NewClient(rdb, keys, zap.NewNop())
	go func() { _ = client.Run(ctx) }()

	do := func(c matching.Command) []matching.Event {
		t.Helper()
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		evs, err := client.Do(cctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	open := func(a string) matching.Command {
		return matching.Command{Kind: matching.CmdOpenAccount, Account: a, Owner: a, AccountKind: matching.KindTrader}
	}
	for i, a := range []string{"a", "b", "c"} {
		if evs := do(open(a)); len(evs) != 1 || evs[0].Seq != uint64(i+1) || evs[0].Kind != matching.EvAccountOpened {
			t.Fatalf("from the local leader: %+v", evs)
		}
	}
	time.Sleep(50 * time.Millisecond) // the tail settles on the local leader's writes

	stall.Store(true)
	standby := newRunner(t, other, keys)
	standby.Lease = &redisbus.Lease{Owner: "standby", TTL: ttl}
	go func() { _ = standby.Run(ctx) }()
	start := time.Now()
	evs := do(open("d"))
	if len(evs) != 1 || evs[0].Seq != 4 || evs[0].Kind != matching.EvAccountOpened {
		t.Fatalf("from the new leader: %+v", evs)
	}
	t.Logf("answered after %s (lease TTL %s)", time.Since(start), ttl)
	if holder, _ := rdb.Get(ctx, "satu:{"+ns+"}:lease").Result(); holder != "standby" {
		t.Fatalf("lease held by %q", holder)
	}
	close(wake)
	select {
	case err := <-leaderDone:
		if !errors.Is(err, redisbus.ErrFenced) {
			t.Fatalf("old leader stopped with %v; want ErrFenced", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the old leader went on")
	}
	if evs := do(open("e")); len(evs) != 1 || evs[0].Seq != 5 {
		t.Fatalf("after the old leader stopped: %+v", evs)
	}
	wantCommandsOnce(t, rdb, keys, 5)
}

// readAll reads the events stream from after with rdb until it has the
// events of every command up to sequence to, in reads of count commands
// waiting up to block each, and returns them.
func readAll(t *testing.T, rdb redis.UniversalClient, keys redisbus.Keys, after string, to uint64, count int64, block time.Duration) []matching.Envelope {
	t.Helper()
	var all []matching.Envelope
	deadline := time.Now().Add(30 * time.Second)
	for len(all) == 0 || all[len(all)-1].Event.Seq < to {
		if time.Now().After(deadline) {
			t.Fatalf("read up to %s, want sequence %d", after, to)
		}
		envs, err := redisbus.ReadEvents(context.Background(), rdb, keys, after, count, block)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range envs {
			if e.Last {
				after = e.StreamID
			}
		}
		all = append(all, envs...)
	}
	return all
}

// runFeedRunner starts a runner on its own Redis client rdb; other is a
// client of another process. cancel stops the runner, whose Run's error
// done then delivers.
func runFeedRunner(t *testing.T) (rdb, other redis.UniversalClient, keys redisbus.Keys, ctx context.Context, cancel context.CancelFunc, done chan error, r *redisbus.Runner) {
	rdb, ns := testenv.Redis(t)
	other, _ = testenv.Redis(t)
	keys = redisbus.KeysFor(ns)
	ctx, cancel = context.WithCancel(context.Background())
	r = newRunner(t, rdb, keys)
	done = make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return rdb, other, keys, ctx, cancel, done, r
}

// TestLocalFeedReadsAsRedis: event readers of the leading runner's
// process (the same Redis client: the stream hub and settlement in satu
// serve) are answered from the runner's feed — the entries it wrote, as
// it wrote them — and read exactly what another process reads from Redis:
// one reading along while the commands come, one starting from the
// stream's start when the feed (bounded at five entries here) no longer
// reaches back there, reading Redis until it does. When the runner stops,
// a reader waiting on its feed turns to Redis at once and reads what a
// runner elsewhere writes next.
func TestLocalFeedReadsAsRedis(t *testing.T) {
	defer redisbus.SetFeedEntries(5)()
	rdb, other, keys, ctx, cancel, done, _ := runFeedRunner(t)
	defer cancel()
	cmds := randomCommands(11, 1200)

	along := make(chan []matching.Envelope, 1)
	before := redisbus.LocalReads()
	go func() { along <- readAll(t, rdb, keys, "0", 1200, 25, 50*time.Millisecond) }()
	for i := 0; i < len(cmds); i += 10 { // many small batches
		if err := redisbus.Append(ctx, other, keys, cmds[i:i+10]); err != nil {
			t.Fatal(err)
		}
		if i%30 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	got := <-along
	if redisbus.LocalReads() == before {
		t.Fatal("the feed answered no read")
	}
	want := readAll(t, other, keys, "0", 1200, 500, 0)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read from the feed: %d events, from Redis %d, and they differ", len(got), len(want))
	}
	before = redisbus.LocalReads()
	if late := readAll(t, rdb, keys, "0", 1200, 45, 0); !reflect.DeepEqual(late, want) {
		t.Fatalf("a late reader from the start: %d events, from Redis %d, and they differ", len(late), len(want))
	}
	if redisbus.LocalReads() == before {
		t.Fatal("the late reader never reached the feed")
	}

	// Caught up and waiting on the feed (up to 20 s) when the runner stops.
	waiting := make(chan []matching.Envelope, 1)
	go func() { waiting <- readAll(t, rdb, keys, want[len(want)-1].StreamID, 1201, 10, 20*time.Second) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	second := newRunner(t, other, keys)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() { _ = second.Run(ctx2) }()
	start := time.Now()
	if err := redisbus.Append(ctx2, other, keys, []matching.Command{{Kind: matching.CmdTick}}); err != nil {
		t.Fatal(err)
	}
	if evs := <-waiting; len(evs) == 0 || evs[len(evs)-1].Event.Seq != 1201 {
		t.Fatalf("after the runner stopped: %+v", evs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the waiting reader took %v to see the other runner's write", d)
	}
}

// TestFeedKeptOnlyWhenRead: a runner whose process has no event reader on
// its Redis client (satu engine) copies no entry into its feed; once one
// reads, it keeps the entries it writes from then on.
func TestFeedKeptOnlyWhenRead(t *testing.T) {
	rdb, other, keys, ctx, cancel, done, r := runFeedRunner(t)
	defer cancel()
	cmds := randomCommands(12, 400)
	appendAndWait := func(cmds []matching.Command, seq uint64) {
		t.Helper()
		if err := redisbus.Append(ctx, other, keys, cmds); err != nil {
			t.Fatal(err)
		}
		readAll(t, other, keys, "0", seq, 1000, 100*time.Millisecond)
	}
	appendAndWait(cmds[:200], 200)
	if n := redisbus.FeedEntries(r); n != 0 {
		t.Fatalf("with no reader the feed holds %d entries", n)
	}
	readAll(t, rdb, keys, "0", 200, 1000, 0) // a reader of the runner's process
	appendAndWait(cmds[200:], 400)
	// The runner records a write in its feed just after Redis has it.
	for deadline := time.Now().Add(5 * time.Second); redisbus.FeedEntries(r) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("after a read the feed holds nothing")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
