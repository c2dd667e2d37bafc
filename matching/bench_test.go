package matching_test

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/satu-exchange/satu/matching"
)

// The book benchmarks run through the full engine — risk (holds), self-trade
// prevention, fees and every event (order, trade, level and balance events)
// — on the shape the issue fixes: 10,000 resting orders, 500 price levels ×
// 10 orders per side, the best levels 100 ticks from the mid price.
//
// Operations that consume the book (cancels, matches) run in timed chunks;
// between chunks the book is refilled to its shape with the timer stopped,
// so it stays between half and full depth. Client IDs are remembered for
// 10 s of sequenced time (one command per millisecond), so the engine's
// client-ID memory stays at a steady state instead of growing with b.N.

const (
	benchMid    = 30_000_000 * 100 // 30,000,000 KZT per BTC, in tiyn
	benchTick   = 100              // BTCKZT tick: 1 KZT
	benchLevels = 500
	benchDepth  = 10
	benchGap    = 100       // ticks from mid to the best level
	benchQty    = 1_000_000 // 0.01 BTC per resting order
)

type bench struct {
	b        *testing.B
	e        *matching.Engine
	seq      uint64
	out      []matching.Event
	ids      []string
	next     int
	live     [2][]uint64 // resting order IDs by side (0 bids, 1 asks)
	makerIDs int
	mids     []string
	record   *[]matching.Command // when set, apply appends each command to it
}

func newBench(b *testing.B) *bench {
	bn := newBenchEmpty(b)
	bn.fill()
	bn.recount()
	return bn
}

// newBenchEmpty returns an engine with a funded maker and taker (different
// owners) and an empty book.
func newBenchEmpty(b *testing.B) *bench {
	syms := matching.DefaultSymbols()
	e, err := matching.NewWithConfig(matching.Config{Symbols: syms, ClientIDRetentionMs: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	bn := &bench{b: b, e: e, out: make([]matching.Event, 0, 256)}
	bn.ids, bn.mids = make([]string, 1<<20), make([]string, 1<<16)
	for i := range bn.ids {
		bn.ids[i] = "c" + strconv.Itoa(i)
	}
	for i := range bn.mids {
		bn.mids[i] = "m" + strconv.Itoa(i)
	}
	for _, a := range []string{"maker", "taker"} {
		bn.apply(matching.Command{Kind: matching.CmdOpenAccount, Account: a, Owner: a, AccountKind: matching.KindMarketMaker})
		bn.apply(matching.Command{Kind: matching.CmdDeposit, Account: a, Asset: "BTC", Amount: 1 << 50, ExtRef: a + "-btc"})
		bn.apply(matching.Command{Kind: matching.CmdDeposit, Account: a, Asset: "KZT", Amount: 1 << 60, ExtRef: a + "-kzt"})
	}
	return bn
}

// apply runs one command with the next sequence and a millisecond clock.
func (bn *bench) apply(c matching.Command) []matching.Event {
	bn.seq++
	c.Seq, c.Time = bn.seq, 1_700_000_000_000+int64(bn.seq)
	if bn.record != nil {
		*bn.record = append(*bn.record, c)
	}
	out, err := bn.e.Apply(c, bn.out[:0])
	if err != nil {
		bn.b.Fatal(err)
	}
	bn.out = out
	return out
}

func (bn *bench) clientID() string {
	bn.next++
	return bn.ids[bn.next&(len(bn.ids)-1)]
}

func levelPrice(side, level int) int64 {
	if side == 0 {
		return benchMid - int64(benchGap+level)*benchTick
	}
	return benchMid + int64(benchGap+level)*benchTick
}

// rest places a resting maker order at a level and records it. Maker
// client IDs come from a ring; one still remembered is skipped.
func (bn *bench) rest(side, level int) {
	s := matching.Buy
	if side == 1 {
		s = matching.Sell
	}
	for {
		bn.makerIDs++
		evs := bn.apply(matching.Command{Kind: matching.CmdPlaceOrder, Account: "maker", Symbol: "BTCKZT",
			ClientID: bn.mids[bn.makerIDs&(len(bn.mids)-1)],
			Side:     s, Type: matching.Limit, TIF: matching.GTC, Price: levelPrice(side, level), Quantity: benchQty})
		switch evs[0].Kind {
		case matching.EvDuplicate:
			continue
		case matching.EvOrderAccepted:
			bn.live[side] = append(bn.live[side], evs[0].OrderID)
			return
		}
		bn.b.Fatalf("maker order refused: %+v", evs[0])
	}
}

// fill restores the book to 500 levels × 10 orders per side (untimed).
func (bn *bench) fill() {
	bids, asks := bn.e.Depth("BTCKZT", 2*benchLevels)
	for side, lv := range [][]matching.Level{bids, asks} {
		have := map[int64]int{}
		for _, l := range lv {
			have[l.Price] = int(l.Orders)
		}
		for level := 0; level < benchLevels; level++ {
			for n := have[levelPrice(side, level)]; n < benchDepth; n++ {
				bn.rest(side, level)
			}
		}
	}
}

// recount rebuilds the live order lists from the book.
func (bn *bench) recount() {
	for side, s := range []matching.Side{matching.Buy, matching.Sell} {
		bn.live[side] = bn.live[side][:0]
		for _, o := range bn.e.BookOrders("BTCKZT", s) {
			bn.live[side] = append(bn.live[side], o.ID)
		}
	}
}

// forget drops a filled maker from the live list (generation only: O(n)).
func (bn *bench) forget(side int, id uint64) {
	live := bn.live[side]
	for k := len(live) - 1; k >= 0; k-- {
		if live[k] == id {
			live[k] = live[len(live)-1]
			bn.live[side] = live[:len(live)-1]
			return
		}
	}
}

func (bn *bench) chunk(i, size int) {
	if i > 0 && i%size == 0 {
		bn.b.StopTimer()
		bn.fill()
		bn.b.StartTimer()
	}
}

func BenchmarkBookAdd(b *testing.B) {
	bn := newBench(b)
	rng := rand.New(rand.NewPCG(1, 1))
	const chunk = 5_000
	cmds := make([]matching.Command, chunk)
	for i := range cmds {
		side, s := rng.IntN(2), matching.Buy
		if side == 1 {
			s = matching.Sell
		}
		cmds[i] = matching.Command{Kind: matching.CmdPlaceOrder, Account: "taker", Symbol: "BTCKZT",
			Side: s, Type: matching.Limit, TIF: matching.GTC, Price: levelPrice(side, rng.IntN(benchLevels)), Quantity: benchQty}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%chunk == 0 { // take the added orders out again, untimed
			b.StopTimer()
			bn.apply(matching.Command{Kind: matching.CmdCancelAll, Account: "taker"})
			b.StartTimer()
		}
		c := cmds[i%chunk]
		c.ClientID = bn.clientID()
		if evs := bn.apply(c); evs[0].Kind != matching.EvOrderAccepted || len(evs) != 3 {
			b.Fatalf("add: %+v", evs)
		}
	}
}

func BenchmarkBookCancel(b *testing.B) {
	bn := newBench(b)
	rng := rand.New(rand.NewPCG(2, 2))
	const chunk = 5_000
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%chunk == 0 {
			b.StopTimer()
			bn.fill()
			b.StartTimer()
		}
		side := i & 1
		live := bn.live[side]
		k := rng.IntN(len(live))
		id := live[k]
		live[k] = live[len(live)-1]
		bn.live[side] = live[:len(live)-1]
		if evs := bn.apply(matching.Command{Kind: matching.CmdCancelOrder, Account: "maker", OrderID: id}); evs[0].Kind != matching.EvOrderDone {
			b.Fatalf("cancel: %+v", evs[0])
		}
	}
}

// match sends takers alternately buying and selling qty at the far limit,
// each filling exactly the first makers of the best level(s).
func benchMatch(b *testing.B, makers int, chunk int) {
	bn := newBench(b)
	taker := [2]matching.Command{
		{Kind: matching.CmdPlaceOrder, Account: "taker", Symbol: "BTCKZT", Side: matching.Buy, Type: matching.Limit,
			TIF: matching.IOC, Price: levelPrice(1, benchLevels-1), Quantity: int64(makers) * benchQty},
		{Kind: matching.CmdPlaceOrder, Account: "taker", Symbol: "BTCKZT", Side: matching.Sell, Type: matching.Limit,
			TIF: matching.IOC, Price: levelPrice(0, benchLevels-1), Quantity: int64(makers) * benchQty},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bn.chunk(i, chunk)
		c := taker[i&1]
		c.ClientID = bn.clientID()
		evs := bn.apply(c)
		trades := 0
		for j := range evs {
			if evs[j].Kind == matching.EvTrade {
				trades++
			}
		}
		if trades != makers {
			b.Fatalf("taker made %d trades, want %d", trades, makers)
		}
	}
}

func BenchmarkBookMatch1(b *testing.B)  { benchMatch(b, 1, 5_000) }
func BenchmarkBookMatch10(b *testing.B) { benchMatch(b, 10, 500) }

// mixedCommand generates one command of the mixed benchmarks on gen: 70 %
// adds of resting maker orders, 25 % cancels of resting orders, 5 %
// aggressive orders (IOC, sweeping one to three makers), and keeps gen's
// live lists. It returns false when it drew a cancel with nothing to cancel.
func mixedCommand(gen *bench, rng *rand.Rand) (matching.Command, bool) {
	var c matching.Command
	side := rng.IntN(2)
	s := [2]matching.Side{matching.Buy, matching.Sell}[side]
	switch r := rng.IntN(100); {
	case r < 70:
		c = matching.Command{Kind: matching.CmdPlaceOrder, Account: "maker", Symbol: "BTCKZT", ClientID: gen.clientID(),
			Side: s, Type: matching.Limit, TIF: matching.GTC, Price: levelPrice(side, rng.IntN(benchLevels)), Quantity: benchQty}
	case r < 95:
		live := gen.live[side]
		if len(live) == 0 {
			return c, false
		}
		k := rng.IntN(len(live))
		c = matching.Command{Kind: matching.CmdCancelOrder, Account: "maker", OrderID: live[k]}
		live[k] = live[len(live)-1]
		gen.live[side] = live[:len(live)-1]
	default:
		c = matching.Command{Kind: matching.CmdPlaceOrder, Account: "taker", Symbol: "BTCKZT", ClientID: gen.clientID(),
			Side: s.Opposite(), Type: matching.Limit, TIF: matching.IOC, Price: levelPrice(side, benchLevels-1),
			Quantity: int64(1+rng.IntN(3)) * benchQty}
	}
	evs := gen.apply(c)
	if c.Kind == matching.CmdPlaceOrder && c.Account == "maker" && evs[0].Kind == matching.EvOrderAccepted {
		gen.live[side] = append(gen.live[side], evs[0].OrderID)
	}
	for j := range evs { // makers filled by a taker: forget them
		if ev := &evs[j]; ev.Kind == matching.EvOrderDone && ev.Account == "maker" && ev.Status == matching.StatusFilled {
			ms := 0
			if ev.Side == matching.Sell {
				ms = 1
			}
			gen.forget(ms, ev.OrderID)
		}
	}
	return c, true
}

// BenchmarkEngineMixed applies the mix of mixedCommand on the book shape
// of the other book benchmarks, 500 levels × 10 orders a side. The mix
// grows the book (by about 0.35 orders a command), so it runs in chunks of
// 5,000 commands, and after each, untimed, the book is brought back to its
// shape — the newest orders of a level beyond ten cancelled, missing ones
// added — so that the cost per command does not depend on b.N. Each chunk
// is generated against a twin engine first (untimed), so that every cancel
// names a live order; the timed run applies the identical stream, and the
// two engines' state hashes are compared at the end.
func BenchmarkEngineMixed(b *testing.B) {
	gen, run := newBench(b), newBench(b)
	rng := rand.New(rand.NewPCG(3, 3))
	const chunk = 5_000
	var cmds, shape []matching.Command
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		cmds = cmds[:0]
		for n := min(chunk, b.N-done); len(cmds) < n; {
			if c, ok := mixedCommand(gen, rng); ok {
				cmds = append(cmds, c)
			}
		}
		b.StartTimer()
		for i := range cmds {
			if evs := run.apply(cmds[i]); evs[0].Kind == matching.EvRejected {
				b.Fatalf("command %d rejected: %+v", done+i, evs[0])
			}
		}
		b.StopTimer()
		done += len(cmds)
		gen.record = &shape
		gen.reshape()
		gen.record = nil
		for _, c := range shape {
			run.apply(c)
		}
		shape = shape[:0]
		b.StartTimer()
	}
	b.StopTimer()
	if run.e.StateHash() != gen.e.StateHash() {
		b.Fatal("the timed engine diverged from the generating one")
	}
	bids, asks := run.e.Depth("BTCKZT", 2*benchLevels)
	if len(bids) != benchLevels || len(asks) != benchLevels {
		b.Fatalf("the book has %d bid and %d ask levels after the run, want %d each", len(bids), len(asks), benchLevels)
	}
}

// reshape brings the book back to 500 levels × 10 orders a side: it
// cancels a level's orders beyond ten (from the live lists, without a
// listing of the book, so that the untimed work leaves little garbage for
// the collector to chase while the timed chunk runs) and fills missing
// ones.
func (bn *bench) reshape() {
	for side := range 2 {
		var count [benchLevels]int
		live := bn.live[side]
		for k := len(live) - 1; k >= 0; k-- {
			o, open := bn.e.Order(live[k])
			if !open {
				bn.b.Fatalf("reshape: live order %d is not open", live[k])
			}
			d := (o.Price - benchMid) / benchTick
			if side == 0 {
				d = -d
			}
			lvl := d - benchGap
			if count[lvl]++; count[lvl] > benchDepth {
				if evs := bn.apply(matching.Command{Kind: matching.CmdCancelOrder, Account: o.Account, OrderID: o.ID}); evs[0].Kind != matching.EvOrderDone {
					bn.b.Fatalf("reshape: cancel %d: %+v", o.ID, evs[0])
				}
				live[k] = live[len(live)-1]
				live = live[:len(live)-1]
			}
		}
		bn.live[side] = live
	}
	bn.fill()
}

// BenchmarkEngineMixedGrowing is BenchmarkEngineMixed as it was until
// 2026-12-02, kept for comparison over time: the same mix from the same
// book, never reshaped, so the book grows with b.N (to about 360,000
// orders after a million commands) and so does the cost per command. The
// whole stream is generated against a twin engine first.
func BenchmarkEngineMixedGrowing(b *testing.B) {
	gen := newBench(b)
	run := newBench(b)
	rng := rand.New(rand.NewPCG(3, 3))
	n := b.N
	cmds := make([]matching.Command, 0, n)
	for len(cmds) < n {
		if c, ok := mixedCommand(gen, rng); ok {
			cmds = append(cmds, c)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range cmds {
		if evs := run.apply(cmds[i]); evs[0].Kind == matching.EvRejected {
			b.Fatalf("command %d rejected: %+v", i, evs[0])
		}
	}
	b.StopTimer()
	if run.e.StateHash() != gen.e.StateHash() {
		b.Fatal("the timed engine diverged from the generating one")
	}
}

// BenchmarkPlaceCross is the foundation's benchmark, kept for comparison
// over time: each op rests a sell and crosses it with a buy (two commands,
// one trade) on an otherwise empty book.
func BenchmarkPlaceCross(b *testing.B) {
	bn := newBenchEmpty(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bn.apply(matching.Command{Kind: matching.CmdPlaceOrder, Account: "maker", Symbol: "BTCKZT", ClientID: bn.clientID(),
			Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: benchMid, Quantity: benchQty})
		evs := bn.apply(matching.Command{Kind: matching.CmdPlaceOrder, Account: "taker", Symbol: "BTCKZT", ClientID: bn.clientID(),
			Side: matching.Buy, Type: matching.Limit, TIF: matching.GTC, Price: benchMid, Quantity: benchQty})
		if evs[1].Kind != matching.EvTrade {
			b.Fatalf("no trade: %+v", evs[1])
		}
	}
}

// BenchmarkEngineWorstApply applies b.N orders with new client order IDs
// and reports, besides the mean, the longest single Apply: the pause a
// command can meet behind another. In "matched", a resting sell and a buy
// that fills it alternate, so the book stays small while the client-ID
// memory (kept 24 hours) grows by one every command; in "resting", every
// order rests (500 levels a side), so the book and its indexes grow too.
// The client-ID and open-order tables grow incrementally; when they
// rehashed all at once, every doubling paused one command (114 ms at
// 2,000,000 client IDs, 100 ms at 2,000,000 open orders, with the
// collector off).
//
//	GOGC=off go test -run xxx -bench EngineWorstApply -benchtime 2000000x ./matching/
func BenchmarkEngineWorstApply(b *testing.B) {
	b.Run("matched", func(b *testing.B) { benchWorstApply(b, false) })
	b.Run("resting", func(b *testing.B) { benchWorstApply(b, true) })
}

func benchWorstApply(b *testing.B, rest bool) {
	e, _ := matching.New(matching.DefaultSymbols())
	var out []matching.Event
	apply := func(c matching.Command) time.Duration {
		c.Seq, c.Time = e.Seq()+1, 1_700_000_000_000
		t0 := time.Now()
		var err error
		out, err = e.Apply(c, out[:0])
		d := time.Since(t0)
		if err != nil || matching.Rejection(out) != nil {
			b.Fatal(err, matching.Rejection(out))
		}
		return d
	}
	apply(matching.Command{Kind: matching.CmdOpenAccount, Account: "s", Owner: "s", AccountKind: matching.KindTrader})
	apply(matching.Command{Kind: matching.CmdOpenAccount, Account: "b", Owner: "b", AccountKind: matching.KindTrader})
	apply(matching.Command{Kind: matching.CmdDeposit, Account: "s", Asset: "BTC", Amount: 1 << 60, ExtRef: "s"})
	apply(matching.Command{Kind: matching.CmdDeposit, Account: "b", Asset: "KZT", Amount: 1 << 62, ExtRef: "b"})
	cids := make([]string, b.N)
	for i := range cids {
		cids[i] = strconv.Itoa(i)
	}
	var worst time.Duration
	b.ResetTimer()
	for i := range b.N {
		c := matching.Command{Kind: matching.CmdPlaceOrder, Account: "s", Symbol: "BTCKZT", ClientID: cids[i],
			Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 4_300_000_000, Quantity: 1_000_000}
		if rest {
			c.Price += int64(i%500) * 100
		}
		if i%2 == 1 {
			c.Account, c.Side = "b", matching.Buy
			if rest {
				c.Price = 4_200_000_000 - int64(i%500)*100
			}
		}
		worst = max(worst, apply(c))
	}
	b.ReportMetric(float64(worst)/float64(time.Millisecond), "worst-ms")
}
