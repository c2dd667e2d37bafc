package matching

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
)

// TestOrderIndex checks the window-and-overflow index of open orders against
// a map through puts with gaps, deletes of recent and random orders, and
// the window's growth.
func TestOrderIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	var ix orderIndex
	live := map[uint64]*order{}
	var ids []uint64
	next := uint64(1)
	for step := 0; step < 400_000; step++ {
		switch k := r.IntN(10); {
		case k < 6:
			next += uint64(r.IntN(3)) // gaps: IDs never listed
			o := &order{id: next}
			next++
			ix.put(o)
			live[o.id] = o
			ids = append(ids, o.id)
		case len(ids) > 0:
			i := r.IntN(len(ids))
			if r.IntN(3) == 0 {
				i = len(ids) - 1 - r.IntN(min(len(ids), 50))
			}
			id := ids[i]
			ids[i] = ids[len(ids)-1]
			ids = ids[:len(ids)-1]
			if ix.get(id) != live[id] {
				t.Fatalf("step %d: get %d", step, id)
			}
			ix.del(id)
			delete(live, id)
			if ix.get(id) != nil {
				t.Fatalf("step %d: %d still there", step, id)
			}
		}
		if step%50_000 == 0 {
			for id, o := range live {
				if ix.get(id) != o {
					t.Fatalf("step %d: lost %d (window %d)", step, id, len(ix.win))
				}
			}
			if ix.get(next+5) != nil || ix.get(0) != nil {
				t.Fatal("phantom")
			}
		}
	}
	t.Logf("window %d, overflow %d, live %d", len(ix.win), ix.old.n, len(live))
}

// TestPagesAndFIFO: the paged array keeps every entry where it was put
// across page boundaries; the paged queue pops in push order, drops its
// consumed pages, and lists what is left oldest first.
func TestPagesAndFIFO(t *testing.T) {
	var p pages[int]
	for i := range 3*pageSize + 5 {
		if got := p.push(i * 7); got != i {
			t.Fatalf("push %d returned index %d", i, got)
		}
	}
	for i := range p.n {
		if *p.at(i) != i*7 {
			t.Fatalf("entry %d is %d", i, *p.at(i))
		}
	}
	// Truncating to a page boundary, inside a page and to nothing, then
	// pushing again, keeps the entries below the cut and numbers on from it.
	for _, n := range []int{2*pageSize + 3, 2 * pageSize, pageSize - 1, 0} {
		p.truncate(n)
		if p.n != n || len(p.p) != max(1, (n+pageSize-1)/pageSize) {
			t.Fatalf("truncate(%d): %d entries in %d pages", n, p.n, len(p.p))
		}
		for i := range n {
			if *p.at(i) != i*7 {
				t.Fatalf("truncate(%d): entry %d is %d", n, i, *p.at(i))
			}
		}
		if got := p.push(-1); got != n || *p.at(n) != -1 {
			t.Fatalf("push after truncate(%d) returned %d", n, got)
		}
		p.truncate(n)
	}
	var q fifo[int]
	next, popped := 0, 0
	for round := range 6 {
		for range pageSize/2 + round*97 {
			q.push(next)
			next++
		}
		for range pageSize / 3 {
			if got := *q.front(); got != popped {
				t.Fatalf("front %d; want %d", got, popped)
			}
			q.pop()
			popped++
		}
		if q.len() != next-popped || len(q.p) > q.len()/pageSize+2 {
			t.Fatalf("queue of %d in %d pages; want %d", q.len(), len(q.p), next-popped)
		}
	}
	want := popped
	q.each(func(v *int) {
		if *v != want {
			t.Fatalf("each: %d; want %d", *v, want)
		}
		want++
	})
	if want != next {
		t.Fatalf("each listed up to %d; want %d", want, next)
	}
}

// TestCIDIndexGrowsIncrementally checks the client-ID index against a map
// through puts and deletes across many growths, with every remembered key
// looked up — and forgotten keys refused — while an old table is still
// being emptied, and the count of each() equal to the map's throughout.
func TestCIDIndexGrowsIncrementally(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	ix := newCIDIndex()
	accts := []*account{{id: "a", salt: 1}, {id: "b", salt: 0x9e3779b97f4a7c15}}
	type key struct {
		a   *account
		cid string
	}
	type entry struct {
		id  uint64
		rec uint32
	}
	live := map[key]entry{}
	var keys []key
	migrating, growths := 0, 0
	check := func(step int) {
		for k, e := range live {
			rec, ok := ix.find(ix.hash(k.a, k.cid), k.a, k.cid)
			if !ok || rec != e.rec || ix.recs.at(int(rec)).id != e.id {
				t.Fatalf("step %d: %s/%s: rec %d %v, want %d (old table: %v)", step, k.a.id, k.cid, rec, ok, e.rec, ix.prev.slots != nil)
			}
		}
		n := 0
		ix.each(func(*account, string, uint64) { n++ })
		if n != len(live) || ix.n != len(live) {
			t.Fatalf("step %d: each %d, n %d, want %d", step, n, ix.n, len(live))
		}
	}
	next := uint64(1)
	for step := 0; step < 300_000; step++ {
		size := len(ix.slots)
		if r.IntN(10) < 7 || len(keys) == 0 {
			k := key{accts[r.IntN(2)], "c" + string(rune('a'+r.IntN(26))) + strconv.FormatUint(next, 10)}
			h := ix.hash(k.a, k.cid)
			if _, ok := ix.find(h, k.a, k.cid); ok {
				t.Fatalf("step %d: %s found before it was put", step, k.cid)
			}
			live[k] = entry{next, ix.put(h, k.a, k.cid, next)}
			keys = append(keys, k)
			next++
		} else {
			i := r.IntN(len(keys))
			k := keys[i]
			keys[i] = keys[len(keys)-1]
			keys = keys[:len(keys)-1]
			h := ix.hash(k.a, k.cid)
			ix.del(h, live[k].rec)
			delete(live, k)
			if _, ok := ix.find(h, k.a, k.cid); ok {
				t.Fatalf("step %d: %s found after it was deleted", step, k.cid)
			}
		}
		if len(ix.slots) != size {
			growths++
		}
		if ix.prev.slots != nil {
			migrating++
			if migrating%997 == 0 {
				check(step) // in the middle of a growth
			}
		}
		if step%50_000 == 0 {
			check(step)
		}
	}
	check(-1)
	if growths < 10 || migrating == 0 {
		t.Fatalf("%d growths, %d steps while growing: the test did not exercise growth", growths, migrating)
	}
	t.Logf("%d growths to %d slots, %d steps with an old table, %d live", growths, len(ix.slots), migrating, len(live))
}

// TestOrderTableGrowsIncrementally checks the overflow table of open
// orders against a map through puts and deletes across many growths, with
// every order found — and deleted IDs not — while a previous table is
// still being emptied.
func TestOrderTableGrowsIncrementally(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var tab orderTable
	live := map[uint64]*order{}
	var ids []uint64
	migrating, growths := 0, 0
	check := func(step int) {
		for id, o := range live {
			if got := tab.get(id); got != o {
				t.Fatalf("step %d: get %d = %p, want %p (previous table: %v)", step, id, got, o, tab.prev.slots != nil)
			}
		}
		if tab.n != len(live) {
			t.Fatalf("step %d: n %d, want %d", step, tab.n, len(live))
		}
	}
	next := uint64(1)
	for step := 0; step < 300_000; step++ {
		size := len(tab.slots)
		if r.IntN(10) < 7 || len(ids) == 0 {
			next += uint64(r.IntN(5)) // IDs with gaps, as after the window
			o := &order{id: next}
			tab.put(o)
			live[next], ids = o, append(ids, next)
			next++
		} else {
			i := r.IntN(len(ids))
			id := ids[i]
			ids[i] = ids[len(ids)-1]
			ids = ids[:len(ids)-1]
			tab.del(id)
			delete(live, id)
			if tab.get(id) != nil {
				t.Fatalf("step %d: %d found after it was deleted", step, id)
			}
		}
		if len(tab.slots) != size {
			growths++
		}
		if tab.prev.slots != nil {
			if migrating++; migrating%997 == 0 {
				check(step)
			}
		}
		if step%50_000 == 0 {
			check(step)
		}
	}
	check(-1)
	if growths < 10 || migrating == 0 {
		t.Fatalf("%d growths, %d steps while growing: the test did not exercise growth", growths, migrating)
	}
}

// mustApply returns a function that applies a command to e with the next
// sequence and fails the test if the engine errs or refuses it.
func mustApply(t *testing.T, e *Engine) func(c Command) []Event {
	var out []Event
	return func(c Command) []Event {
		t.Helper()
		c.Seq, c.Time = e.Seq()+1, 1_700_000_000_000
		var err error
		if out, err = e.Apply(c, out[:0]); err != nil {
			t.Fatal(err)
		}
		if rej := Rejection(out); rej != nil {
			t.Fatalf("%+v: %v", c, rej)
		}
		return out
	}
}

// TestOpenListCompactsInSteps: one account rests thousands of orders
// (several pages of its open list) and cancels most of them, one by one,
// while it keeps placing more, so that its list is compacted a few IDs per
// listing and read in the middle of a compaction. After every change of
// phase the open orders it lists are exactly the live ones, oldest first;
// a cancel-all in the middle of a compaction ends exactly those, in that
// order.
func TestOpenListCompactsInSteps(t *testing.T) {
	e, _ := New(DefaultSymbols())
	apply := mustApply(t, e)
	apply(Command{Kind: CmdOpenAccount, Account: "mm", Owner: "mm", AccountKind: KindTrader})
	apply(Command{Kind: CmdDeposit, Account: "mm", Asset: "BTC", Amount: 1 << 60, ExtRef: "d"})
	r := rand.New(rand.NewPCG(9, 9))
	var live []uint64 // open order IDs, in listing order
	place := func() {
		evs := apply(Command{Kind: CmdPlaceOrder, Account: "mm", Symbol: "BTCKZT", ClientID: "o" + strconv.Itoa(int(e.Seq())),
			Side: Sell, Type: Limit, TIF: GTC, Price: 4_300_000_000 + int64(r.IntN(500))*100, Quantity: 1_000})
		live = append(live, evs[0].OrderID)
	}
	check := func(when string) {
		got := e.OpenOrders("mm")
		if len(got) != len(live) {
			t.Fatalf("%s: %d open orders listed, want %d", when, len(got), len(live))
		}
		for i, o := range got {
			if o.ID != live[i] {
				t.Fatalf("%s: open order %d is %d, want %d", when, i, o.ID, live[i])
			}
		}
	}
	compactions := 0
	for range 3 * pageSize {
		place()
	}
	check("after placing")
	for round := range 6 {
		for range 2 * pageSize {
			if r.IntN(3) == 0 || len(live) < pageSize/2 {
				place()
			} else {
				i := r.IntN(len(live))
				apply(Command{Kind: CmdCancelOrder, Account: "mm", Symbol: "BTCKZT", OrderID: live[i]})
				live = slices.Delete(live, i, i+1)
			}
			if e.accounts["mm"].open.compacting {
				compactions++
				if compactions%500 == 0 {
					check("during a compaction")
				}
			}
		}
		check("round " + strconv.Itoa(round))
	}
	if compactions == 0 {
		t.Fatal("the list was never compacted: the test did not exercise compaction")
	}
	for !e.accounts["mm"].open.compacting { // a cancel-all in the middle of a compaction
		i := r.IntN(len(live))
		apply(Command{Kind: CmdCancelOrder, Account: "mm", Symbol: "BTCKZT", OrderID: live[i]})
		live = slices.Delete(live, i, i+1)
		place()
	}
	var ended []uint64
	for _, ev := range apply(Command{Kind: CmdCancelAll, Account: "mm"}) {
		if ev.Kind == EvOrderDone {
			ended = append(ended, ev.OrderID)
		}
	}
	if !slices.Equal(ended, live) {
		t.Fatalf("cancel-all ended %d orders (%v…), want %d (%v…)", len(ended), ended[:min(5, len(ended))], len(live), live[:min(5, len(live))])
	}
	if got := e.OpenOrders("mm"); len(got) != 0 {
		t.Fatalf("%d open orders after cancel-all", len(got))
	}
}

// TestCancelAllWhileCompactionKeptEverything: a compaction that has so far
// found only open orders (nothing to drop, w == r) must not stop cancel-all
// or OpenOrders from reading on — they jumped from w to r, which was the
// same place, for ever. Long-lived quotes first, then churn, is how a
// market maker's list looks.
func TestCancelAllWhileCompactionKeptEverything(t *testing.T) {
	e, _ := New(DefaultSymbols())
	apply := mustApply(t, e)
	apply(Command{Kind: CmdOpenAccount, Account: "mm", Owner: "mm", AccountKind: KindTrader})
	apply(Command{Kind: CmdDeposit, Account: "mm", Asset: "KZT", Amount: 1 << 60, ExtRef: "d"})
	n := 0
	bid := func() uint64 {
		n++
		return apply(Command{Kind: CmdPlaceOrder, Account: "mm", Symbol: "BTCKZT", ClientID: "b" + strconv.Itoa(n),
			Side: Buy, Type: Limit, TIF: GTC, Price: 4_000_000_000, Quantity: 1_000})[0].OrderID
	}
	for range 8 { // quotes that stay
		bid()
	}
	l := &e.accounts["mm"].open
	for { // churn: orders placed and cancelled, until a listing starts the compaction
		id := bid()
		if l.compacting {
			break // it looked at the 8 quotes, all open, and stays open itself
		}
		apply(Command{Kind: CmdCancelOrder, Account: "mm", Symbol: "BTCKZT", OrderID: id})
	}
	if !l.compacting || l.w != l.r {
		t.Fatalf("fixture: compacting %v, w %d, r %d; want a compaction that kept everything so far", l.compacting, l.w, l.r)
	}
	done := make(chan []Event, 1)
	go func() {
		if got := len(e.OpenOrders("mm")); got != 9 {
			t.Errorf("%d open orders listed, want 9", got)
		}
		evs, err := e.Apply(Command{Kind: CmdCancelAll, Account: "mm", Seq: e.Seq() + 1, Time: 1_700_000_000_000}, nil)
		if err != nil {
			t.Error(err)
		}
		done <- evs
	}()
	select {
	case evs := <-done:
		cancelled := 0
		for _, ev := range evs {
			if ev.Kind == EvOrderDone && ev.Status == StatusCanceled {
				cancelled++
			}
		}
		if cancelled != 9 {
			t.Fatalf("cancel-all cancelled %d orders, want 9", cancelled)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel-all (or OpenOrders) never returned")
	}
}

// TestSupplyBoundsEveryBalance: deposits keep each asset's total on the
// exchange at most 2^62 minor units, across accounts — not per account,
// which let two accounts' trades credit a third past int64 — and a
// withdrawal makes room again; a restored engine knows the total.
func TestSupplyBoundsEveryBalance(t *testing.T) {
	e, _ := New(DefaultSymbols())
	apply := mustApply(t, e)
	at := int64(RuleChange20261204)
	deposit := func(acct, ref string, amount int64) error {
		c := Command{Kind: CmdDeposit, Account: acct, Asset: "KZT", Amount: amount, ExtRef: ref, Seq: e.Seq() + 1, Time: at}
		out, err := e.Apply(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		return Rejection(out)
	}
	for _, a := range []string{"a", "b"} {
		apply(Command{Kind: CmdOpenAccount, Account: a, Owner: a, AccountKind: KindTrader})
	}
	if rej := deposit("a", "d1", maxSupply-10); rej != nil {
		t.Fatal(rej)
	}
	if rej := deposit("b", "d2", 11); apperr.CodeOf(rej) != apperr.InvalidQuantity {
		t.Fatalf("a deposit past the total into another account: %v; want INVALID_QUANTITY", rej)
	}
	if rej := deposit("b", "d3", 10); rej != nil {
		t.Fatalf("a deposit up to the total: %v", rej)
	}
	apply(Command{Kind: CmdWithdraw, Account: "a", Asset: "KZT", Amount: 5, ExtRef: "w1"})
	r, err := Restore(e.Snapshot(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	e = r
	if rej := deposit("b", "d4", 6); rej == nil {
		t.Fatal("the restored engine took a deposit past the total")
	}
	if rej := deposit("b", "d5", 5); rej != nil {
		t.Fatalf("the room a withdrawal made: %v", rej)
	}

	// Before RuleChange20261204 each balance was bounded, not the total:
	// commands of then replay as they ran.
	e, _ = New(DefaultSymbols())
	apply = mustApply(t, e)
	at = RuleChange20261204 - 1
	for _, a := range []string{"a", "b"} {
		apply(Command{Kind: CmdOpenAccount, Account: a, Owner: a, AccountKind: KindTrader})
	}
	if rej := deposit("a", "d1", maxSupply-10); rej != nil {
		t.Fatal(rej)
	}
	if rej := deposit("b", "d2", 11); rej != nil {
		t.Fatalf("before the change, a deposit within its balance's bound: %v", rej)
	}
	if rej := deposit("a", "d3", 11); apperr.CodeOf(rej) != apperr.InvalidQuantity {
		t.Fatalf("before the change, a deposit past its balance's bound: %v; want INVALID_QUANTITY", rej)
	}
	// Under that rule the total could pass int64: it saturates instead of
	// wrapping (four accounts' 2^62 wrapped to 0, room for everything),
	// stays so through a restore and a withdrawal, and after the change
	// refuses every deposit.
	for _, a := range []string{"c", "d", "e"} {
		apply(Command{Kind: CmdOpenAccount, Account: a, Owner: a, AccountKind: KindTrader})
		if rej := deposit(a, "d-"+a, 1<<62); rej != nil {
			t.Fatalf("before the change, account %s's 2^62: %v", a, rej)
		}
	}
	if r, err := Restore(e.Snapshot(), Config{}); err != nil {
		t.Fatal(err)
	} else {
		e, apply = r, mustApply(t, r)
	}
	apply(Command{Kind: CmdWithdraw, Account: "c", Asset: "KZT", Amount: 5, ExtRef: "w-c"})
	if got := e.supply[e.assetIdx["KZT"]]; got != math.MaxInt64 {
		t.Fatalf("the total past int64 is %d; want it saturated", got)
	}
	at = RuleChange20261204
	if rej := deposit("b", "d5", 1); apperr.CodeOf(rej) != apperr.InvalidQuantity {
		t.Fatalf("after the change, with a total past int64: %v; want INVALID_QUANTITY", rej)
	}
}
