package redisbus_test

import (
	"context"
	"os"
	"reflect"
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
	if n2 != n+int64(len(evs)) { // the deposit's own events: deposited, balance
		t.Fatalf("events stream grew by %d on replay + 1 command; want %d", n2-n, len(evs))
	}
	cancel2()
	if err := <-engine2; err != nil {
		t.Fatal(err)
	}

	// A reader that decodes only some kinds sees every event, the others
	// with just their sequence, index and kind.
	all, err := redisbus.ReadEvents(context.Background(), rdb, keys, "0", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	only := func(k matching.EventKind) bool { return k == matching.EvDeposited }
	some, err := redisbus.EventReader{RDB: rdb, Keys: keys, Only: only}.ReadEvents(context.Background(), "0", 1000, 0)
	if err != nil || len(some) != len(all) || len(all) < 8 {
		t.Fatalf("read %d of %d events (%v)", len(some), len(all), err)
	}
	for i := range all {
		a, s := all[i], some[i]
		want := a
		if !only(a.Event.Kind) {
			want.Event = matching.Event{Seq: a.Event.Seq, Index: a.Event.Index, Kind: a.Event.Kind}
		}
		if !reflect.DeepEqual(s, want) {
			t.Errorf("event %s: %+v; want %+v", a.StreamID, s, want)
		}
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
