package postgres_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement"
	"github.com/satu-exchange/satu/settlement/postgres"
)

// flow drives a real engine with a random but reproducible order flow on
// BTCKZT: crossing limit orders around one price, cancels, deposits and
// withdrawals. Its events are what the settlement tests and benchmarks
// settle; the engine is what the ledger must agree with.
type flow struct {
	e        *matching.Engine
	rng      *rand.Rand
	now      int64
	accounts []string
	extRef   int
	orders   int
	recent   [64]uint64 // IDs of recently accepted orders, for cancels
	commands []matching.Command
}

const (
	flowMid = 30_000_000_00 // KZT minor units per BTC
	flowKZT = 1_000_000_000_000_00
)

func newFlow(tb testing.TB, accounts int, seed uint64) (*flow, []matching.Event) {
	tb.Helper()
	e, err := matching.New(matching.DefaultSymbols())
	if err != nil {
		tb.Fatal(err)
	}
	f := &flow{e: e, rng: rand.New(rand.NewPCG(seed, 1)), now: 1_735_689_600_000} // 2025-01-01
	var out []matching.Event
	for i := range accounts {
		id := fmt.Sprintf("t%03d", i)
		f.accounts = append(f.accounts, id)
		out = f.apply(tb, out, matching.Command{Kind: matching.CmdOpenAccount, Account: id, Owner: id, AccountKind: matching.KindTrader})
		out = f.deposit(tb, out, id, "BTC", 1_000*100_000_000)
		out = f.deposit(tb, out, id, "KZT", flowKZT)
	}
	return f, out
}

func (f *flow) apply(tb testing.TB, out []matching.Event, c matching.Command) []matching.Event {
	f.now += int64(f.rng.IntN(3))
	c.Seq, c.Time = f.e.Seq()+1, f.now
	f.commands = append(f.commands, c)
	start := len(out)
	out, err := f.e.Apply(c, out)
	if err != nil {
		tb.Fatal(err)
	}
	for i := start; i < len(out); i++ {
		if out[i].Kind == matching.EvOrderAccepted {
			f.recent[out[i].OrderID%uint64(len(f.recent))] = out[i].OrderID
		}
	}
	return out
}

func (f *flow) deposit(tb testing.TB, out []matching.Event, account, asset string, amount int64) []matching.Event {
	f.extRef++
	return f.apply(tb, out, matching.Command{Kind: matching.CmdDeposit, Account: account, Asset: asset, Amount: amount,
		ExtRef: fmt.Sprintf("dep-%d", f.extRef)})
}

// step applies one random command: mostly limit orders that cross, some
// cancels, a few custody movements.
func (f *flow) step(tb testing.TB, out []matching.Event) []matching.Event {
	acct := f.accounts[f.rng.IntN(len(f.accounts))]
	switch r := f.rng.IntN(100); {
	case r < 88:
		side := matching.Buy
		if f.rng.IntN(2) == 0 {
			side = matching.Sell
		}
		price := int64(flowMid + (f.rng.IntN(7)-3)*100_000)
		f.orders++
		return f.apply(tb, out, matching.Command{Kind: matching.CmdPlaceOrder, Account: acct, Symbol: "BTCKZT",
			ClientID: "o" + strconv.Itoa(f.orders),
			Side:     side, Type: matching.Limit, TIF: matching.GTC, Price: price, Quantity: int64(1_000 + f.rng.IntN(2_000_000))})
	case r < 96:
		// An order of another account, or one already done, is refused:
		// cheap, and refusals are part of a real flow too.
		id := f.recent[f.rng.IntN(len(f.recent))]
		if o, ok := f.e.Order(id); ok {
			acct = o.Account
		}
		return f.apply(tb, out, matching.Command{Kind: matching.CmdCancelOrder, Account: acct, Symbol: "BTCKZT", OrderID: id})
	case r < 98:
		return f.deposit(tb, out, acct, "KZT", int64(1+f.rng.IntN(1_000_000_00)))
	default:
		f.extRef++
		return f.apply(tb, out, matching.Command{Kind: matching.CmdWithdraw, Account: acct, Asset: "BTC",
			Amount: int64(1 + f.rng.IntN(100_000)), ExtRef: fmt.Sprintf("wd-%d", f.extRef)})
	}
}

// trades counts the trade events.
func trades(evs []matching.Event) int {
	n := 0
	for i := range evs {
		if evs[i].Kind == matching.EvTrade {
			n++
		}
	}
	return n
}

// batchesOf cuts events into batches of about size events, on command
// boundaries, as the events stream delivers them.
func batchesOf(evs []matching.Event, size int) []*settlement.Batch {
	var out []*settlement.Batch
	after := "0"
	for start := 0; start < len(evs); {
		end := min(start+size, len(evs))
		for end < len(evs) && evs[end].Seq == evs[end-1].Seq {
			end++
		}
		b := &settlement.Batch{After: after}
		for _, ev := range evs[start:end] {
			b.Add(ev.ID(), ev)
		}
		out = append(out, b)
		after, start = b.LastStreamID, end
	}
	return out
}

// allPostings is every posting a batch booked, stored or a fill's leg, in
// the order version 6 wrote them: by event, then leg.
func allPostings(b *settlement.Batch) []settlement.Posting {
	all := slices.Clone(b.Postings)
	for i := range b.Fills {
		all = append(all, b.Fills[i].Legs()...)
	}
	index := func(p settlement.Posting) int {
		_, x, _ := strings.Cut(p.EventID, "-")
		n, _ := strconv.Atoi(x)
		return n
	}
	slices.SortStableFunc(all, func(a, b settlement.Posting) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(index(a), index(b)), cmp.Compare(a.Leg, b.Leg))
	})
	return all
}

// settleAll settles events in batches of about size events (batches end on
// a command boundary, as the events stream delivers them) and returns the
// batches.
func settleAll(tb testing.TB, store *postgres.Store, shard string, evs []matching.Event, size int) []*settlement.Batch {
	tb.Helper()
	out := batchesOf(evs, size)
	for _, b := range out {
		if err := store.Settle(context.Background(), shard, b); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}
