package redisbus_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// TestBatchEntries: each client's commands enter the inbox as few
// entries, and a batch's commands share one events entry, ID its last
// sequence. Clients in other processes (their own Redis clients, answered
// by their tails) each get exactly their own commands' events out of the
// shared entry, and readers bounded by a count of commands get every
// command once, in order, never more than the bound allows.
func TestBatchEntries(t *testing.T) {
	addr := testenv.RedisAddr(t)
	_, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdbOf := func() *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	// Two clients, each on a Redis client of its own, queue their commands
	// before any engine runs, so the first batches hold both clients'
	// commands, interleaved.
	const perClient = 200 // both clients' commands fit one batch
	clients := []*redisbus.Client{redisbus.NewClient(rdbOf(), keys, zap.NewNop()), redisbus.NewClient(rdbOf(), keys, zap.NewNop())}
	for _, c := range clients {
		go func() { _ = c.Run(ctx) }()
	}
	type answer struct {
		client, i int
		evs       []matching.Event
		err       error
	}
	answers := make(chan answer, 2*perClient)
	var wg sync.WaitGroup
	for ci, c := range clients {
		for i := range perClient {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
				defer dcancel()
				acct := fmt.Sprintf("c%d-%d", ci, i)
				evs, err := c.Do(dctx, matching.Command{Kind: matching.CmdOpenAccount, Account: acct, Owner: acct, AccountKind: matching.KindTrader})
				answers <- answer{ci, i, evs, err}
			}()
		}
	}
	inbox := rdbOf()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n, _ := redisbus.InboxCommands(ctx, inbox, keys); n == 2*perClient {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the clients did not append their commands")
		}
	}
	runner := newRunner(t, rdbOf(), keys)
	runDone := make(chan error, 1)
	go func() { runDone <- runner.Run(ctx) }()
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.err != nil {
			t.Fatalf("client %d, command %d: %v", a.client, a.i, a.err)
		}
		if want := fmt.Sprintf("c%d-%d", a.client, a.i); len(a.evs) != 1 || a.evs[0].Kind != matching.EvAccountOpened || a.evs[0].Account != want {
			t.Fatalf("client %d, command %d answered with %+v; want %s opened", a.client, a.i, a.evs, want)
		}
	}
	wantCommandsOnce(t, inbox, keys, 2*perClient)
	entries, err := inbox.XRange(ctx, keys.Events, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].ID != "400-0" {
		t.Fatalf("%d entries for %d commands, the first %s; want one, 400-0", len(entries), 2*perClient, entries[0].ID)
	}

	// Bounded readers: every command once, in order; no read past its bound
	// unless its first entry alone holds more.
	for _, count := range []int64{1, 100, 512, 513, 1000, 10_000} {
		var next uint64 = 1
		for after := "0"; ; {
			envs, err := redisbus.ReadEvents(ctx, inbox, keys, after, count, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(envs) == 0 {
				break
			}
			first, commands := envs[0].StreamID, int64(0)
			firstCommands := int64(0)
			for _, e := range envs {
				if !e.Last {
					continue
				}
				if e.Event.Seq != next {
					t.Fatalf("count %d: command %d read where %d was due", count, e.Event.Seq, next)
				}
				next++
				commands++
				if e.StreamID == first {
					firstCommands++
				}
			}
			if commands > max(count, firstCommands) {
				t.Fatalf("count %d: one read brought %d commands (its first entry %d)", count, commands, firstCommands)
			}
			after = envs[len(envs)-1].StreamID
		}
		if next != 2*perClient+1 {
			t.Fatalf("count %d: read %d commands; want %d", count, next-1, 2*perClient)
		}
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
}

// TestReplayEndsWithinAnEntry: a replay stops at the sequence asked for,
// even inside an inbox entry that holds more commands.
func TestReplayEndsWithinAnEntry(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	ctx := context.Background()
	cmds := randomCommands(41, 300)
	if err := redisbus.Append(ctx, rdb, keys, cmds); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.XLen(ctx, keys.Inbox).Result(); n != 1 {
		t.Fatalf("300 commands appended as %d entries; want 1", n)
	}
	replayed, _ := matching.New(matching.DefaultSymbols())
	if err := redisbus.Replay(ctx, rdb, keys, replayed, 137); err != nil || replayed.Seq() != 137 {
		t.Fatalf("replay to 137 reached %d (%v)", replayed.Seq(), err)
	}
	// The same 137 commands applied directly, with the entry's time.
	msgs, _ := rdb.XRange(ctx, keys.Inbox, "-", "+").Result()
	ms, _, _ := strings.Cut(msgs[0].ID, "-")
	at, _ := strconv.ParseInt(ms, 10, 64)
	direct, _ := matching.New(matching.DefaultSymbols())
	for i, c := range cmds[:137] {
		c.Seq, c.Time = uint64(i+1), at
		if _, err := direct.Apply(c, nil); err != nil {
			t.Fatal(err)
		}
	}
	if replayed.StateHash() != direct.StateHash() {
		t.Fatal("the replay to 137 differs from applying the first 137 commands")
	}
}
