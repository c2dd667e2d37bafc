package redisbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// TestMirrorEqualsEngineAfterEveryBatch runs random command streams and,
// after every batch the runner writes, reads the Redis order book — every
// level of both sides, every account's open orders — and compares it with
// the engine's own state at that sequence.
//
// The writes go to Redis in groups of one command each, split at 1,000
// arguments; the third run splits them at 3, so that every group of every
// batch is split.
func TestMirrorEqualsEngineAfterEveryBatch(t *testing.T) {
	for _, run := range []struct{ seed, groupMax uint64 }{{21, 0}, {22, 0}, {23, 3}} {
		t.Run(fmt.Sprint(run.seed), func(t *testing.T) {
			rdb, ns := testenv.Redis(t)
			testMirror(t, rdb, ns, run.seed, int(run.groupMax))
		})
	}
}

// TestMirrorLargeBatch writes batches larger than a group: 2,400 resting
// orders of one account at 2,400 prices, then one cancel-all that ends them
// all, so that one write deletes 2,400 order keys, removes 2,400 levels and
// empties the account's set, each in several groups.
func TestMirrorLargeBatch(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	r := newRunner(t, rdb, keys)
	check, counts := mirrorChecker(t, rdb, keys, r, 1)
	redisbus.SetAfterWrite(r, check)
	cmds := []matching.Command{
		{Kind: matching.CmdOpenAccount, Account: "a0", Owner: "a0", AccountKind: matching.KindTrader},
		{Kind: matching.CmdDeposit, Account: "a0", Asset: "KZT", Amount: 1 << 50, ExtRef: "k"},
		{Kind: matching.CmdDeposit, Account: "a0", Asset: "BTC", Amount: 1 << 40, ExtRef: "b"},
	}
	for i := range 2400 {
		side, price := matching.Buy, int64(20_000_000_00-i*100)
		if i%2 == 1 {
			side, price = matching.Sell, int64(40_000_000_00+i*100)
		}
		cmds = append(cmds, matching.Command{Kind: matching.CmdPlaceOrder, Account: "a0", Symbol: "BTCKZT", ClientID: fmt.Sprint("c", i),
			Side: side, Type: matching.Limit, TIF: matching.GTC, Price: price, Quantity: 1000})
	}
	cmds = append(cmds, matching.Command{Kind: matching.CmdCancelAll, Account: "a0"})
	runUntil(t, rdb, keys, r, uint64(len(cmds)), cmds...)
	if counts.maxOrders < 2000 || counts.maxLevels < 2000 {
		t.Fatalf("the mirror held at most %d orders and %d levels: the test wants more than 2,000", counts.maxOrders, counts.maxLevels)
	}
	if _, got, err := redisbus.OpenOrders(context.Background(), rdb, keys, "a0"); err != nil || len(got) != 0 {
		t.Fatalf("after the cancel-all the mirror holds %d open orders (%v)", len(got), err)
	}
	if n, err := rdb.Keys(context.Background(), keys.Prefix+"order:*").Result(); err != nil || len(n) != 0 {
		t.Fatalf("after the cancel-all %d order keys are left (%v)", len(n), err)
	}
}

// TestDepthReadsManyLevels: a side of more levels than Lua's unpack takes
// at once is read whole (the quantities are read in parts), best first; a
// limit still cuts each side.
func TestDepthReadsManyLevels(t *testing.T) {
	const levels = 9000
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	r := newRunner(t, rdb, keys)
	cmds := []matching.Command{
		{Kind: matching.CmdOpenAccount, Account: "a0", Owner: "a0", AccountKind: matching.KindTrader},
		{Kind: matching.CmdDeposit, Account: "a0", Asset: "KZT", Amount: 1 << 55, ExtRef: "k"},
		{Kind: matching.CmdDeposit, Account: "a0", Asset: "BTC", Amount: 1 << 40, ExtRef: "b"},
		{Kind: matching.CmdPlaceOrder, Account: "a0", Symbol: "BTCKZT", ClientID: "s", Side: matching.Sell, Type: matching.Limit,
			TIF: matching.GTC, Price: 40_000_000_00, Quantity: 1000},
	}
	for i := range levels {
		cmds = append(cmds, matching.Command{Kind: matching.CmdPlaceOrder, Account: "a0", Symbol: "BTCKZT", ClientID: fmt.Sprint("c", i),
			Side: matching.Buy, Type: matching.Limit, TIF: matching.GTC, Price: int64(20_000_000_00 - i*100), Quantity: int64(1000 + i)})
	}
	runUntil(t, rdb, keys, r, uint64(len(cmds)), cmds...)
	ctx := context.Background()
	seq, bids, asks, err := redisbus.Depth(ctx, rdb, keys, "BTCKZT", 2*levels)
	if err != nil || seq != uint64(len(cmds)) || len(bids) != levels || len(asks) != 1 {
		t.Fatalf("every level: seq %d, %d bids, %d asks (%v); want %d, %d, 1", seq, len(bids), len(asks), err, len(cmds), levels)
	}
	for i, l := range bids {
		if l.Price != int64(20_000_000_00-i*100) || l.Quantity != int64(1000+i) || l.Orders != 1 {
			t.Fatalf("bid %d: %+v", i, l)
		}
	}
	if _, bids, asks, err := redisbus.Depth(ctx, rdb, keys, "BTCKZT", 3); err != nil || len(bids) != 3 || bids[2].Price != 20_000_000_00-200 || len(asks) != 1 {
		t.Fatalf("limit 3: %v %v (%v)", bids, asks, err)
	}
}

// TestMirrorReadsJSONRecords: open orders stored as JSON, as the Redis
// order book stored them before its binary records, are still read, next
// to binary ones; a record that is neither is an error, not an order.
func TestMirrorReadsJSONRecords(t *testing.T) {
	ctx := context.Background()
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	r := newRunner(t, rdb, keys)
	cmds := []matching.Command{
		{Kind: matching.CmdOpenAccount, Account: "a0", Owner: "a0", AccountKind: matching.KindTrader},
		{Kind: matching.CmdDeposit, Account: "a0", Asset: "KZT", Amount: 1 << 50, ExtRef: "k"},
	}
	for i := range 6 {
		cmds = append(cmds, matching.Command{Kind: matching.CmdPlaceOrder, Account: "a0", Symbol: "BTCKZT", ClientID: fmt.Sprint("c", i),
			Side: matching.Buy, Type: matching.Limit, TIF: matching.GTC, Price: int64(20_000_000_00 - i*100), Quantity: 1000})
	}
	runUntil(t, rdb, keys, r, uint64(len(cmds)), cmds...)
	want := r.Engine().OpenOrders("a0")
	if len(want) != 6 {
		t.Fatalf("%d open orders, want 6", len(want))
	}
	for i, o := range want {
		key := keys.Prefix + "order:" + fmt.Sprint(o.ID)
		stored, err := rdb.Get(ctx, key).Result()
		if err != nil || len(stored) == 0 || stored[0] != matching.OrderRecordV2 {
			t.Fatalf("order %d stored as %q (%v), not a version-2 record", o.ID, stored, err)
		}
		if i%2 == 0 {
			j, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			rdb.Set(ctx, key, j, 0)
		}
	}
	if _, got, err := redisbus.OpenOrders(ctx, rdb, keys, "a0"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("with half the records JSON: %+v (%v)\nwant %+v", got, err, want)
	}
	rdb.Set(ctx, keys.Prefix+"order:"+fmt.Sprint(want[1].ID), "\x02", 0)
	if _, _, err := redisbus.OpenOrders(ctx, rdb, keys, "a0"); !errors.Is(err, matching.ErrOrderRecord) {
		t.Fatalf("a bad record read with error %v", err)
	}
}

type mirrorCounts struct{ batches, levels, orders, changed, maxLevels, maxOrders int }

// mirrorChecker returns a hook for the runner's writes that compares the
// mirror with the engine — both sides' levels, the open orders of accounts
// a0 … a(accounts−1), every market's state — and counts what it compared.
func mirrorChecker(t *testing.T, rdb redis.UniversalClient, keys redisbus.Keys, r *redisbus.Runner, accounts int) (func(), *mirrorCounts) {
	ctx := context.Background()
	c := &mirrorCounts{}
	return func() {
		e := r.Engine()
		seq, bids, asks, err := redisbus.Depth(ctx, rdb, keys, "BTCKZT", 10_000)
		if err != nil || seq != e.Seq() {
			t.Errorf("depth at %d (%v); engine at %d", seq, err, e.Seq()) // not Fatal: this is the runner's goroutine
			return
		}
		wb, wa := e.Depth("BTCKZT", 10_000)
		if !reflect.DeepEqual(bids, wb) && len(bids)+len(wb) > 0 || !reflect.DeepEqual(asks, wa) && len(asks)+len(wa) > 0 {
			t.Errorf("seq %d: mirror bids %v asks %v; engine bids %v asks %v", seq, bids, asks, wb, wa)
			return
		}
		c.levels += len(bids) + len(asks)
		c.maxLevels = max(c.maxLevels, len(bids)+len(asks))
		n := 0
		for i := range accounts {
			a := fmt.Sprintf("a%d", i)
			_, got, err := redisbus.OpenOrders(ctx, rdb, keys, a)
			if err != nil {
				t.Error(err)
				return
			}
			want := e.OpenOrders(a)
			if !reflect.DeepEqual(got, want) && len(got)+len(want) > 0 {
				t.Errorf("seq %d, %s: mirror %+v\nengine %+v", seq, a, got, want)
				return
			}
			n += len(got)
		}
		c.orders += n
		c.maxOrders = max(c.maxOrders, n)
		markets, err := redisbus.Markets(ctx, rdb, keys)
		if err != nil {
			t.Error(err)
			return
		}
		for _, sym := range e.Symbols() {
			if want, _ := e.Market(sym.Name); markets[sym.Name] != want {
				t.Errorf("seq %d, %s: mirror market %+v; engine %+v", seq, sym.Name, markets[sym.Name], want)
				return
			}
		}
		if st := markets["BTCKZT"]; st.Halted || st.Phase != matching.PhaseContinuous {
			c.changed++
		}
		c.batches++
	}, c
}

func testMirror(t *testing.T, rdb redis.UniversalClient, ns string, seed uint64, groupMax int) {
	keys := redisbus.KeysFor(ns)
	r := newRunner(t, rdb, keys)
	redisbus.SetMirrorGroupMax(r, groupMax)
	check, c := mirrorChecker(t, rdb, keys, r, 6)
	redisbus.SetAfterWrite(r, check)
	// Operators halt, resume and move BTCKZT between phases on the way.
	cmds := randomCommands(seed, 1200)
	for i, c := range []matching.Command{{Kind: matching.CmdHalt}, {Kind: matching.CmdResume},
		{Kind: matching.CmdSetPhase, Phase: matching.PhasePreClose}, {Kind: matching.CmdSetPhase, Phase: matching.PhaseClosed},
		{Kind: matching.CmdSetPhase, Phase: matching.PhaseContinuous}} {
		c.Symbol = "BTCKZT"
		at := 200 + 200*i
		cmds = append(cmds[:at:at], append([]matching.Command{c}, cmds[at:]...)...)
	}
	runUntil(t, rdb, keys, r, uint64(len(cmds)), cmds...)
	if c.changed == 0 {
		t.Fatal("no batch saw BTCKZT halted or out of continuous trading: the phase commands did not take")
	}
	if c.batches < 10 || c.levels == 0 || c.orders == 0 {
		t.Fatalf("compared %d batches, %d levels, %d orders: the test wants more", c.batches, c.levels, c.orders)
	}
	t.Logf("mirror equal to the engine after %d batches (%d levels, %d open orders compared)", c.batches, c.levels, c.orders)
}
