package redisbus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// follow makes replica a replica of primary and waits for the link.
func follow(t *testing.T, replica *redis.Client, primary string) {
	t.Helper()
	host, port, _ := strings.Cut(primary, ":")
	ctx := context.Background()
	if err := replica.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		info, _ := replica.Info(ctx, "replication").Result()
		if strings.Contains(info, "master_link_status:up") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica link not up: %s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWaitForReplicas: with WaitReplicas 1 a command is answered only once
// a replica holds its events; with the replica gone it is applied but not
// answered (the client times out); once a replica is back, the next
// command is answered.
func TestWaitForReplicas(t *testing.T) {
	primary, replica := testenv.NewRedisServer(t, false), testenv.NewRedisServer(t, false)
	prdb := redis.NewClient(&redis.Options{Addr: primary.Addr()})
	rrdb := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	t.Cleanup(func() { _ = prdb.Close(); _ = rrdb.Close() })
	// A full sync otherwise waits 5 s for more replicas to join.
	if err := prdb.ConfigSet(context.Background(), "repl-diskless-sync-delay", "0").Err(); err != nil {
		t.Fatal(err)
	}
	follow(t, rrdb, primary.Addr())
	keys := redisbus.KeysFor("w1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, _ := matching.New(matching.DefaultSymbols())
	r := redisbus.NewRunner(prdb, keys, e, zap.NewNop(), nil)
	r.WaitReplicas, r.WaitTimeout = 1, 200*time.Millisecond
	go func() { _ = r.Run(ctx) }()
	client := redisbus.NewClient(prdb, keys, zap.NewNop())
	client.Durable = true
	go func() { _ = client.Run(ctx) }()

	do := func(c matching.Command, within time.Duration) error {
		cctx, ccancel := context.WithTimeout(ctx, within)
		defer ccancel()
		_, err := client.Do(cctx, c)
		return err
	}
	open := func(a string) matching.Command {
		return matching.Command{Kind: matching.CmdOpenAccount, Account: a, Owner: a, AccountKind: matching.KindTrader}
	}
	if err := do(open("a"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	wantCommandsOnce(t, rrdb, keys, 1) // answered: the replica has it

	replica.Kill(t)
	err := do(open("b"), time.Second)
	if ae, ok := err.(*apperr.Error); !ok || ae.Code != apperr.Timeout {
		t.Fatalf("with no replica: %v; want TIMEOUT", err)
	}
	wantCommandsOnce(t, prdb, keys, 2) // the unanswered command is applied

	replica.Start(t)
	follow(t, rrdb, primary.Addr())
	if err := do(open("c"), 5*time.Second); err != nil {
		t.Fatalf("with the replica back: %v", err)
	}
	wantCommandsOnce(t, rrdb, keys, 3) // the replica caught up
}
