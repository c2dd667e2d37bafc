package matching_test

// engine_test.go: end-to-end scenarios on the shipped symbols (BTCKZT:
// tick 1 ₸ = 100 tiyn, lot 1 satoshi, minimum notional 100 ₸, maker 10 bps,
// taker 20 bps, ±10 % band) and the test helpers the other test files of
// this package share (harness, rig).
//
// Arithmetic conventions in the comments: prices are tiyn per whole BTC,
// quantities satoshi, so notional = price × qty / 10^8 (floored; the buyer's
// hold uses the ceiling) and a fee = notional × bps / 10 000, floored.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching"
)

const (
	btc = 100_000_000 // satoshi per BTC
	kzt = 100         // tiyn per tenge
)

// harness drives an engine on the default symbols with sequenced commands,
// as the inbox would: command n has Seq n and Time harnessT0 + n.
type harness struct {
	tb  testing.TB
	e   *matching.Engine
	log []matching.Command
}

const harnessT0 = 1_700_000_000_000

func newHarness(tb testing.TB) *harness {
	e, err := matching.New(matching.DefaultSymbols())
	if err != nil {
		tb.Fatal(err)
	}
	return &harness{tb: tb, e: e}
}

func (h *harness) do(c matching.Command) []matching.Event {
	h.tb.Helper()
	c.Seq = h.e.Seq() + 1
	c.Time = harnessT0 + int64(c.Seq)
	h.log = append(h.log, c)
	evs, err := h.e.Apply(c, nil)
	if err != nil {
		h.tb.Fatal(err)
	}
	return evs
}

func (h *harness) open(acct, owner string, kind matching.AccountKind) {
	h.tb.Helper()
	evs := h.do(matching.Command{Kind: matching.CmdOpenAccount, Account: acct, Owner: owner, AccountKind: kind})
	mustKind(h.tb, evs, matching.EvAccountOpened)
}

func (h *harness) deposit(acct, asset string, amount int64) {
	h.tb.Helper()
	evs := h.do(matching.Command{Kind: matching.CmdDeposit, Account: acct, Asset: asset, Amount: amount,
		ExtRef: acct + asset + string(rune('a'+h.e.Seq()%26)) + jsonInt(h.e.Seq())})
	mustKind(h.tb, evs, matching.EvDeposited)
}

func jsonInt(v uint64) string { b, _ := json.Marshal(v); return string(b) }

func (h *harness) limit(acct, cid string, side matching.Side, price, qty int64, mandatory bool) []matching.Event {
	return h.do(matching.Command{Kind: matching.CmdPlaceOrder, Account: acct, Symbol: "BTCKZT", ClientID: cid,
		Side: side, Type: matching.Limit, TIF: matching.GTC, Price: price, Quantity: qty, Purpose: purpose(mandatory)})
}

func purpose(mandatory bool) matching.Purpose {
	if mandatory {
		return matching.PurposeMandatory
	}
	return matching.PurposeNone
}

func (h *harness) balance(acct, asset string) [2]int64 {
	f, hd := h.e.Balance(acct, asset)
	return [2]int64{f, hd}
}

// mustKind requires the events' kinds, balance and level events left out.
func mustKind(tb testing.TB, evs []matching.Event, kinds ...matching.EventKind) {
	tb.Helper()
	if got := kindsOf(evs); !slices.Equal(got, kinds) {
		tb.Fatalf("events = %v; want %v (%+v)", got, kinds, evs)
	}
}

// kindsOf lists the events' kinds without the coalesced balance and level
// events.
func kindsOf(evs []matching.Event) []matching.EventKind {
	got := []matching.EventKind{}
	for _, ev := range evs {
		if ev.Kind != matching.EvLevel && ev.Kind != matching.EvBalance {
			got = append(got, ev.Kind)
		}
	}
	return got
}

// ofKind returns the events of one kind.
func ofKind(evs []matching.Event, k matching.EventKind) []matching.Event {
	var out []matching.Event
	for _, ev := range evs {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// setup: miner-1 (licensed, 2 BTC) and buyer-1 (100,000,000 ₸), commands 1–5.
func setup(tb testing.TB) *harness {
	h := newHarness(tb)
	h.open("miner-1", "miner-co", matching.KindMiner)
	h.open("buyer-1", "buyer-co", matching.KindTrader)
	h.deposit("miner-1", "BTC", 2*btc)
	h.deposit("buyer-1", "KZT", 100_000_000*kzt)
	evs := h.do(matching.Command{Kind: matching.CmdSetPermission, Account: "miner-1",
		Permission: matching.PermMandatorySell, Granted: true})
	mustKind(tb, evs, matching.EvPermissionSet)
	return h
}

// stateKey is the engine's state without Seq and Now: equal before and
// after a command that changed nothing.
func stateKey(e *matching.Engine) string {
	s := e.Snapshot()
	s.Seq, s.Now = 0, 0
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// checkInvariants verifies what must hold between any two commands: no
// negative balance; per asset, free + held over every account (the fee
// account included) equals net custody inflow (want, when not nil); every
// account's held amount equals the sum of its open orders' holds; and each
// book side is sorted with levels that agree with their orders.
func checkInvariants(tb testing.TB, e *matching.Engine, want map[string]int64) {
	tb.Helper()
	s := e.Snapshot()
	total := map[string]int64{}
	held := map[[2]string]int64{}
	for _, a := range s.Accounts {
		for _, b := range a.Balances {
			if b.Free < 0 || b.Held < 0 {
				tb.Fatalf("negative balance %s/%s: free %d held %d", a.ID, b.Asset, b.Free, b.Held)
			}
			total[b.Asset] += b.Free + b.Held
			held[[2]string{a.ID, b.Asset}] = b.Held
		}
	}
	if want != nil {
		for _, asset := range e.Assets() {
			if total[asset] != want[asset] {
				tb.Fatalf("conservation: %s totals %d, custody says %d", asset, total[asset], want[asset])
			}
		}
	}
	orderHeld := map[[2]string]int64{}
	for _, a := range s.Accounts {
		for _, o := range e.OpenOrders(a.ID) {
			sym, _ := e.Symbol(o.Symbol)
			asset := sym.Quote
			if o.Side == matching.Sell {
				asset = sym.Base
			}
			if o.Held < 0 {
				tb.Fatalf("order %d holds %d", o.ID, o.Held)
			}
			orderHeld[[2]string{a.ID, asset}] += o.Held
		}
	}
	for k, v := range held {
		if orderHeld[k] != v {
			tb.Fatalf("%s/%s holds %d but its open orders hold %d", k[0], k[1], v, orderHeld[k])
		}
	}
	for k, v := range orderHeld {
		if held[k] != v {
			tb.Fatalf("%s/%s open orders hold %d but the balance holds %d", k[0], k[1], v, held[k])
		}
	}
	for _, sym := range e.Symbols() {
		for _, side := range []matching.Side{matching.Buy, matching.Sell} {
			bids, asks := e.Depth(sym.Name, 1<<20)
			levels := bids
			if side == matching.Sell {
				levels = asks
			}
			var agg []matching.Level
			for _, o := range e.BookOrders(sym.Name, side) {
				if o.Visible <= 0 || o.Visible > o.Remaining || (o.Display == 0 && o.Visible != o.Remaining) {
					tb.Fatalf("order %d: visible %d of remaining %d (display %d)", o.ID, o.Visible, o.Remaining, o.Display)
				}
				if n := len(agg); n > 0 && agg[n-1].Price == o.Price {
					agg[n-1].Quantity += o.Visible
					agg[n-1].Orders++
				} else {
					if n > 0 && (side == matching.Buy) != (o.Price < agg[n-1].Price) {
						tb.Fatalf("%s %s side out of order at %d", sym.Name, side, o.Price)
					}
					agg = append(agg, matching.Level{Price: o.Price, Quantity: o.Visible, Orders: 1})
				}
			}
			if len(agg) == 0 {
				agg = []matching.Level{}
			}
			if len(levels) == 0 {
				levels = []matching.Level{}
			}
			if !reflect.DeepEqual(agg, levels) {
				tb.Fatalf("%s %s depth %v disagrees with its orders %v", sym.Name, side, levels, agg)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// rig: an engine with an explicit clock, for the order and phase tests.

// rigT0 is 2023-11-15T00:00:00Z, a UTC midnight (05:00 in Almaty, +300).
const rigT0 int64 = 1_700_006_400_000

type rig struct {
	tb      testing.TB
	e       *matching.Engine
	now     int64 // the Time of the next command
	sym     string
	log     []matching.Command
	custody map[string]int64 // per asset: deposits − withdrawals
}

// testSymbol is a small market for hand arithmetic: base scale 0, so the
// notional is simply price × qty (tiyn); tick 1, lot 1, minimum notional
// 1,000 tiyn, maker 10 bps, taker 20 bps, no band.
func testSymbol(name, base string) matching.Symbol {
	return matching.Symbol{Name: name, Base: base, Quote: "KZT", BaseScale: 0, QuoteScale: 2,
		TickSize: 1, LotSize: 1, MinQty: 1, MaxQty: 1_000_000, MinNotional: 1_000,
		MakerFeeBps: 10, TakerFeeBps: 20}
}

func newRig(tb testing.TB, cfg matching.Config) *rig {
	tb.Helper()
	e, err := matching.NewWithConfig(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &rig{tb: tb, e: e, now: rigT0, sym: cfg.Symbols[0].Name, custody: map[string]int64{}}
}

// newTradersRig opens alice and alice2 (one owner, alice-co), bob, carol
// and dave, each with 1,000 of every base asset and 1,000,000 tiyn.
func newTradersRig(tb testing.TB, syms ...matching.Symbol) *rig {
	tb.Helper()
	if len(syms) == 0 {
		syms = []matching.Symbol{testSymbol("XYZKZT", "XYZ"), testSymbol("ABCKZT", "ABC")}
	}
	r := newRig(tb, matching.Config{Symbols: syms})
	for _, a := range [][2]string{{"alice", "alice-co"}, {"alice2", "alice-co"}, {"bob", "bob-co"}, {"carol", "carol-co"}, {"dave", "dave-co"}} {
		r.openAccount(a[0], a[1])
		for _, s := range syms {
			r.fund(a[0], s.Base, 1_000)
		}
		r.fund(a[0], "KZT", 1_000_000)
	}
	return r
}

// apply sequences a command at the rig's clock.
func (r *rig) apply(c matching.Command) []matching.Event {
	r.tb.Helper()
	c.Seq, c.Time = r.e.Seq()+1, r.now
	r.log = append(r.log, c)
	evs, err := r.e.Apply(c, nil)
	if err != nil {
		r.tb.Fatal(err)
	}
	for _, ev := range evs {
		switch ev.Kind {
		case matching.EvDeposited:
			r.custody[ev.Asset] += ev.Amount
		case matching.EvWithdrawn:
			r.custody[ev.Asset] -= ev.Amount
		}
	}
	checkInvariants(r.tb, r.e, r.custody)
	return evs
}

// ok applies a command that must not be refused.
func (r *rig) ok(c matching.Command) []matching.Event {
	r.tb.Helper()
	evs := r.apply(c)
	if err := matching.Rejection(evs); err != nil {
		r.tb.Fatalf("%s refused: %v", c.Kind, err)
	}
	return evs
}

// refuse applies a command that must be refused with code and leave the
// state exactly as it was (Seq and Now aside).
func (r *rig) refuse(c matching.Command, code apperr.Code) matching.Event {
	r.tb.Helper()
	before := stateKey(r.e)
	evs := r.apply(c)
	rej := ofKind(evs, matching.EvRejected)
	if len(rej) != 1 || rej[0].Code != string(code) {
		r.tb.Fatalf("%s: events %+v; want one rejection %s", c.Kind, evs, code)
	}
	if kindsOf(evs)[len(kindsOf(evs))-1] != matching.EvRejected {
		r.tb.Fatalf("rejection is not the command's last event: %v", kindsOf(evs))
	}
	if after := stateKey(r.e); after != before {
		r.tb.Fatalf("refused %s changed the state:\n%s\n%s", c.Kind, before, after)
	}
	return rej[0]
}

func (r *rig) openAccount(acct, owner string) {
	r.tb.Helper()
	r.ok(matching.Command{Kind: matching.CmdOpenAccount, Account: acct, Owner: owner, AccountKind: matching.KindTrader})
}

func (r *rig) fund(acct, asset string, amount int64) {
	r.tb.Helper()
	r.ok(matching.Command{Kind: matching.CmdDeposit, Account: acct, Asset: asset, Amount: amount,
		ExtRef: fmt.Sprintf("dep-%d", r.e.Seq()+1)})
}

// place places an order: symbol, type (limit) and client ID (unique) are
// filled in when not given.
func (r *rig) place(c matching.Command) []matching.Event {
	r.tb.Helper()
	c.Kind = matching.CmdPlaceOrder
	if c.Symbol == "" {
		c.Symbol = r.sym
	}
	if c.Type == 0 {
		c.Type = matching.Limit
	}
	if c.ClientID == "" {
		c.ClientID = "c" + strconv.FormatUint(r.e.Seq()+1, 10)
	}
	return r.apply(c)
}

// limit places a GTC limit order that must be accepted, and returns its ID.
func (r *rig) limit(acct string, side matching.Side, price, qty int64) uint64 {
	r.tb.Helper()
	evs := r.place(matching.Command{Account: acct, Side: side, Price: price, Quantity: qty})
	acc := ofKind(evs, matching.EvOrderAccepted)
	if len(acc) != 1 {
		r.tb.Fatalf("order not accepted: %+v", evs)
	}
	return acc[0].OrderID
}

func (r *rig) setPhase(p matching.Phase) []matching.Event {
	r.tb.Helper()
	return r.ok(matching.Command{Kind: matching.CmdSetPhase, Symbol: r.sym, Phase: p})
}

func (r *rig) tick() []matching.Event {
	r.tb.Helper()
	return r.ok(matching.Command{Kind: matching.CmdTick})
}

func (r *rig) bal(acct, asset string) [2]int64 {
	f, h := r.e.Balance(acct, asset)
	return [2]int64{f, h}
}

func (r *rig) wantBal(acct, asset string, free, held int64) {
	r.tb.Helper()
	if got := r.bal(acct, asset); got != [2]int64{free, held} {
		r.tb.Errorf("%s %s = free %d held %d; want free %d held %d", acct, asset, got[0], got[1], free, held)
	}
}

func (r *rig) phase() matching.Phase {
	st, _ := r.e.Market(r.sym)
	return st.Phase
}

// tradeOf is a trade's essentials: price, quantity, fees, orders.
type tradeOf struct {
	Price, Qty, BuyerFee, SellerFee int64
	Buy, Sell                       uint64
	Taker                           matching.Side
}

func tradesOf(evs []matching.Event) []tradeOf {
	var out []tradeOf
	for _, ev := range ofKind(evs, matching.EvTrade) {
		out = append(out, tradeOf{ev.Price, ev.Quantity, ev.BuyerFee, ev.SellerFee, ev.BuyOrderID, ev.SellOrderID, ev.TakerSide})
	}
	return out
}

func wantTrades(tb testing.TB, evs []matching.Event, want ...tradeOf) {
	tb.Helper()
	got := tradesOf(evs)
	if !reflect.DeepEqual(got, want) {
		tb.Fatalf("trades = %+v\nwant     %+v", got, want)
	}
	for _, ev := range ofKind(evs, matching.EvTrade) {
		// Every trade's quote amount is the floored notional; the fees are on it.
		if ev.QuoteAmount <= 0 || ev.FeeAccount != matching.DefaultFeeAccount {
			tb.Fatalf("trade %+v", ev)
		}
	}
}

// doneOf returns the EvOrderDone event of an order.
func doneOf(tb testing.TB, evs []matching.Event, id uint64) matching.Event {
	tb.Helper()
	for _, ev := range ofKind(evs, matching.EvOrderDone) {
		if ev.OrderID == id {
			return ev
		}
	}
	tb.Fatalf("no order_done for order %d in %v", id, kindsOf(evs))
	return matching.Event{}
}

// ---------------------------------------------------------------------------
// Scenarios on the default symbols.

func TestMandatorySaleMatches(t *testing.T) {
	h := setup(t)
	// buyer-1 bids 1 BTC at 30,000,000 ₸ = 3,000,000,000 tiyn. Hold: the
	// notional 3e9 × 1e8 / 1e8 = 3,000,000,000 plus the larger fee (20 bps)
	// 6,000,000 = 3,006,000,000 tiyn.
	evs := h.limit("buyer-1", "b1", matching.Buy, 30_000_000*kzt, btc, false)
	mustKind(t, evs, matching.EvOrderAccepted)
	if got := h.balance("buyer-1", "KZT"); got != [2]int64{10_000_000_000 - 3_006_000_000, 3_006_000_000} {
		t.Fatalf("buyer KZT after hold = %v", got)
	}
	// The miner sells 0.75 BTC mandatory at a lower limit: it trades at the
	// buyer's (maker's) price. Notional 3e9 × 75e6 / 1e8 = 2,250,000,000;
	// buyer (maker, 10 bps) fee 2,250,000; seller (taker, 20 bps) 4,500,000.
	evs = h.do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "miner-1", Symbol: "BTCKZT", ClientID: "m1",
		Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 29_000_000 * kzt, Quantity: 75_000_000,
		Purpose: matching.PurposeMandatory, Obligation: "obl-2024-05"})
	ev := func(i uint32, k matching.EventKind) matching.Event {
		return matching.Event{Seq: 7, Index: i, Kind: k, Time: harnessT0 + 7}
	}
	accepted := ev(0, matching.EvOrderAccepted)
	accepted.Account, accepted.Symbol, accepted.OrderID, accepted.ClientID = "miner-1", "BTCKZT", 2, "m1"
	accepted.Side, accepted.Type, accepted.TIF, accepted.Price = matching.Sell, matching.Limit, matching.GTC, 29_000_000*kzt
	accepted.Quantity, accepted.Remaining, accepted.Status = 75_000_000, 75_000_000, matching.StatusNew
	accepted.Purpose, accepted.Obligation = matching.PurposeMandatory, "obl-2024-05"
	trade := ev(1, matching.EvTrade)
	trade.Symbol, trade.BaseAsset, trade.QuoteAsset, trade.FeeAccount = "BTCKZT", "BTC", "KZT", "exchange-fees"
	trade.Price, trade.Quantity, trade.QuoteAmount = 3_000_000_000, 75_000_000, 2_250_000_000
	trade.BuyerFee, trade.SellerFee, trade.TakerSide = 2_250_000, 4_500_000, matching.Sell
	trade.BuyerAccount, trade.SellerAccount, trade.BuyOrderID, trade.SellOrderID = "buyer-1", "miner-1", 1, 2
	trade.Purpose, trade.Obligation = matching.PurposeMandatory, "obl-2024-05"
	done := accepted
	done.Index, done.Kind, done.Remaining, done.Filled, done.Status = 2, matching.EvOrderDone, 0, 75_000_000, matching.StatusFilled
	done.QuoteAmount = 2_250_000_000 // the quote amount of its fills: 0.75 BTC at 30,000,000 ₸
	level := ev(3, matching.EvLevel)
	level.Symbol, level.Side, level.Price, level.Quantity, level.Orders = "BTCKZT", matching.Buy, 3_000_000_000, 25_000_000, 1
	bal := func(i uint32, acct, asset string, free, held int64) matching.Event {
		b := ev(i, matching.EvBalance)
		b.Account, b.Asset, b.Free, b.Held = acct, asset, free, held
		return b
	}
	want := []matching.Event{accepted, trade, done, level,
		// miner BTC: 2e8 − 75e6 sold.
		bal(4, "miner-1", "BTC", 125_000_000, 0),
		// buyer KZT: the hold 3,006,000,000 − paid 2,252,250,000 leaves
		// 753,750,000; the rest of the bid (25e6) needs 750,000,000 + fee
		// 1,500,000 = 751,500,000, so 2,250,000 (the fee saved by making)
		// goes back to free: 6,994,000,000 + 2,250,000.
		bal(5, "buyer-1", "KZT", 6_996_250_000, 751_500_000),
		bal(6, "buyer-1", "BTC", 75_000_000, 0),
		// miner KZT: 2,250,000,000 − 4,500,000.
		bal(7, "miner-1", "KZT", 2_245_500_000, 0),
		// fees: 2,250,000 + 4,500,000.
		bal(8, "exchange-fees", "KZT", 6_750_000, 0),
	}
	if !reflect.DeepEqual(evs, want) {
		t.Fatalf("events:\n got %+v\nwant %+v", evs, want)
	}
	if evs[1].ID() != "7-1" {
		t.Fatalf("trade ID = %s", evs[1].ID())
	}
	bids, asks := h.e.Depth("BTCKZT", 5)
	if len(asks) != 0 || len(bids) != 1 || bids[0] != (matching.Level{Price: 3_000_000_000, Quantity: 25_000_000, Orders: 1}) {
		t.Fatalf("depth = %v / %v", bids, asks)
	}
	// 6,996,250,000 + 751,500,000 + 2,245,500,000 + 6,750,000 = 10,000,000,000.
	checkInvariants(t, h.e, map[string]int64{"BTC": 2 * btc, "KZT": 100_000_000 * kzt})
}

func TestPriceTimePriority(t *testing.T) {
	h := setup(t)
	h.open("buyer-2", "other-co", matching.KindTrader)
	h.deposit("buyer-2", "KZT", 100_000_000*kzt)
	h.limit("buyer-1", "a", matching.Buy, 30_000_000*kzt, 1_000_000, false) // order 1
	h.limit("buyer-2", "b", matching.Buy, 30_000_100*kzt, 1_000_000, false) // order 2: better price
	h.limit("buyer-1", "c", matching.Buy, 30_000_100*kzt, 1_000_000, false) // order 3: same price, later
	evs := h.limit("miner-1", "s", matching.Sell, 30_000_000*kzt, 2_500_000, false)
	// At 3,000,010,000 tiyn, 0.01 BTC is 30,000,100 tiyn: the seller (taker)
	// pays 60,000.2 → 60,000, the buyer (maker) 30,000.1 → 30,000. At
	// 3,000,000,000, 0.005 BTC is 15,000,000: fees 30,000 and 15,000.
	wantTrades(t, evs,
		tradeOf{3_000_010_000, 1_000_000, 30_000, 60_000, 2, 4, matching.Sell},
		tradeOf{3_000_010_000, 1_000_000, 30_000, 60_000, 3, 4, matching.Sell},
		tradeOf{3_000_000_000, 500_000, 15_000, 30_000, 1, 4, matching.Sell})
	// 2 × (30,000,100 − 60,000) + (15,000,000 − 30,000) = 74,850,200.
	if got := h.balance("miner-1", "KZT"); got != [2]int64{74_850_200, 0} {
		t.Fatalf("miner KZT = %v", got)
	}
	// 2 × (30,000 + 60,000) + 15,000 + 30,000 = 225,000.
	if got := h.balance("exchange-fees", "KZT"); got != [2]int64{225_000, 0} {
		t.Fatalf("fee account KZT = %v", got)
	}
	if bids := h.e.BookOrders("BTCKZT", matching.Buy); len(bids) != 1 || bids[0].ID != 1 || bids[0].Remaining != 500_000 {
		t.Fatalf("bids = %+v", bids)
	}
}

func TestRejectionsChangeNothing(t *testing.T) {
	type C = matching.Command
	cases := []struct {
		name string
		mod  func(*C)
		code apperr.Code
	}{
		{"UnknownSymbol", func(c *C) { c.Symbol = "DOGEKZT" }, apperr.UnknownSymbol},
		{"UnknownAccount", func(c *C) { c.Account = "nobody" }, apperr.UnknownAccount},
		{"NoAccount", func(c *C) { c.Account = "" }, apperr.InvalidParameter},
		{"ZeroQuantity", func(c *C) { c.Quantity = 0 }, apperr.InvalidQuantity},
		{"NegativeQuantity", func(c *C) { c.Quantity = -5 }, apperr.InvalidQuantity},
		{"AboveMaxQuantity", func(c *C) { c.Quantity = 1_000*btc + 1 }, apperr.InvalidQuantity},
		// 3e9 × 333 / 1e8 = 9,990 tiyn < 10,000 (100 ₸); 334 gives 10,020.
		{"BelowMinNotional", func(c *C) { c.Quantity = 333 }, apperr.InvalidQuantity},
		{"BadTick", func(c *C) { c.Price = 30_000_000*kzt + 1 }, apperr.InvalidPrice},
		{"NegativePrice", func(c *C) { c.Price = -100 }, apperr.InvalidPrice},
		{"TooMuch", func(c *C) { c.Quantity = 3 * btc }, apperr.InsufficientFunds},
		{"MandatoryBuy", func(c *C) { c.Side, c.Account = matching.Buy, "buyer-1" }, apperr.InvalidParameter},
		{"BadSide", func(c *C) { c.Side = 99 }, apperr.InvalidParameter},
		{"BadType", func(c *C) { c.Type = 0 }, apperr.InvalidParameter},
		{"BadTIF", func(c *C) { c.TIF = 99 }, apperr.InvalidParameter},
		{"BadSTP", func(c *C) { c.STP = 9 }, apperr.InvalidParameter},
		{"BadPurpose", func(c *C) { c.Purpose = 7 }, apperr.InvalidParameter},
		{"ObligationWithoutMandatory", func(c *C) { c.Purpose, c.Obligation = matching.PurposeNone, "obl" }, apperr.InvalidParameter},
		{"NoClientID", func(c *C) { c.ClientID = "" }, apperr.InvalidParameter},
		{"LongClientID", func(c *C) { c.ClientID = string(make([]byte, 65)) }, apperr.InvalidParameter},
		{"QuoteQtyOnLimit", func(c *C) { c.QuoteQty = 10_000 }, apperr.InvalidParameter},
		{"ExpiryOnGTC", func(c *C) { c.ExpireAt = harnessT0 + 1_000 }, apperr.InvalidParameter},
		{"GTDInThePast", func(c *C) { c.TIF, c.ExpireAt = matching.GTD, harnessT0 }, apperr.InvalidParameter},
		{"IcebergDisplayNotBelowQty", func(c *C) { c.DisplayQty = c.Quantity }, apperr.InvalidQuantity},
		{"PostOnlyIOC", func(c *C) { c.PostOnly, c.TIF = true, matching.IOC }, apperr.InvalidParameter},
		{"MarketWithPrice", func(c *C) { c.Type = matching.Market }, apperr.InvalidPrice},
		{"FeeAccountTrades", func(c *C) { c.Account = matching.DefaultFeeAccount }, apperr.NotPermitted},
		{"UnknownKind", func(c *C) { c.Kind = 99 }, apperr.UnknownMethod},
		{"Overflow", func(c *C) {
			c.Side, c.Account, c.Purpose = matching.Buy, "buyer-1", matching.PurposeNone
			c.Price, c.Quantity = 9_000_000_000_000_000_000, 1000*btc
		}, apperr.InvalidQuantity},
		{"CancelUnknown", func(c *C) { *c = C{Kind: matching.CmdCancelOrder, Account: "miner-1", OrderID: 42} }, apperr.UnknownOrder},
		{"WithdrawTooMuch", func(c *C) {
			*c = C{Kind: matching.CmdWithdraw, Account: "miner-1", Asset: "BTC", Amount: 2*btc + 1, ExtRef: "w1"}
		}, apperr.InsufficientFunds},
		{"DepositUnknownAsset", func(c *C) {
			*c = C{Kind: matching.CmdDeposit, Account: "miner-1", Asset: "DOGE", Amount: 1, ExtRef: "d1"}
		}, apperr.UnknownAsset},
		{"AccountConflict", func(c *C) {
			*c = C{Kind: matching.CmdOpenAccount, Account: "miner-1", Owner: "someone-else", AccountKind: matching.KindMiner}
		}, apperr.Conflict},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := setup(t)
			// A resting bid, so that state includes a book.
			h.limit("buyer-1", "bid", matching.Buy, 29_000_000*kzt, 1_000_000, false)
			cmd := C{Kind: matching.CmdPlaceOrder, Account: "miner-1", Symbol: "BTCKZT", ClientID: "x",
				Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 30_000_000 * kzt, Quantity: btc, Purpose: matching.PurposeMandatory}
			c.mod(&cmd)
			before := stateKey(h.e)
			evs := h.do(cmd)
			mustKind(t, evs, matching.EvRejected)
			if evs[0].Code != string(c.code) {
				t.Fatalf("code = %s (%s); want %s", evs[0].Code, evs[0].Message, c.code)
			}
			if err := matching.Rejection(evs); apperr.CodeOf(err) != c.code {
				t.Fatalf("Rejection = %v", err)
			}
			if after := stateKey(h.e); before != after {
				t.Fatalf("state changed:\n%s\n%s", before, after)
			}
		})
	}
	t.Run("MandatoryWithoutPermission", func(t *testing.T) {
		h := setup(t)
		h.do(matching.Command{Kind: matching.CmdSetPermission, Account: "miner-1", Permission: matching.PermMandatorySell, Granted: false})
		before := stateKey(h.e)
		evs := h.limit("miner-1", "m", matching.Sell, 30_000_000*kzt, btc, true)
		mustKind(t, evs, matching.EvRejected)
		if evs[0].Code != string(apperr.NotPermitted) {
			t.Fatalf("code = %s", evs[0].Code)
		}
		if after := stateKey(h.e); before != after {
			t.Fatal("state changed")
		}
		// Without the purpose the same sale is an ordinary order.
		mustKind(t, h.limit("miner-1", "m", matching.Sell, 30_000_000*kzt, btc, false), matching.EvOrderAccepted)
	})
}

func TestDuplicateClientIDChangesNothing(t *testing.T) {
	h := setup(t)
	h.limit("buyer-1", "b1", matching.Buy, 30_000_000*kzt, btc, false)
	before := stateKey(h.e)
	// A retry, even with other parameters, answers the original order.
	evs := h.limit("buyer-1", "b1", matching.Buy, 31_000_000*kzt, btc, false)
	mustKind(t, evs, matching.EvDuplicate)
	if evs[0].OrderID != 1 || evs[0].ClientID != "b1" || evs[0].Account != "buyer-1" {
		t.Fatalf("duplicate = %+v", evs[0])
	}
	if after := stateKey(h.e); before != after {
		t.Fatal("a duplicate changed the state")
	}
	// Client IDs are per account: another account may use b1.
	h.open("buyer-2", "other-co", matching.KindTrader)
	h.deposit("buyer-2", "KZT", 1_000_000*kzt)
	mustKind(t, h.do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "buyer-2", Symbol: "BTCKZT", ClientID: "b1",
		Side: matching.Buy, Type: matching.Limit, Price: 30_000_000 * kzt, Quantity: 1_000_000}), matching.EvOrderAccepted)
	// A finished order's client ID is still a duplicate.
	mustKind(t, h.do(matching.Command{Kind: matching.CmdCancelOrder, Account: "buyer-1", ClientID: "b1"}), matching.EvOrderDone)
	evs = h.limit("buyer-1", "b1", matching.Buy, 30_000_000*kzt, btc, false)
	mustKind(t, evs, matching.EvDuplicate)
	if evs[0].OrderID != 1 {
		t.Fatalf("duplicate of a finished order answered %d", evs[0].OrderID)
	}
	// Deposits are idempotent by external reference.
	evs = h.do(matching.Command{Kind: matching.CmdDeposit, Account: "buyer-1", Asset: "KZT", Amount: 5, ExtRef: "tx-1"})
	mustKind(t, evs, matching.EvDeposited)
	before = stateKey(h.e)
	evs = h.do(matching.Command{Kind: matching.CmdDeposit, Account: "buyer-1", Asset: "KZT", Amount: 7, ExtRef: "tx-1"})
	mustKind(t, evs, matching.EvDuplicate)
	if evs[0].Amount != 7 || evs[0].ExtRef != "tx-1" {
		t.Fatalf("duplicate deposit = %+v", evs[0])
	}
	if after := stateKey(h.e); before != after {
		t.Fatal("a duplicate deposit changed the state")
	}
}

func TestIOCAndCancelReleaseHolds(t *testing.T) {
	h := setup(t)
	evs := h.do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "buyer-1", Symbol: "BTCKZT", ClientID: "i",
		Side: matching.Buy, Type: matching.Limit, TIF: matching.IOC, Price: 30_000_000 * kzt, Quantity: btc})
	mustKind(t, evs, matching.EvOrderAccepted, matching.EvOrderDone)
	if evs[1].Status != matching.StatusExpired || evs[1].Reason != matching.ReasonIOC {
		t.Fatalf("IOC done = %+v", evs[1])
	}
	if got := h.balance("buyer-1", "KZT"); got != [2]int64{100_000_000 * kzt, 0} {
		t.Fatalf("after IOC: %v", got)
	}
	h.limit("miner-1", "s", matching.Sell, 30_000_000*kzt, btc, true)
	if got := h.balance("miner-1", "BTC"); got != [2]int64{btc, btc} {
		t.Fatalf("after sell: %v", got)
	}
	// A cancel naming another symbol does not touch the order.
	before := stateKey(h.e)
	evs = h.do(matching.Command{Kind: matching.CmdCancelOrder, Account: "miner-1", Symbol: "ETHKZT", ClientID: "s"})
	mustKind(t, evs, matching.EvRejected)
	if evs[0].Code != string(apperr.UnknownOrder) || stateKey(h.e) != before {
		t.Fatalf("cross-symbol cancel: %+v", evs[0])
	}
	// Nor does another account's cancel.
	evs = h.do(matching.Command{Kind: matching.CmdCancelOrder, Account: "buyer-1", OrderID: 2})
	mustKind(t, evs, matching.EvRejected)
	evs = h.do(matching.Command{Kind: matching.CmdCancelOrder, Account: "miner-1", Symbol: "BTCKZT", ClientID: "s"})
	mustKind(t, evs, matching.EvOrderDone)
	if evs[0].Status != matching.StatusCanceled || evs[0].Reason != matching.ReasonCanceled || evs[0].OrderID != 2 {
		t.Fatalf("cancel done = %+v", evs[0])
	}
	if got := h.balance("miner-1", "BTC"); got != [2]int64{2 * btc, 0} {
		t.Fatalf("after cancel: %v", got)
	}
	// The ask level is gone.
	if lv := ofKind(evs, matching.EvLevel); len(lv) != 1 || lv[0].Quantity != 0 || lv[0].Orders != 0 || lv[0].Side != matching.Sell {
		t.Fatalf("level events = %+v", lv)
	}
	evs = h.do(matching.Command{Kind: matching.CmdCancelOrder, Account: "miner-1", OrderID: 2})
	mustKind(t, evs, matching.EvRejected)
	checkInvariants(t, h.e, map[string]int64{"BTC": 2 * btc, "KZT": 100_000_000 * kzt})
}

func TestSelfTradeExpiresTaker(t *testing.T) {
	h := setup(t)
	h.open("miner-2", "miner-co", matching.KindMiner) // same owner as miner-1
	h.deposit("miner-2", "KZT", 100_000_000*kzt)
	h.limit("miner-1", "s", matching.Sell, 30_000_000*kzt, btc, false)
	evs := h.limit("miner-2", "b", matching.Buy, 30_000_000*kzt, btc, false)
	mustKind(t, evs, matching.EvOrderAccepted, matching.EvOrderDone)
	if evs[1].Status != matching.StatusExpired || evs[1].Reason != matching.ReasonSelfTrade {
		t.Fatalf("done = %+v", evs[1])
	}
	if got := h.balance("miner-2", "KZT"); got != [2]int64{100_000_000 * kzt, 0} {
		t.Fatalf("miner-2 KZT = %v", got)
	}
	// The maker is untouched.
	if _, asks := h.e.Depth("BTCKZT", 5); len(asks) != 1 || asks[0].Quantity != btc {
		t.Fatalf("asks = %v", asks)
	}
}

func TestNotional128(t *testing.T) {
	s := matching.DefaultSymbols()[0]
	// 50,000,000 ₸ × 100 BTC overflows int64 as tiyn × satoshi, but not the result.
	got, ok := s.Notional(50_000_000*kzt, 100*btc)
	if !ok || got != 5_000_000_000*kzt {
		t.Fatalf("notional = %d, %v", got, ok)
	}
	if got, _ := s.Notional(50_000_001*kzt, 1); got != 50 { // 50.000001 tiyn, rounded down
		t.Fatalf("floor = %d", got)
	}
	if got, _ := s.NotionalCeil(50_000_001*kzt, 1); got != 51 {
		t.Fatalf("ceil = %d", got)
	}
	if _, ok := s.Notional(1<<62, 1<<62); ok {
		t.Fatal("overflow not detected")
	}
	// Fees round down: 30,000,100 × 20 / 10,000 = 60,000.2.
	if got := matching.Fee(30_000_100, 20); got != 60_000 {
		t.Fatalf("fee = %d", got)
	}
}

// TestConservationAndReplay drives random commands of every kind and checks,
// after every command, that per asset free + held over all accounts (the
// fee account included) equals what was deposited, that no balance is
// negative and holds equal the open orders' holds; then replays the log
// into a new engine and requires identical events and state.
func TestConservationAndReplay(t *testing.T) {
	h := newHarness(t)
	accts := []string{"a", "b", "c", "d", "e"}
	owners := []string{"owner-a", "owner-b", "owner-c", "owner-d", "owner-a"} // e trades against a: STP
	want := map[string]int64{}
	for i, a := range accts {
		h.open(a, owners[i], matching.KindTrader)
		h.deposit(a, "BTC", int64(10+i)*btc)
		h.deposit(a, "KZT", int64(500_000_000+i)*kzt)
		want["BTC"] += int64(10+i) * btc
		want["KZT"] += int64(500_000_000+i) * kzt
	}
	checkInvariants(t, h.e, want)
	rng := rand.New(rand.NewPCG(1, 2))
	var all []matching.Event
	price := func() int64 { return int64(29_990_000+rng.IntN(20_000)) * kzt }
	qty := func() int64 { return int64(334 + rng.IntN(btc/4)) }
	for i := 0; i < 3000; i++ {
		a := accts[rng.IntN(len(accts))]
		side := matching.Side(1 + rng.IntN(2))
		var c matching.Command
		switch n := rng.IntN(20); {
		case n < 3:
			c = matching.Command{Kind: matching.CmdCancelOrder, Account: a, OrderID: uint64(rng.IntN(i + 1))}
		case n == 3:
			c = matching.Command{Kind: matching.CmdCancelAll, Account: a, Symbol: "BTCKZT"}
		case n < 6:
			c = matching.Command{Kind: matching.CmdAmendOrder, Account: a, OrderID: uint64(rng.IntN(i + 1))}
			if open := h.e.OpenOrders(a); len(open) > 0 {
				c.OrderID = open[rng.IntN(len(open))].ID
			}
			if rng.IntN(2) == 0 {
				c.Price = price()
			} else {
				c.Quantity = qty()
			}
		case n < 8:
			c = matching.Command{Kind: matching.CmdPlaceOrder, Account: a, Symbol: "BTCKZT", ClientID: "c" + jsonInt(uint64(i)),
				Side: side, Type: matching.Market, Quantity: qty()}
			if side == matching.Buy && rng.IntN(2) == 0 {
				c.Quantity, c.QuoteQty = 0, int64(10_000+rng.IntN(10_000_000))*kzt
			}
		case n == 8:
			c = matching.Command{Kind: matching.CmdTick}
		default:
			c = matching.Command{Kind: matching.CmdPlaceOrder, Account: a, Symbol: "BTCKZT",
				ClientID: "c" + jsonInt(uint64(i)), Side: side, Type: matching.Limit,
				TIF: matching.TimeInForce(1 + rng.IntN(4)), Price: price(), Quantity: qty(),
				STP: matching.STPMode(rng.IntN(5))}
			switch c.TIF {
			case matching.GTD:
				c.ExpireAt = harnessT0 + int64(i) + int64(10+rng.IntN(200))
				fallthrough
			case matching.GTC:
				c.PostOnly = rng.IntN(8) == 0
				if rng.IntN(6) == 0 {
					c.DisplayQty = max(334, c.Quantity/4)
				}
			}
		}
		evs := h.do(c)
		all = append(all, evs...)
		checkInvariants(t, h.e, want)
	}
	var fees int64
	kinds := map[matching.EventKind]int{}
	for _, ev := range all {
		kinds[ev.Kind]++
		if ev.Kind == matching.EvTrade {
			fees += ev.BuyerFee + ev.SellerFee
		}
	}
	if kinds[matching.EvTrade] < 300 || kinds[matching.EvOrderAmended] < 50 {
		t.Fatalf("event counts %v: the scenario does not exercise matching", kinds)
	}
	if got := h.balance(matching.DefaultFeeAccount, "KZT"); got != [2]int64{fees, 0} {
		t.Fatalf("fee account = %v; trades' fees sum to %d", got, fees)
	}
	replay, _ := matching.New(matching.DefaultSymbols())
	var again []matching.Event
	for _, c := range h.log {
		var err error
		if again, err = replay.Apply(c, again); err != nil {
			t.Fatal(err)
		}
	}
	if len(again) < len(all) || !reflect.DeepEqual(again[len(again)-len(all):], all) {
		t.Fatal("replay produced different events")
	}
	if replay.StateHash() != h.e.StateHash() {
		t.Fatal("replay produced a different state")
	}
}

func TestSequenceGapIsRefused(t *testing.T) {
	e, _ := matching.New(matching.DefaultSymbols())
	if _, err := e.Apply(matching.Command{Seq: 2, Kind: matching.CmdOpenAccount}, nil); err == nil {
		t.Fatal("a gap in the sequence was accepted")
	}
	if _, err := e.Apply(matching.Command{Seq: 0, Kind: matching.CmdTick}, nil); err == nil {
		t.Fatal("a repeated sequence was accepted")
	}
	if e.Seq() != 0 {
		t.Fatal("engine advanced on a refused sequence")
	}
}

func TestClockNeverGoesBack(t *testing.T) {
	e, _ := matching.New(matching.DefaultSymbols())
	evs, _ := e.Apply(matching.Command{Seq: 1, Time: 5_000, Kind: matching.CmdTick}, nil)
	if evs[0].Kind != matching.EvAck || evs[0].Time != 5_000 {
		t.Fatalf("tick = %+v", evs)
	}
	evs, _ = e.Apply(matching.Command{Seq: 2, Time: 4_000, Kind: matching.CmdTick}, evs)
	if e.Now() != 5_000 || evs[1].Time != 5_000 || evs[1].Index != 0 || evs[1].Seq != 2 {
		t.Fatalf("now = %d, events %+v", e.Now(), evs)
	}
}
