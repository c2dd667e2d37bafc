package matching

import "github.com/satu-exchange/satu/internal/apperr"

// EventKind names what happened.
type EventKind string

// The events. Every command yields at least one event; a refused command
// yields exactly one, EvRejected, and changes nothing.
const (
	EvRejected      EventKind = "rejected"
	EvAccountOpened EventKind = "account_opened"
	EvDeposited     EventKind = "deposited"
	EvWithdrawn     EventKind = "withdrawn"
	EvPermissionSet EventKind = "permission_set"
	EvOrderAccepted EventKind = "order_accepted"
	EvTrade         EventKind = "trade"
	EvOrderDone     EventKind = "order_done"
	// EvDuplicate answers a repeated client order ID with the original order's
	// identity and changes nothing.
	EvDuplicate EventKind = "duplicate"
)

// OrderStatus is an order's state as of an event.
type OrderStatus string

// The order statuses.
const (
	StatusNew             OrderStatus = "new"
	StatusPartiallyFilled OrderStatus = "partially_filled"
	StatusFilled          OrderStatus = "filled"
	StatusCanceled        OrderStatus = "canceled"
	// StatusExpired: an IOC remainder, or a taker stopped by self-trade prevention.
	StatusExpired OrderStatus = "expired"
)

// Event is one fact the engine emits. The pair (Seq, Index) identifies it
// uniquely and deterministically: Seq is the command's sequence and Index
// the event's position among that command's events.
type Event struct {
	Seq   uint64    `json:"seq"`
	Index uint32    `json:"idx"`
	Time  int64     `json:"ts"`
	Kind  EventKind `json:"kind"`

	Account     string      `json:"account,omitempty"`
	Owner       string      `json:"owner,omitempty"`
	AccountKind AccountKind `json:"accountKind,omitempty"`

	Symbol    string      `json:"symbol,omitempty"`
	OrderID   uint64      `json:"orderId,omitempty"`
	ClientID  string      `json:"clientId,omitempty"`
	Side      Side        `json:"side,omitempty"`
	Price     int64       `json:"price,omitempty"`
	Quantity  int64       `json:"qty,omitempty"`
	Remaining int64       `json:"remaining,omitempty"`
	Filled    int64       `json:"filled,omitempty"`
	Status    OrderStatus `json:"status,omitempty"`
	Mandatory bool        `json:"mandatory,omitempty"`

	// Trades: the maker's price; both sides' accounts and orders.
	BaseAsset     string `json:"base,omitempty"`
	QuoteAsset    string `json:"quote,omitempty"`
	QuoteAmount   int64  `json:"quoteAmount,omitempty"`
	TakerSide     Side   `json:"takerSide,omitempty"`
	BuyerAccount  string `json:"buyer,omitempty"`
	SellerAccount string `json:"seller,omitempty"`
	BuyOrderID    uint64 `json:"buyOrderId,omitempty"`
	SellOrderID   uint64 `json:"sellOrderId,omitempty"`

	// Custody and permissions.
	Asset      string     `json:"asset,omitempty"`
	Amount     int64      `json:"amount,omitempty"`
	ExtRef     string     `json:"extRef,omitempty"`
	Permission Permission `json:"permission,omitempty"`
	Granted    bool       `json:"granted,omitempty"`

	// Rejections: a stable code (internal/apperr) and a message.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Rejection returns the application error of a refused command's events
// (its one EvRejected event), or nil when the command was not refused.
func Rejection(evs []Event) error {
	if len(evs) == 0 || evs[0].Kind != EvRejected {
		return nil
	}
	return &apperr.Error{Code: apperr.Code(evs[0].Code), Message: evs[0].Message}
}

// ID is the event's stable identity, "seq-index": also its events-stream ID.
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
