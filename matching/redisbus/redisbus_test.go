package redisbus_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func startEngine(t *testing.T, ctx context.Context, keys redisbus.Keys) <-chan error {
	rdb, _ := testenv.Redis(t)
	e, err := matching.New(matching.DefaultSymbols())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- redisbus.NewRunner(rdb, keys, e, zap.NewNop(), nil).Run(ctx) }()
	return done
}

func TestRoundTripAndReplay(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	ctx, cancel := context.WithCancel(context.Background())
	engineDone := startEngine(t, ctx, keys)
	client := redisbus.NewClient(rdb, keys, zap.NewNop())
	clientCtx, stopClient := context.WithCancel(context.Background())
	defer stopClient()
	go client.Run(clientCtx)

	do := func(c matching.Command) []matching.Event {
		t.Helper()
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		evs, err := client.Do(cctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	evs := do(matching.Command{Kind: matching.CmdOpenAccount, Account: "a", Owner: "o", AccountKind: matching.KindTrader})
	if len(evs) != 1 || evs[0].Kind != matching.EvAccountOpened || evs[0].Seq != 1 || evs[0].Time == 0 {
		t.Fatalf("events = %+v", evs)
	}
	evs = do(matching.Command{Kind: matching.CmdDeposit, Account: "a", Asset: "KZT", Amount: 100, ExtRef: "x"})
	if evs[0].Kind != matching.EvDeposited || evs[0].Seq != 2 {
		t.Fatalf("events = %+v", evs)
	}
	evs = do(matching.Command{Kind: matching.CmdDeposit, Account: "nobody", Asset: "KZT", Amount: 100, ExtRef: "y"})
	if evs[0].Kind != matching.EvRejected || evs[0].Code != "UNKNOWN_ACCOUNT" {
		t.Fatalf("events = %+v", evs)
	}
	// An undecodable inbox entry is rejected in sequence, not skipped.
	if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Inbox, Values: []any{"c", "{not json"}}).Err(); err != nil {
		t.Fatal(err)
	}
	evs = do(matching.Command{Kind: matching.CmdDeposit, Account: "a", Asset: "KZT", Amount: 1, ExtRef: "z"})
	if evs[0].Seq != 5 {
		t.Fatalf("seq after undecodable entry = %d; want 5", evs[0].Seq)
	}
	cancel()
	<-engineDone

	// A second engine replays the same inbox: it must not write any event twice.
	n, _ := rdb.XLen(context.Background(), keys.Events).Result()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	engine2 := startEngine(t, ctx2, keys)
	evs = do(matching.Command{Kind: matching.CmdDeposit, Account: "a", Asset: "KZT", Amount: 1, ExtRef: "w"})
	if evs[0].Seq != 6 || evs[0].Kind != matching.EvDeposited {
		t.Fatalf("after restart: %+v", evs)
	}
	n2, _ := rdb.XLen(context.Background(), keys.Events).Result()
	if n2 != n+1 || len(evs) != 2 { // one entry: the deposit's events, deposited and balance
		t.Fatalf("events stream grew by %d entries on replay + 1 command (%d events); want 1 (2)", n2-n, len(evs))
	}
	cancel2()
	if err := <-engine2; err != nil {
		t.Fatal(err)
	}

}

// TestIdleTickExpiresGTD: a GTD order expires on an otherwise idle market,
// because the runner sequences a tick once the deadline has passed.
func TestIdleTickExpiresGTD(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	engineDone := startEngine(t, ctx, keys)
	client := redisbus.NewClient(rdb, keys, zap.NewNop())
	go client.Run(ctx)
	do := func(c matching.Command) []matching.Event {
		t.Helper()
		evs, err := client.Do(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := matching.Rejection(evs); err != nil {
			t.Fatalf("%s: %v", c.Kind, err)
		}
		return evs
	}
	do(matching.Command{Kind: matching.CmdOpenAccount, Account: "a", Owner: "o", AccountKind: matching.KindTrader})
	do(matching.Command{Kind: matching.CmdDeposit, Account: "a", Asset: "BTC", Amount: 100_000_000, ExtRef: "x"})
	expire := time.Now().UnixMilli() + 300
	evs := do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "a", Symbol: "BTCKZT", ClientID: "g", Side: matching.Sell,
		Type: matching.Limit, TIF: matching.GTD, ExpireAt: expire, Price: 30_000_000_00, Quantity: 1_000_000})
	id := evs[0].OrderID
	deadline := time.Now().Add(5 * time.Second)
	for after := "0"; time.Now().Before(deadline); {
		envs, err := redisbus.ReadEvents(ctx, rdb, keys, after, 100, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, env := range envs {
			after = env.StreamID
			if ev := env.Event; ev.Kind == matching.EvOrderDone && ev.OrderID == id {
				if !ev.Timer || ev.Reason != matching.ReasonExpired || ev.Time < expire {
					t.Fatalf("expiry event = %+v", ev)
				}
				cancel()
				<-engineDone
				return
			}
		}
	}
	t.Fatal("the GTD order did not expire on an idle market")
}

// TestReadsSingleEventEntries: streams written before events were grouped
// per command hold one event per entry, marked last on a command's last;
// readers still read them.
func TestReadsSingleEventEntries(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	ctx := context.Background()
	for _, e := range []struct{ id, json, last string }{
		{"1-0", `{"seq":1,"ts":5,"idx":0,"kind":"deposited","account":"a","asset":"KZT","amount":100,"extRef":"x"}`, "0"},
		{"1-1", `{"seq":1,"ts":5,"idx":1,"kind":"balance","account":"a","asset":"KZT","free":100}`, "1"},
	} {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Events, ID: e.id, Values: []any{"e", e.json, "ref", "r1", "last", e.last}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := redisbus.ReadEvents(ctx, rdb, keys, "0", 10, 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("read %+v (%v)", evs, err)
	}
	if evs[0].Last || !evs[1].Last || evs[0].Ref != "r1" || evs[0].StreamID != "1-0" || evs[0].Event.Amount != 100 ||
		evs[1].Event.Kind != matching.EvBalance || evs[1].Event.Free != 100 {
		t.Fatalf("events %+v", evs)
	}
}

// wantCommandsOnce fails unless the events stream holds the events of
// commands 1..n, each exactly once, in order.
func wantCommandsOnce(t testing.TB, rdb redis.UniversalClient, keys redisbus.Keys, n int) {
	t.Helper()
	var seqs []uint64
	for after := "0"; ; {
		envs, err := redisbus.ReadEvents(context.Background(), rdb, keys, after, 10_000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) == 0 {
			break
		}
		for _, e := range envs {
			if e.Last {
				seqs = append(seqs, e.Event.Seq)
			}
		}
		after = envs[len(envs)-1].StreamID
	}
	if len(seqs) != n {
		t.Fatalf("events stream holds the events of %d commands; want %d", len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("events stream's command %d has sequence %d", i+1, s)
		}
	}
}
