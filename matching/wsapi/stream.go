package wsapi

import (
	"strings"

	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
)

// Market-data streams, named as in the Binance streams: <symbol>@depth,
// <symbol>@trade, <symbol>@bookTicker, and Satu's <symbol>@phase. A
// combined stream connection receives {"stream": name, "data": message}.
// Every message carries u, the engine sequence of the command that caused
// it; depth updates also carry U, so that each update continues the one
// before it (U = previous u + 1) and the first one after a depth snapshot
// stitches to its lastUpdateId (U ≤ lastUpdateId + 1 ≤ u).
//
// <symbol>@depth@100ms and <symbol>@depth@1000ms are the depth stream at
// an update speed: at most one depthUpdate per interval, and none for an
// interval in which no command changed the symbol's levels. Each is the
// merge of the consecutive <symbol>@depth updates of its interval: U is
// the previous message's u + 1 (the first after the hub's start continues
// the hub's snapshot), u is the sequence of the last command that changed
// a level, and every level changed from U to u is sent once, with its
// quantity after u (0 when it went away). U = previous u + 1 holds over
// intervals without a message, and a snapshot stitches exactly as to
// <symbol>@depth.

// The stream kinds.
const (
	StreamDepth      = "depth"
	StreamTrade      = "trade"
	StreamBookTicker = "bookTicker"
	StreamPhase      = "phase"
	// The depth stream at an update speed.
	StreamDepth100ms  = "depth@100ms"
	StreamDepth1000ms = "depth@1000ms"
)

// StreamName is symbol's stream of kind, e.g. "btckzt@depth".
func StreamName(symbol, kind string) string { return strings.ToLower(symbol) + "@" + kind }

// StreamMessage is one message on a combined stream connection.
type StreamMessage struct {
	Stream string `json:"stream"`
	Data   any    `json:"data"`
}

// DepthUpdate is a depth diff: the new quantities of the levels that
// changed from U to u (a quantity of 0 removes the level).
type DepthUpdate struct {
	Event  string      `json:"e"` // "depthUpdate"
	Time   int64       `json:"E"` // engine time, Unix ms
	Symbol string      `json:"s"`
	First  uint64      `json:"U"`
	Last   uint64      `json:"u"`
	Bids   [][2]string `json:"b"`
	Asks   [][2]string `json:"a"`
}

// Trade is one trade.
type Trade struct {
	Event    string `json:"e"` // "trade"
	Time     int64  `json:"E"`
	Symbol   string `json:"s"`
	ID       string `json:"t"`
	Price    string `json:"p"`
	Quantity string `json:"q"`
	// BuyerMaker: the buyer's order was resting (the seller took it);
	// false also for auction trades, which have no taker.
	BuyerMaker bool   `json:"m"`
	Auction    bool   `json:"auction,omitempty"`
	Seq        uint64 `json:"u"`
}

// BookTicker is the best bid and offer after a change; empty strings when
// a side is empty.
type BookTicker struct {
	Event  string `json:"e"` // "bookTicker"
	Symbol string `json:"s"`
	Seq    uint64 `json:"u"`
	Bid    string `json:"b"`
	BidQty string `json:"B"`
	Ask    string `json:"a"`
	AskQty string `json:"A"`
}

// PhaseUpdate is a symbol's new trading phase or halt state.
type PhaseUpdate struct {
	Event  string `json:"e"` // "phase"
	Time   int64  `json:"E"`
	Symbol string `json:"s"`
	Seq    uint64 `json:"u"`
	Phase  string `json:"phase"`
	Halted bool   `json:"halted"`
	// Until is the end of a volatility auction (Unix ms), else 0.
	Until int64 `json:"until,omitempty"`
}

// TradeFrom formats a trade event of symbol s.
func TradeFrom(ev *matching.Event, s matching.Symbol) Trade {
	return Trade{Event: StreamTrade, Time: ev.Time, Symbol: ev.Symbol, ID: ev.ID(),
		Price: money.Format(ev.Price, s.QuoteScale), Quantity: money.Format(ev.Quantity, s.BaseScale),
		BuyerMaker: ev.TakerSide == matching.Sell, Auction: ev.TakerSide == 0, Seq: ev.Seq}
}

// Level formats a price level of symbol s.
func Level(s matching.Symbol, price, qty int64) [2]string {
	return [2]string{money.Format(price, s.QuoteScale), money.Format(qty, s.BaseScale)}
}

// User-data events, pushed on a /ws/api connection after
// userDataStream.subscribe: {"subscriptionId": 0, "event": {...}}.

// UserEvent wraps one user-data event.
type UserEvent struct {
	SubscriptionID int `json:"subscriptionId"`
	Event          any `json:"event"`
}

// ExecutionReport is a change of one of the account's orders: accepted,
// amended, traded, or done.
type ExecutionReport struct {
	Event         string `json:"e"` // "executionReport"
	Time          int64  `json:"E"`
	Seq           uint64 `json:"u"`
	Symbol        string `json:"s"`
	OrderID       uint64 `json:"i"`
	ClientOrderID string `json:"c,omitempty"` // not on a TRADE: i names the order
	Side          string `json:"S"`
	// ExecutionType: NEW, AMENDED, TRADE, DONE (filled), CANCELED,
	// EXPIRED (as Binance's x).
	ExecutionType string `json:"x"`
	// The order after it (not on a TRADE, which a DONE report follows
	// when it fills the order): price, quantity, status, filled quantity.
	Price    string `json:"p,omitempty"`
	Quantity string `json:"q,omitempty"`
	Status   string `json:"X,omitempty"`
	Executed string `json:"z,omitempty"`
	QuoteQty string `json:"Z,omitempty"` // the quote amount of its fills so far
	// On a TRADE: the trade's ID, price and quantity, and this order's fee.
	TradeID    string `json:"t,omitempty"`
	LastPrice  string `json:"L,omitempty"`
	LastQty    string `json:"l,omitempty"`
	Commission string `json:"n,omitempty"`
	Mandatory  bool   `json:"mandatory,omitempty"`
	Obligation string `json:"obligation,omitempty"`
}

// BalanceUpdate is an asset's free and held balance after a command.
type BalanceUpdate struct {
	Event string `json:"e"` // "balanceUpdate"
	Time  int64  `json:"E"`
	Seq   uint64 `json:"u"`
	Asset string `json:"a"`
	Free  string `json:"f"`
	Held  string `json:"l"`
}

// OrderReport formats an order event (accepted, amended, done) of the
// account's order in symbol s.
func OrderReport(ev *matching.Event, s matching.Symbol) ExecutionReport {
	x := "NEW"
	switch {
	case ev.Kind == matching.EvOrderAmended:
		x = "AMENDED"
	case ev.Kind == matching.EvOrderDone && ev.Status != matching.StatusFilled:
		x = wireStatus(ev.Status)
	case ev.Kind == matching.EvOrderDone:
		x = "DONE"
	}
	return ExecutionReport{Event: "executionReport", Time: ev.Time, Seq: ev.Seq, Symbol: ev.Symbol, OrderID: ev.OrderID,
		ClientOrderID: ev.ClientID, Side: wireSide(ev.Side), Price: money.Format(ev.Price, s.QuoteScale),
		Quantity: money.Format(ev.Quantity, s.BaseScale), ExecutionType: x, Status: wireStatus(ev.Status),
		Executed: money.Format(ev.Filled, s.BaseScale), QuoteQty: money.Format(ev.QuoteAmount, s.QuoteScale),
		Mandatory: ev.Purpose == matching.PurposeMandatory, Obligation: ev.Obligation}
}

// TradeReport formats a trade event from the side of the account's order
// orderID.
func TradeReport(ev *matching.Event, s matching.Symbol, orderID uint64) ExecutionReport {
	side, fee := matching.Buy, ev.BuyerFee
	if orderID == ev.SellOrderID {
		side, fee = matching.Sell, ev.SellerFee
	}
	return ExecutionReport{Event: "executionReport", Time: ev.Time, Seq: ev.Seq, Symbol: ev.Symbol, OrderID: orderID,
		Side: wireSide(side), ExecutionType: "TRADE", TradeID: ev.ID(), LastPrice: money.Format(ev.Price, s.QuoteScale),
		LastQty: money.Format(ev.Quantity, s.BaseScale), Commission: money.Format(fee, s.QuoteScale),
		Mandatory: ev.Purpose == matching.PurposeMandatory, Obligation: ev.Obligation}
}
