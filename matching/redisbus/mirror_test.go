package redisbus_test

import (
	"context"
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
func TestMirrorEqualsEngineAfterEveryBatch(t *testing.T) {
	for _, seed := range []uint64{21, 22} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rdb, ns := testenv.Redis(t)
			testMirror(t, rdb, ns, seed)
		})
	}
}

func testMirror(t *testing.T, rdb redis.UniversalClient, ns string, seed uint64) {
	keys := redisbus.KeysFor(ns)
	ctx := context.Background()
	r := newRunner(t, rdb, keys)
	batches, levels, orders, changed := 0, 0, 0, 0
	redisbus.SetAfterWrite(r, func() {
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
		levels += len(bids) + len(asks)
		for i := range 6 {
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
			orders += len(got)
		}
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
			changed++
		}
		batches++
	})
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
	if changed == 0 {
		t.Fatal("no batch saw BTCKZT halted or out of continuous trading: the phase commands did not take")
	}
	if batches < 10 || levels == 0 || orders == 0 {
		t.Fatalf("compared %d batches, %d levels, %d orders: the test wants more", batches, levels, orders)
	}
	t.Logf("mirror equal to the engine after %d batches (%d levels, %d open orders compared)", batches, levels, orders)
}
