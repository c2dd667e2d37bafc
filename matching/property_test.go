package matching_test

// Property tests: random command streams against the engine, with the
// engine's invariants checked after every command, snapshots restored and
// run in lockstep at random points, and the whole log replayed at the end.
//
// Every identifier here starts with "prop" so that this file cannot collide
// with the package's other test files.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/satu-exchange/satu/matching"
)

// propT0 is the first command's time, Unix ms: 22:13:20 UTC on the day
// of the engine's latest rule change, so that the properties are checked
// under the rules in force (the differential test, refT0, runs under the
// rules before it).
const propT0 = matching.RuleChange20261204 + 80_000_000

type propAcct struct{ id, owner string }

// Five accounts of three owners: a1/a2 and a3/a5 share an owner, so
// self-trade prevention across accounts is exercised.
var propAccts = []propAcct{{"a1", "o1"}, {"a2", "o1"}, {"a3", "o2"}, {"a4", "o3"}, {"a5", "o2"}}

var propTraded = []string{"BTCKZT", "USDTKZT"} // of the default symbols

// propLimit is what the events told about an order: enough to check that
// trades respect its limit.
type propLimit struct {
	side  matching.Side
	typ   matching.OrderType
	price int64
}

type propRun struct {
	t       *rapid.T
	cfg     matching.Config
	e       *matching.Engine
	syms    map[string]matching.Symbol
	owner   map[string]string
	now     int64
	log     []matching.Command
	evlog   [][]matching.Event
	net     map[string]int64 // per asset: deposits − withdrawals
	lastID  uint64
	open    map[uint64]propLimit // open orders, as the events tell
	ids     []uint64             // every accepted order ID
	cids    map[string][]string  // per account: client IDs used
	nCID    int
	nExt    int
	exts    []string
	shadow  *matching.Engine         // restored from a snapshot, run in lockstep
	restore int                      // how many restore points were taken
	mem     *matching.SnapshotMemory // reused by every restore point's snapshot
	last    map[string]int64         // per symbol: the last trade's price
	opened  map[string]bool
	phaseW  int // the weight of phase commands in this run

	reportedBal map[[2]string]bool // this command's balance events
	reportedLvl map[string]bool    // this command's level events
}

func propNewRun(t *rapid.T) *propRun {
	cfg := matching.Config{Symbols: matching.DefaultSymbols(), ClientIDRetentionMs: 10 * 60_000}
	e, err := matching.NewWithConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &propRun{t: t, cfg: cfg, e: e, syms: map[string]matching.Symbol{}, owner: map[string]string{},
		now: propT0, net: map[string]int64{}, open: map[uint64]propLimit{}, last: map[string]int64{}, opened: map[string]bool{}, cids: map[string][]string{},
		reportedBal: map[[2]string]bool{}, reportedLvl: map[string]bool{}}
	for _, s := range cfg.Symbols {
		r.syms[s.Name] = s
	}
	r.owner[e.FeeAccount()] = e.FeeAccount()
	r.phaseW = []int{1, 3, 10}[r.u(3)]
	for _, a := range propAccts {
		r.owner[a.id] = a.owner
		kind := matching.KindTrader
		if a.id == "a2" {
			kind = matching.KindMarketMaker
		}
		r.apply(matching.Command{Kind: matching.CmdOpenAccount, Account: a.id, Owner: a.owner, AccountKind: kind,
			STP: matching.STPMode(r.u(5))})
		r.apply(r.depositCmd(a.id, "KZT", int64(r.n(100, 10_000))*1_000_000))  // 10,000 ₸ each
		r.apply(r.depositCmd(a.id, "BTC", int64(r.n(100, 10_000))*10_000))     // 0.0001 BTC each
		r.apply(r.depositCmd(a.id, "USDT", int64(r.n(100, 10_000))*1_000_000)) // 1 USDT each
	}
	return r
}

// n draws an int in [lo, hi]. Rapid favours small values and shrinks
// towards them: right for sizes and prices, not for choices (see u).
func (r *propRun) n(lo, hi int) int { return rapid.IntRange(lo, hi).Draw(r.t, "n") }

// u draws a choice in [0, k) about uniformly: rapid's bias towards small
// numbers would otherwise make the first choices overwhelm the rest. It
// scrambles a 64-bit draw (splitmix64's finaliser, which maps 0 to 0), so
// shrinking still works, towards the first choice.
func (r *propRun) u(k int) int {
	x := rapid.Uint64().Draw(r.t, "u")
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int(x % uint64(k))
}

// rare is true about once in k draws.
func (r *propRun) rare(k int) bool { return r.u(k) == 0 }

// pick draws an index with the given weights.
func (r *propRun) pick(weights ...int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	k := r.u(total)
	for i, w := range weights {
		if k < w {
			return i
		}
		k -= w
	}
	return len(weights) - 1
}

func (r *propRun) fatalf(format string, args ...any) {
	r.t.Helper()
	var b strings.Builder
	for i, c := range r.log {
		fmt.Fprintf(&b, "  %d: %s\n", i+1, propFmt(c))
	}
	r.t.Fatalf("after command %d: %s\ncommand log:\n%s", r.e.Seq(), fmt.Sprintf(format, args...), b.String())
}

func (r *propRun) acct() string { return propAccts[r.u(len(propAccts))].id }

func (r *propRun) symbol() string {
	if r.pick(7, 3) == 0 {
		return propTraded[0]
	}
	return propTraded[1]
}

// price draws a limit price near the symbol's mid, now and then far enough
// away to cross the ±10 % band.
func (r *propRun) price(sym string) int64 {
	mid, step := int64(3_000_000_000), int64(3_000_000) // 30,000,000 ₸/BTC, 0.1 % steps
	if sym == "USDTKZT" {
		mid, step = 50_000, 50 // 500 ₸/USDT
	}
	k := int64(r.n(-10, 10))
	if r.rare(25) {
		k = int64(r.n(90, 150)) // beyond the band, mostly
		if r.rare(2) {
			k = -k
		}
	}
	return mid + k*step
}

// qty draws a quantity; a few fall below the minimum notional.
func (r *propRun) qty(sym string) int64 {
	if sym == "USDTKZT" {
		if r.rare(20) {
			return int64(r.n(1, 20)) * 10_000
		}
		return int64(r.n(20, 3000)) * 10_000
	}
	if r.rare(20) {
		return int64(r.n(1, 340))
	}
	return int64(r.n(340, 200_000))
}

func (r *propRun) clientID(acct string) string {
	used := r.cids[acct]
	if len(used) > 0 && r.rare(30) {
		return used[r.u(len(used))] // a retry: duplicate while remembered
	}
	r.nCID++
	cid := fmt.Sprintf("c%d", r.nCID)
	r.cids[acct] = append(used, cid)
	return cid
}

func (r *propRun) extRef() string {
	if len(r.exts) > 0 && r.rare(20) {
		return r.exts[r.u(len(r.exts))]
	}
	r.nExt++
	ref := fmt.Sprintf("x%d", r.nExt)
	r.exts = append(r.exts, ref)
	return ref
}

func (r *propRun) depositCmd(acct, asset string, amount int64) matching.Command {
	return matching.Command{Kind: matching.CmdDeposit, Account: acct, Asset: asset, Amount: amount, ExtRef: r.extRef()}
}

// step draws and applies one command.
func (r *propRun) step() {
	r.now += int64(r.n(0, 3000))
	for _, sym := range propTraded {
		if st, _ := r.e.Market(sym); (st.Halted || st.Phase != matching.PhaseContinuous) && r.rare(8) {
			r.phaseOf(sym) // mostly back towards continuous trading
			return
		}
	}
	switch r.pick(45, 8, 8, 2, 10, 4, 3, 5, r.phaseW, 2, 2, 4) {
	case 0:
		r.place()
	case 1:
		r.market()
	case 2:
		r.cancel()
	case 3:
		r.cancelAll()
	case 4:
		r.amend()
	case 5:
		r.deposit()
	case 6:
		r.withdraw()
	case 7:
		r.now += int64(r.n(0, 400_000))
		r.apply(matching.Command{Kind: matching.CmdTick})
	case 8:
		r.phase()
	case 9:
		r.apply(matching.Command{Kind: matching.CmdSetSTP, Account: r.acct(), STP: matching.STPMode(r.u(6))})
	case 10:
		r.openAccount()
	default:
		r.junk()
	}
	if r.rare(40) {
		r.restorePoint()
	}
}

func (r *propRun) side() matching.Side { return matching.Side(1 + r.u(2)) }

func (r *propRun) place() {
	acct, sym := r.acct(), r.symbol()
	s := r.syms[sym]
	c := matching.Command{Kind: matching.CmdPlaceOrder, Account: acct, Symbol: sym, ClientID: r.clientID(acct),
		Side: r.side(), Type: matching.Limit, Price: r.price(sym), Quantity: r.qty(sym)}
	switch r.pick(5, 1, 1, 1, 2) {
	case 0:
		c.TIF = matching.GTC
	case 1:
		c.TIF = 0 // GTC
	case 2:
		c.TIF = matching.IOC
	case 3:
		c.TIF = matching.FOK
	default:
		c.TIF = matching.GTD
		c.ExpireAt = r.now + int64(r.n(1, 900_000))
		if r.rare(20) {
			c.ExpireAt = r.now - int64(r.n(0, 1000)) // already past: rejected
		}
	}
	if r.rare(6) {
		c.PostOnly = true
	}
	if r.rare(6) {
		d := c.Quantity / int64(r.n(2, 6)) / s.LotSize * s.LotSize
		c.DisplayQty = max(d, s.MinQty)
	}
	if r.rare(2) {
		c.STP = matching.STPMode(1 + r.u(4))
	}
	if c.Side == matching.Sell && r.rare(30) {
		c.Purpose, c.Obligation = matching.PurposeMandatory, "obl-1" // needs the permission
	}
	r.apply(c)
}

func (r *propRun) market() {
	acct, sym := r.acct(), r.symbol()
	c := matching.Command{Kind: matching.CmdPlaceOrder, Account: acct, Symbol: sym, ClientID: r.clientID(acct),
		Side: r.side(), Type: matching.Market}
	if r.rare(2) {
		c.TIF = matching.IOC
	}
	if c.Side == matching.Buy && r.rare(2) {
		c.QuoteQty = int64(r.n(10_000, 5_000_000))
		if r.rare(20) {
			c.QuoteQty = int64(r.n(0, 10_000)) // below the minimum notional
		}
	} else {
		c.Quantity = r.qty(sym)
	}
	if r.rare(2) {
		c.STP = matching.STPMode(1 + r.u(4))
	}
	if r.rare(40) {
		c.Price = r.price(sym) // invalid: a market order has no price
	}
	r.apply(c)
}

// target picks an order: usually an open one of acct, else any order ever
// accepted (perhaps finished, perhaps another account's), else a made-up ID.
func (r *propRun) target(acct *string) (id uint64, cid, sym string) {
	var open []matching.OrderView
	for _, a := range propAccts {
		open = append(open, r.e.OpenOrders(a.id)...)
	}
	switch k := r.pick(7, 2, 1); {
	case k == 0 && len(open) > 0:
		o := open[r.u(len(open))]
		if !r.rare(20) {
			*acct = o.Account // else another account's order: refused
		}
		return o.ID, o.ClientID, o.Symbol
	case k <= 1 && len(r.ids) > 0:
		return r.ids[r.u(len(r.ids))], "", ""
	default:
		return uint64(r.n(0, 1_000_000)), "", ""
	}
}

func (r *propRun) cancel() {
	acct := r.acct()
	id, cid, sym := r.target(&acct)
	c := matching.Command{Kind: matching.CmdCancelOrder, Account: acct, OrderID: id}
	if cid != "" && r.rare(2) {
		c.OrderID, c.ClientID = 0, cid
	}
	switch r.pick(8, 1, 1) {
	case 1:
		c.Symbol = sym
	case 2:
		c.Symbol = r.symbol() // perhaps the wrong one
	}
	r.apply(c)
}

func (r *propRun) cancelAll() {
	c := matching.Command{Kind: matching.CmdCancelAll}
	switch r.pick(5, 3, 1, 1) {
	case 0:
		c.Account = r.acct()
	case 1:
		c.Account, c.Symbol = r.acct(), r.symbol()
	case 2:
		c.Symbol = r.symbol() // the operator's mass cancel
	}
	r.apply(c)
}

func (r *propRun) amend() {
	acct := r.acct()
	id, cid, sym := r.target(&acct)
	c := matching.Command{Kind: matching.CmdAmendOrder, Account: acct, OrderID: id}
	if cid != "" && r.rare(2) {
		c.OrderID, c.ClientID = 0, cid
	}
	if sym == "" {
		sym = r.symbol()
	}
	o, _ := r.e.Order(id)
	switch k := r.pick(3, 4, 2, 1); {
	case k == 0:
		c.Price = r.price(sym)
	case k == 1 && o.ID != 0:
		c.Quantity = max(1, o.Quantity+int64(r.n(-5, 5))*o.Quantity/10) // down keeps priority
	case k <= 2:
		c.Price, c.Quantity = r.price(sym), r.qty(sym)
	}
	r.apply(c)
}

func (r *propRun) deposit() {
	acct := r.acct()
	if r.rare(30) {
		acct = r.e.FeeAccount() // takes no custody: rejected
	}
	assets := []string{"KZT", "BTC", "USDT", "ETH", "DOGE"}
	asset := assets[r.pick(4, 3, 2, 1, 1)]
	r.apply(r.depositCmd(acct, asset, int64(r.n(0, 1_000_000))*int64(r.n(1, 100))))
}

func (r *propRun) withdraw() {
	acct := r.acct()
	assets := []string{"KZT", "BTC", "USDT"}
	asset := assets[r.u(len(assets))]
	free, _ := r.e.Balance(acct, asset)
	amount := int64(r.n(0, 1000)) * (free/800 + 1) // sometimes more than free: rejected
	if r.rare(10) {
		amount = free
	}
	r.apply(matching.Command{Kind: matching.CmdWithdraw, Account: acct, Asset: asset, Amount: amount, ExtRef: r.extRef()})
}

// phase moves a symbol between phases, mostly along allowed transitions, and
// halts or resumes it.
func (r *propRun) phase() { r.phaseOf(r.symbol()) }

func (r *propRun) phaseOf(sym string) {
	st, _ := r.e.Market(sym)
	c := matching.Command{Kind: matching.CmdSetPhase, Symbol: sym}
	next := matching.AllowedTransitions(st.Phase)
	switch k := r.pick(6, 5, 1, 2, 2); {
	case st.Halted && k == 1:
		c.Phase = next[r.u(len(next))] // phases move while halted too
	case st.Halted && k != 3:
		c.Kind = matching.CmdResume
	case k == 0 && st.Phase == matching.PhaseContinuous:
		c.Phase = matching.PhasePreClose // towards the closing auction
	case k == 0 && st.Phase == matching.PhaseClosed && r.rare(2):
		c.Phase = matching.PhasePreOpen // towards the opening auction
	case k == 0:
		c.Phase = propTowardContinuous[st.Phase] // do not linger away from trading
	case k <= 1:
		c.Phase = next[r.u(len(next))]
	case k == 2:
		c.Phase = matching.Phase(r.u(10)) // mostly not allowed
	case k == 3:
		c.Kind = matching.CmdHalt
	default:
		c.Kind = matching.CmdResume
	}
	r.apply(c)
}

// propTowardContinuous is the way back to continuous trading from each phase.
var propTowardContinuous = map[matching.Phase]matching.Phase{
	matching.PhaseClosed:            matching.PhaseContinuous,
	matching.PhasePreOpen:           matching.PhaseOpeningAuction,
	matching.PhaseOpeningAuction:    matching.PhaseContinuous,
	matching.PhasePreClose:          matching.PhaseClosingAuction,
	matching.PhaseClosingAuction:    matching.PhaseTradingAtLast,
	matching.PhaseTradingAtLast:     matching.PhaseClosed,
	matching.PhaseVolatilityAuction: matching.PhaseContinuous,
}

func (r *propRun) openAccount() {
	a := propAccts[r.u(len(propAccts))]
	c := matching.Command{Kind: matching.CmdOpenAccount, Account: a.id, Owner: a.owner, AccountKind: matching.KindTrader}
	switch r.u(4) {
	case 1:
		c.Owner = "someone-else" // conflict
	case 2:
		c.Account = "Bad_ID"
	case 3:
		c.AccountKind = matching.KindFee
	}
	if a.id == "a2" && c.AccountKind == matching.KindTrader {
		c.AccountKind = matching.KindMarketMaker
	}
	r.apply(c)
}

// junk sends commands that must be refused (or, for permissions, that
// change a little).
func (r *propRun) junk() {
	acct, sym := r.acct(), r.symbol()
	c := matching.Command{Kind: matching.CmdPlaceOrder, Account: acct, Symbol: sym, ClientID: r.clientID(acct),
		Side: matching.Buy, Type: matching.Limit, Price: r.price(sym), Quantity: r.qty(sym)}
	switch r.u(14) {
	case 0:
		c = matching.Command{Kind: matching.CommandKind(r.n(14, 255))}
	case 1:
		c.Account = "nobody"
	case 2:
		c.Symbol = "DOGEKZT"
	case 3:
		c.Side = matching.Side(r.n(3, 9))
	case 4:
		c.Type = matching.OrderType(r.n(3, 9))
	case 5:
		c.TIF = matching.TimeInForce(r.n(5, 9))
	case 6:
		c.Price++ // off the tick for BTC; fine for USDT's tick of 1
	case 7:
		c.Quantity = -c.Quantity
	case 8:
		c.Account = r.e.FeeAccount()
	case 9:
		c.ClientID = strings.Repeat("x", matching.MaxClientIDLen+1)
	case 10:
		c.STP = matching.STPMode(r.n(5, 9))
	case 11:
		c = matching.Command{Kind: matching.CmdSetPermission, Account: acct, Permission: matching.PermMandatorySell, Granted: r.rare(2)}
	case 12:
		c.Obligation = "obl-2" // without purpose mandatory
	case 13:
		c.DisplayQty = c.Quantity // an iceberg must show less than its quantity
	}
	r.apply(c)
}

// apply sequences c, applies it and checks everything.
func (r *propRun) apply(c matching.Command) []matching.Event {
	r.t.Helper()
	c.Seq = r.e.Seq() + 1
	c.Time = r.now
	if r.rare(50) {
		c.Time = r.now - int64(r.n(1, 5000)) // a late timestamp counts as the engine's time
	}
	pre := r.e.Snapshot()
	evs, err := r.e.Apply(c, nil)
	if err != nil {
		r.fatalf("apply: %v", err)
	}
	r.log = append(r.log, c)
	r.evlog = append(r.evlog, evs)
	if r.e.Seq() != c.Seq || r.e.Now() != max(pre.Now, c.Time) {
		r.fatalf("seq/now = %d/%d, want %d/%d", r.e.Seq(), r.e.Now(), c.Seq, max(pre.Now, c.Time))
	}
	if r.shadow != nil {
		sevs, err := r.shadow.Apply(c, nil)
		want := evs
		if err != nil || !reflect.DeepEqual(sevs, want) {
			r.fatalf("the engine restored from a snapshot diverged: %v%s", err, propDiff(sevs, want))
		}
		if r.shadow.StateHash() != r.e.StateHash() {
			r.fatalf("the engine restored from a snapshot is in another state")
		}
	}
	r.checkEvents(c, evs)
	r.checkReported(pre)
	r.checkState()
	if propUnchanging(evs) {
		r.checkUnchanged(pre, c, evs)
	}
	return evs
}

// checkReported: every balance and every book level the command changed
// was reported by an event.
func (r *propRun) checkReported(pre *matching.Snapshot) {
	balances := func(s *matching.Snapshot) map[[2]string]matching.BalanceSnap {
		out := map[[2]string]matching.BalanceSnap{}
		for _, a := range s.Accounts {
			for _, b := range a.Balances {
				out[[2]string{a.ID, b.Asset}] = b
			}
		}
		return out
	}
	levels := func(s *matching.Snapshot) map[string]matching.Level {
		out := map[string]matching.Level{}
		for _, m := range s.Markets {
			for _, o := range append(slices.Clone(m.Bids), m.Asks...) {
				k := propLevelKey(m.Symbol, o.Side, o.Price)
				l := out[k]
				l.Quantity += o.Visible
				l.Orders++
				out[k] = l
			}
		}
		return out
	}
	post := r.e.Snapshot()
	b0, b1 := balances(pre), balances(post)
	for _, m := range []map[[2]string]matching.BalanceSnap{b0, b1} {
		for k := range m {
			if b0[k] != b1[k] && !r.reportedBal[k] {
				r.fatalf("balance %v changed from %+v to %+v unreported", k, b0[k], b1[k])
			}
		}
	}
	l0, l1 := levels(pre), levels(post)
	for _, m := range []map[string]matching.Level{l0, l1} {
		for k := range m {
			if l0[k] != l1[k] && !r.reportedLvl[k] {
				r.fatalf("level %s changed from %+v to %+v unreported", k, l0[k], l1[k])
			}
		}
	}
}

func propLevelKey(sym string, side matching.Side, price int64) string {
	return fmt.Sprint(sym, " ", side, " ", price)
}

// propDiff shows where two event lists first differ.
func propDiff(got, want []matching.Event) string {
	for i := range max(len(got), len(want)) {
		var g, w any = "(none)", "(none)"
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !reflect.DeepEqual(g, w) {
			return fmt.Sprintf("\n first difference, event %d of %d/%d:\n got  %+v\n want %+v", i, len(got), len(want), g, w)
		}
	}
	return ""
}

// propFmt shows a command as JSON, or as a Go value when it has enum values
// out of range (which JSON cannot carry).
func propFmt(c matching.Command) string {
	if raw, err := json.Marshal(c); err == nil {
		return string(raw)
	}
	return fmt.Sprintf("%+v", c)
}

// propUnchanging reports whether a command's own (non-timer) events say it
// changed nothing: a rejection or a duplicate, then perhaps the flush of
// balances and levels the timer events touched.
func propUnchanging(evs []matching.Event) bool {
	for _, ev := range evs {
		if ev.Timer {
			continue
		}
		return ev.Kind == matching.EvRejected || ev.Kind == matching.EvDuplicate
	}
	return false
}

// checkUnchanged: a refused (or duplicate) command leaves the state exactly
// as a tick at the same time would (the tick does the command's timer work).
func (r *propRun) checkUnchanged(pre *matching.Snapshot, c matching.Command, evs []matching.Event) {
	clone, err := matching.Restore(pre, r.cfg)
	if err != nil {
		r.fatalf("restore: %v", err)
	}
	tevs, err := clone.Apply(matching.Command{Seq: c.Seq, Time: c.Time, Kind: matching.CmdTick}, nil)
	if err != nil {
		r.fatalf("tick: %v", err)
	}
	if got, want := r.e.StateHash(), clone.StateHash(); got != want {
		r.fatalf("a refused or duplicate command changed the state: %+v", evs)
	}
	timers := func(evs []matching.Event) []matching.Event {
		var out []matching.Event
		for _, ev := range evs {
			if ev.Timer {
				out = append(out, ev)
			}
		}
		return out
	}
	if !reflect.DeepEqual(timers(tevs), timers(evs)) {
		r.fatalf("timer events differ from a tick's:\n got  %+v\n tick %+v", timers(evs), timers(tevs))
	}
	forgets := len(pre.Finished) > 0 && pre.Finished[0].At+r.cfg.ClientIDRetentionMs <= r.e.Now()
	if len(timers(evs)) == 0 && !forgets {
		// No timer work (expiries, phase ends) and no client ID to forget:
		// the state is the one before, but for seq and now.
		a, b := *pre, *r.e.Snapshot()
		a.Seq, a.Now, b.Seq, b.Now = 0, 0, 0, 0
		if a.Hash() != b.Hash() {
			r.fatalf("a refused or duplicate command changed the state")
		}
	}
}

func (r *propRun) checkEvents(c matching.Command, evs []matching.Event) {
	r.t.Helper()
	if len(evs) == 0 {
		r.fatalf("no events")
	}
	now := r.e.Now()
	own, rejected := -1, -1
	bals, lvls := r.reportedBal, r.reportedLvl
	clear(bals)
	clear(lvls)
	filled := map[uint64]int64{} // per order ID: base filled in this command
	spent := map[uint64]int64{}  // per order ID: quote + fee paid by a buyer
	done := map[uint64]matching.Event{}
	var accepted *matching.Event
	var trades []matching.Event
	for i := range evs {
		ev := &evs[i]
		if ev.Seq != c.Seq || ev.Index != uint32(i) || ev.Time != now {
			r.fatalf("event %d stamped %d/%d/%d, want %d/%d/%d", i, ev.Seq, ev.Index, ev.Time, c.Seq, i, now)
		}
		if !ev.Timer && own < 0 {
			own = i
		}
		if ev.Timer && own >= 0 {
			r.fatalf("timer event %d after the command's own events", i)
		}
		switch ev.Kind {
		case matching.EvRejected:
			if rejected >= 0 || i != own || ev.Code == "" {
				r.fatalf("misplaced rejection %+v", *ev)
			}
			rejected = i
		case matching.EvAck:
			if i != len(evs)-1 || i != own {
				r.fatalf("an ack must be the only own event, last")
			}
		case matching.EvBalance:
			k := [2]string{ev.Account, ev.Asset}
			if bals[k] {
				r.fatalf("balance %v reported twice", k)
			}
			bals[k] = true
			if f, h := r.e.Balance(ev.Account, ev.Asset); f != ev.Free || h != ev.Held {
				r.fatalf("balance event %s/%s %d/%d, balance %d/%d", ev.Account, ev.Asset, ev.Free, ev.Held, f, h)
			}
		case matching.EvLevel:
			k := propLevelKey(ev.Symbol, ev.Side, ev.Price)
			if lvls[k] {
				r.fatalf("level %s reported twice", k)
			}
			lvls[k] = true
			var want matching.Level
			levels, asks := r.e.Depth(ev.Symbol, 1<<20)
			if ev.Side == matching.Sell {
				levels = asks
			}
			if i := slices.IndexFunc(levels, func(l matching.Level) bool { return l.Price == ev.Price }); i >= 0 {
				want = levels[i]
			}
			if ev.Quantity != want.Quantity || ev.Orders != want.Orders {
				r.fatalf("level event %s %d/%d, book %d/%d", k, ev.Quantity, ev.Orders, want.Quantity, want.Orders)
			}
		case matching.EvOrderAccepted:
			if ev.OrderID != r.lastID+1 {
				r.fatalf("order ID %d, want %d", ev.OrderID, r.lastID+1)
			}
			r.lastID++
			r.ids = append(r.ids, ev.OrderID)
			r.open[ev.OrderID] = propLimit{side: ev.Side, typ: ev.Type, price: ev.Price}
			accepted = ev
		case matching.EvOrderAmended:
			l, ok := r.open[ev.OrderID]
			if !ok {
				r.fatalf("amended order %d is not open", ev.OrderID)
			}
			l.price = ev.Price
			r.open[ev.OrderID] = l
		case matching.EvOrderDone:
			if _, ok := r.open[ev.OrderID]; !ok {
				r.fatalf("order %d done but not open", ev.OrderID)
			}
			delete(r.open, ev.OrderID)
			done[ev.OrderID] = *ev
		case matching.EvAccountOpened:
			if r.opened[ev.Account] || r.owner[ev.Account] != ev.Owner {
				r.fatalf("account %s (owner %s) opened", ev.Account, ev.Owner)
			}
			r.opened[ev.Account] = true
		case matching.EvDeposited:
			r.net[ev.Asset] += ev.Amount
		case matching.EvWithdrawn:
			r.net[ev.Asset] -= ev.Amount
		case matching.EvTrade:
			r.checkTrade(*ev)
			filled[ev.BuyOrderID] += ev.Quantity
			filled[ev.SellOrderID] += ev.Quantity
			spent[ev.BuyOrderID] += ev.QuoteAmount + ev.BuyerFee
			trades = append(trades, *ev)
			r.last[ev.Symbol] = ev.Price
		}
	}
	if own < 0 {
		r.fatalf("no events of the command's own")
	}
	if rejected >= 0 {
		for _, ev := range evs[rejected+1:] {
			if ev.Kind != matching.EvBalance && ev.Kind != matching.EvLevel {
				r.fatalf("a rejected command emitted %s", ev.Kind)
			}
		}
	}
	// The last price is the last trade's (an uncross that only expired
	// self-trading orders sets none).
	for _, sym := range propTraded {
		if st, _ := r.e.Market(sym); st.LastPrice != r.last[sym] {
			r.fatalf("%s last price %d, the last trade was at %d", sym, st.LastPrice, r.last[sym])
		}
	}
	// Trading at last trades at the closing price only; when an uncross
	// happened on the way in (in rounds, if auction self-trade prevention
	// left a cross), its last price is the closing price.
	lastAuction := map[string]int64{}
	for _, tr := range trades {
		st, _ := r.e.Market(tr.Symbol)
		if st.Phase != matching.PhaseTradingAtLast {
			continue
		}
		if tr.TakerSide == 0 {
			lastAuction[tr.Symbol] = tr.Price
		} else if tr.Price != st.ClosePrice {
			r.fatalf("trade at %d in trading at last, closing price %d", tr.Price, st.ClosePrice)
		}
	}
	for sym, p := range lastAuction {
		if st, _ := r.e.Market(sym); p != st.ClosePrice {
			r.fatalf("%s uncrossed at %d into trading at last, closing price %d", sym, p, st.ClosePrice)
		}
	}
	if accepted == nil || c.Kind != matching.CmdPlaceOrder {
		return
	}
	id := accepted.OrderID
	d, isDone := done[id]
	switch {
	case c.Type == matching.Market || c.TIF == matching.IOC || c.TIF == matching.FOK:
		if !isDone {
			r.fatalf("order %d (%s %s) did not end in its command", id, c.Type, c.TIF)
		}
	}
	if c.TIF == matching.FOK && filled[id] != 0 && (filled[id] != c.Quantity || d.Status != matching.StatusFilled) {
		r.fatalf("FOK order %d of %d filled %d and ended %s/%s", id, c.Quantity, filled[id], d.Status, d.Reason)
	}
	if c.PostOnly && filled[id] != 0 {
		r.fatalf("post-only order %d traded on arrival", id)
	}
	if c.QuoteQty > 0 && spent[id] > c.QuoteQty {
		r.fatalf("market buy %d spent %d of a %d budget", id, spent[id], c.QuoteQty)
	}
	if c.Quantity > 0 && filled[id] > c.Quantity {
		r.fatalf("order %d filled %d > %d", id, filled[id], c.Quantity)
	}
}

func (r *propRun) checkTrade(ev matching.Event) {
	s := r.syms[ev.Symbol]
	n, ok := s.Notional(ev.Price, ev.Quantity)
	bbps, sbps := s.MakerFeeBps, s.MakerFeeBps
	switch ev.TakerSide {
	case matching.Buy:
		bbps = s.TakerFeeBps
	case matching.Sell:
		sbps = s.TakerFeeBps
	}
	switch {
	case ev.Quantity <= 0 || ev.Quantity%s.LotSize != 0 || ev.Price <= 0 || ev.Price%s.TickSize != 0:
		r.fatalf("trade of %d at %d", ev.Quantity, ev.Price)
	case !ok || ev.QuoteAmount != n:
		r.fatalf("trade quote amount %d, want %d", ev.QuoteAmount, n)
	case ev.BuyerFee != matching.Fee(n, bbps) || ev.SellerFee != matching.Fee(n, sbps):
		r.fatalf("trade fees %d/%d, want %d/%d", ev.BuyerFee, ev.SellerFee, matching.Fee(n, bbps), matching.Fee(n, sbps))
	case ev.FeeAccount != r.e.FeeAccount() || ev.BaseAsset != s.Base || ev.QuoteAsset != s.Quote:
		r.fatalf("trade assets/fee account %s %s %s", ev.BaseAsset, ev.QuoteAsset, ev.FeeAccount)
	case r.owner[ev.BuyerAccount] == r.owner[ev.SellerAccount]:
		r.fatalf("self-trade: %s buys from %s (owner %s)", ev.BuyerAccount, ev.SellerAccount, r.owner[ev.BuyerAccount])
	}
	b, okb := r.open[ev.BuyOrderID]
	sl, oks := r.open[ev.SellOrderID]
	switch {
	case !okb || !oks || b.side != matching.Buy || sl.side != matching.Sell:
		r.fatalf("trade between orders %d and %d, not an open buy and sell", ev.BuyOrderID, ev.SellOrderID)
	case b.typ == matching.Limit && ev.Price > b.price:
		r.fatalf("buy order %d limited to %d traded at %d", ev.BuyOrderID, b.price, ev.Price)
	case sl.typ == matching.Limit && ev.Price < sl.price:
		r.fatalf("sell order %d limited to %d traded at %d", ev.SellOrderID, sl.price, ev.Price)
	}
}

// checkState checks the book, the balances and the holds.
func (r *propRun) checkState() {
	r.t.Helper()
	inBook := map[uint64]matching.OrderView{}
	for _, sym := range propTraded {
		s := r.syms[sym]
		st, _ := r.e.Market(sym)
		bids := r.e.BookOrders(sym, matching.Buy)
		asks := r.e.BookOrders(sym, matching.Sell)
		dbids, dasks := r.e.Depth(sym, 1<<20)
		for _, side := range []struct {
			orders []matching.OrderView
			depth  []matching.Level
			s      matching.Side
		}{{bids, dbids, matching.Buy}, {asks, dasks, matching.Sell}} {
			var agg []matching.Level
			for i, o := range side.orders {
				// (b) price priority, best first.
				if i > 0 {
					prev := side.orders[i-1].Price
					if side.s == matching.Buy && o.Price > prev || side.s == matching.Sell && o.Price < prev {
						r.fatalf("%s %s book out of price order: %d after %d", sym, side.s, o.Price, prev)
					}
				}
				if len(agg) == 0 || agg[len(agg)-1].Price != o.Price {
					agg = append(agg, matching.Level{Price: o.Price})
				}
				agg[len(agg)-1].Quantity += o.Visible
				agg[len(agg)-1].Orders++
				r.checkResting(s, side.s, o)
				if _, dup := inBook[o.ID]; dup {
					r.fatalf("order %d twice in the books", o.ID)
				}
				inBook[o.ID] = o
			}
			if len(agg) == 0 {
				agg = []matching.Level{}
			}
			if !reflect.DeepEqual(agg, side.depth) {
				r.fatalf("%s %s depth %+v, orders sum to %+v", sym, side.s, side.depth, agg)
			}
		}
		// (a) never crossed while matching.
		if (st.Phase == matching.PhaseContinuous || st.Phase == matching.PhaseTradingAtLast) && !st.Halted &&
			len(bids) > 0 && len(asks) > 0 && bids[0].Price >= asks[0].Price {
			r.fatalf("%s crossed in %s: bid %d (order %d) ≥ ask %d (order %d)", sym, st.Phase,
				bids[0].Price, bids[0].ID, asks[0].Price, asks[0].ID)
		}
	}

	// (c) conservation, (d) no negative amounts, (e) holds = open orders' holds.
	total := map[string]int64{}
	accts := r.e.Snapshot().Accounts
	if len(accts) != len(r.opened)+1 {
		r.fatalf("%d accounts, want %d", len(accts), len(r.opened)+1)
	}
	openIDs := map[uint64]bool{}
	for _, as := range accts {
		held := map[string]int64{}
		for _, o := range r.e.OpenOrders(as.ID) {
			s := r.syms[o.Symbol]
			asset := s.Quote
			if o.Side == matching.Sell {
				asset = s.Base
			}
			held[asset] += o.Held
			if b, ok := inBook[o.ID]; !ok || !reflect.DeepEqual(b, o) {
				r.fatalf("open order %d is not in the book as %+v", o.ID, o)
			}
			if v, ok := r.e.Order(o.ID); !ok || !reflect.DeepEqual(v, o) {
				r.fatalf("Order(%d) = %+v, open orders say %+v", o.ID, v, o)
			}
			openIDs[o.ID] = true
		}
		for _, asset := range r.e.Assets() {
			f, h := r.e.Balance(as.ID, asset)
			if f < 0 || h < 0 {
				r.fatalf("%s %s balance negative: free %d held %d", as.ID, asset, f, h)
			}
			if h != held[asset] {
				r.fatalf("%s holds %d %s, its open orders %d", as.ID, h, asset, held[asset])
			}
			total[asset] += f + h
		}
	}
	for _, asset := range r.e.Assets() {
		if total[asset] != r.net[asset] {
			r.fatalf("%s: accounts sum to %d, deposits − withdrawals = %d", asset, total[asset], r.net[asset])
		}
	}
	if len(openIDs) != len(inBook) || len(openIDs) != len(r.open) {
		r.fatalf("%d open orders, %d in the books, %d open by the events", len(openIDs), len(inBook), len(r.open))
	}
	for id := range r.open {
		if !openIDs[id] {
			r.fatalf("order %d is open by the events but not in the engine", id)
		}
	}
}

// checkResting checks one resting order's quantities and hold.
func (r *propRun) checkResting(s matching.Symbol, side matching.Side, o matching.OrderView) {
	need := o.Remaining
	if side == matching.Buy {
		n, _ := s.NotionalCeil(o.Price, o.Remaining)
		need = n + matching.Fee(n, max(s.MakerFeeBps, s.TakerFeeBps))
	}
	switch {
	case o.Side != side || o.Symbol != s.Name || o.Type != matching.Limit:
		r.fatalf("order %+v on the %s side of %s", o, side, s.Name)
	case o.TIF != matching.GTC && o.TIF != matching.GTD:
		r.fatalf("a %s order rests: %+v", o.TIF, o)
	case o.TIF == matching.GTD && o.ExpireAt <= r.e.Now():
		r.fatalf("GTD order %d past its expiry %d rests at %d", o.ID, o.ExpireAt, r.e.Now())
	case o.Remaining <= 0 || o.Remaining > o.Quantity:
		r.fatalf("order %d remaining %d of %d", o.ID, o.Remaining, o.Quantity)
	case o.Visible <= 0 || o.Visible > o.Remaining:
		r.fatalf("order %d visible %d of remaining %d", o.ID, o.Visible, o.Remaining)
	case o.Display == 0 && o.Visible != o.Remaining:
		r.fatalf("order %d (not an iceberg) shows %d of %d", o.ID, o.Visible, o.Remaining)
	case o.Display > 0 && o.Visible > o.Display:
		r.fatalf("iceberg %d shows %d > display %d", o.ID, o.Visible, o.Display)
	case o.Held != need:
		r.fatalf("order %d (%s %d @ %d) holds %d, needs %d", o.ID, o.Side, o.Remaining, o.Price, o.Held, need)
	}
}

// restorePoint checks that a snapshot, through JSON, restores to the same
// state, and runs the restored engine in lockstep from here on.
func (r *propRun) restorePoint() {
	r.restore++
	snap := r.e.Snapshot()
	// A snapshot taken in memory that held the previous restore point's
	// (of another state, larger or smaller) is the same snapshot, and
	// encodes to the same bytes.
	if r.mem == nil {
		r.mem = &matching.SnapshotMemory{}
	}
	again := r.e.SnapshotLaterIn(r.mem)()
	if !reflect.DeepEqual(again, snap) {
		r.fatalf("a snapshot taken in reused memory differs from a fresh one")
	}
	enc, err := again.AppendBinary(r.mem.Encoded[:0])
	want, _ := snap.MarshalBinary()
	if err != nil || string(enc) != string(want) {
		r.fatalf("the encoding into a reused buffer differs (%v)", err)
	}
	if hint := matching.SnapshotSizeHint(snap); hint < len(want) {
		r.fatalf("size hint %d for an encoding of %d bytes", hint, len(want))
	}
	r.mem.Encoded = enc
	raw, err := json.Marshal(snap)
	if err != nil {
		r.fatalf("marshal snapshot: %v", err)
	}
	var back matching.Snapshot
	if err := json.Unmarshal(raw, &back); err != nil {
		r.fatalf("unmarshal snapshot: %v", err)
	}
	re, err := matching.Restore(&back, r.cfg)
	if err != nil {
		r.fatalf("restore: %v", err)
	}
	if re.StateHash() != r.e.StateHash() || re.Seq() != r.e.Seq() || re.Now() != r.e.Now() {
		r.fatalf("restored engine's state differs")
	}
	if r.shadow != nil && r.shadow.StateHash() != r.e.StateHash() {
		r.fatalf("the engine restored earlier has drifted")
	}
	for _, a := range propAccts {
		if !reflect.DeepEqual(re.OpenOrders(a.id), r.e.OpenOrders(a.id)) {
			r.fatalf("restored open orders of %s differ", a.id)
		}
	}
	r.shadow = re
}

// finish replays the log into a new engine, and checks the lockstep engine
// and the sequence guard.
func (r *propRun) finish() {
	hash := r.e.StateHash()
	if r.shadow != nil && r.shadow.StateHash() != hash {
		r.fatalf("the restored engine ended in another state")
	}
	fresh, err := matching.NewWithConfig(r.cfg)
	if err != nil {
		r.fatalf("%v", err)
	}
	for i, c := range r.log {
		evs, err := fresh.Apply(c, nil)
		if err != nil || !reflect.DeepEqual(evs, r.evlog[i]) {
			r.fatalf("replay of command %d differs: %v%s", i+1, err, propDiff(evs, r.evlog[i]))
		}
	}
	if fresh.StateHash() != hash {
		r.fatalf("replay ended in another state")
	}
	// A command out of sequence is refused and changes nothing.
	for _, seq := range []uint64{r.e.Seq(), r.e.Seq() + 2, 0} {
		if _, err := r.e.Apply(matching.Command{Seq: seq, Time: r.now, Kind: matching.CmdTick}, nil); err == nil {
			r.fatalf("command seq %d accepted after %d", seq, r.e.Seq())
		}
	}
	if r.e.StateHash() != hash {
		r.fatalf("a refused sequence changed the state")
	}
	bad := r.cfg
	bad.Symbols = bad.Symbols[:1]
	if _, err := matching.Restore(r.e.Snapshot(), bad); err == nil {
		r.fatalf("restore accepted a snapshot with other symbols than the configuration")
	}
}

// TestPropertyInvariants: random streams (see step), every invariant after
// every command (apply), restore points, replay (finish).
func TestPropertyInvariants(t *testing.T) {
	var commands, restores int
	seen := map[string]int{}
	rapid.Check(t, func(rt *rapid.T) {
		r := propNewRun(rt)
		steps := 20 + r.u(281) // 20 to 300 commands after the set-up
		for range steps {
			r.step()
		}
		r.finish()
		commands += len(r.log)
		restores += r.restore
		for _, evs := range r.evlog {
			for _, ev := range evs {
				switch {
				case ev.Kind == matching.EvTrade && ev.TakerSide == 0:
					seen["auction trades"]++
				case ev.Kind == matching.EvPhase && ev.Phase == matching.PhaseVolatilityAuction:
					seen["volatility auctions"]++
				case ev.Kind == matching.EvOrderDone && ev.Reason == matching.ReasonSelfTrade:
					seen["self-trade expiries"]++
				}
				seen[ev.Kind.String()]++
			}
		}
	})
	t.Logf("%d commands, %d restore points; events: %v", commands, restores, seen)
}

// Engine bugs found by these tests, each reduced to a minimal case and
// kept as a regression test.

// propSeq drives an engine with the default symbols, one command at a time.
type propSeq struct {
	t *testing.T
	e *matching.Engine
}

// propNewSeq opens the accounts (account → owner) and funds them well.
func propNewSeq(t *testing.T, owners ...string) *propSeq {
	e, err := matching.New(matching.DefaultSymbols())
	if err != nil {
		t.Fatal(err)
	}
	s := &propSeq{t: t, e: e}
	for i := 0; i < len(owners); i += 2 {
		acct, owner := owners[i], owners[i+1]
		s.ok(matching.Command{Kind: matching.CmdOpenAccount, Account: acct, Owner: owner, AccountKind: matching.KindTrader})
		s.ok(matching.Command{Kind: matching.CmdDeposit, Account: acct, Asset: "KZT", Amount: 1e12, ExtRef: acct + "-kzt"})
		s.ok(matching.Command{Kind: matching.CmdDeposit, Account: acct, Asset: "BTC", Amount: 1e8, ExtRef: acct + "-btc"})
	}
	return s
}

func (s *propSeq) do(c matching.Command) []matching.Event {
	s.t.Helper()
	c.Seq, c.Time = s.e.Seq()+1, propT0+int64(s.e.Seq()+1)*1000
	evs, err := s.e.Apply(c, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return evs
}

func (s *propSeq) ok(c matching.Command) []matching.Event {
	s.t.Helper()
	evs := s.do(c)
	if err := matching.Rejection(evs); err != nil {
		s.t.Fatalf("%s refused: %v", c.Kind, err)
	}
	return evs
}

func (s *propSeq) phase(p matching.Phase) {
	s.t.Helper()
	s.ok(matching.Command{Kind: matching.CmdSetPhase, Symbol: "BTCKZT", Phase: p})
}

func (s *propSeq) limit(acct, cid string, side matching.Side, tif matching.TimeInForce, price, qty, display int64) []matching.Event {
	s.t.Helper()
	return s.ok(matching.Command{Kind: matching.CmdPlaceOrder, Account: acct, Symbol: "BTCKZT", ClientID: cid,
		Side: side, Type: matching.Limit, TIF: tif, Price: price, Quantity: qty, DisplayQty: display})
}

// KNOWN ENGINE BUG. A FOK order meets an iceberg and, behind it at the same
// price, an order of its own owner. fillable (orders.go) counts the
// iceberg's whole remaining quantity before the own order, but match takes
// one visible slice and sends the iceberg to the back of the level, so the
// own order comes first and self-trade prevention stops the FOK order
// part-filled. docs/matching.md: a FOK order that would meet its own
// owner's order before it is complete is killed, nothing trades.
func TestPropertyRegressionFOKIcebergBeforeOwnOrder(t *testing.T) {
	s := propNewSeq(t, "a", "a", "b", "b")
	s.limit("b", "ice", matching.Sell, matching.GTC, 3_000_000_000, 10_000, 1_000) // shows 1,000 of 10,000
	s.limit("a", "own", matching.Sell, matching.GTC, 3_000_000_000, 1_000, 0)
	evs := s.limit("a", "fok", matching.Buy, matching.FOK, 3_000_000_000, 5_000, 0)
	var filled int64
	var end matching.Event
	for _, ev := range evs {
		switch ev.Kind {
		case matching.EvTrade:
			filled += ev.Quantity
		case matching.EvOrderDone:
			end = ev
		}
	}
	if filled != 0 && filled != 5_000 {
		t.Errorf("FOK order of 5,000 filled %d and ended %s (%s): fill or kill means all or nothing",
			filled, end.Status, end.Reason)
	}
}

// KNOWN ENGINE BUG. Restore rests every order through rest → touchLevel;
// with more than 16 levels that switches on the engine's touchedSet
// (engine.go), and Restore clears touchedLvl but not touchedSet. The first
// command after a restore then finds its levels "already touched" and emits
// no level event for them, unlike the engine the snapshot was taken from:
// market data from a restarted engine misses book changes, and its events
// differ from a replay's.
func TestPropertyRegressionRestoreKeepsLevelEvents(t *testing.T) {
	s := propNewSeq(t, "a", "a")
	for i := range 17 { // 17 bid levels
		s.limit("a", fmt.Sprint("b", i), matching.Buy, matching.GTC, 3_000_000_000-int64(i)*100_000, 1_000, 0)
	}
	restored, err := matching.Restore(s.e.Snapshot(), matching.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if restored.StateHash() != s.e.StateHash() {
		t.Fatal("restored state differs")
	}
	cancel := matching.Command{Seq: s.e.Seq() + 1, Time: propT0 + 1e6, Kind: matching.CmdCancelOrder, Account: "a", OrderID: 1}
	want, _ := s.e.Apply(cancel, nil)
	got, _ := restored.Apply(cancel, nil)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the restored engine's events differ:%s", propDiff(got, want))
	}
}

// A command that touches more than 16 levels indexes them in a set, which
// the engine keeps for the next such command: emptied, or that command
// finds its levels already touched and emits no level event for them.
// Each of three cancel-alls of the same 40 levels must emit 40 (the first
// 17 are found in the list, the others in the set).
func TestManyLevelsTwiceEmitEveryLevel(t *testing.T) {
	s := propNewSeq(t, "a", "a")
	for round := range 3 {
		for i := range 40 {
			s.limit("a", fmt.Sprint("r", round, "b", i), matching.Buy, matching.GTC, 3_000_000_000-int64(i)*100_000, 1_000, 0)
		}
		levels := 0
		for _, ev := range s.ok(matching.Command{Kind: matching.CmdCancelAll, Account: "a"}) {
			if ev.Kind == matching.EvLevel {
				levels++
			}
		}
		if levels != 40 {
			t.Fatalf("cancel-all %d of 40 levels emitted %d level events", round+1, levels)
		}
	}
}

// Orders collected in a call phase survive a move to closed; the move from
// closed to continuous must uncross them. (Found by TestPropertyInvariants:
// transition uncrossed only when leaving a call phase; fixed since.)
func TestPropertyRegressionClosedToContinuousUncrosses(t *testing.T) {
	s := propNewSeq(t, "a", "a", "b", "b")
	s.phase(matching.PhasePreClose)
	s.limit("a", "bid", matching.Buy, matching.GTC, 3_000_000_000, 100_000, 0)  // 30,000,000 ₸
	s.limit("b", "ask", matching.Sell, matching.GTC, 2_900_000_000, 100_000, 0) // 29,000,000 ₸
	s.phase(matching.PhaseClosed)
	s.phase(matching.PhaseContinuous)
	bids, asks := s.e.Depth("BTCKZT", 1)
	if len(bids) > 0 && len(asks) > 0 && bids[0].Price >= asks[0].Price {
		t.Errorf("continuous trading on a crossed book: bid %d ≥ ask %d", bids[0].Price, asks[0].Price)
	}
}

// An uncross round that only expires self-trading orders (auction
// self-trade prevention) trades nothing and must set no price: not the last
// price, not the band's reference, not the closing price. (Found by
// TestPropertyInvariants: uncross set last = p after every round; fixed
// since.)
func TestPropertyRegressionUncrossWithoutTradeSetsNoPrice(t *testing.T) {
	for _, to := range []matching.Phase{matching.PhaseTradingAtLast, matching.PhaseContinuous} {
		t.Run(to.String(), func(t *testing.T) {
			s := propNewSeq(t, "a", "o", "b", "o") // one owner
			if to == matching.PhaseTradingAtLast {
				s.phase(matching.PhasePreClose)
				s.phase(matching.PhaseClosingAuction)
			} else {
				s.phase(matching.PhaseClosed)
				s.phase(matching.PhasePreOpen)
				s.phase(matching.PhaseOpeningAuction)
			}
			s.limit("a", "bid", matching.Buy, matching.GTC, 3_000_000_000, 100_000, 0)
			s.limit("b", "ask", matching.Sell, matching.GTC, 2_000_000_000, 50_000, 0) // 20,000,000 ₸
			for _, ev := range s.ok(matching.Command{Kind: matching.CmdSetPhase, Symbol: "BTCKZT", Phase: to}) {
				if ev.Kind == matching.EvTrade {
					t.Fatal("a self-cross traded")
				}
			}
			st, _ := s.e.Market("BTCKZT")
			if st.LastPrice != 0 || st.RefPrice != 0 || st.ClosePrice != 0 {
				t.Errorf("no trade ever, yet last price %d, reference price %d, closing price %d",
					st.LastPrice, st.RefPrice, st.ClosePrice)
			}
		})
	}
}

// A halt during the closing auction defers the uncross to the resume; the
// closing price must then be the resume's uncross price. (Found while
// writing TestPropertyInvariants: the closing price was fixed on entering
// trading at last, before the deferred uncross, here as 0, refusing every
// order; fixed since.)
func TestPropertyRegressionHaltedClosingAuctionClosePrice(t *testing.T) {
	s := propNewSeq(t, "a", "a", "b", "b")
	s.phase(matching.PhasePreClose)
	s.phase(matching.PhaseClosingAuction)
	s.limit("a", "bid", matching.Buy, matching.GTC, 3_000_000_000, 100_000, 0)
	s.limit("b", "ask", matching.Sell, matching.GTC, 3_000_000_000, 50_000, 0)
	s.ok(matching.Command{Kind: matching.CmdHalt, Symbol: "BTCKZT"})
	s.phase(matching.PhaseTradingAtLast)
	traded := false
	for _, ev := range s.ok(matching.Command{Kind: matching.CmdResume, Symbol: "BTCKZT"}) {
		traded = traded || ev.Kind == matching.EvTrade && ev.Price == 3_000_000_000
	}
	if !traded {
		t.Fatal("the resume did not uncross the closing auction")
	}
	if st, _ := s.e.Market("BTCKZT"); st.ClosePrice != 3_000_000_000 {
		t.Errorf("the closing auction uncrossed at 3000000000, closing price %d", st.ClosePrice)
	}
	evs := s.do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "b", Symbol: "BTCKZT", ClientID: "tal",
		Side: matching.Sell, Type: matching.Limit, Price: 3_000_000_000, Quantity: 50_000})
	if err := matching.Rejection(evs); err != nil {
		t.Errorf("trading at last at the closing auction's price refused: %v", err)
	}
}
