package matching_test

// A differential test: random continuous-trading streams go to the engine
// and to refMatcher, a deliberately simple matcher written from the
// documented semantics (plain slices, linear scans, no pooling, no price
// levels). After every command the trades, the ended orders and the books
// must agree; at the end the accounts' totals must agree too.
//
// Every identifier here starts with "ref" so that this file cannot collide
// with the package's other test files.

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/satu-exchange/satu/matching"
)

const refT0 = 1_700_000_000_000

// refSymbol is BTCKZT without a price band, with the given fees.
func refSymbol(maker, taker int64) matching.Symbol {
	return matching.Symbol{Name: "BTCKZT", Base: "BTC", Quote: "KZT", BaseScale: 8, QuoteScale: 2,
		TickSize: 100, LotSize: 1, MinQty: 1, MaxQty: 1_000 * 100_000_000, MinNotional: 100 * 100,
		MakerFeeBps: maker, TakerFeeBps: taker}
}

// Five accounts of three owners; STP acts by owner.
var refAccts = []struct{ id, owner string }{{"d1", "p1"}, {"d2", "p1"}, {"d3", "p2"}, {"d4", "p2"}, {"d5", "p3"}}

type refOrder struct {
	id                               uint64
	acct, owner, clientID            string
	side                             matching.Side
	typ                              matching.OrderType
	tif                              matching.TimeInForce
	stp                              matching.STPMode
	postOnly                         bool
	price                            int64
	qty, remaining, visible, display int64
	expireAt                         int64
	prio                             uint64 // arrival at the back of its price: smaller is earlier
}

// refEv is what is compared: a trade or an ended order.
type refEv struct {
	Kind                string
	Price, Qty          int64
	Buy, Sell           uint64
	BuyAcct, SellAcct   string
	QuoteAmount         int64
	BuyerFee, SellerFee int64
	TakerSide           matching.Side
	Order               uint64
	Status              matching.OrderStatus
	Reason              string
	Quantity, Remaining int64
	Timer               bool // an expiry, before the command's own events
}

type refMatcher struct {
	sym     matching.Symbol
	owner   map[string]string
	stp     map[string]matching.STPMode
	book    []*refOrder // every resting order, both sides, in no particular order
	cids    map[string]map[string]uint64
	nextID  uint64
	prio    uint64
	now     int64
	timer   bool
	out     []refEv
	totals  map[string]map[string]int64 // account → asset → free + held
	feeAcct string
}

func refNewMatcher(sym matching.Symbol) *refMatcher {
	m := &refMatcher{sym: sym, owner: map[string]string{}, stp: map[string]matching.STPMode{},
		cids: map[string]map[string]uint64{}, totals: map[string]map[string]int64{}, feeAcct: matching.DefaultFeeAccount}
	m.totals[m.feeAcct] = map[string]int64{}
	return m
}

func (m *refMatcher) clone() *refMatcher {
	c := *m
	c.book = make([]*refOrder, len(m.book))
	for i, o := range m.book {
		oc := *o
		c.book[i] = &oc
	}
	c.out = nil
	c.totals = map[string]map[string]int64{} // a dry run does not account
	for a := range m.totals {
		c.totals[a] = map[string]int64{}
	}
	return &c
}

func refNotional(price, qty int64, scale int) int64 {
	n := new(big.Int).Mul(big.NewInt(price), big.NewInt(qty))
	n.Quo(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
	return n.Int64()
}

func refFee(amount, bps int64) int64 { return amount * bps / 10_000 }

func refCrosses(side matching.Side, limit, price int64) bool {
	if side == matching.Buy {
		return price <= limit
	}
	return price >= limit
}

// best is the resting order with priority on side: the best price, then
// the earliest arrival.
func (m *refMatcher) best(side matching.Side) *refOrder {
	var b *refOrder
	for _, o := range m.book {
		if o.side != side {
			continue
		}
		if b == nil || o.price == b.price && o.prio < b.prio ||
			side == matching.Buy && o.price > b.price || side == matching.Sell && o.price < b.price {
			b = o
		}
	}
	return b
}

// sorted is one side of the book in priority order.
func (m *refMatcher) sorted(side matching.Side) []*refOrder {
	var out []*refOrder
	for _, o := range m.book {
		if o.side == side {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *refOrder) int {
		if a.price != b.price {
			if (side == matching.Buy) == (a.price > b.price) {
				return -1
			}
			return 1
		}
		if a.prio < b.prio {
			return -1
		}
		return 1
	})
	return out
}

func (m *refMatcher) find(id uint64) *refOrder {
	for _, o := range m.book {
		if o.id == id {
			return o
		}
	}
	return nil
}

func (m *refMatcher) unrest(o *refOrder) {
	m.book = slices.DeleteFunc(m.book, func(x *refOrder) bool { return x == o })
}

func (m *refMatcher) rest(o *refOrder) {
	m.prio++
	o.prio = m.prio
	m.book = append(m.book, o)
}

func (m *refMatcher) done(o *refOrder, status matching.OrderStatus, reason string) {
	m.unrest(o)
	m.out = append(m.out, refEv{Kind: "done", Order: o.id, Status: status, Reason: reason,
		Quantity: o.qty, Remaining: o.remaining, Timer: m.timer})
}

func (m *refMatcher) trade(buy, sell *refOrder, price, q int64, taker matching.Side) {
	n := refNotional(price, q, m.sym.BaseScale)
	bbps, sbps := m.sym.MakerFeeBps, m.sym.MakerFeeBps
	if taker == matching.Buy {
		bbps = m.sym.TakerFeeBps
	} else {
		sbps = m.sym.TakerFeeBps
	}
	bf, sf := refFee(n, bbps), refFee(n, sbps)
	m.out = append(m.out, refEv{Kind: "trade", Price: price, Qty: q, Buy: buy.id, Sell: sell.id,
		BuyAcct: buy.acct, SellAcct: sell.acct, QuoteAmount: n, BuyerFee: bf, SellerFee: sf, TakerSide: taker})
	m.totals[buy.acct]["BTC"] += q
	m.totals[buy.acct]["KZT"] -= n + bf
	m.totals[sell.acct]["BTC"] -= q
	m.totals[sell.acct]["KZT"] += n - sf
	m.totals[m.feeAcct]["KZT"] += bf + sf
}

// takeSlice takes q off a resting order's visible part: it ends when
// nothing remains; an iceberg whose slice is used up shows the next slice
// at the back of its price.
func (m *refMatcher) takeSlice(o *refOrder, q int64, status matching.OrderStatus, reason string) {
	o.remaining -= q
	o.visible -= q
	switch {
	case o.remaining == 0:
		m.done(o, status, reason)
	case o.visible == 0:
		o.visible = min(o.display, o.remaining)
		m.unrest(o)
		m.rest(o)
	}
}

// match crosses t with the book; it reports whether self-trade prevention
// stopped t. In a FOK dry run (fok), meeting an own order stops t unless
// t's mode is expire_maker: the documented FOK rule.
func (m *refMatcher) match(t *refOrder, fok bool) (stopped bool) {
	opp := matching.Buy
	if t.side == matching.Buy {
		opp = matching.Sell
	}
	for t.remaining > 0 {
		mk := m.best(opp)
		if mk == nil || t.typ == matching.Limit && !refCrosses(t.side, t.price, mk.price) {
			return false
		}
		if mk.owner == t.owner {
			if fok && t.stp != matching.STPExpireMaker {
				return true
			}
			switch t.stp {
			case matching.STPExpireMaker:
				m.done(mk, matching.StatusExpired, matching.ReasonSelfTrade)
			case matching.STPExpireBoth:
				m.done(mk, matching.StatusExpired, matching.ReasonSelfTrade)
				return true
			case matching.STPDecrement:
				d := min(t.remaining, mk.visible)
				t.qty -= d
				t.remaining -= d
				mk.qty -= d
				m.takeSlice(mk, d, matching.StatusExpired, matching.ReasonSelfTrade)
				if t.remaining == 0 {
					return true
				}
			default:
				return true
			}
			continue
		}
		q := min(t.remaining, mk.visible)
		if t.side == matching.Buy {
			m.trade(t, mk, mk.price, q, matching.Buy)
		} else {
			m.trade(mk, t, mk.price, q, matching.Sell)
		}
		t.remaining -= q
		m.takeSlice(mk, q, matching.StatusFilled, "")
	}
	return false
}

// fillable: a dry run on a copy of the book fills the FOK order completely.
func (m *refMatcher) fillable(o *refOrder) bool {
	c := m.clone()
	t := *o
	return !c.match(&t, true) && t.remaining == 0
}

func (m *refMatcher) execute(o *refOrder) {
	if o.tif == matching.FOK && !m.fillable(o) {
		m.done(o, matching.StatusExpired, matching.ReasonFOK)
		return
	}
	stopped := m.match(o, false)
	switch {
	case stopped:
		m.done(o, matching.StatusExpired, matching.ReasonSelfTrade)
	case o.remaining == 0:
		m.done(o, matching.StatusFilled, "")
	case o.typ == matching.Market:
		m.done(o, matching.StatusExpired, matching.ReasonMarket)
	case o.tif == matching.IOC || o.tif == matching.FOK:
		m.done(o, matching.StatusExpired, matching.ReasonIOC)
	default:
		if o.display > 0 {
			o.visible = min(o.display, o.remaining)
		} else {
			o.visible = o.remaining
		}
		m.rest(o)
	}
}

func (m *refMatcher) wouldTake(side matching.Side, price int64) bool {
	opp := matching.Buy
	if side == matching.Buy {
		opp = matching.Sell
	}
	b := m.best(opp)
	return b != nil && refCrosses(side, price, b.price)
}

// advance expires GTD orders, in expiry then ID order.
func (m *refMatcher) advance(now int64) {
	m.now = max(m.now, now)
	m.timer = true
	for {
		var next *refOrder
		for _, o := range m.book {
			if o.tif == matching.GTD && o.expireAt <= m.now &&
				(next == nil || o.expireAt < next.expireAt || o.expireAt == next.expireAt && o.id < next.id) {
				next = o
			}
		}
		if next == nil {
			break
		}
		m.done(next, matching.StatusExpired, matching.ReasonExpired)
	}
	m.timer = false
}

// apply runs a command and reports whether it was refused. It supports the
// commands the differential generator makes, whose parameters are valid
// but for what depends on the state.
func (m *refMatcher) apply(c matching.Command) (rejected bool) {
	m.out = nil
	m.advance(c.Time)
	switch c.Kind {
	case matching.CmdOpenAccount:
		m.owner[c.Account], m.stp[c.Account] = c.Owner, c.STP
		if c.STP == matching.STPDefault {
			m.stp[c.Account] = matching.STPExpireTaker
		}
		m.cids[c.Account] = map[string]uint64{}
		m.totals[c.Account] = map[string]int64{}
	case matching.CmdDeposit:
		m.totals[c.Account][c.Asset] += c.Amount
	case matching.CmdSetSTP:
		m.stp[c.Account] = c.STP
	case matching.CmdTick:
	case matching.CmdPlaceOrder:
		if c.PostOnly && m.wouldTake(c.Side, c.Price) {
			return true
		}
		m.nextID++
		o := &refOrder{id: m.nextID, acct: c.Account, owner: m.owner[c.Account], clientID: c.ClientID,
			side: c.Side, typ: c.Type, tif: c.TIF, stp: c.STP, postOnly: c.PostOnly, price: c.Price,
			qty: c.Quantity, remaining: c.Quantity, display: c.DisplayQty, expireAt: c.ExpireAt}
		if o.stp == matching.STPDefault {
			o.stp = m.stp[c.Account]
		}
		if o.tif == 0 {
			o.tif = matching.GTC
			if o.typ == matching.Market {
				o.tif = matching.IOC
			}
		}
		o.visible = o.qty
		if o.display > 0 {
			o.visible = o.display
		}
		m.cids[c.Account][c.ClientID] = o.id
		m.execute(o)
	case matching.CmdCancelOrder:
		o := m.lookup(c)
		if o == nil {
			return true
		}
		m.done(o, matching.StatusCanceled, matching.ReasonCanceled)
	case matching.CmdCancelAll:
		var mine []*refOrder
		for _, o := range m.book {
			if o.acct == c.Account {
				mine = append(mine, o)
			}
		}
		if len(mine) == 0 {
			return true
		}
		slices.SortFunc(mine, func(a, b *refOrder) int { return int(a.id) - int(b.id) })
		for _, o := range mine {
			m.done(o, matching.StatusCanceled, matching.ReasonCancelAll)
		}
	case matching.CmdAmendOrder:
		return m.amend(c)
	default:
		panic(fmt.Sprintf("reference: command %s not supported", c.Kind))
	}
	return false
}

func (m *refMatcher) lookup(c matching.Command) *refOrder {
	id := c.OrderID
	if id == 0 {
		id = m.cids[c.Account][c.ClientID]
	}
	o := m.find(id)
	if o == nil || o.acct != c.Account {
		return nil
	}
	return o
}

// amend: a quantity decrease at the same price keeps the order's place;
// anything else re-enters it at the back of its (new) price, where it may
// trade at once.
func (m *refMatcher) amend(c matching.Command) (rejected bool) {
	o := m.lookup(c)
	if o == nil {
		return true
	}
	price, qty := o.price, o.qty
	if c.Price != 0 {
		price = c.Price
	}
	if c.Quantity != 0 {
		qty = c.Quantity
	}
	filled := o.qty - o.remaining
	keeps := price == o.price && qty < o.qty
	switch {
	case qty <= filled,
		price == o.price && qty == o.qty,
		o.display > 0 && o.display >= qty-filled,
		o.display > 0 && price != o.price && c.Time >= matching.RuleChange20261204 && refNotional(price, o.display, m.sym.BaseScale) < m.sym.MinNotional,
		refNotional(price, qty, m.sym.BaseScale) < m.sym.MinNotional,
		!keeps && o.postOnly && m.wouldTake(o.side, price):
		return true
	}
	if keeps {
		o.qty, o.remaining = qty, qty-filled
		o.visible = min(o.visible, o.remaining)
		return false
	}
	m.unrest(o)
	o.price, o.qty, o.remaining = price, qty, qty-filled
	o.visible = o.remaining
	if o.display > 0 {
		o.visible = o.display
	}
	m.execute(o)
	return false
}

// refSrc is where a stream's choices come from: rapid (which shrinks a
// failure to a small case) or a seeded generator (cheap, many seeds).
type refSrc interface {
	n(lo, hi int) int // a size, biased small under rapid
	u(k int) int      // a choice in [0, k), about uniform
	Helper()
	Fatalf(format string, args ...any)
}

type refRapid struct{ *rapid.T }

func (s refRapid) n(lo, hi int) int { return rapid.IntRange(lo, hi).Draw(s.T, "n") }

// u scrambles a 64-bit draw (splitmix64's finaliser, 0 maps to 0): rapid's
// bias towards small values would otherwise swamp the later choices.
func (s refRapid) u(k int) int {
	x := rapid.Uint64().Draw(s.T, "u")
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int(x % uint64(k))
}

type refRand struct {
	*testing.T
	r *rand.Rand
}

func (s refRand) n(lo, hi int) int { return lo + s.r.IntN(hi-lo+1) }
func (s refRand) u(k int) int      { return s.r.IntN(k) }

type refRun struct {
	src  refSrc
	e    *matching.Engine
	m    *refMatcher
	now  int64
	nCID int
	log  []matching.Command
	nTrd int
	tag  string
}

func refNewRun(src refSrc) *refRun {
	fees := [][2]int64{{10, 20}, {0, 25}, {15, 15}, {7, 13}}[src.u(4)]
	sym := refSymbol(fees[0], fees[1])
	e, err := matching.New([]matching.Symbol{sym})
	if err != nil {
		src.Fatalf("%v", err)
	}
	r := &refRun{src: src, e: e, m: refNewMatcher(sym), now: refT0}
	for _, a := range refAccts {
		r.apply(matching.Command{Kind: matching.CmdOpenAccount, Account: a.id, Owner: a.owner,
			AccountKind: matching.KindTrader, STP: matching.STPMode(1 + src.u(4))})
		r.apply(matching.Command{Kind: matching.CmdDeposit, Account: a.id, Asset: "KZT", Amount: 1 << 50, ExtRef: a.id + "-kzt"})
		r.apply(matching.Command{Kind: matching.CmdDeposit, Account: a.id, Asset: "BTC", Amount: 1 << 40, ExtRef: a.id + "-btc"})
	}
	return r
}

func (r *refRun) fatalf(format string, args ...any) {
	r.src.Helper()
	var b strings.Builder
	for i, c := range r.log {
		raw, _ := json.Marshal(c)
		fmt.Fprintf(&b, "  %d: %s\n", i+1, raw)
	}
	r.src.Fatalf("%scommand %d: %s\ncommand log:\n%s", r.tag, len(r.log), fmt.Sprintf(format, args...), b.String())
}

func (r *refRun) acct() string { return refAccts[r.src.u(len(refAccts))].id }

// price: 30,000,000 ₸/BTC ± up to six 10,000 ₸ steps, so orders cross often.
func (r *refRun) price() int64 { return 3_000_000_000 + int64(r.src.n(-6, 6))*1_000_000 }

// qty: 400 to 20,000 satoshi (120 to 6,000 ₸): above the minimum notional.
func (r *refRun) qty() int64 { return int64(r.src.n(400, 20_000)) }

func (r *refRun) step() {
	r.now += int64(r.src.n(0, 1000))
	acct := r.acct()
	var c matching.Command
	switch k := r.src.u(100); {
	case k < 55:
		r.nCID++
		c = matching.Command{Kind: matching.CmdPlaceOrder, Account: acct, Symbol: "BTCKZT",
			ClientID: fmt.Sprintf("r%d", r.nCID), Side: matching.Side(1 + r.src.u(2)), Type: matching.Limit,
			Price: r.price(), Quantity: r.qty()}
		switch t := r.src.u(20); {
		case t < 10:
			c.TIF = matching.GTC
		case t < 13:
			c.TIF = matching.IOC
		case t < 16:
			c.TIF = matching.FOK
		default:
			c.TIF = matching.GTD
			c.ExpireAt = r.now + int64(r.src.n(1, 20_000))
		}
		resting := c.TIF == matching.GTC || c.TIF == matching.GTD
		if resting && r.src.u(7) == 0 {
			c.PostOnly = true
		}
		if resting && r.src.u(5) == 0 {
			// An iceberg, where its slice is worth the minimum notional.
			if d := max(1, c.Quantity/int64(r.src.n(2, 8))); refNotional(c.Price, d, r.m.sym.BaseScale) >= r.m.sym.MinNotional {
				c.DisplayQty = d
			}
		}
		if r.src.u(2) == 0 {
			c.STP = matching.STPMode(1 + r.src.u(4))
		}
	case k < 65:
		r.nCID++
		c = matching.Command{Kind: matching.CmdPlaceOrder, Account: acct, Symbol: "BTCKZT",
			ClientID: fmt.Sprintf("r%d", r.nCID), Side: matching.Side(1 + r.src.u(2)), Type: matching.Market,
			Quantity: r.qty() * int64(r.src.n(1, 4))}
		if r.src.u(2) == 0 {
			c.STP = matching.STPMode(1 + r.src.u(4))
		}
	case k < 77:
		c = matching.Command{Kind: matching.CmdCancelOrder, Account: acct}
		c.OrderID, c.ClientID = r.target(acct)
	case k < 79:
		c = matching.Command{Kind: matching.CmdCancelAll, Account: acct}
		if r.src.u(2) == 0 {
			c.Symbol = "BTCKZT"
		}
	case k < 94:
		c = matching.Command{Kind: matching.CmdAmendOrder, Account: acct}
		c.OrderID, c.ClientID = r.target(acct)
		o := r.m.lookup(c)
		switch a := r.src.u(6); {
		case a < 2:
			c.Price = r.price()
		case a < 4 && o != nil:
			c.Quantity = max(1, o.qty+int64(r.src.n(-6, 4))*o.qty/8) // mostly down: keeps priority
		default:
			c.Price, c.Quantity = r.price(), r.qty()
		}
	case k < 97:
		r.now += int64(r.src.n(0, 30_000))
		c = matching.Command{Kind: matching.CmdTick}
	default:
		c = matching.Command{Kind: matching.CmdSetSTP, Account: acct, STP: matching.STPMode(1 + r.src.u(4))}
	}
	r.apply(c)
}

// target names an order of acct: mostly an open one, by ID or client ID;
// else any order ever made (perhaps ended, perhaps another account's).
func (r *refRun) target(acct string) (uint64, string) {
	var mine []*refOrder
	for _, o := range r.m.book {
		if o.acct == acct {
			mine = append(mine, o)
		}
	}
	if len(mine) > 0 && r.src.u(5) > 0 {
		o := mine[r.src.u(len(mine))]
		if r.src.u(2) == 0 {
			return 0, o.clientID
		}
		return o.id, ""
	}
	return uint64(r.src.n(0, int(r.m.nextID)+1)), ""
}

func (r *refRun) apply(c matching.Command) {
	r.src.Helper()
	c.Seq = r.e.Seq() + 1
	c.Time = r.now
	r.log = append(r.log, c)
	evs, err := r.e.Apply(c, nil)
	if err != nil {
		r.fatalf("apply: %v", err)
	}
	refused := r.m.apply(c)
	var got []refEv
	engineRefused := false
	for _, ev := range evs {
		switch ev.Kind {
		case matching.EvRejected:
			engineRefused = true
			if refused {
				continue
			}
			r.fatalf("the engine refused what the reference accepts: %s %s", ev.Code, ev.Message)
		case matching.EvDuplicate:
			r.fatalf("unexpected duplicate")
		case matching.EvTrade:
			r.nTrd++
			got = append(got, refEv{Kind: "trade", Price: ev.Price, Qty: ev.Quantity, Buy: ev.BuyOrderID,
				Sell: ev.SellOrderID, BuyAcct: ev.BuyerAccount, SellAcct: ev.SellerAccount, QuoteAmount: ev.QuoteAmount,
				BuyerFee: ev.BuyerFee, SellerFee: ev.SellerFee, TakerSide: ev.TakerSide})
		case matching.EvOrderDone:
			got = append(got, refEv{Kind: "done", Order: ev.OrderID, Status: ev.Status, Reason: ev.Reason,
				Quantity: ev.Quantity, Remaining: ev.Remaining, Timer: ev.Timer})
		}
	}
	if refused != engineRefused {
		r.fatalf("the reference refused a command the engine accepted")
	}
	if !reflect.DeepEqual(got, r.m.out) {
		r.fatalf("events differ:\n engine    %s\n reference %s", refShow(got), refShow(r.m.out))
	}
	r.compareBooks()
}

func refShow(evs []refEv) string {
	var b strings.Builder
	for _, ev := range evs {
		if ev.Kind == "trade" {
			fmt.Fprintf(&b, "\n   trade %d@%d buy#%d(%s) sell#%d(%s) n=%d fees %d/%d taker %s",
				ev.Qty, ev.Price, ev.Buy, ev.BuyAcct, ev.Sell, ev.SellAcct, ev.QuoteAmount, ev.BuyerFee, ev.SellerFee, ev.TakerSide)
		} else {
			fmt.Fprintf(&b, "\n   done #%d %s %q qty %d remaining %d timer %v", ev.Order, ev.Status, ev.Reason,
				ev.Quantity, ev.Remaining, ev.Timer)
		}
	}
	return b.String()
}

// compareBooks: both sides, order by order in priority.
func (r *refRun) compareBooks() {
	type row struct {
		ID                             uint64
		Acct                           string
		Price, Qty, Remaining, Visible int64
		Display                        int64
		STP                            matching.STPMode
		TIF                            matching.TimeInForce
	}
	for _, side := range []matching.Side{matching.Buy, matching.Sell} {
		var got, want []row
		for _, o := range r.e.BookOrders("BTCKZT", side) {
			got = append(got, row{o.ID, o.Account, o.Price, o.Quantity, o.Remaining, o.Visible, o.Display, o.STP, o.TIF})
		}
		for _, o := range r.m.sorted(side) {
			want = append(want, row{o.id, o.acct, o.price, o.qty, o.remaining, o.visible, o.display, o.stp, o.tif})
		}
		if !reflect.DeepEqual(got, want) {
			r.fatalf("%s book differs:\n engine    %+v\n reference %+v", side, got, want)
		}
	}
}

// finish compares every account's total (free + held) per asset.
func (r *refRun) finish() {
	for acct, assets := range r.m.totals {
		for _, asset := range []string{"BTC", "KZT"} {
			f, h := r.e.Balance(acct, asset)
			if f+h != assets[asset] {
				r.fatalf("%s %s: engine %d + %d, reference %d", acct, asset, f, h, assets[asset])
			}
		}
	}
}

func TestReferenceDifferentialRapid(t *testing.T) {
	trades := 0
	rapid.Check(t, func(rt *rapid.T) {
		src := refRapid{rt}
		r := refNewRun(src)
		steps := 100 + src.u(701) // 100 to 800 commands after the set-up
		for range steps {
			r.step()
		}
		r.finish()
		trades += r.nTrd
	})
	t.Logf("%d trades", trades)
}

func TestReferenceDifferentialSeeds(t *testing.T) {
	seeds, steps := 500, 400
	if testing.Short() {
		seeds = 30
	}
	trades := 0
	for seed := range seeds {
		r := refNewRun(refRand{t, rand.New(rand.NewPCG(uint64(seed), 0x5a7))})
		r.tag = fmt.Sprintf("seed %d, ", seed)
		for range steps {
			r.step()
		}
		r.finish()
		trades += r.nTrd
	}
	t.Logf("%d seeds × %d commands, %d trades", seeds, steps, trades)
}
