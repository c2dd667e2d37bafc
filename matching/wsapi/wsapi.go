// Package wsapi is the websocket API's wire format, shared by the gateway
// and the Go client: requests and responses in the Binance WebSocket API
// shape ({"id", "method", "params"} → {"id", "status", "result" | "error"}),
// and the translation between order parameters (decimal strings) and engine
// commands (integer minor units). It performs no I/O.
package wsapi

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
)

// The methods.
const (
	MethodLogon       = "session.logon"
	MethodPlace       = "order.place"
	MethodCancel      = "order.cancel"
	MethodAmend       = "order.amend"
	MethodOrderStatus = "order.status"
	MethodCancelAll   = "openOrders.cancelAll"
	MethodOpenOrders  = "openOrders.status"
	MethodAccount     = "account.status"
	MethodDepth       = "depth"
	MethodObligations = "obligations.status"
	// MethodUserSubscribe pushes the session account's executions and
	// balance changes on the connection; MethodUserUnsubscribe stops it.
	MethodUserSubscribe   = "userDataStream.subscribe"
	MethodUserUnsubscribe = "userDataStream.unsubscribe"
	MethodExchangeInfo    = "exchangeInfo"
	MethodPing            = "ping"
	// MethodBatchPlace and MethodBatchCancel carry up to MaxBatchOrders
	// orders in one request, each answered on its own.
	MethodBatchPlace  = "batchOrders.place"
	MethodBatchCancel = "batchOrders.cancel"
)

// MaxBatchOrders is how many orders one batchOrders request may carry.
const MaxBatchOrders = 20

// Request is one client request.
type Request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
}

// Response answers one request; exactly one of Result and Error is set.
// RateLimits report the allowances the request counted against.
type Response struct {
	ID         json.RawMessage `json:"id"`
	Status     int             `json:"status"`
	Result     any             `json:"result,omitempty"`
	Error      *apperr.Error   `json:"error,omitempty"`
	RateLimits []RateLimit     `json:"rateLimits,omitempty"`
}

// RateLimit is one allowance and how much of it is used, as the Binance
// WebSocket API reports it: Count requests in the current window of
// IntervalNum Intervals, of Limit.
type RateLimit struct {
	Type        string `json:"rateLimitType"` // REQUESTS (per address) or ORDERS (per key)
	Interval    string `json:"interval"`      // SECOND
	IntervalNum int    `json:"intervalNum"`
	Limit       int    `json:"limit"`
	Count       int    `json:"count"`
}

// ErrorResponse builds the response for err; internal details never leave.
func ErrorResponse(id json.RawMessage, err error) Response {
	code := apperr.CodeOf(err)
	return Response{ID: id, Status: apperr.HTTPStatus(code), Error: &apperr.Error{Code: code, Message: apperr.MessageOf(err)}}
}

// LogonParams are session.logon's own parameters; the request is signed
// (apiKey, timestamp, recvWindow, signature: see internal/access). Account
// names the account the session trades for, one of the key's; it may be
// left out when the key acts for exactly one.
type LogonParams struct {
	Account string `json:"account,omitempty"`
}

// LogonResult answers session.logon.
type LogonResult struct {
	APIKey          string `json:"apiKey"`
	Role            string `json:"role"`
	Account         string `json:"account"`
	AuthorizedSince int64  `json:"authorizedSince"` // Unix ms
	ServerTime      int64  `json:"serverTime"`      // Unix ms
}

// PlaceParams are order.place's parameters, named as in the Binance Spot
// API; amounts are decimal strings.
type PlaceParams struct {
	Symbol string `json:"symbol"`
	Side   string `json:"side"` // "BUY" | "SELL"
	// Type: "LIMIT", "MARKET", or "LIMIT_MAKER" (a post-only limit order,
	// refused with WOULD_TAKE if it would trade on arrival).
	Type string `json:"type"`
	// TimeInForce for LIMIT: "GTC" (default), "IOC", "FOK", or "GTD" with
	// GoodTillDate (Unix ms). A MARKET order is IOC.
	TimeInForce  string `json:"timeInForce"`
	GoodTillDate int64  `json:"goodTillDate,omitempty"`
	Price        string `json:"price"`
	Quantity     string `json:"quantity"`
	// QuoteOrderQty sizes a MARKET buy by the quote amount to spend, fees
	// included, instead of Quantity.
	QuoteOrderQty string `json:"quoteOrderQty,omitempty"`
	// IcebergQty shows only this much of a GTC or GTD limit order.
	IcebergQty string `json:"icebergQty,omitempty"`
	// SelfTradePreventionMode: "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"
	// or "DECREMENT"; empty means the account's default.
	SelfTradePreventionMode string `json:"selfTradePreventionMode,omitempty"`
	NewClientOrderID        string `json:"newClientOrderId"`
	// Mandatory tags a miner's sale under the mandatory-sale law; only an
	// account with the mandatory_sell permission may send it.
	Mandatory bool `json:"mandatory,omitempty"`
	// Obligation optionally names the obligation a mandatory sale serves.
	Obligation string `json:"obligation,omitempty"`
}

// CancelParams are order.cancel's parameters: one of the two IDs.
type CancelParams struct {
	Symbol            string `json:"symbol"`
	OrderID           uint64 `json:"orderId,omitempty"`
	OrigClientOrderID string `json:"origClientOrderId,omitempty"`
}

// BatchParams are a batchOrders request's parameters: each element is
// the parameters P of the single-order method.
type BatchParams[P any] struct {
	Orders []P `json:"orders"`
}

// BatchPlaceParams are batchOrders.place's parameters.
type BatchPlaceParams = BatchParams[PlaceParams]

// BatchCancelParams are batchOrders.cancel's parameters.
type BatchCancelParams = BatchParams[CancelParams]

// BatchResult answers a batchOrders request: one item per order, in the
// request's order.
type BatchResult struct {
	Orders []BatchItem `json:"orders"`
}

// BatchItem is one order's outcome in a batch: its status and either the
// order, as order.place or order.cancel answers it, or the error that
// refused it.
type BatchItem struct {
	Status int           `json:"status"`
	Result *OrderResult  `json:"result,omitempty"`
	Error  *apperr.Error `json:"error,omitempty"`
}

// ItemError is the batch item for an order refused with err.
func ItemError(err error) BatchItem {
	r := ErrorResponse(nil, err)
	return BatchItem{Status: r.Status, Error: r.Error}
}

// AmendParams are order.amend's parameters: the order (one of the two
// IDs) and its new price and/or new total quantity. Lowering the quantity
// keeps the order's time priority; a new price or a larger quantity
// re-queues it (and it may trade).
type AmendParams struct {
	Symbol            string `json:"symbol"`
	OrderID           uint64 `json:"orderId,omitempty"`
	OrigClientOrderID string `json:"origClientOrderId,omitempty"`
	NewPrice          string `json:"newPrice,omitempty"`
	NewQty            string `json:"newQty,omitempty"`
}

// SymbolParams name a symbol: openOrders.cancelAll (required) and
// openOrders.status (optional: all symbols when empty).
type SymbolParams struct {
	Symbol string `json:"symbol,omitempty"`
}

// DepthParams are depth's parameters; Limit 1–5000 levels per side
// (default 100).
type DepthParams struct {
	Symbol string `json:"symbol"`
	Limit  int    `json:"limit,omitempty"`
}

// Balance is one asset of account.status: free and held in whole units.
type Balance struct {
	Asset string `json:"asset"`
	Free  string `json:"free"`
	Held  string `json:"held"`
}

// AccountResult answers account.status: the engine's free and held
// balances as of the settled sequence UpdateID.
type AccountResult struct {
	Account  string    `json:"account"`
	UpdateID uint64    `json:"updateId"`
	Balances []Balance `json:"balances"`
}

// OpenOrdersResult answers openOrders.status.
type OpenOrdersResult struct {
	LastUpdateID uint64        `json:"lastUpdateId"`
	Orders       []OrderResult `json:"orders"`
}

// Fill is one execution of an order.
type Fill struct {
	TradeID  string `json:"tradeId"`
	Price    string `json:"price"`
	Quantity string `json:"qty"`
	// Commission is this order's fee on the fill, in CommissionAsset.
	Commission      string `json:"commission"`
	CommissionAsset string `json:"commissionAsset"`
}

// OrderResult describes an order after a request.
type OrderResult struct {
	Symbol        string `json:"symbol"`
	OrderID       uint64 `json:"orderId"`
	ClientOrderID string `json:"clientOrderId"`
	Side          string `json:"side,omitempty"`
	Price         string `json:"price,omitempty"`
	OrigQty       string `json:"origQty,omitempty"`
	ExecutedQty   string `json:"executedQty,omitempty"`
	QuoteQty      string `json:"cummulativeQuoteQty,omitempty"`
	Status        string `json:"status"`
	Mandatory     bool   `json:"mandatory,omitempty"`
	// KeepsPriority: an amend that kept the order's place in the queue.
	KeepsPriority bool   `json:"keepsPriority,omitempty"`
	Fills         []Fill `json:"fills,omitempty"`
	// Duplicate: the client order ID was used before; this is that order,
	// and nothing changed.
	Duplicate bool `json:"duplicate,omitempty"`
}

// SymbolInfo describes a market in exchangeInfo.
type SymbolInfo struct {
	Symbol   string `json:"symbol"`
	Base     string `json:"baseAsset"`
	Quote    string `json:"quoteAsset"`
	TickSize string `json:"tickSize"`
	LotSize  string `json:"stepSize"`
	MinQty   string `json:"minQty"`
	MaxQty   string `json:"maxQty"`
	// MinNotional is the smallest price × quantity, in the quote asset.
	MinNotional  string `json:"minNotional"`
	MakerFeeBps  int64  `json:"makerFeeBps"`
	TakerFeeBps  int64  `json:"takerFeeBps"`
	PriceBandBps int64  `json:"priceBandBps"`
	// Phase is the symbol's trading phase and Halted whether an operator
	// halted it, as the engine last wrote them to the Redis order book.
	Phase  string `json:"phase"`
	Halted bool   `json:"halted"`
}

// ExchangeInfo lists the symbols with their trading state from markets; a
// symbol without one (nothing written yet) is in its configured initial
// phase.
func ExchangeInfo(symbols []matching.Symbol, markets map[string]matching.MarketState) []SymbolInfo {
	out := make([]SymbolInfo, len(symbols))
	for i, s := range symbols {
		st, ok := markets[s.Name]
		if !ok {
			st.Phase = s.InitialPhase
			if st.Phase == 0 {
				st.Phase = matching.PhaseContinuous
			}
		}
		out[i] = SymbolInfo{Symbol: s.Name, Base: s.Base, Quote: s.Quote,
			TickSize: money.Format(s.TickSize, s.QuoteScale), LotSize: money.Format(s.LotSize, s.BaseScale),
			MinQty: money.Format(s.MinQty, s.BaseScale), MaxQty: money.Format(s.MaxQty, s.BaseScale),
			MinNotional: money.Format(s.MinNotional, s.QuoteScale), MakerFeeBps: s.MakerFeeBps, TakerFeeBps: s.TakerFeeBps,
			PriceBandBps: s.PriceBandBps, Phase: st.Phase.String(), Halted: st.Halted}
	}
	return out
}

// Decode unmarshals params strictly into v, answering MALFORMED_JSON.
func Decode(params json.RawMessage, v any) error {
	if decodeFast(params, v) {
		return nil
	}
	return decodeStrict(params, v)
}

// decodeStrict is Decode by encoding/json alone.
func decodeStrict(params json.RawMessage, v any) error {
	if len(params) == 0 {
		params = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apperr.New(apperr.MalformedJSON, "params: %v", err)
	}
	if dec.More() {
		return apperr.New(apperr.MalformedJSON, "params: more than one JSON value")
	}
	return nil
}

// PlaceCommand turns order parameters into an engine command for account,
// checking everything that needs only the symbol's configuration.
func PlaceCommand(account string, p PlaceParams, symbols map[string]matching.Symbol) (matching.Command, error) {
	if p.Symbol == "" {
		return matching.Command{}, apperr.New(apperr.InvalidParameter, "symbol is required")
	}
	s, ok := symbols[p.Symbol]
	if !ok {
		return matching.Command{}, apperr.New(apperr.UnknownSymbol, "unknown symbol %q", p.Symbol)
	}
	var side matching.Side
	switch p.Side {
	case "BUY":
		side = matching.Buy
	case "SELL":
		side = matching.Sell
	default:
		return matching.Command{}, apperr.New(apperr.InvalidParameter, "side must be BUY or SELL")
	}
	c := matching.Command{Kind: matching.CmdPlaceOrder, Account: account, Symbol: s.Name, Side: side,
		ClientID: p.NewClientOrderID, Obligation: p.Obligation, ExpireAt: p.GoodTillDate}
	switch p.Type {
	case "LIMIT", "LIMIT_MAKER":
		c.Type, c.PostOnly = matching.Limit, p.Type == "LIMIT_MAKER"
	case "MARKET":
		c.Type = matching.Market
	default:
		return matching.Command{}, apperr.New(apperr.InvalidParameter, "type must be LIMIT, MARKET or LIMIT_MAKER")
	}
	switch p.TimeInForce {
	case "":
		if c.Type == matching.Limit {
			c.TIF = matching.GTC
		}
	case "GTC", "IOC", "FOK", "GTD":
		if err := c.TIF.UnmarshalText([]byte(p.TimeInForce)); err != nil {
			return matching.Command{}, apperr.New(apperr.InvalidParameter, "timeInForce: %v", err)
		}
	default:
		return matching.Command{}, apperr.New(apperr.InvalidParameter, "timeInForce must be GTC, IOC, FOK or GTD")
	}
	switch p.SelfTradePreventionMode {
	case "":
	case "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT":
		_ = c.STP.UnmarshalText([]byte(strings.ToLower(p.SelfTradePreventionMode)))
	default:
		return matching.Command{}, apperr.New(apperr.InvalidParameter, "selfTradePreventionMode must be EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH or DECREMENT")
	}
	if p.NewClientOrderID == "" || len(p.NewClientOrderID) > 36 {
		return matching.Command{}, apperr.New(apperr.InvalidParameter, "newClientOrderId must be 1 to 36 characters")
	}
	if p.Mandatory {
		c.Purpose = matching.PurposeMandatory
	}
	var err error
	if c.Type == matching.Limit || p.Price != "" {
		if c.Price, err = money.Parse(p.Price, s.QuoteScale); err != nil {
			return matching.Command{}, asPrice(err)
		}
	}
	if p.QuoteOrderQty != "" {
		if c.QuoteQty, err = money.Parse(p.QuoteOrderQty, s.QuoteScale); err != nil {
			return matching.Command{}, err
		}
	} else if c.Quantity, err = money.Parse(p.Quantity, s.BaseScale); err != nil {
		return matching.Command{}, err
	}
	if p.IcebergQty != "" {
		if c.DisplayQty, err = money.Parse(p.IcebergQty, s.BaseScale); err != nil {
			return matching.Command{}, err
		}
	}
	if err := checkSizes(c, s, c.Type == matching.Limit || p.Price != "", p.QuoteOrderQty == ""); err != nil {
		return matching.Command{}, err
	}
	return c, nil
}

// checkSizes refuses, before anything reaches the inbox, what the symbol's
// configuration alone rules out: a price off the tick, a quantity off the
// lot or outside the symbol's bounds, a notional that overflows or is
// below the minimum. The engine checks the same again (and everything that
// depends on its state: funds, permissions, the phase); the codes agree.
func checkSizes(c matching.Command, s matching.Symbol, hasPrice, hasQty bool) error {
	if hasPrice && (c.Price <= 0 || c.Price%s.TickSize != 0) {
		return apperr.New(apperr.InvalidPrice, "price must be a positive multiple of the tick size %s", money.Format(s.TickSize, s.QuoteScale))
	}
	if hasQty && (c.Quantity <= 0 || c.Quantity%s.LotSize != 0 || c.Quantity < s.MinQty || c.Quantity > s.MaxQty) {
		return apperr.New(apperr.InvalidQuantity, "quantity must be a multiple of the lot size %s between %s and %s",
			money.Format(s.LotSize, s.BaseScale), money.Format(s.MinQty, s.BaseScale), money.Format(s.MaxQty, s.BaseScale))
	}
	if c.Kind != matching.CmdPlaceOrder || !hasPrice || !hasQty {
		return nil
	}
	n, ok := s.Notional(c.Price, c.Quantity)
	switch {
	case !ok:
		return apperr.New(apperr.InvalidQuantity, "price × quantity is too large")
	case n < s.MinNotional:
		return apperr.New(apperr.InvalidQuantity, "price × quantity is below the minimum notional %s", money.Format(s.MinNotional, s.QuoteScale))
	}
	return nil
}

// asPrice re-labels a quantity parse error as a price error.
func asPrice(err error) error {
	if apperr.CodeOf(err) == apperr.InvalidQuantity {
		return apperr.New(apperr.InvalidPrice, "price: %s", apperr.MessageOf(err))
	}
	return err
}

// OrderFromEvents builds the result of an order.place or order.cancel from
// the command's events; a rejection becomes its application error.
func OrderFromEvents(evs []matching.Event, symbols map[string]matching.Symbol) (OrderResult, error) {
	var r OrderResult
	var s matching.Symbol
	var executed, quote int64
	for _, ev := range evs {
		if ev.Timer {
			continue // caused by the passage of time, not by this request
		}
		switch ev.Kind {
		case matching.EvRejected:
			return OrderResult{}, matching.Rejection(evs)
		case matching.EvDuplicate:
			return OrderResult{Symbol: ev.Symbol, OrderID: ev.OrderID, ClientOrderID: ev.ClientID, Status: "DUPLICATE", Duplicate: true}, nil
		case matching.EvOrderAccepted, matching.EvOrderDone, matching.EvOrderAmended:
			if r.OrderID != 0 && ev.OrderID != r.OrderID {
				continue // a maker's order finished by this taker
			}
			if ev.Kind == matching.EvOrderAmended {
				r.KeepsPriority = ev.KeepsPriority
			}
			s = symbols[ev.Symbol]
			r.Symbol, r.OrderID, r.ClientOrderID, r.Mandatory = ev.Symbol, ev.OrderID, ev.ClientID, ev.Purpose == matching.PurposeMandatory
			r.Side = wireSide(ev.Side)
			r.Price = money.Format(ev.Price, s.QuoteScale)
			r.OrigQty = money.Format(ev.Quantity, s.BaseScale)
			r.Status = wireStatus(ev.Status)
			executed = max(executed, ev.Filled) // a cancel reports fills made before it
			quote = max(quote, ev.QuoteAmount)  // and their quote amount (0 on orders restored from a snapshot of before it was kept)
		case matching.EvTrade:
			if ev.BuyOrderID != r.OrderID && ev.SellOrderID != r.OrderID {
				continue
			}
			executed += ev.Quantity
			quote = matching.AddSaturating(quote, ev.QuoteAmount) // as the engine's own sum
			fee := ev.BuyerFee
			if ev.SellOrderID == r.OrderID {
				fee = ev.SellerFee
			}
			r.Fills = append(r.Fills, Fill{TradeID: ev.ID(), Price: money.Format(ev.Price, s.QuoteScale),
				Quantity: money.Format(ev.Quantity, s.BaseScale), Commission: money.Format(fee, s.QuoteScale),
				CommissionAsset: ev.QuoteAsset})
			r.Status = "PARTIALLY_FILLED"
		}
	}
	r.ExecutedQty = money.Format(executed, s.BaseScale)
	r.QuoteQty = money.Format(quote, s.QuoteScale)
	return r, nil
}

// wireSide is a side as the API spells it: BUY or SELL.
func wireSide(s matching.Side) string {
	switch s {
	case matching.Buy:
		return "BUY"
	case matching.Sell:
		return "SELL"
	}
	return ""
}

func wireStatus(s matching.OrderStatus) string {
	switch s {
	case matching.StatusNew:
		return "NEW"
	case matching.StatusPartiallyFilled:
		return "PARTIALLY_FILLED"
	case matching.StatusFilled:
		return "FILLED"
	case matching.StatusCanceled:
		return "CANCELED"
	case matching.StatusExpired:
		return "EXPIRED"
	}
	return string(s)
}

// DepthResult is a depth snapshot: price and quantity pairs, best first;
// LastUpdateID is the engine sequence the book reflects.
type DepthResult struct {
	Symbol       string      `json:"symbol"`
	LastUpdateID uint64      `json:"lastUpdateId"`
	Bids         [][2]string `json:"bids"`
	Asks         [][2]string `json:"asks"`
}

// Depth formats levels of symbol s.
func Depth(s matching.Symbol, seq uint64, bids, asks []matching.Level) DepthResult {
	side := func(ls []matching.Level) [][2]string {
		out := make([][2]string, len(ls))
		for i, l := range ls {
			out[i] = [2]string{money.Format(l.Price, s.QuoteScale), money.Format(l.Quantity, s.BaseScale)}
		}
		return out
	}
	return DepthResult{Symbol: s.Name, LastUpdateID: seq, Bids: side(bids), Asks: side(asks)}
}

// OpenOrder formats an open order of symbol s.
func OpenOrder(o matching.OrderView, s matching.Symbol) OrderResult {
	status := "NEW"
	if o.Remaining < o.Quantity {
		status = "PARTIALLY_FILLED"
	}
	return OrderResult{Symbol: o.Symbol, OrderID: o.ID, ClientOrderID: o.ClientID,
		Side:  wireSide(o.Side),
		Price: money.Format(o.Price, s.QuoteScale), OrigQty: money.Format(o.Quantity, s.BaseScale),
		ExecutedQty: money.Format(o.Quantity-o.Remaining, s.BaseScale), QuoteQty: money.Format(o.QuoteFilled, s.QuoteScale),
		Status: status, Mandatory: o.Purpose == matching.PurposeMandatory}
}

// AmendCommand turns amend parameters into an engine command for account.
func AmendCommand(account string, p AmendParams, symbols map[string]matching.Symbol) (matching.Command, error) {
	s, ok := symbols[p.Symbol]
	if !ok {
		return matching.Command{}, apperr.New(apperr.UnknownSymbol, "unknown symbol %q", p.Symbol)
	}
	if p.OrderID == 0 && p.OrigClientOrderID == "" {
		return matching.Command{}, apperr.New(apperr.InvalidParameter, "orderId or origClientOrderId is required")
	}
	if p.NewPrice == "" && p.NewQty == "" {
		return matching.Command{}, apperr.New(apperr.InvalidParameter, "newPrice or newQty is required")
	}
	c := matching.Command{Kind: matching.CmdAmendOrder, Account: account, Symbol: p.Symbol, OrderID: p.OrderID, ClientID: p.OrigClientOrderID}
	var err error
	if p.NewPrice != "" {
		if c.Price, err = money.Parse(p.NewPrice, s.QuoteScale); err != nil {
			return matching.Command{}, asPrice(err)
		}
	}
	if p.NewQty != "" {
		if c.Quantity, err = money.Parse(p.NewQty, s.BaseScale); err != nil {
			return matching.Command{}, err
		}
	}
	if err := checkSizes(c, s, p.NewPrice != "", p.NewQty != ""); err != nil {
		return matching.Command{}, err
	}
	return c, nil
}

// CancelledFromEvents lists the orders a cancel-all cancelled.
func CancelledFromEvents(evs []matching.Event, symbols map[string]matching.Symbol) ([]OrderResult, error) {
	if err := matching.Rejection(evs); err != nil {
		return nil, err
	}
	out := []OrderResult{}
	for _, ev := range evs {
		if ev.Timer || ev.Kind != matching.EvOrderDone || ev.Status != matching.StatusCanceled {
			continue
		}
		s := symbols[ev.Symbol]
		out = append(out, OrderResult{Symbol: ev.Symbol, OrderID: ev.OrderID, ClientOrderID: ev.ClientID, Side: wireSide(ev.Side),
			Price: money.Format(ev.Price, s.QuoteScale), OrigQty: money.Format(ev.Quantity, s.BaseScale),
			ExecutedQty: money.Format(ev.Filled, s.BaseScale), QuoteQty: money.Format(ev.QuoteAmount, s.QuoteScale),
			Status: wireStatus(ev.Status), Mandatory: ev.Purpose == matching.PurposeMandatory})
	}
	return out, nil
}
