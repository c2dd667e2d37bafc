package redisbus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// waitWritten waits until the events of seq are written.
func waitWritten(t *testing.T, rdb redis.UniversalClient, keys redisbus.Keys, seq uint64, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if s, _ := rdb.HGet(context.Background(), keys.Engine, "seq").Uint64(); s >= seq {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("events of %d not written within %s", seq, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStandbyTakesOverAndOldLeaderIsFenced: a leader and a standby run on
// one shard; only the leader writes. The leader stalls (before a write)
// past its lease; the standby takes over within about the lease's TTL and
// writes; when the old leader wakes, its write is refused (fenced) and it
// stops. Every command's events are written exactly once, and the new
// leader's state equals a full replay.
func TestStandbyTakesOverAndOldLeaderIsFenced(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	testStandbyTakeover(t, rdb, ns)
}

func testStandbyTakeover(t *testing.T, rdb redis.UniversalClient, ns string) {
	keys := redisbus.KeysFor(ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmds := randomCommands(11, 900)
	ttl := 600 * time.Millisecond

	leader := newRunner(t, rdb, keys)
	leader.Lease = &redisbus.Lease{Owner: "leader", TTL: ttl}
	stall, wake := make(chan struct{}), make(chan struct{})
	stalled := false
	redisbus.SetBeforeWrite(leader, func() {
		if s, _ := rdb.HGet(context.Background(), keys.Engine, "seq").Uint64(); s >= 300 && !stalled {
			stalled = true
			close(stall)
			<-wake
		}
	})
	leaderDone := make(chan error, 1)
	go func() { leaderDone <- leader.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) { // the leader takes the lease first
		if holder, _ := rdb.Get(ctx, "satu:{"+ns+"}:lease").Result(); holder == "leader" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the leader did not take the lease")
		}
	}

	standby := newRunner(t, rdb, keys)
	standby.Lease = &redisbus.Lease{Owner: "standby", TTL: ttl}
	standbyDone := make(chan error, 1)
	go func() { standbyDone <- standby.Run(ctx) }()

	if err := redisbus.Append(ctx, rdb, keys, cmds[:300]); err != nil {
		t.Fatal(err)
	}
	waitWritten(t, rdb, keys, 300, 10*time.Second)
	if got, _ := rdb.Get(ctx, "satu:{"+ns+"}:lease").Result(); got != "leader" {
		t.Fatalf("lease held by %q", got)
	}
	// More commands: the leader applies them and stalls before writing.
	if err := redisbus.Append(ctx, rdb, keys, cmds[300:600]); err != nil {
		t.Fatal(err)
	}
	<-stall
	took := waitWritten(t, rdb, keys, 600, 10*time.Second)
	t.Logf("the standby wrote the stalled leader's commands %s after the stall began (lease TTL %s)", took, ttl)
	if took > 10*ttl { // about one TTL on a quiet machine; generous for a loaded one
		t.Errorf("takeover took %s; want about the TTL, %s", took, ttl)
	}
	if got, _ := rdb.Get(ctx, "satu:{"+ns+"}:lease").Result(); got != "standby" {
		t.Fatalf("lease held by %q after the takeover", got)
	}
	close(wake) // the old leader wakes up and tries to write
	select {
	case err := <-leaderDone:
		if !errors.Is(err, redisbus.ErrFenced) {
			t.Fatalf("old leader stopped with %v; want ErrFenced", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the old leader went on")
	}

	if err := redisbus.Append(ctx, rdb, keys, cmds[600:]); err != nil {
		t.Fatal(err)
	}
	waitWritten(t, rdb, keys, 900, 10*time.Second)
	for standby.Seq() < 900 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-standbyDone; err != nil {
		t.Fatal(err)
	}
	wantCommandsOnce(t, rdb, keys, 900)
	if got, want := standby.Engine().StateHash(), fullReplay(t, rdb, keys, 900); got != want {
		t.Fatalf("new leader's state %s, full replay %s", got, want)
	}
	// A clean stop gives the lease up.
	if n, _ := rdb.Exists(context.Background(), "satu:{"+ns+"}:lease").Result(); n != 0 {
		t.Fatal("the lease outlived a clean stop")
	}
}
