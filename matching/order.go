package matching

import "github.com/satu-exchange/satu/internal/apperr"

// validateOrder checks everything about a new order that does not depend on
// the book, and returns the hold it needs.
func (e *Engine) validateOrder(c Command, a *account, s *Symbol) (hold int64, err *apperr.Error) {
	switch {
	case c.Side != Buy && c.Side != Sell:
		return 0, apperr.New(apperr.InvalidParameter, "side must be buy or sell")
	case c.Type != Limit:
		return 0, apperr.New(apperr.InvalidParameter, "order type must be limit")
	case c.TIF != GTC && c.TIF != IOC:
		return 0, apperr.New(apperr.InvalidParameter, "time in force must be GTC or IOC")
	case c.Quantity <= 0 || c.Quantity%s.LotSize != 0:
		return 0, apperr.New(apperr.InvalidQuantity, "quantity must be a positive multiple of the lot size %d", s.LotSize)
	case c.Quantity < s.MinQty || c.Quantity > s.MaxQty:
		return 0, apperr.New(apperr.InvalidQuantity, "quantity must be between %d and %d", s.MinQty, s.MaxQty)
	case c.Price <= 0 || c.Price%s.TickSize != 0:
		return 0, apperr.New(apperr.InvalidPrice, "price must be a positive multiple of the tick size %d", s.TickSize)
	case c.Mandatory && c.Side != Sell:
		return 0, apperr.New(apperr.InvalidParameter, "only sell orders can be mandatory")
	case c.Mandatory && !a.perms[PermMandatorySell]:
		return 0, apperr.New(apperr.NotPermitted, "account %q may not place mandatory orders (no active licence on record)", a.id)
	}
	if c.Side == Sell {
		hold = c.Quantity
	} else {
		var ok bool
		if hold, ok = s.NotionalCeil(c.Price, c.Quantity); !ok {
			return 0, apperr.New(apperr.InvalidQuantity, "price × quantity is too large")
		}
	}
	asset := s.Quote
	if c.Side == Sell {
		asset = s.Base
	}
	if a.bal(asset).free < hold {
		return 0, apperr.New(apperr.InsufficientFunds, "free %s balance does not cover the order", asset)
	}
	return hold, nil
}

func (e *Engine) placeOrder(c Command) *apperr.Error {
	a, err := e.account(c.Account)
	if err != nil {
		return err
	}
	s := e.symbols[c.Symbol]
	if s == nil {
		return apperr.New(apperr.UnknownSymbol, "unknown symbol %q", c.Symbol)
	}
	if c.ClientID == "" {
		return apperr.New(apperr.InvalidParameter, "client order ID is required")
	}
	if id, seen := a.clientIDs[c.ClientID]; seen {
		e.emit(Event{Kind: EvDuplicate, Account: a.id, Symbol: c.Symbol, ClientID: c.ClientID, OrderID: id})
		return nil
	}
	hold, err := e.validateOrder(c, a, s)
	if err != nil {
		return err
	}
	e.nextID++
	o := &order{id: e.nextID, account: a, symbol: s, clientID: c.ClientID, side: c.Side, price: c.Price,
		qty: c.Quantity, remaining: c.Quantity, held: hold, mandatory: c.Mandatory, tif: c.TIF}
	a.clientIDs[c.ClientID] = o.id
	held := o.heldBalance()
	held.free -= hold
	held.held += hold
	e.emit(Event{Kind: EvOrderAccepted, Account: a.id, Symbol: s.Name, OrderID: o.id, ClientID: o.clientID,
		Side: o.side, Price: o.price, Quantity: o.qty, Remaining: o.remaining, Status: StatusNew, Mandatory: o.mandatory})

	selfTrade := e.match(o)
	switch {
	case o.remaining == 0:
		e.done(o, StatusFilled)
	case selfTrade || o.tif == IOC:
		e.done(o, StatusExpired)
	default:
		e.orders[o.id] = o
		e.books[s.Name].add(o)
		o.releaseExcess()
	}
	return nil
}

// heldBalance is the balance this order's hold sits in.
func (o *order) heldBalance() *balance {
	if o.side == Sell {
		return o.account.bal(o.symbol.Base)
	}
	return o.account.bal(o.symbol.Quote)
}

// releaseExcess returns to free whatever a buy order holds beyond what its
// remaining quantity needs at its limit price (fills at better prices and
// rounding leave some over). A sell holds exactly its remaining quantity.
func (o *order) releaseExcess() {
	need := o.remaining
	if o.side == Buy {
		need, _ = o.symbol.NotionalCeil(o.price, o.remaining) // ≤ the accepted hold: cannot overflow
	}
	if extra := o.held - need; extra > 0 {
		b := o.heldBalance()
		b.held -= extra
		b.free += extra
		o.held = need
	}
}

// done ends an order: releases its hold and reports its final status.
func (e *Engine) done(o *order, status OrderStatus) {
	b := o.heldBalance()
	b.held -= o.held
	b.free += o.held
	o.held = 0
	delete(e.orders, o.id)
	e.emit(Event{Kind: EvOrderDone, Account: o.account.id, Symbol: o.symbol.Name, OrderID: o.id, ClientID: o.clientID,
		Side: o.side, Price: o.price, Quantity: o.qty, Remaining: o.remaining, Filled: o.filled(), Status: status,
		Mandatory: o.mandatory})
}

// match crosses taker against the opposite side at the makers' prices in
// price-time priority. Self-trade prevention is by owner, "expire taker": when
// the best maker belongs to the taker's owner, matching stops and the
// taker's remainder expires (reported as selfTrade).
func (e *Engine) match(taker *order) (selfTrade bool) {
	bk := e.books[taker.symbol.Name]
	opp := taker.side.Opposite()
	for taker.remaining > 0 {
		maker := bk.best(opp)
		if maker == nil || !crosses(taker, maker.price) {
			return false
		}
		if maker.account.owner == taker.account.owner {
			return true
		}
		qty := min(taker.remaining, maker.remaining)
		e.trade(taker, maker, qty)
		if maker.remaining == 0 {
			bk.remove(maker)
			e.done(maker, StatusFilled)
		}
	}
	return false
}

// trade moves qty at the maker's price between the two accounts. The
// notional cannot overflow: it is at most the buyer's accepted hold.
func (e *Engine) trade(taker, maker *order, qty int64) {
	s := taker.symbol
	price := maker.price
	quote, _ := s.Notional(price, qty)
	buy, sell := taker, maker
	if taker.side == Sell {
		buy, sell = maker, taker
	}
	bq, bb := buy.account.bal(s.Quote), buy.account.bal(s.Base)
	sq, sb := sell.account.bal(s.Quote), sell.account.bal(s.Base)
	bq.held -= quote
	buy.held -= quote
	bb.free += qty
	sb.held -= qty
	sell.held -= qty
	sq.free += quote
	buy.remaining -= qty
	sell.remaining -= qty
	if maker.remaining > 0 {
		maker.releaseExcess()
	}
	e.emit(Event{Kind: EvTrade, Symbol: s.Name, BaseAsset: s.Base, QuoteAsset: s.Quote, Price: price, Quantity: qty,
		QuoteAmount: quote, TakerSide: taker.side, BuyerAccount: buy.account.id, SellerAccount: sell.account.id,
		BuyOrderID: buy.id, SellOrderID: sell.id, Mandatory: sell.mandatory})
}

// crosses reports whether a maker at price can trade with taker's limit.
func crosses(taker *order, price int64) bool {
	if taker.side == Buy {
		return price <= taker.price
	}
	return price >= taker.price
}

func (e *Engine) cancelOrder(c Command) *apperr.Error {
	a, err := e.account(c.Account)
	if err != nil {
		return err
	}
	id := c.OrderID
	if id == 0 && c.ClientID != "" {
		id = a.clientIDs[c.ClientID]
	}
	o := e.orders[id]
	if o == nil || o.account != a || (c.Symbol != "" && o.symbol.Name != c.Symbol) {
		return apperr.New(apperr.UnknownOrder, "no open order %d (client ID %q) of account %q in %q", c.OrderID, c.ClientID, a.id, c.Symbol)
	}
	e.books[o.symbol.Name].remove(o)
	e.done(o, StatusCanceled)
	return nil
}
