package redisbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// TestStandbyTakesTheSnapshots: with SnapshotStandby, the standby takes
// the snapshots while the leader, which answers clients, never pauses for
// one; the standby's snapshots restore to the leader's state. With the
// standby gone, the leader takes them itself, three counts apart.
func TestStandbyTakesTheSnapshots(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const every = 100
	cmds := randomCommands(21, 1500)
	start := func(owner string) (*redisbus.Runner, context.CancelFunc, <-chan error) {
		r := newRunner(t, rdb, keys)
		r.Lease = &redisbus.Lease{Owner: owner, TTL: time.Second}
		r.SnapshotEvery, r.SnapshotStandby, r.NoTrim = every, true, true
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		return r, stop, done
	}
	leader, stopLeader, leaderDone := start("leader")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if holder, _ := rdb.Get(ctx, "satu:{"+ns+"}:lease").Result(); holder == "leader" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the leader did not take the lease")
		}
	}
	standby, stopStandby, standbyDone := start("standby")

	// A steady flow, so the standby keeps up as it would in production.
	for from := 0; from < 1000; from += 50 {
		if err := redisbus.Append(ctx, rdb, keys, cmds[from:from+50]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40 * time.Millisecond)
	}
	waitWritten(t, rdb, keys, 1000, 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); standby.Seq() < 1000; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the standby is at %d of 1000", standby.Seq())
		}
	}
	stopStandby()
	if err := <-standbyDone; err != nil {
		t.Fatal(err)
	}
	asLeader, _ := redisbus.SnapshotsTaken(leader)
	_, asStandby := redisbus.SnapshotsTaken(standby)
	if asLeader != 0 || asStandby < 5 {
		t.Fatalf("over 1,000 commands the leader took %d snapshots and the standby %d; want 0 and about 10", asLeader, asStandby)
	}
	metas, err := redisbus.Snapshots(ctx, rdb, keys)
	if err != nil || len(metas) == 0 || metas[0].Seq < 500 {
		t.Fatalf("stored snapshots %+v, %v", metas, err)
	}
	// The standby's newest snapshot, replayed to 1,000, is the leader's state.
	e, meta, err := redisbus.ReplayFromSnapshot(ctx, rdb, keys, matching.Config{Symbols: matching.DefaultSymbols()}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.StateHash(), fullReplay(t, rdb, keys, 1000); got != want {
		t.Fatalf("the standby's snapshot at %d replayed to 1000: %s; full replay %s", meta.Seq, got, want)
	}

	// No standby now: the leader takes one itself, three counts after the
	// newest stored.
	for from := 1000; from < len(cmds); from += 50 {
		if err := redisbus.Append(ctx, rdb, keys, cmds[from:from+50]); err != nil {
			t.Fatal(err)
		}
		waitWritten(t, rdb, keys, uint64(from+50), 10*time.Second)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, _ := redisbus.SnapshotsTaken(leader); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("without a standby the leader took no snapshot in 500 commands")
		}
	}
	stopLeader()
	if err := <-leaderDone; err != nil {
		t.Fatal(err)
	}
}
