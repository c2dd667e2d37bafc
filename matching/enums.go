package matching

import "fmt"

// The engine's enumerations are single bytes, so commands and events stay
// small and comparisons are cheap; on the wire (JSON) they are their names.
// The zero value of each is "unset" and marshals as "".

func enumText(names []string, v uint8) ([]byte, error) {
	if int(v) >= len(names) {
		return nil, fmt.Errorf("matching: enum value %d out of range", v)
	}
	return []byte(names[v]), nil
}

func enumParse(kind string, names []string, text []byte) (uint8, error) {
	for i, n := range names {
		if n == string(text) {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("matching: unknown %s %q", kind, text)
}

func enumString(names []string, v uint8) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("enum(%d)", v)
}

// CommandKind names what a command asks of the engine.
type CommandKind uint8

// The commands.
const (
	_                CommandKind = iota
	CmdOpenAccount               // open an account for an owner
	CmdDeposit                   // credit a custody deposit (idempotent by ExtRef)
	CmdWithdraw                  // debit a withdrawal (idempotent by ExtRef)
	CmdSetPermission             // grant or revoke a permission
	CmdSetSTP                    // set an account's default self-trade prevention
	CmdPlaceOrder                // place an order
	CmdCancelOrder               // cancel one order
	CmdCancelAll                 // cancel an account's orders (optionally one symbol), or a symbol's
	CmdAmendOrder                // change an order's price and/or quantity
	CmdSetPhase                  // operator: move a symbol to another trading phase
	CmdHalt                      // operator: halt a symbol
	CmdResume                    // operator: resume a halted symbol
	CmdTick                      // no-op carrying time: expiries, auction ends, schedules
)

var commandNames = []string{"", "open_account", "deposit", "withdraw", "set_permission", "set_stp",
	"place_order", "cancel_order", "cancel_all", "amend_order", "set_phase", "halt", "resume", "tick"}

func (k CommandKind) String() string                { return enumString(commandNames, uint8(k)) }
func (k CommandKind) MarshalText() ([]byte, error)  { return enumText(commandNames, uint8(k)) }
func (k *CommandKind) UnmarshalText(b []byte) error { return parseInto(k, "command", commandNames, b) }

// parseInto parses text into any of the byte enumerations.
func parseInto[T ~uint8](dst *T, kind string, names []string, text []byte) error {
	v, err := enumParse(kind, names, text)
	if err != nil {
		return err
	}
	*dst = T(v)
	return nil
}

// Side of an order.
type Side uint8

// The sides.
const (
	_ Side = iota
	Buy
	Sell
)

var sideNames = []string{"", "buy", "sell"}

func (s Side) String() string                { return enumString(sideNames, uint8(s)) }
func (s Side) MarshalText() ([]byte, error)  { return enumText(sideNames, uint8(s)) }
func (s *Side) UnmarshalText(b []byte) error { return parseInto(s, "side", sideNames, b) }

// Opposite returns the other side.
func (s Side) Opposite() Side {
	if s == Buy {
		return Sell
	}
	return Buy
}

// OrderType of an order.
type OrderType uint8

// The order types. A market order executes at once against the book and
// never rests; a market buy is sized by base Quantity or by QuoteQty.
const (
	_ OrderType = iota
	Limit
	Market
)

var typeNames = []string{"", "limit", "market"}

func (t OrderType) String() string                { return enumString(typeNames, uint8(t)) }
func (t OrderType) MarshalText() ([]byte, error)  { return enumText(typeNames, uint8(t)) }
func (t *OrderType) UnmarshalText(b []byte) error { return parseInto(t, "order type", typeNames, b) }

// TimeInForce of an order.
type TimeInForce uint8

// The time-in-force values: GTC rests until cancelled; IOC fills what it can
// at once and expires the rest; FOK fills completely at once or not at all;
// GTD rests until ExpireAt (sequenced time, Unix ms).
const (
	_ TimeInForce = iota
	GTC
	IOC
	FOK
	GTD
)

var tifNames = []string{"", "GTC", "IOC", "FOK", "GTD"}

func (t TimeInForce) String() string               { return enumString(tifNames, uint8(t)) }
func (t TimeInForce) MarshalText() ([]byte, error) { return enumText(tifNames, uint8(t)) }
func (t *TimeInForce) UnmarshalText(b []byte) error {
	return parseInto(t, "time in force", tifNames, b)
}

// STPMode is a self-trade prevention mode: what happens when an incoming
// order would trade with a resting order of the same owner.
type STPMode uint8

// The modes. STPDefault (unset) means the account's default, which is
// expire_taker unless set otherwise.
const (
	STPDefault     STPMode = iota
	STPExpireTaker         // the incoming order's remainder expires
	STPExpireMaker         // the resting order expires; matching goes on
	STPExpireBoth          // both expire
	STPDecrement           // both are reduced by the smaller quantity; a zero side expires
)

var stpNames = []string{"", "expire_taker", "expire_maker", "expire_both", "decrement"}

func (m STPMode) String() string                { return enumString(stpNames, uint8(m)) }
func (m STPMode) MarshalText() ([]byte, error)  { return enumText(stpNames, uint8(m)) }
func (m *STPMode) UnmarshalText(b []byte) error { return parseInto(m, "STP mode", stpNames, b) }

// Purpose tags an order, and every fill it produces.
type Purpose uint8

// The purposes. PurposeMandatory marks a licensed miner's mandatory sale
// under the Law on Digital Assets; only an account with PermMandatorySell
// may send one.
const (
	PurposeNone Purpose = iota
	PurposeMandatory
)

var purposeNames = []string{"", "mandatory"}

func (p Purpose) String() string                { return enumString(purposeNames, uint8(p)) }
func (p Purpose) MarshalText() ([]byte, error)  { return enumText(purposeNames, uint8(p)) }
func (p *Purpose) UnmarshalText(b []byte) error { return parseInto(p, "purpose", purposeNames, b) }

// Phase is a symbol's trading phase (the AIX session model).
type Phase uint8

// The phases. Matching happens only in PhaseContinuous and
// PhaseTradingAtLast; the call phases (pre-open, the auctions, pre-close)
// collect orders and may leave the book crossed until the uncross.
const (
	_ Phase = iota
	PhaseClosed
	PhasePreOpen
	PhaseOpeningAuction
	PhaseContinuous
	PhasePreClose
	PhaseClosingAuction
	PhaseTradingAtLast
	PhaseVolatilityAuction
)

var phaseNames = []string{"", "closed", "pre_open", "opening_auction", "continuous", "pre_close",
	"closing_auction", "trading_at_last", "volatility_auction"}

func (p Phase) String() string                { return enumString(phaseNames, uint8(p)) }
func (p Phase) MarshalText() ([]byte, error)  { return enumText(phaseNames, uint8(p)) }
func (p *Phase) UnmarshalText(b []byte) error { return parseInto(p, "phase", phaseNames, b) }

// call reports whether the phase collects orders without matching.
func (p Phase) call() bool {
	switch p {
	case PhasePreOpen, PhaseOpeningAuction, PhasePreClose, PhaseClosingAuction, PhaseVolatilityAuction:
		return true
	}
	return false
}

// matches reports whether incoming orders match in this phase.
func (p Phase) matches() bool { return p == PhaseContinuous || p == PhaseTradingAtLast }

// AccountKind classifies an account; the ledger uses the same names.
type AccountKind uint8

// The account kinds. KindFee is the engine's own fee account.
const (
	_ AccountKind = iota
	KindMiner
	KindTrader
	KindMarketMaker
	KindOperator
	KindFee
)

var accountKindNames = []string{"", "miner", "trader", "market_maker", "operator", "fee"}

func (k AccountKind) String() string               { return enumString(accountKindNames, uint8(k)) }
func (k AccountKind) MarshalText() ([]byte, error) { return enumText(accountKindNames, uint8(k)) }
func (k *AccountKind) UnmarshalText(b []byte) error {
	return parseInto(k, "account kind", accountKindNames, b)
}

// Permission is a capability an account holds.
type Permission uint8

// PermMandatorySell lets an account place orders tagged mandatory: compliance
// grants it while the owning miner holds an active licence.
const (
	_ Permission = iota
	PermMandatorySell
)

var permissionNames = []string{"", "mandatory_sell"}

func (p Permission) String() string               { return enumString(permissionNames, uint8(p)) }
func (p Permission) MarshalText() ([]byte, error) { return enumText(permissionNames, uint8(p)) }
func (p *Permission) UnmarshalText(b []byte) error {
	return parseInto(p, "permission", permissionNames, b)
}

// EventKind names what happened.
type EventKind uint8

// The events. Every command yields at least one event; a refused command
// yields EvRejected (after any timer events) and changes nothing.
const (
	_               EventKind = iota
	EvRejected                // the command was refused: Code, Message
	EvDuplicate               // a repeated client order ID or external reference: nothing changed
	EvAccountOpened           // Account, Owner, AccountKind
	EvDeposited               // Account, Asset, Amount, ExtRef
	EvWithdrawn               // Account, Asset, Amount, ExtRef
	EvPermissionSet           // Account, Permission, Granted
	EvSTPSet                  // Account, STP
	EvOrderAccepted           // the order as accepted
	EvTrade                   // a fill: both sides, price, quantity, quote amount, fees, purpose
	EvOrderDone               // an order ended: filled, canceled or expired (Reason)
	EvOrderAmended            // an order's new price/quantity; KeepsPriority
	EvLevel                   // a book level's new visible quantity and order count (0 = gone)
	EvPhase                   // a symbol's phase or halt state changed
	EvBalance                 // an account's free and held amounts of an asset after the command
	EvAck                     // the command was applied and changed nothing else (a quiet tick)
)

var eventNames = []string{"", "rejected", "duplicate", "account_opened", "deposited", "withdrawn",
	"permission_set", "stp_set", "order_accepted", "trade", "order_done", "order_amended", "level", "phase", "balance", "ack"}

func (k EventKind) String() string                { return enumString(eventNames, uint8(k)) }
func (k EventKind) MarshalText() ([]byte, error)  { return enumText(eventNames, uint8(k)) }
func (k *EventKind) UnmarshalText(b []byte) error { return parseInto(k, "event kind", eventNames, b) }

// OrderStatus is an order's state as of an event.
type OrderStatus uint8

// The order statuses.
const (
	_ OrderStatus = iota
	StatusNew
	StatusPartiallyFilled
	StatusFilled
	StatusCanceled
	StatusExpired // see the event's Reason
)

var statusNames = []string{"", "new", "partially_filled", "filled", "canceled", "expired"}

func (s OrderStatus) String() string                { return enumString(statusNames, uint8(s)) }
func (s OrderStatus) MarshalText() ([]byte, error)  { return enumText(statusNames, uint8(s)) }
func (s *OrderStatus) UnmarshalText(b []byte) error { return parseInto(s, "status", statusNames, b) }
