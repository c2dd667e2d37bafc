package matching

// ValidAccountID reports whether id is a well-formed account ID: 1 to 64
// lower-case letters, digits or dashes, starting with a letter or digit.
func ValidAccountID(id string) bool {
	if len(id) == 0 || len(id) > 64 || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// MaxClientIDLen bounds client order IDs and external references.
const MaxClientIDLen = 64

// Command is one sequenced instruction to the engine. Seq and Time are set by
// the sequencer (the Redis inbox), never by the client: Seq is the command's
// position (1, 2, 3, … without gaps) and Time the inbox entry's time in Unix
// milliseconds. The engine reads no other clock.
type Command struct {
	Seq  uint64      `json:"seq,omitempty"`
	Time int64       `json:"ts,omitempty"`
	Kind CommandKind `json:"kind"`

	Account string `json:"account,omitempty"`
	Symbol  string `json:"symbol,omitempty"`

	// Order entry. Price is the limit (0 for market orders); Quantity the
	// base quantity; QuoteQty the quote budget of a market buy sized by
	// amount (fees included). DisplayQty > 0 makes an iceberg. ExpireAt is
	// a GTD order's expiry (Unix ms of sequenced time).
	ClientID   string      `json:"clientId,omitempty"`
	Side       Side        `json:"side,omitempty"`
	Type       OrderType   `json:"type,omitempty"`
	TIF        TimeInForce `json:"tif,omitempty"`
	Price      int64       `json:"price,omitempty"`
	Quantity   int64       `json:"qty,omitempty"`
	QuoteQty   int64       `json:"quoteQty,omitempty"`
	DisplayQty int64       `json:"displayQty,omitempty"`
	ExpireAt   int64       `json:"expireAt,omitempty"`
	PostOnly   bool        `json:"postOnly,omitempty"`
	STP        STPMode     `json:"stp,omitempty"`
	Purpose    Purpose     `json:"purpose,omitempty"`
	Obligation string      `json:"obligation,omitempty"` // the obligation a mandatory sale serves

	// Cancel and amend name the order by OrderID or by ClientID. An amend
	// sets Price (0: unchanged) and/or Quantity, the new total quantity
	// (0: unchanged).
	OrderID uint64 `json:"orderId,omitempty"`

	// Custody: idempotent by ExtRef (e.g. the on-chain transaction hash).
	Asset  string `json:"asset,omitempty"`
	Amount int64  `json:"amount,omitempty"`
	ExtRef string `json:"extRef,omitempty"`

	// Accounts, permissions and phases.
	Owner       string      `json:"owner,omitempty"`
	AccountKind AccountKind `json:"accountKind,omitempty"`
	Permission  Permission  `json:"permission,omitempty"`
	Granted     bool        `json:"granted,omitempty"`
	Phase       Phase       `json:"phase,omitempty"`
}
