package redisbus_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
)

// TestDoBatch: a batch's commands are applied one after another in the
// order given, each answered with its own events; and when the context
// ends before the engine answers, each command still unanswered gets a
// TIMEOUT.
func TestDoBatch(t *testing.T) {
	rdb, ns := testenv.Redis(t)
	keys := redisbus.KeysFor(ns)
	client := redisbus.NewClient(rdb, keys, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = client.Run(ctx) }()

	// No engine yet: the batch waits, and times out command by command.
	cmds := []matching.Command{
		{Kind: matching.CmdOpenAccount, Account: "a", Owner: "o", AccountKind: matching.KindTrader},
		{Kind: matching.CmdDeposit, Account: "a", Asset: "KZT", Amount: 100, ExtRef: "x"},
	}
	tctx, tcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	var timedOut []int
	client.DoBatch(tctx, cmds, nil, func(i int, evs []matching.Event, err error) {
		if apperr.CodeOf(err) != apperr.Timeout || evs != nil {
			t.Errorf("command %d before any engine: %v, %+v; want TIMEOUT", i, err, evs)
		}
		timedOut = append(timedOut, i)
	})
	tcancel()
	if len(timedOut) != 2 || timedOut[0] != 0 || timedOut[1] != 1 {
		t.Fatalf("answered %v; want 0 and 1 in order", timedOut)
	}

	// The timed-out commands are still applied once an engine runs (a
	// retry with the same content is the caller's business): 2 commands
	// first, then the batch's 4 in order.
	engineDone := startEngine(t, ctx, keys)
	cmds = []matching.Command{
		{Kind: matching.CmdOpenAccount, Account: "b", Owner: "o", AccountKind: matching.KindTrader},
		{Kind: matching.CmdDeposit, Account: "b", Asset: "KZT", Amount: 100, ExtRef: "v"},
		{Kind: matching.CmdDeposit, Account: "nobody", Asset: "KZT", Amount: 100, ExtRef: "y"},
		{Kind: matching.CmdDeposit, Account: "a", Asset: "BTC", Amount: 7, ExtRef: "z"},
	}
	bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
	defer bcancel()
	var got []int
	client.DoBatch(bctx, cmds, make([]matching.Event, 0, 1), func(i int, evs []matching.Event, err error) {
		got = append(got, i)
		if err != nil || len(evs) == 0 {
			t.Fatalf("command %d: %v, %+v", i, err, evs)
		}
		if want := uint64(3 + i); evs[0].Seq != want {
			t.Errorf("command %d applied at sequence %d; want %d (in order, after the 2 timed out)", i, evs[0].Seq, want)
		}
		switch i {
		case 0:
			if evs[0].Kind != matching.EvAccountOpened || evs[0].Account != "b" {
				t.Errorf("opening b: %+v", evs[0])
			}
		case 1, 3:
			if evs[0].Kind != matching.EvDeposited || evs[0].Account != cmds[i].Account || evs[0].ExtRef != cmds[i].ExtRef {
				t.Errorf("command %d: %+v", i, evs[0])
			}
		case 2:
			if evs[0].Kind != matching.EvRejected || evs[0].Code != "UNKNOWN_ACCOUNT" {
				t.Errorf("deposit to nobody: %+v", evs[0])
			}
		}
	})
	if len(got) != len(cmds) {
		t.Fatalf("answered %v; want all %d", got, len(cmds))
	}
	cancel()
	<-engineDone
}
