package matching

import (
	"math"

	"github.com/satu-exchange/satu/internal/apperr"
)

// Why matching stopped before the taker was done.
type stop uint8

const (
	stopNone      stop = iota
	stopSelfTrade      // self-trade prevention ended the taker
	stopBand           // the next execution was beyond the price band
	stopBudget         // a market buy by amount cannot afford the next lot
)

func crosses(side Side, limit, price int64) bool {
	if side == Buy {
		return price <= limit
	}
	return price >= limit
}

// checkOrder validates a new order completely, before anything changes,
// and returns its resolved time in force, STP mode and hold.
func (e *Engine) checkOrder(c *Command, a *account, m *market) (tif TimeInForce, stp STPMode, hold int64, err *apperr.Error) {
	tif, stp = c.TIF, c.STP
	switch {
	case c.Side != Buy && c.Side != Sell:
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "side must be buy or sell")
	case c.Type != Limit && c.Type != Market:
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "order type must be limit or market")
	case int(c.STP) >= len(stpNames):
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "unknown STP mode")
	case c.Purpose > PurposeMandatory:
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "unknown purpose")
	case a.kind == KindFee:
		return 0, 0, 0, apperr.New(apperr.NotPermitted, "the fee account does not trade")
	case m.halted:
		return 0, 0, 0, apperr.New(apperr.MarketHalted, "%s is halted: only cancels are accepted", m.Name)
	case m.phase == PhaseClosed:
		return 0, 0, 0, apperr.New(apperr.PhaseRefused, "%s is closed", m.Name)
	case c.Purpose == PurposeMandatory && c.Side != Sell:
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "only sell orders can be mandatory")
	case c.Purpose == PurposeMandatory && !a.has(PermMandatorySell):
		return 0, 0, 0, apperr.New(apperr.NotPermitted, "account %q may not place mandatory orders (no active licence on record)", a.id)
	case c.Purpose != PurposeMandatory && c.Obligation != "":
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "an obligation reference needs purpose mandatory")
	case len(c.Obligation) > MaxClientIDLen:
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "obligation reference is longer than %d characters", MaxClientIDLen)
	}
	if stp == STPDefault {
		stp = a.stp
	}
	if c.Type == Market {
		tif, hold, err = e.checkMarket(c, a, m)
		return tif, stp, hold, err
	}
	if tif == 0 {
		tif = GTC
	}
	switch {
	case int(tif) >= len(tifNames):
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "time in force must be GTC, IOC, FOK or GTD")
	case c.Price <= 0 || !m.tick.divides(c.Price):
		return 0, 0, 0, apperr.New(apperr.InvalidPrice, "price must be a positive multiple of the tick size %d", m.TickSize)
	case c.QuoteQty != 0:
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "a quote amount is for market buys only")
	}
	if err := m.checkQty(c.Quantity); err != nil {
		return 0, 0, 0, err
	}
	n, ok := m.Notional(c.Price, c.Quantity)
	switch {
	case !ok:
		return 0, 0, 0, apperr.New(apperr.InvalidQuantity, "price × quantity is too large")
	case n < m.MinNotional:
		return 0, 0, 0, apperr.New(apperr.InvalidQuantity, "price × quantity is below the minimum notional %d", m.MinNotional)
	case tif == GTD && c.ExpireAt <= e.now:
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "a GTD order needs an expiry after the current time %d", e.now)
	case tif != GTD && c.ExpireAt != 0:
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "an expiry is for GTD orders only")
	case c.DisplayQty < 0:
		return 0, 0, 0, apperr.New(apperr.InvalidQuantity, "display quantity must not be negative")
	case c.DisplayQty > 0 && (c.DisplayQty%m.LotSize != 0 || c.DisplayQty < m.MinQty || c.DisplayQty >= c.Quantity):
		return 0, 0, 0, apperr.New(apperr.InvalidQuantity, "display quantity must be a multiple of the lot, at least the minimum and below the quantity")
	case c.DisplayQty > 0 && tif != GTC && tif != GTD:
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "an iceberg must be GTC or GTD")
	case c.DisplayQty > 0 && e.now >= RuleChange20261204 && m.sliceBelowMinNotional(c.Price, c.DisplayQty):
		// Each slice trades on its own: a slice of a few lots would make
		// one taker a trade per slice — millions of events in a command —
		// each below the notional whose fee rounds to anything.
		return 0, 0, 0, apperr.New(apperr.InvalidQuantity, "an iceberg's display quantity × price must be at least the minimum notional %d", m.MinNotional)
	case c.PostOnly && tif != GTC && tif != GTD:
		return 0, 0, 0, apperr.New(apperr.InvalidParameter, "a post-only order must be GTC or GTD")
	case m.phase.call() && (tif == IOC || tif == FOK):
		return 0, 0, 0, apperr.New(apperr.PhaseRefused, "%s is in %s: IOC and FOK orders need continuous trading", m.Name, m.phase)
	case m.phase == PhaseTradingAtLast && m.closePrice == 0:
		return 0, 0, 0, apperr.New(apperr.PhaseRefused, "%s has no closing price to trade at", m.Name)
	case m.phase == PhaseTradingAtLast && c.Price != m.closePrice:
		return 0, 0, 0, apperr.New(apperr.PhaseRefused, "%s is trading at last: the price must be the closing price %d", m.Name, m.closePrice)
	case c.PostOnly && m.wouldTake(c.Side, c.Price):
		return 0, 0, 0, apperr.New(apperr.WouldTake, "post-only order would trade on arrival")
	}
	if c.Side == Sell {
		hold = c.Quantity
	} else if hold, ok = m.buyHold(c.Price, c.Quantity); !ok {
		return 0, 0, 0, apperr.New(apperr.InvalidQuantity, "price × quantity is too large")
	}
	return tif, stp, hold, e.checkFunds(a, m, c.Side, hold)
}

func (m *market) checkQty(q int64) *apperr.Error {
	if q <= 0 || !m.lot.divides(q) || q < m.MinQty || q > m.MaxQty {
		return apperr.New(apperr.InvalidQuantity, "quantity must be a multiple of the lot size %d between %d and %d", m.LotSize, m.MinQty, m.MaxQty)
	}
	return nil
}

// wouldTake reports whether a limit order at price would trade on arrival.
func (m *market) wouldTake(side Side, price int64) bool {
	if !m.phase.matches() {
		return false
	}
	l := m.side(side.Opposite()).best()
	return l != nil && crosses(side, price, l.price)
}

func (e *Engine) checkFunds(a *account, m *market, side Side, hold int64) *apperr.Error {
	asset := m.quote
	if side == Sell {
		asset = m.base
	}
	if a.bal[asset].free < hold {
		return apperr.New(apperr.InsufficientFunds, "free %s balance does not cover the order", e.assets[asset])
	}
	return nil
}

// checkMarket validates a market order: continuous trading only, no limit,
// sized by base quantity (a buy may instead give a quote budget).
func (e *Engine) checkMarket(c *Command, a *account, m *market) (TimeInForce, int64, *apperr.Error) {
	switch {
	case m.phase != PhaseContinuous:
		return 0, 0, apperr.New(apperr.PhaseRefused, "%s is in %s: market orders need continuous trading", m.Name, m.phase)
	case c.Price != 0:
		return 0, 0, apperr.New(apperr.InvalidPrice, "a market order has no price")
	case c.TIF != 0 && c.TIF != IOC:
		return 0, 0, apperr.New(apperr.InvalidParameter, "a market order is IOC")
	case c.PostOnly || c.DisplayQty != 0 || c.ExpireAt != 0:
		return 0, 0, apperr.New(apperr.InvalidParameter, "a market order cannot be post-only, iceberg or GTD")
	case c.Side == Buy && (c.Quantity == 0) == (c.QuoteQty == 0):
		return 0, 0, apperr.New(apperr.InvalidParameter, "a market buy gives either a quantity or a quote amount")
	case c.Side == Sell && c.QuoteQty != 0:
		return 0, 0, apperr.New(apperr.InvalidParameter, "a market sell gives a quantity")
	}
	var hold int64
	switch {
	case c.QuoteQty != 0:
		if c.QuoteQty < 0 || c.QuoteQty < m.MinNotional {
			return 0, 0, apperr.New(apperr.InvalidQuantity, "quote amount must be at least the minimum notional %d", m.MinNotional)
		}
		hold = c.QuoteQty
	case c.Side == Sell:
		if err := m.checkQty(c.Quantity); err != nil {
			return 0, 0, err
		}
		hold = c.Quantity
	default:
		if err := m.checkQty(c.Quantity); err != nil {
			return 0, 0, err
		}
		var ok bool
		if hold, ok = m.marketBuyCost(a.ownerID, c.Quantity, e.now >= RuleChange20261204); !ok {
			return 0, 0, apperr.New(apperr.InvalidQuantity, "the cost of quantity is too large")
		}
	}
	return IOC, hold, e.checkFunds(a, m, c.Side, hold)
}

// marketBuyCost bounds what a market buy of qty can cost: it walks the
// asks within the price band as they stand, skipping the buyer's own orders
// (so the walk goes at least as deep as the execution will), and sums per
// price level the rounded-up notional of what it takes there plus the
// larger fee on it. Per level, not per order: an iceberg trades slice by
// slice, interleaved with the orders behind it, so the fills at one price
// split the level's quantity in ways no walk of its orders foresees — but
// fills' notionals and fees round down, so no split of a level's quantity
// costs more than the hold on the whole of it. Before RuleChange20261204
// (perLevel false) the hold was per resting order, as journaled commands of
// that time were checked.
func (m *market) marketBuyCost(owner uint32, qty int64, perLevel bool) (int64, bool) {
	var cost int64
	hold := func(price, q int64) bool { // adds q's hold at price to cost
		h, ok := m.buyHold(price, q)
		if !ok || cost > 1<<62-h {
			return false
		}
		cost += h
		qty -= q
		return true
	}
	for i := len(m.asks.levels) - 1; i >= 0 && qty > 0; i-- {
		l := m.asks.levels[i]
		if l.price > m.bandHi {
			break
		}
		var q int64 // taken at this level and not held yet
		for o := l.head; o != nil && q < qty; o = o.next {
			if o.acct.ownerID == owner {
				continue
			}
			q += min(qty-q, o.remaining)
			if !perLevel { // each order held on its own
				if !hold(l.price, q) {
					return 0, false
				}
				q = 0
			}
		}
		if q > 0 && !hold(l.price, q) {
			return 0, false
		}
	}
	return cost, true
}

func (e *Engine) placeOrder(c *Command) *apperr.Error {
	a, err := e.account(c.Account)
	if err != nil {
		return err
	}
	m, err := e.market(c.Symbol)
	if err != nil {
		return err
	}
	if c.ClientID == "" || len(c.ClientID) > MaxClientIDLen {
		return apperr.New(apperr.InvalidParameter, "client order ID must be 1 to %d characters", MaxClientIDLen)
	}
	cidHash := e.cids.hash(a, c.ClientID)
	if rec, seen := e.cids.find(cidHash, a, c.ClientID); seen {
		ev := e.emit(EvDuplicate)
		ev.Account, ev.Symbol, ev.ClientID, ev.OrderID = a.id, c.Symbol, c.ClientID, e.cids.recs.at(int(rec)).id
		return nil
	}
	tif, stp, hold, err := e.checkOrder(c, a, m)
	if err != nil {
		return err
	}

	e.nextID++
	o := e.pool.order()
	o.id, o.acct, o.sym, o.clientID, o.obligation = e.nextID, a, m, c.ClientID, c.Obligation
	o.side, o.typ, o.tif, o.stp, o.purpose, o.postOnly = c.Side, c.Type, tif, stp, c.Purpose, c.PostOnly
	o.price, o.qty, o.display, o.expireAt, o.heapIdx = c.Price, c.Quantity, c.DisplayQty, c.ExpireAt, -1
	if c.QuoteQty != 0 {
		o.byQuote, o.budget, o.qty = true, c.QuoteQty, m.MaxQty
	}
	o.remaining, o.visible = o.qty, o.qty
	if o.display > 0 {
		o.visible = o.display
	}
	o.cidHash, o.cidRec = cidHash, e.cids.put(cidHash, a, c.ClientID, o.id)
	asset := o.holdAsset()
	b := &a.bal[asset]
	b.free -= hold
	b.held += hold
	o.held = hold
	e.touch(a, asset)

	ev := e.orderEvent(EvOrderAccepted, o)
	ev.Status, ev.Amount = StatusNew, c.QuoteQty
	if o.byQuote {
		ev.Quantity, ev.Remaining = 0, 0
	}
	e.execute(o, m)
	return nil
}

// holdAsset is the asset index an order's hold sits in.
func (o *order) holdAsset() int {
	if o.side == Sell {
		return o.sym.base
	}
	return o.sym.quote
}

// orderEvent emits an order event describing o.
func (e *Engine) orderEvent(kind EventKind, o *order) *Event {
	ev := e.emit(kind)
	ev.Account, ev.Symbol, ev.OrderID, ev.ClientID = o.acct.id, o.sym.Name, o.id, o.clientID
	ev.Side, ev.Type, ev.TIF, ev.Price = o.side, o.typ, o.tif, o.price
	ev.Quantity, ev.Remaining, ev.Filled, ev.QuoteAmount = o.qty, o.remaining, o.filled(), o.quote
	ev.Purpose, ev.Obligation = o.purpose, o.obligation
	return ev
}

// execute runs a new (or re-priced) order: it matches when the phase
// matches, then rests the rest or ends the order.
func (e *Engine) execute(o *order, m *market) {
	why := stopNone
	if m.phase.matches() && !m.halted {
		if o.tif == FOK && !m.fillable(o) {
			e.done(o, StatusExpired, ReasonFOK)
			return
		}
		why = e.match(o, m)
	}
	switch {
	case why == stopSelfTrade:
		e.done(o, StatusExpired, ReasonSelfTrade)
	case o.remaining == 0 || o.byQuote && o.filled() > 0 && (why == stopBudget || o.budget == 0):
		e.done(o, StatusFilled, "")
	case o.typ == Market:
		e.done(o, StatusExpired, bandOr(why, ReasonMarket))
	case o.tif == IOC || o.tif == FOK:
		e.done(o, StatusExpired, bandOr(why, ReasonIOC))
	default:
		e.rest(o, m)
	}
	if why == stopBand {
		m.volUntil = e.now + m.VolatilityAuctionMs
		e.transition(m, PhaseVolatilityAuction)
	}
}

func bandOr(why stop, reason string) string {
	if why == stopBand {
		return ReasonPriceBand
	}
	return reason
}

// fillable reports whether a FOK order can fill completely now, walking
// the opposite orders it crosses within the band as matching would. An
// order of its own owner stops matching (unless the FOK expires makers):
// within that level only the visible parts queued before it are reachable,
// since an iceberg's next slice goes to the back of the level, behind it.
// A level without such an order yields its whole remaining quantity.
func (m *market) fillable(o *order) bool {
	need := o.remaining
	opp := m.side(o.side.Opposite())
	for i := len(opp.levels) - 1; i >= 0; i-- {
		l := opp.levels[i]
		if !crosses(o.side, o.price, l.price) ||
			m.phase != PhaseTradingAtLast && (l.price < m.bandLo || l.price > m.bandHi) {
			return false
		}
		var visible, total int64
		blocked := false
		for mk := l.head; mk != nil; mk = mk.next {
			if mk.acct.ownerID == o.acct.ownerID {
				if o.stp == STPExpireMaker {
					continue
				}
				blocked = true
				break
			}
			visible += mk.visible
			total += mk.remaining
		}
		if blocked {
			return need <= visible
		}
		if need -= total; need <= 0 {
			return true
		}
	}
	return false
}

// match crosses taker t with the opposite side in price-time priority, at
// the makers' prices (at the closing price in trading-at-last). The price
// band's reference is the last trade price before t arrived.
func (e *Engine) match(t *order, m *market) stop {
	opp := m.side(t.side.Opposite())
	tal := m.phase == PhaseTradingAtLast
	why := stopNone
	var last int64
	for t.remaining > 0 {
		l := opp.best()
		if l == nil || t.typ == Limit && !crosses(t.side, t.price, l.price) {
			break
		}
		price := l.price
		if tal {
			price = m.closePrice
		}
		// A market buy by amount that cannot afford a lot here is done
		// before anything else is looked at: the band or the owner of the
		// next order no longer concern it.
		var bq int64
		if t.byQuote {
			if bq = m.qtyForBudget(t.budget, price, m.TakerFeeBps); bq == 0 {
				why = stopBudget
				break
			}
		}
		if !tal && (price < m.bandLo || price > m.bandHi) {
			why = stopBand
			break
		}
		mk := l.head
		if mk.acct.ownerID == t.acct.ownerID {
			if e.selfTrade(t, mk) {
				why = stopSelfTrade
				break
			}
			continue
		}
		q := min(t.remaining, mk.visible)
		if t.byQuote {
			q = min(q, bq)
		}
		if t.side == Buy {
			e.trade(m, t, mk, price, q, Buy)
		} else {
			e.trade(m, mk, t, price, q, Sell)
		}
		t.remaining -= q
		t.visible = min(t.visible, t.remaining)
		last = price
		e.reduceResting(mk, q, false)
	}
	if last != 0 {
		m.lastPrice = last
		if !tal {
			m.setRef(last)
		}
	}
	return why
}

// selfTrade applies t's STP mode against its own owner's resting order mk,
// and reports whether t stops.
func (e *Engine) selfTrade(t, mk *order) bool {
	switch t.stp {
	case STPExpireMaker:
		e.done(mk, StatusExpired, ReasonSelfTrade)
		return false
	case STPExpireBoth:
		e.done(mk, StatusExpired, ReasonSelfTrade)
		return true
	case STPDecrement:
		if t.byQuote { // no base quantity to decrement: as expire_taker
			return true
		}
		d := min(t.remaining, mk.visible)
		t.qty -= d
		t.remaining -= d
		t.visible = min(t.visible, t.remaining)
		mk.qty -= d
		e.reduceResting(mk, d, true) // expires mk if nothing is left, else says its new size
		return t.remaining == 0
	default:
		return true
	}
}

// trade executes q at price between buy and sell orders: the buyer pays
// notional + fee from its hold, the seller's base hold goes to the buyer,
// the seller receives notional − fee, the fee account both fees. The
// notional cannot overflow: it is at most the buyer's hold.
func (e *Engine) trade(m *market, buy, sell *order, price, q int64, takerSide Side) {
	n, _ := m.Notional(price, q)
	bbps, sbps := m.MakerFeeBps, m.MakerFeeBps
	switch takerSide {
	case Buy:
		bbps = m.TakerFeeBps
	case Sell:
		sbps = m.TakerFeeBps
	}
	bf, sf := Fee(n, bbps), Fee(n, sbps)
	ba, sa := buy.acct, sell.acct
	ba.bal[m.quote].held -= n + bf
	buy.held -= n + bf
	buy.quote, sell.quote = AddSaturating(buy.quote, n), AddSaturating(sell.quote, n)
	if buy.byQuote {
		buy.budget -= n + bf
	}
	ba.bal[m.base].free += q
	sa.bal[m.base].held -= q
	sell.held -= q
	sa.bal[m.quote].free += n - sf
	e.feeAcct.bal[m.quote].free += bf + sf
	e.touch(ba, m.quote)
	e.touch(ba, m.base)
	e.touch(sa, m.base)
	e.touch(sa, m.quote)
	e.touch(e.feeAcct, m.quote)

	ev := e.emit(EvTrade)
	ev.Symbol, ev.BaseAsset, ev.QuoteAsset, ev.FeeAccount = m.Name, m.Base, m.Quote, e.feeAcct.id
	ev.Price, ev.Quantity, ev.QuoteAmount, ev.BuyerFee, ev.SellerFee = price, q, n, bf, sf
	ev.TakerSide, ev.BuyerAccount, ev.SellerAccount, ev.BuyOrderID, ev.SellOrderID = takerSide, ba.id, sa.id, buy.id, sell.id
	ev.Purpose, ev.Obligation = sell.purpose, sell.obligation
}

// AddSaturating is a + b for b ≥ 0, or MaxInt64 past it: an order's quote
// amount is reported, not held, and one order's fills over its life may
// move more than the asset's total on the exchange at any one time.
func AddSaturating(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// reduceResting takes q (filled, or decremented by STP) off a resting order's
// visible part; the order ends when nothing remains, and an iceberg whose
// visible part is used up shows its next slice at the back of the level. A
// decremented order that lives on is said as an amendment, so that its
// owner and the order book's mirror learn its new size.
func (e *Engine) reduceResting(o *order, q int64, decrement bool) {
	l := o.lvl
	o.remaining -= q
	o.visible -= q
	l.visible -= q
	l.total -= q
	e.touchLevel(o.sym, o.side, l)
	if o.remaining == 0 {
		if decrement {
			e.done(o, StatusExpired, ReasonSelfTrade)
		} else {
			e.done(o, StatusFilled, "")
		}
		return
	}
	requeued := o.visible == 0 // a slice used up: the next one goes to the back
	if requeued {
		l.unlink(o)
		o.visible = min(o.display, o.remaining)
		l.pushBack(o)
	}
	e.releaseExcess(o)
	if decrement {
		ev := e.orderEvent(EvOrderAmended, o)
		ev.Status, ev.KeepsPriority, ev.Reason = amendedStatus(o), !requeued, ReasonSelfTrade
	}
}

// releaseExcess returns to free whatever a resting order holds beyond what
// its remaining quantity needs at its limit price (fills at better prices
// and rounding leave some over). A sell holds exactly its remaining quantity.
func (e *Engine) releaseExcess(o *order) {
	if o.typ == Market {
		return
	}
	need := o.remaining
	if o.side == Buy {
		need, _ = o.sym.buyHold(o.price, o.remaining) // ≤ the accepted hold: cannot overflow
	}
	if extra := o.held - need; extra > 0 {
		asset := o.holdAsset()
		b := &o.acct.bal[asset]
		b.held -= extra
		b.free += extra
		o.held = need
		e.touch(o.acct, asset)
	}
}

// rest puts o at the back of its price level.
func (e *Engine) rest(o *order, m *market) {
	e.enter(o, m)
	e.list(o)
}

// enter puts o into the book — its level, the expiry heap — without
// listing it, and trims its hold to what its remaining quantity needs.
func (e *Engine) enter(o *order, m *market) {
	bs := m.side(o.side)
	l := bs.byPrice[o.price]
	if l == nil {
		l = e.pool.level(o.price)
		bs.insertLevel(l)
	}
	l.pushBack(o)
	e.touchLevel(m, o.side, l)
	if o.tif == GTD && o.heapIdx < 0 {
		e.expiry.push(o)
	}
	e.releaseExcess(o)
}

// list makes a resting order findable: by ID (cancel, amend, queries) and
// among its account's open orders (cancel-all). An order that ends within
// its own command — an IOC or market taker — is never listed: nothing can
// name it before its command is over.
func (e *Engine) list(o *order) {
	if o.listed {
		return
	}
	o.listed = true
	a := o.acct
	l := &a.open
	if a.openCount == 0 {
		l.reset()
	} else if !l.compacting && l.n >= 2*a.openCount+32 {
		l.compacting, l.w, l.r = true, 0, 0
	}
	if l.compacting {
		e.compactOpen(l, compactStep)
	}
	l.push(o.id)
	a.openCount++
	e.orders.put(o)
}

// compactStep is how many IDs of an account's open list a listing looks
// at while the list is being compacted: more than the one it adds, so the
// compaction ends.
const compactStep = 8

// compactOpen moves up to k of the IDs not yet looked at down over those
// of ended orders, ending the compaction when it reaches the list's end.
func (e *Engine) compactOpen(l *openList, k int) {
	for ; k > 0 && l.r < l.n; k-- {
		id := *l.at(l.r)
		l.r++
		if e.orders.get(id) != nil {
			*l.at(l.w) = id
			l.w++
		}
	}
	if l.r == l.n {
		l.truncate(l.w)
		l.compacting = false
	}
}

// eachOpen calls f for each of an account's open orders, oldest first,
// until f returns false. f may end the order it is given.
func (e *Engine) eachOpen(a *account, f func(o *order) bool) {
	l := &a.open
	i, n := 0, l.n
	for i < n {
		if l.compacting && i == l.w && l.r > l.w {
			i = l.r // [w, r): already moved down, or ended (none while w == r: every ID looked at so far was kept)
			continue
		}
		if o := e.orders.get(*l.at(i)); o != nil && !f(o) {
			return
		}
		i++
	}
}

// openList is an account's open-order IDs in listing order (and IDs of
// orders that ended since), in pages, so a long list is never copied.
// While it is compacted, positions [0, w) hold the IDs kept so far,
// [w, r) nothing, and [r, n) the IDs not yet looked at (those listed
// meanwhile among them).
type openList struct {
	pages[uint64]
	compacting bool
	w, r       int
}

// reset empties the list (no open orders are left).
func (l *openList) reset() {
	l.truncate(0)
	l.compacting = false
}

// unrest takes a resting order out of the book.
func (e *Engine) unrest(o *order) {
	l := o.lvl
	l.unlink(o)
	e.touchLevel(o.sym, o.side, l)
	if l.count == 0 {
		o.sym.side(o.side).removeLevel(l)
		e.deadLevels = append(e.deadLevels, l) // recycled after flush
	}
}

// done ends an order: takes it out of the book, releases its hold, keeps
// its client ID for the retention period and reports its final state.
func (e *Engine) done(o *order, status OrderStatus, reason string) {
	if o.lvl != nil {
		e.unrest(o)
	}
	if o.heapIdx >= 0 {
		e.expiry.remove(o)
	}
	a := o.acct
	if o.held != 0 {
		asset := o.holdAsset()
		b := &a.bal[asset]
		b.held -= o.held
		b.free += o.held
		o.held = 0
		e.touch(a, asset)
	}
	if o.listed {
		a.openCount-- // its ID stays in a.open until list compacts it away
		e.orders.del(o.id)
	}
	// The client ID stays in e.cids (a retry answers "duplicate")
	// until the retention queue forgets it.
	e.finished.push(finishedID{hash: o.cidHash, rec: o.cidRec, at: e.now})
	ev := e.orderEvent(EvOrderDone, o)
	ev.Status, ev.Reason = status, reason
	if o.byQuote {
		ev.Quantity, ev.Remaining, ev.Amount = o.filled(), 0, o.budget
	}
	e.pool.putOrder(o)
}

// findOrder resolves a cancel's or amend's account and order: by OrderID,
// else by ClientID; it must be open, the account's, and in Symbol when
// named.
func (e *Engine) findOrder(c *Command) (*order, *apperr.Error) {
	a, err := e.account(c.Account)
	if err != nil {
		return nil, err
	}
	id := c.OrderID
	if id == 0 && c.ClientID != "" {
		id, _ = e.cids.get(a, c.ClientID)
	}
	o := e.orders.get(id)
	if o == nil || o.acct != a || (c.Symbol != "" && o.sym.Name != c.Symbol) {
		return nil, apperr.New(apperr.UnknownOrder, "no open order %d (client ID %q) of account %q in %q", c.OrderID, c.ClientID, a.id, c.Symbol)
	}
	return o, nil
}

func (e *Engine) cancelOrder(c *Command) *apperr.Error {
	o, err := e.findOrder(c)
	if err != nil {
		return err
	}
	e.done(o, StatusCanceled, ReasonCanceled)
	return nil
}

// cancelAll cancels an account's open orders (in one symbol when named),
// oldest first; without an account, every order of the symbol (an
// operator's mass cancel), bids then asks, best first.
func (e *Engine) cancelAll(c *Command) *apperr.Error {
	var m *market
	if c.Symbol != "" {
		var err *apperr.Error
		if m, err = e.market(c.Symbol); err != nil {
			return err
		}
	}
	if c.Account == "" {
		if m == nil {
			return apperr.New(apperr.InvalidParameter, "cancel-all needs an account or a symbol")
		}
		if m.bids.best() == nil && m.asks.best() == nil {
			return apperr.New(apperr.UnknownOrder, "no open orders in %s", m.Name)
		}
		for _, bs := range []*bookSide{&m.bids, &m.asks} {
			for l := bs.best(); l != nil; l = bs.best() {
				e.done(l.head, StatusCanceled, ReasonCancelAll)
			}
		}
		return nil
	}
	a, err := e.account(c.Account)
	if err != nil {
		return err
	}
	found := false
	e.eachOpen(a, func(o *order) bool {
		found = m == nil || o.sym == m
		return !found
	})
	if !found {
		return apperr.New(apperr.UnknownOrder, "account %q has no open orders in %q", a.id, c.Symbol)
	}
	e.eachOpen(a, func(o *order) bool {
		if m == nil || o.sym == m {
			e.done(o, StatusCanceled, ReasonCancelAll)
		}
		return true
	})
	return nil
}

// amendOrder changes an open order's price and/or total quantity. A
// quantity decrease at the same price keeps the order's place in the queue;
// anything else re-enters it at the back of its (new) level, where it may
// trade at once like a new order (a post-only order may not).
func (e *Engine) amendOrder(c *Command) *apperr.Error {
	o, err := e.findOrder(c)
	if err != nil {
		return err
	}
	a, m := o.acct, o.sym
	price, qty := o.price, o.qty
	if c.Price != 0 {
		price = c.Price
	}
	if c.Quantity != 0 {
		qty = c.Quantity
	}
	switch {
	case m.halted:
		return apperr.New(apperr.MarketHalted, "%s is halted: only cancels are accepted", m.Name)
	case m.phase == PhaseClosed:
		return apperr.New(apperr.PhaseRefused, "%s is closed", m.Name)
	case price <= 0 || price%m.TickSize != 0:
		return apperr.New(apperr.InvalidPrice, "price must be a positive multiple of the tick size %d", m.TickSize)
	case qty <= o.filled():
		return apperr.New(apperr.InvalidQuantity, "the new quantity must exceed the %d already filled", o.filled())
	case price == o.price && qty == o.qty:
		return apperr.New(apperr.InvalidParameter, "an amend must change the price or the quantity")
	case m.phase == PhaseTradingAtLast && price != o.price && price != m.closePrice:
		return apperr.New(apperr.PhaseRefused, "%s is trading at last: the price must be the closing price %d", m.Name, m.closePrice)
	case o.display > 0 && o.display >= qty-o.filled():
		return apperr.New(apperr.InvalidQuantity, "an iceberg's remaining quantity must stay above its display quantity")
	case o.display > 0 && price != o.price && e.now >= RuleChange20261204 && m.sliceBelowMinNotional(price, o.display):
		// On a new price only: an iceberg accepted before the rule keeps
		// its slices, and may still shrink.
		return apperr.New(apperr.InvalidQuantity, "an iceberg's display quantity × the new price must be at least the minimum notional %d", m.MinNotional)
	}
	if err := m.checkQty(qty); err != nil {
		return err
	}
	if n, ok := m.Notional(price, qty); !ok || n < m.MinNotional {
		return apperr.New(apperr.InvalidQuantity, "price × quantity must be between the minimum notional %d and the maximum", m.MinNotional)
	}
	keeps := price == o.price && qty < o.qty
	if !keeps && o.postOnly && m.wouldTake(o.side, price) {
		return apperr.New(apperr.WouldTake, "post-only order would trade at the new price")
	}
	remaining := qty - o.filled()
	need := remaining
	if o.side == Buy {
		var ok bool
		if need, ok = m.buyHold(price, remaining); !ok {
			return apperr.New(apperr.InvalidQuantity, "price × quantity is too large")
		}
	}
	asset := o.holdAsset()
	b := &a.bal[asset]
	if need-o.held > b.free {
		return apperr.New(apperr.InsufficientFunds, "free %s balance does not cover the amended order", e.assets[asset])
	}

	b.free -= need - o.held
	b.held += need - o.held
	o.held = need
	e.touch(a, asset)
	if keeps {
		l := o.lvl
		visible := min(o.visible, remaining)
		l.visible -= o.visible - visible
		l.total -= o.remaining - remaining
		o.qty, o.remaining, o.visible = qty, remaining, visible
		e.touchLevel(m, o.side, l)
		ev := e.orderEvent(EvOrderAmended, o)
		ev.Status, ev.KeepsPriority = amendedStatus(o), true
		return nil
	}
	e.unrest(o)
	o.price, o.qty, o.remaining, o.visible = price, qty, remaining, remaining
	if o.display > 0 {
		o.visible = o.display
	}
	ev := e.orderEvent(EvOrderAmended, o)
	ev.Status = amendedStatus(o)
	e.execute(o, m)
	return nil
}

func amendedStatus(o *order) OrderStatus {
	if o.filled() > 0 {
		return StatusPartiallyFilled
	}
	return StatusNew
}
