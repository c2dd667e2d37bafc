package redisbus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

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
