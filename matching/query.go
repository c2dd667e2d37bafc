package matching

import (
	"encoding/json"
	"slices"
	"strconv"
)

// Level is one aggregated price level: the visible quantity and the number
// of orders.
type Level struct {
	Price    int64 `json:"price"`
	Quantity int64 `json:"qty"`
	Orders   int32 `json:"orders"`
}

// OrderView is an open order as queries see it.
type OrderView struct {
	ID         uint64      `json:"orderId"`
	Account    string      `json:"account"`
	Symbol     string      `json:"symbol"`
	ClientID   string      `json:"clientId"`
	Side       Side        `json:"side"`
	Type       OrderType   `json:"type"`
	TIF        TimeInForce `json:"tif"`
	STP        STPMode     `json:"stp"`
	Purpose    Purpose     `json:"purpose,omitempty"`
	Obligation string      `json:"obligation,omitempty"`
	PostOnly   bool        `json:"postOnly,omitempty"`
	Price      int64       `json:"price"`
	Quantity   int64       `json:"qty"`
	Remaining  int64       `json:"remaining"`
	Visible    int64       `json:"visible"`
	Display    int64       `json:"displayQty,omitempty"`
	Held       int64       `json:"held"`
	ExpireAt   int64       `json:"expireAt,omitempty"`
}

// AppendJSON appends o exactly as json.Marshal encodes it, without
// reflection (the Redis order book writes one per changed order). A string
// that json would escape, or an enum out of range, goes the slow way.
func (o *OrderView) AppendJSON(b []byte) ([]byte, error) {
	if !jsonPlain(o.Account) || !jsonPlain(o.Symbol) || !jsonPlain(o.ClientID) || !jsonPlain(o.Obligation) ||
		int(o.Side) >= len(sideNames) || int(o.Type) >= len(typeNames) || int(o.TIF) >= len(tifNames) ||
		int(o.STP) >= len(stpNames) || int(o.Purpose) >= len(purposeNames) {
		v, err := json.Marshal(o)
		return append(b, v...), err
	}
	b = strconv.AppendUint(append(b, `{"orderId":`...), o.ID, 10)
	b = append(append(append(b, `,"account":"`...), o.Account...), '"')
	b = append(append(append(b, `,"symbol":"`...), o.Symbol...), '"')
	b = append(append(append(b, `,"clientId":"`...), o.ClientID...), '"')
	b = append(append(append(b, `,"side":"`...), sideNames[o.Side]...), '"')
	b = append(append(append(b, `,"type":"`...), typeNames[o.Type]...), '"')
	b = append(append(append(b, `,"tif":"`...), tifNames[o.TIF]...), '"')
	b = append(append(append(b, `,"stp":"`...), stpNames[o.STP]...), '"')
	if o.Purpose != 0 {
		b = append(append(append(b, `,"purpose":"`...), purposeNames[o.Purpose]...), '"')
	}
	if o.Obligation != "" {
		b = append(append(append(b, `,"obligation":"`...), o.Obligation...), '"')
	}
	if o.PostOnly {
		b = append(b, `,"postOnly":true`...)
	}
	b = strconv.AppendInt(append(b, `,"price":`...), o.Price, 10)
	b = strconv.AppendInt(append(b, `,"qty":`...), o.Quantity, 10)
	b = strconv.AppendInt(append(b, `,"remaining":`...), o.Remaining, 10)
	b = strconv.AppendInt(append(b, `,"visible":`...), o.Visible, 10)
	if o.Display != 0 {
		b = strconv.AppendInt(append(b, `,"displayQty":`...), o.Display, 10)
	}
	b = strconv.AppendInt(append(b, `,"held":`...), o.Held, 10)
	if o.ExpireAt != 0 {
		b = strconv.AppendInt(append(b, `,"expireAt":`...), o.ExpireAt, 10)
	}
	return append(b, '}'), nil
}

// jsonPlain reports whether json.Marshal writes s as it is, between quotes:
// printable ASCII but for the quote, the backslash and the HTML characters
// it escapes.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

func (o *order) view() OrderView {
	return OrderView{ID: o.id, Account: o.acct.id, Symbol: o.sym.Name, ClientID: o.clientID, Side: o.side,
		Type: o.typ, TIF: o.tif, STP: o.stp, Purpose: o.purpose, Obligation: o.obligation, PostOnly: o.postOnly,
		Price: o.price, Quantity: o.qty, Remaining: o.remaining, Visible: o.visible, Display: o.display,
		Held: o.held, ExpireAt: o.expireAt}
}

// Symbol returns a symbol's configuration.
func (e *Engine) Symbol(name string) (Symbol, bool) {
	m := e.bySymbol[name]
	if m == nil {
		return Symbol{}, false
	}
	return m.Symbol, true
}

// Symbols returns the configured symbols in configuration order.
func (e *Engine) Symbols() []Symbol {
	out := make([]Symbol, len(e.markets))
	for i, m := range e.markets {
		out[i] = m.Symbol
	}
	return out
}

// MarketState is a symbol's trading state.
type MarketState struct {
	Phase      Phase `json:"phase"`
	Halted     bool  `json:"halted"`
	RefPrice   int64 `json:"refPrice"`
	LastPrice  int64 `json:"lastPrice"`
	ClosePrice int64 `json:"closePrice"`
	Until      int64 `json:"until,omitempty"` // a volatility auction's end
}

// Market returns a symbol's trading state.
func (e *Engine) Market(symbol string) (MarketState, bool) {
	m := e.bySymbol[symbol]
	if m == nil {
		return MarketState{}, false
	}
	st := MarketState{Phase: m.phase, Halted: m.halted, RefPrice: m.refPrice, LastPrice: m.lastPrice, ClosePrice: m.closePrice}
	if m.phase == PhaseVolatilityAuction {
		st.Until = m.volUntil
	}
	return st, true
}

// Balance returns an account's free and held amounts of an asset.
func (e *Engine) Balance(acct, asset string) (free, held int64) {
	a := e.accounts[acct]
	i, ok := e.assetIdx[asset]
	if a == nil || !ok {
		return 0, 0
	}
	return a.bal[i].free, a.bal[i].held
}

// Assets returns the engine's assets in index order.
func (e *Engine) Assets() []string { return slices.Clone(e.assets) }

// Depth returns up to n aggregated levels of each side of a symbol's book,
// best first; visible quantities only.
func (e *Engine) Depth(symbol string, n int) (bids, asks []Level) {
	m := e.bySymbol[symbol]
	if m == nil {
		return nil, nil
	}
	return m.bids.depth(n), m.asks.depth(n)
}

func (b *bookSide) depth(n int) []Level {
	n = min(n, len(b.levels))
	out := make([]Level, 0, n)
	for i := len(b.levels) - 1; i >= len(b.levels)-n; i-- {
		l := b.levels[i]
		out = append(out, Level{Price: l.price, Quantity: l.visible, Orders: l.count})
	}
	return out
}

// Order returns an open order.
func (e *Engine) Order(id uint64) (OrderView, bool) {
	o := e.orders.get(id)
	if o == nil {
		return OrderView{}, false
	}
	return o.view(), true
}

// OpenOrders returns an account's open orders, oldest first.
func (e *Engine) OpenOrders(account string) []OrderView {
	a := e.accounts[account]
	if a == nil {
		return nil
	}
	out := make([]OrderView, 0, a.openCount)
	e.eachOpen(a, func(o *order) bool {
		out = append(out, o.view())
		return true
	})
	return out
}

// BookOrders returns one side of a symbol's book order by order, in
// priority (best price first, then time).
func (e *Engine) BookOrders(symbol string, side Side) []OrderView {
	m := e.bySymbol[symbol]
	if m == nil {
		return nil
	}
	bs := m.side(side)
	var out []OrderView
	for i := len(bs.levels) - 1; i >= 0; i-- {
		for o := bs.levels[i].head; o != nil; o = o.next {
			out = append(out, o.view())
		}
	}
	return out
}

// Indicative returns the price and volume an uncross would execute at now
// (0, 0 when the book is not crossed): what call phases publish.
func (e *Engine) Indicative(symbol string) (price, volume int64) {
	m := e.bySymbol[symbol]
	if m == nil {
		return 0, 0
	}
	return m.auctionPrice()
}

// NextDeadline is the earliest sequenced time (Unix ms) at which something
// falls due without any command — a GTD expiry, the end of a volatility
// auction, a scheduled phase change — or 0 if nothing is pending. The
// sequencer sends a CmdTick once its clock reaches it, so that time-driven
// changes happen on an idle market too.
func (e *Engine) NextDeadline() int64 {
	var d int64
	earlier := func(t int64) {
		if t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	if len(e.expiry) > 0 {
		earlier(e.expiry[0].expireAt)
	}
	for _, m := range e.markets {
		if m.phase == PhaseVolatilityAuction {
			earlier(m.volUntil)
		}
		if len(m.Schedule) > 0 {
			earlier(m.nextStep(e.now))
		}
	}
	return d
}

// nextStep is the time of the schedule's next phase change after now.
func (m *market) nextStep(now int64) int64 {
	const day = 1440
	local := now/60_000 + int64(m.UTCOffsetMinutes)
	minute := (local%day + day) % day
	for _, st := range m.Schedule {
		if int64(st.Minute) > minute {
			return (local - minute + int64(st.Minute) - int64(m.UTCOffsetMinutes)) * 60_000
		}
	}
	return (local - minute + day + int64(m.Schedule[0].Minute) - int64(m.UTCOffsetMinutes)) * 60_000
}
