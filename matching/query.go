package matching

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	// QuoteFilled is the quote amount of its fills so far, fees apart
	// (0 for an order restored from a snapshot of before it was kept).
	QuoteFilled int64 `json:"quoteFilled,omitempty"`
}

// The order record: how the Redis order book stores an open order (about
// a quarter of JSON's size: 63 bytes against 236 for a typical order,
// whose JSON was the largest share of what Redis wrote to its append-only
// file). The version byte, then the fields in OrderView's order: the ID as
// a uvarint; strings as a uvarint length and the bytes; the five enums
// and PostOnly as one byte each; the integers as zig-zag varints — seven
// in version 1, eight in version 2 (QuoteFilled). Fields may be added at
// the end only, under a new version byte.

// OrderRecordV1 and OrderRecordV2 are the first byte of an order record of
// that version. A record that starts with '{' is the JSON the order book
// stored before.
const (
	OrderRecordV1 = 0x01
	OrderRecordV2 = 0x02
)

// ErrOrderRecord reports a stored order that is neither a valid order
// record nor JSON.
var ErrOrderRecord = errors.New("matching: bad order record")

// AppendBinary appends o's version-2 record to b.
func (o *OrderView) AppendBinary(b []byte) []byte {
	b = append(b, OrderRecordV2)
	b = binary.AppendUvarint(b, o.ID)
	b = appendString(appendString(appendString(b, o.Account), o.Symbol), o.ClientID)
	post := byte(0)
	if o.PostOnly {
		post = 1
	}
	b = append(b, byte(o.Side), byte(o.Type), byte(o.TIF), byte(o.STP), byte(o.Purpose), post)
	b = appendString(b, o.Obligation)
	for _, v := range [...]int64{o.Price, o.Quantity, o.Remaining, o.Visible, o.Display, o.Held, o.ExpireAt, o.QuoteFilled} {
		b = binary.AppendVarint(b, v)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// DecodeOrderRecord decodes a stored order: a version-2 or version-1
// record (QuoteFilled 0) or, for records stored before them, JSON. Every
// enum must name a value; nothing may follow the last field.
func DecodeOrderRecord(s string) (OrderView, error) {
	if len(s) > 0 && s[0] == '{' {
		return decodeOrderJSON(s)
	}
	var o OrderView // its own variable: json.Unmarshal's would move this one to the heap
	if len(s) == 0 || s[0] != OrderRecordV1 && s[0] != OrderRecordV2 {
		return OrderView{}, fmt.Errorf("%w: neither version 1 or 2 nor JSON", ErrOrderRecord)
	}
	d := decoder{s: s, i: 1}
	o.ID = d.uvarint()
	o.Account, o.Symbol, o.ClientID = d.str(), d.str(), d.str()
	side, typ, tif, stp, purpose, post := d.byte(), d.byte(), d.byte(), d.byte(), d.byte(), d.byte()
	o.Obligation = d.str()
	o.Price, o.Quantity, o.Remaining, o.Visible = d.varint(), d.varint(), d.varint(), d.varint()
	o.Display, o.Held, o.ExpireAt = d.varint(), d.varint(), d.varint()
	if s[0] == OrderRecordV2 {
		o.QuoteFilled = d.varint()
	}
	switch {
	case d.err != nil:
		return OrderView{}, fmt.Errorf("%w: a truncated or overlong field", ErrOrderRecord)
	case d.i != len(s):
		return OrderView{}, fmt.Errorf("%w: %d trailing bytes", ErrOrderRecord, len(s)-d.i)
	case int(side) >= len(sideNames) || int(typ) >= len(typeNames) || int(tif) >= len(tifNames) ||
		int(stp) >= len(stpNames) || int(purpose) >= len(purposeNames) || post > 1:
		return OrderView{}, fmt.Errorf("%w: an enum out of range", ErrOrderRecord)
	}
	o.Side, o.Type, o.TIF, o.STP, o.Purpose, o.PostOnly = Side(side), OrderType(typ), TimeInForce(tif), STPMode(stp), Purpose(purpose), post == 1
	// The strings share s's memory: a record read from Redis is its own
	// string, kept by the view alone.
	return o, nil
}

func decodeOrderJSON(s string) (OrderView, error) {
	var o OrderView
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		return OrderView{}, fmt.Errorf("%w: %v", ErrOrderRecord, err)
	}
	return o, nil
}

func (o *order) view() OrderView {
	return OrderView{ID: o.id, Account: o.acct.id, Symbol: o.sym.Name, ClientID: o.clientID, Side: o.side,
		Type: o.typ, TIF: o.tif, STP: o.stp, Purpose: o.purpose, Obligation: o.obligation, PostOnly: o.postOnly,
		Price: o.price, Quantity: o.qty, Remaining: o.remaining, Visible: o.visible, Display: o.display,
		Held: o.held, ExpireAt: o.expireAt, QuoteFilled: o.quote}
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
