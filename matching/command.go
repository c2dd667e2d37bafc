package matching

// CommandKind names what a command asks of the engine.
type CommandKind string

// The commands.
const (
	CmdOpenAccount   CommandKind = "open_account"
	CmdDeposit       CommandKind = "deposit"
	CmdWithdraw      CommandKind = "withdraw"
	CmdSetPermission CommandKind = "set_permission"
	CmdPlaceOrder    CommandKind = "place_order"
	CmdCancelOrder   CommandKind = "cancel_order"
)

// Side of an order.
type Side string

// The sides.
const (
	Buy  Side = "buy"
	Sell Side = "sell"
)

// Opposite returns the other side.
func (s Side) Opposite() Side {
	if s == Buy {
		return Sell
	}
	return Buy
}

// OrderType of an order. Market orders arrive with the full engine.
type OrderType string

// The order types.
const (
	Limit OrderType = "limit"
)

// TimeInForce of an order.
type TimeInForce string

// The time-in-force values: GTC rests until cancelled; IOC fills what it can
// at once and cancels the rest.
const (
	GTC TimeInForce = "GTC"
	IOC TimeInForce = "IOC"
)

// AccountKind classifies an account; the ledger uses the same names.
type AccountKind string

// The account kinds that commands can open.
const (
	KindMiner       AccountKind = "miner"
	KindTrader      AccountKind = "trader"
	KindMarketMaker AccountKind = "market_maker"
	KindOperator    AccountKind = "operator"
)

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

// Permission is a capability an account holds.
type Permission string

// PermMandatorySell lets an account place orders tagged mandatory: compliance
// grants it while the owning miner holds an active licence.
const PermMandatorySell Permission = "mandatory_sell"

// Command is one sequenced instruction to the engine. Seq and Time are set by
// the sequencer (the Redis inbox), never by the client: Seq is the command's
// position (1, 2, 3, … without gaps) and Time the inbox entry's time in Unix
// milliseconds. The engine reads no other clock.
type Command struct {
	Seq  uint64      `json:"seq,omitempty"`
	Time int64       `json:"ts,omitempty"`
	Kind CommandKind `json:"kind"`

	Account string `json:"account,omitempty"`

	// Order entry and cancel.
	Symbol    string      `json:"symbol,omitempty"`
	ClientID  string      `json:"clientId,omitempty"`
	Side      Side        `json:"side,omitempty"`
	Type      OrderType   `json:"type,omitempty"`
	TIF       TimeInForce `json:"tif,omitempty"`
	Price     int64       `json:"price,omitempty"`
	Quantity  int64       `json:"qty,omitempty"`
	Mandatory bool        `json:"mandatory,omitempty"`
	OrderID   uint64      `json:"orderId,omitempty"`

	// Custody: idempotent by ExtRef (e.g. the on-chain transaction hash).
	Asset  string `json:"asset,omitempty"`
	Amount int64  `json:"amount,omitempty"`
	ExtRef string `json:"extRef,omitempty"`

	// Accounts and permissions.
	Owner       string      `json:"owner,omitempty"`
	AccountKind AccountKind `json:"accountKind,omitempty"`
	Permission  Permission  `json:"permission,omitempty"`
	Granted     bool        `json:"granted,omitempty"`
}
