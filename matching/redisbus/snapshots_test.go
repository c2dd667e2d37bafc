package redisbus_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// randomCommands is a reproducible stream of n commands over a few
// accounts: deposits, crossing limit and GTD orders, IOCs, cancels by client
// ID, amends and withdrawals — some of them refused, as in real traffic.
func randomCommands(seed uint64, n int) []matching.Command {
	rng := rand.New(rand.NewPCG(seed, 9))
	var out []matching.Command
	for i := range 6 {
		a := fmt.Sprintf("a%d", i)
		out = append(out,
			matching.Command{Kind: matching.CmdOpenAccount, Account: a, Owner: a, AccountKind: matching.KindTrader},
			matching.Command{Kind: matching.CmdDeposit, Account: a, Asset: "BTC", Amount: 10 * 100_000_000, ExtRef: "b" + a},
			matching.Command{Kind: matching.CmdDeposit, Account: a, Asset: "KZT", Amount: 1_000_000_000_00, ExtRef: "k" + a})
	}
	for i := len(out); i < n; i++ {
		a := fmt.Sprintf("a%d", rng.IntN(6))
		cid := "o" + strconv.Itoa(i)
		side := matching.Side(1 + rng.IntN(2))
		price := int64(30_000_000_00 + (rng.IntN(9)-4)*10_000)
		switch r := rng.IntN(100); {
		case r < 60:
			out = append(out, matching.Command{Kind: matching.CmdPlaceOrder, Account: a, Symbol: "BTCKZT", ClientID: cid,
				Side: side, Type: matching.Limit, TIF: matching.GTC, Price: price, Quantity: int64(1_000 + rng.IntN(5_000_000))})
		case r < 70:
			out = append(out, matching.Command{Kind: matching.CmdPlaceOrder, Account: a, Symbol: "BTCKZT", ClientID: cid,
				Side: side, Type: matching.Limit, TIF: matching.GTD, ExpireAt: 1, Price: price, Quantity: 10_000})
		case r < 78:
			out = append(out, matching.Command{Kind: matching.CmdPlaceOrder, Account: a, Symbol: "BTCKZT", ClientID: cid,
				Side: side, Type: matching.Limit, TIF: matching.IOC, Price: price, Quantity: int64(1_000 + rng.IntN(3_000_000))})
		case r < 90:
			out = append(out, matching.Command{Kind: matching.CmdCancelOrder, Account: a, Symbol: "BTCKZT",
				ClientID: "o" + strconv.Itoa(rng.IntN(i+1))})
		case r < 96:
			out = append(out, matching.Command{Kind: matching.CmdAmendOrder, Account: a, Symbol: "BTCKZT",
				ClientID: "o" + strconv.Itoa(rng.IntN(i+1)), Quantity: int64(1_000 + rng.IntN(1_000_000))})
		default:
			out = append(out, matching.Command{Kind: matching.CmdWithdraw, Account: a, Asset: "BTC",
				Amount: int64(1 + rng.IntN(100_000)), ExtRef: "w" + cid})
		}
	}
	return out
}

// runUntil runs r while cmds are appended to the inbox in steps of 100
// (so that batches, and snapshots, fall along the way) until its engine
// has applied seq and the events are written up to it, then stops it.
func runUntil(t *testing.T, rdb redis.UniversalClient, keys redisbus.Keys, r *redisbus.Runner, seq uint64, cmds ...matching.Command) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	wait := func(seq uint64) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			s, _ := rdb.HGet(context.Background(), keys.Engine, "seq").Uint64()
			if s >= seq && r.Seq() >= seq {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("engine at %d (written %d), want %d", r.Seq(), s, seq)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for len(cmds) > 0 {
		n := min(100, len(cmds))
		if err := redisbus.Append(context.Background(), rdb, keys, cmds[:n]); err != nil {
			t.Fatal(err)
		}
		cmds = cmds[n:]
		wait(seq - uint64(len(cmds)))
	}
	wait(seq)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func newRunner(t *testing.T, rdb redis.UniversalClient, keys redisbus.Keys) *redisbus.Runner {
	e, err := matching.New(matching.DefaultSymbols())
	if err != nil {
		t.Fatal(err)
	}
	return redisbus.NewRunner(rdb, keys, e, zap.NewNop(), nil)
}

// fullReplay is the state hash of a fresh engine replaying the inbox to seq.
func fullReplay(t *testing.T, rdb redis.UniversalClient, keys redisbus.Keys, seq uint64) string {
	t.Helper()
	e, _ := matching.New(matching.DefaultSymbols())
	if err := redisbus.Replay(context.Background(), rdb, keys, e, seq); err != nil {
		t.Fatal(err)
	}
	return e.StateHash()
}

// TestSnapshotPlusReplayEqualsFullReplay: for random command streams, an
// engine restored from the newest snapshot and replaying the rest of the
// inbox reaches the same state as one replaying everything, and goes on
// writing events exactly once.
func TestSnapshotPlusReplayEqualsFullReplay(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			rdb, ns := testenv.Redis(t)
			testSnapshotReplay(t, rdb, ns, seed)
		})
	}
}

func testSnapshotReplay(t *testing.T, rdb redis.UniversalClient, ns string, seed uint64) {
	keys := redisbus.KeysFor(ns)
	ctx := context.Background()
	cmds := randomCommands(seed, 1500)
	first := newRunner(t, rdb, keys)
	first.SnapshotEvery = 170
	runUntil(t, rdb, keys, first, 1000, cmds[:1000]...)
	metas, err := redisbus.Snapshots(ctx, rdb, keys)
	if err != nil || len(metas) != 2 || metas[0].Seq <= metas[1].Seq || metas[0].Seq > 1000 {
		t.Fatalf("snapshots kept: %+v (%v)", metas, err)
	}

	second := newRunner(t, rdb, keys)
	fresh := second.Engine()
	runUntil(t, rdb, keys, second, 1500, cmds[1000:]...)
	if second.Engine() == fresh {
		t.Fatal("the second runner did not restore a snapshot")
	}
	if got, want := second.Engine().StateHash(), fullReplay(t, rdb, keys, 1500); got != want {
		t.Fatalf("snapshot + replay state %s, full replay %s", got, want)
	}
	wantCommandsOnce(t, rdb, keys, 1500)
}

// TestSnapshotSpacing: a snapshot is due after SnapshotEvery commands, but
// with SnapshotSpacing not before that many times the last one's cost has
// passed since it started — unless SnapshotMaxReplay commands have. Spaced
// a million times its cost (a quarter of an hour at least), the runner
// takes its first snapshot and then only the final one at its stop; with
// at most 250 commands to replay, one at least every 250 commands as well;
// without spacing, one after most batches of 100.
func TestSnapshotSpacing(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	for _, tc := range []struct {
		spacing   int
		maxReplay uint64
		check     func(seqs []uint64) bool
		want      string
	}{
		{0, 0, func(s []uint64) bool { return len(s) >= 4 }, "one after most batches"},
		{1_000_000, 0, func(s []uint64) bool { return len(s) == 2 }, "the first and the final one"},
		{1_000_000, 250, func(s []uint64) bool {
			for i := 1; i < len(s); i++ {
				if s[i-1]-s[i] > 250+200 { // after the batch that reached 250, or the next if one was being written
					return false
				}
			}
			return len(s) >= 3 && len(s) <= 6 && s[len(s)-1] <= 250
		}, "one every 250 commands at most, and no more"},
	} {
		keys := redisbus.KeysFor(fmt.Sprintf("%s-%d-%d", ns, tc.spacing, tc.maxReplay))
		e, _ := matching.New(matching.DefaultSymbols())
		reg := prometheus.NewRegistry()
		r := redisbus.NewRunner(rdb, keys, e, zap.NewNop(), reg)
		r.SnapshotEvery, r.SnapshotKeep, r.NoTrim = 50, 100, true
		r.SnapshotSpacing, r.SnapshotMaxReplay = tc.spacing, tc.maxReplay
		runUntil(t, rdb, keys, r, 600, randomCommands(7, 600)...)
		metas, err := redisbus.Snapshots(context.Background(), rdb, keys)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64 // newest first
		for _, m := range metas {
			seqs = append(seqs, m.Seq)
		}
		if !tc.check(seqs) || seqs[0] != 600 {
			t.Errorf("spacing %d, at most %d to replay: snapshots at %v; want %s, the newest the final one at 600",
				tc.spacing, tc.maxReplay, seqs, tc.want)
		}
		// Every snapshot taken while running (the final one at the stop is
		// not counted) was timed: its pause and its background work.
		got := map[string]uint64{} // samples by part, and the snapshots counted
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				switch mf.GetName() {
				case "satu_engine_snapshots_total":
					got["taken"] += uint64(m.GetCounter().GetValue())
				case "satu_engine_snapshot_seconds":
					for _, l := range m.GetLabel() {
						if l.GetName() == "part" {
							got[l.GetValue()] = m.GetHistogram().GetSampleCount()
						}
					}
				}
			}
		}
		if n := got["taken"]; n == 0 || got["pause"] != n || got["background"] != n {
			t.Errorf("timed snapshots %v: want a pause and a background part for each taken", got)
		}
	}
}

// TestCorruptSnapshotFallsBack: a damaged newest snapshot is detected by its
// checksum and the previous one is used; with every snapshot damaged the
// runner replays the whole inbox.
func TestCorruptSnapshotFallsBack(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	testCorruptSnapshot(t, rdb, ns)
}

func testCorruptSnapshot(t *testing.T, rdb redis.UniversalClient, ns string) {
	keys := redisbus.KeysFor(ns)
	ctx := context.Background()
	r := newRunner(t, rdb, keys)
	r.SnapshotEvery = 200
	runUntil(t, rdb, keys, r, 600, randomCommands(5, 600)...)
	metas, err := redisbus.Snapshots(ctx, rdb, keys)
	if err != nil || len(metas) != 2 {
		t.Fatalf("snapshots: %+v (%v)", metas, err)
	}
	want := fullReplay(t, rdb, keys, 600)
	chunk := func(m redisbus.SnapshotMeta) string { return fmt.Sprintf("satu:{%s}:snap:%d:0", ns, m.Seq) }

	// One byte of the newest snapshot flipped: the previous one is used.
	if err := rdb.SetRange(ctx, chunk(metas[0]), 10, "X").Err(); err != nil {
		t.Fatal(err)
	}
	e, used, err := redisbus.LoadSnapshot(ctx, rdb, keys, matching.Config{Symbols: matching.DefaultSymbols()}, zap.NewNop())
	if err != nil || used.Seq != metas[1].Seq {
		t.Fatalf("loaded snapshot %d (%v); want the previous one, %d", used.Seq, err, metas[1].Seq)
	}
	if e.Seq() != metas[1].Seq {
		t.Fatalf("restored engine at %d", e.Seq())
	}
	r2 := newRunner(t, rdb, keys)
	runUntil(t, rdb, keys, r2, 600)
	if got := r2.Engine().StateHash(); got != want {
		t.Fatalf("after falling back: state %s, want %s", got, want)
	}

	// Every snapshot damaged (one lost chunk, one flipped byte): a full replay.
	if err := rdb.Del(ctx, chunk(metas[1])).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := redisbus.LoadSnapshot(ctx, rdb, keys, matching.Config{}, zap.NewNop()); err != redisbus.ErrNoSnapshot {
		t.Fatalf("with every snapshot damaged: %v", err)
	}
	r3 := newRunner(t, rdb, keys)
	fresh := r3.Engine()
	runUntil(t, rdb, keys, r3, 600)
	if r3.Engine() != fresh || r3.Engine().StateHash() != want {
		t.Fatal("the full replay did not reach the same state")
	}
}

// TestStopDuringStart: a runner stopped while it starts — before its
// first step, or the moment its snapshot is restored, before it reads on —
// stops cleanly: its steps report the stop as their error, and Run does
// not pass that on.
func TestStopDuringStart(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	first := newRunner(t, rdb, keys)
	first.SnapshotEvery = 100
	runUntil(t, rdb, keys, first, 300, randomCommands(3, 300)...)
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if err := newRunner(t, rdb, keys).Run(stopped); err != nil {
		t.Fatalf("stopped before it started: %v", err)
	}
	for range 10 {
		r := newRunner(t, rdb, keys)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		for r.Seq() != 300 {
			time.Sleep(50 * time.Microsecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("stopped while starting: %v", err)
		}
	}
}

// TestSnapshotInEncodingV1Loads: a snapshot stored before the quote
// amounts filled were kept (binary encoding 1) still restores and
// verifies — the restored engine is hashed in the snapshot's own
// encoding — so an upgrade does not make the stored snapshots unusable.
func TestSnapshotInEncodingV1Loads(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	ctx := context.Background()
	r := newRunner(t, rdb, keys)
	runUntil(t, rdb, keys, r, 400, randomCommands(5, 400)...)
	for _, enc := range []int{1, 2} {
		snap := r.Engine().Snapshot()
		snap.InEncoding(enc)
		meta, err := redisbus.SaveSnapshot(ctx, rdb, keys, snap, "0-1", 0)
		if err != nil {
			t.Fatal(err)
		}
		e, err := redisbus.LoadSnapshotAt(ctx, rdb, keys, meta)
		if err != nil {
			t.Fatalf("encoding %d: %v", enc, err)
		}
		if e.Seq() != 400 {
			t.Fatalf("encoding %d: restored at %d", enc, e.Seq())
		}
	}
}
