package matching

import "github.com/satu-exchange/satu/internal/apperr"

// The reasons an order ends other than by a fill or the owner's cancel.
const (
	ReasonCanceled   = "canceled"   // the owner's cancel
	ReasonCancelAll  = "cancel_all" // a cancel-all by the owner or an operator
	ReasonIOC        = "ioc"        // the unfilled rest of an IOC order
	ReasonFOK        = "fok"        // a FOK order that could not fill completely
	ReasonMarket     = "market"     // the unfilled rest of a market order
	ReasonSelfTrade  = "self_trade" // self-trade prevention
	ReasonPriceBand  = "price_band" // an execution beyond the band; the rest cannot rest
	ReasonExpired    = "gtd"        // a GTD order reached its expiry
	ReasonAuctionSTP = "auction_self_trade"
)

// Event is one fact the engine emits. The pair (Seq, Index) identifies it
// uniquely and deterministically: Seq is the command's sequence and Index
// the event's position among that command's events.
//
// Timer events (Timer true) come first in a command's events: they are
// caused by the passage of sequenced time (GTD expiry, the end of a
// volatility auction, a scheduled phase), not by the command itself.
// Level and balance events come last, one per level and per account and
// asset the command touched, with the values after the command.
type Event struct {
	// The one-byte fields come together, so the struct packs without
	// padding: an exchange emits several events per command.
	Seq         uint64      `json:"seq"`
	Time        int64       `json:"ts"`
	Index       uint32      `json:"idx"`
	Orders      int32       `json:"orders,omitempty"` // levels: the number of orders
	Kind        EventKind   `json:"kind"`
	Timer       bool        `json:"timer,omitempty"`
	AccountKind AccountKind `json:"accountKind,omitempty"`
	Side        Side        `json:"side,omitempty"`
	Type        OrderType   `json:"type,omitempty"`
	TIF         TimeInForce `json:"tif,omitempty"`
	Status      OrderStatus `json:"status,omitempty"`
	Purpose     Purpose     `json:"purpose,omitempty"`
	// KeepsPriority: an amend that kept the order's place in the queue.
	KeepsPriority bool `json:"keepsPriority,omitempty"`
	// TakerSide is 0 for an auction trade.
	TakerSide  Side       `json:"takerSide,omitempty"`
	Permission Permission `json:"permission,omitempty"`
	Granted    bool       `json:"granted,omitempty"`
	STP        STPMode    `json:"stp,omitempty"`
	Phase      Phase      `json:"phase,omitempty"`
	Halted     bool       `json:"halted,omitempty"`

	Account string `json:"account,omitempty"`
	Owner   string `json:"owner,omitempty"`

	Symbol     string `json:"symbol,omitempty"`
	OrderID    uint64 `json:"orderId,omitempty"`
	ClientID   string `json:"clientId,omitempty"`
	Price      int64  `json:"price,omitempty"`
	Quantity   int64  `json:"qty,omitempty"`
	Remaining  int64  `json:"remaining,omitempty"`
	Filled     int64  `json:"filled,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Obligation string `json:"obligation,omitempty"`

	// Trades: executed at Price; the buyer pays QuoteAmount + BuyerFee, the
	// seller receives QuoteAmount − SellerFee, FeeAccount receives both
	// fees. Purpose and Obligation are the sell order's. On order events
	// QuoteAmount is the quote amount of the order's fills so far.
	BaseAsset     string `json:"base,omitempty"`
	QuoteAsset    string `json:"quote,omitempty"`
	QuoteAmount   int64  `json:"quoteAmount,omitempty"`
	BuyerFee      int64  `json:"buyerFee,omitempty"`
	SellerFee     int64  `json:"sellerFee,omitempty"`
	FeeAccount    string `json:"feeAccount,omitempty"`
	BuyerAccount  string `json:"buyer,omitempty"`
	SellerAccount string `json:"seller,omitempty"`
	BuyOrderID    uint64 `json:"buyOrderId,omitempty"`
	SellOrderID   uint64 `json:"sellOrderId,omitempty"`

	// Balances (Account, Asset, Free, Held) and custody (Asset, Amount, ExtRef).
	Asset  string `json:"asset,omitempty"`
	Amount int64  `json:"amount,omitempty"`
	Free   int64  `json:"free,omitempty"`
	Held   int64  `json:"held,omitempty"`
	ExtRef string `json:"extRef,omitempty"`

	// Phases: Phase, Halted, Until (the end of a volatility auction) and
	// Price (the reference price, or the closing price in trading-at-last).
	Until int64 `json:"until,omitempty"`

	// Rejections: a stable code (internal/apperr) and a message.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Rejection returns the application error of a refused command's events
// (its EvRejected event), or nil when the command was not refused.
func Rejection(evs []Event) error {
	for i := range evs {
		if evs[i].Kind == EvRejected {
			return &apperr.Error{Code: apperr.Code(evs[i].Code), Message: evs[i].Message}
		}
	}
	return nil
}

// ID is the event's stable identity, "seq-index". (The events stream holds
// a command's events in one entry, "seq-0".)
func (e Event) ID() string { return formatID(e.Seq, e.Index) }

func formatID(seq uint64, idx uint32) string {
	var b [32]byte
	n := len(b)
	n = putUint(b[:n], uint64(idx))
	b[n-1] = '-'
	n--
	n = putUint(b[:n], seq)
	return string(b[n:])
}

// putUint writes v's decimal digits ending at len(b) and returns the start.
func putUint(b []byte, v uint64) int {
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return i
		}
	}
}

// Envelope is an event as a stream carries it: its stream ID, the reference
// of the submission that caused it, and whether it is that command's last.
type Envelope struct {
	StreamID string
	Ref      string
	Last     bool
	Event    Event
}
