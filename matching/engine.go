// Package matching is Satu's exchange engine: a pure, deterministic state
// machine. Commands go in, in sequence order; events come out. It performs no
// I/O, reads no clock and starts no goroutines, so replaying the same
// commands always yields the same events and the same state. Adapters
// (matching/redisbus, matching/wsgateway) sequence commands and carry events.
//
// Risk is checked inside the engine: every order is covered by a hold on the
// account's balance when accepted, and holds are released on fill and cancel,
// so no balance can go negative.
package matching

import (
	"fmt"

	"github.com/satu-exchange/satu/internal/apperr"
)

type balance struct{ free, held int64 }

type account struct {
	id       string
	owner    string
	kind     AccountKind
	perms    map[Permission]bool
	balances map[string]*balance
	// clientIDs remembers every client order ID the account used, so a
	// repeated command answers with the original order and changes nothing.
	clientIDs map[string]uint64
}

func (a *account) bal(asset string) *balance {
	b := a.balances[asset]
	if b == nil {
		b = &balance{}
		a.balances[asset] = b
	}
	return b
}

// Engine is the matching engine for one shard. It is not safe for concurrent
// use: one goroutine owns it (the sequencer's reader).
type Engine struct {
	seq      uint64
	symbols  map[string]*Symbol
	assets   map[string]bool
	books    map[string]*book
	accounts map[string]*account
	orders   map[uint64]*order
	extRefs  map[string]bool
	nextID   uint64

	// per-command scratch: the command being applied, the output slice and
	// where this command's events start in it.
	cur    Command
	events []Event
	start  int
}

// New returns an engine for the given symbols at sequence 0.
func New(symbols []Symbol) (*Engine, error) {
	e := &Engine{
		symbols:  make(map[string]*Symbol, len(symbols)),
		assets:   make(map[string]bool),
		books:    make(map[string]*book, len(symbols)),
		accounts: make(map[string]*account),
		orders:   make(map[uint64]*order),
		extRefs:  make(map[string]bool),
	}
	for i := range symbols {
		s := symbols[i]
		if err := s.Validate(); err != nil {
			return nil, err
		}
		if _, dup := e.symbols[s.Name]; dup {
			return nil, fmt.Errorf("symbol %s configured twice", s.Name)
		}
		e.symbols[s.Name] = &s
		e.books[s.Name] = &book{}
		e.assets[s.Base], e.assets[s.Quote] = true, true
	}
	return e, nil
}

// Seq is the sequence of the last applied command.
func (e *Engine) Seq() uint64 { return e.seq }

// Symbol returns a symbol's configuration.
func (e *Engine) Symbol(name string) (Symbol, bool) {
	s, ok := e.symbols[name]
	if !ok {
		return Symbol{}, false
	}
	return *s, true
}

// Balance returns an account's free and held amounts of an asset.
func (e *Engine) Balance(acct, asset string) (free, held int64) {
	a := e.accounts[acct]
	if a == nil || a.balances[asset] == nil {
		return 0, 0
	}
	b := a.balances[asset]
	return b.free, b.held
}

// Depth returns up to n aggregated levels of each side of a symbol's book.
func (e *Engine) Depth(symbol string, n int) (bids, asks []Level) {
	b := e.books[symbol]
	if b == nil {
		return nil, nil
	}
	return b.depth(Buy, n), b.depth(Sell, n)
}

// Apply applies one command and appends its events to out. The command's
// Seq must follow the engine's: anything else is a sequencer bug and is
// returned as an error with the engine unchanged.
func (e *Engine) Apply(cmd Command, out []Event) ([]Event, error) {
	if cmd.Seq != e.seq+1 {
		return out, fmt.Errorf("matching: command seq %d does not follow %d", cmd.Seq, e.seq)
	}
	e.seq = cmd.Seq
	e.cur = cmd
	e.events = out
	e.start = len(out)
	var err *apperr.Error
	switch cmd.Kind {
	case CmdOpenAccount:
		err = e.openAccount(cmd)
	case CmdDeposit:
		err = e.deposit(cmd)
	case CmdWithdraw:
		err = e.withdraw(cmd)
	case CmdSetPermission:
		err = e.setPermission(cmd)
	case CmdPlaceOrder:
		err = e.placeOrder(cmd)
	case CmdCancelOrder:
		err = e.cancelOrder(cmd)
	default:
		err = apperr.New(apperr.UnknownMethod, "unknown command %q", cmd.Kind)
	}
	if err != nil {
		// Every handler validates before it changes anything, so a refused
		// command leaves no trace but this event.
		e.emit(Event{Kind: EvRejected, Account: cmd.Account, Symbol: cmd.Symbol, ClientID: cmd.ClientID,
			OrderID: cmd.OrderID, Code: string(err.Code), Message: err.Message})
	}
	out = e.events
	e.events = nil
	return out, nil
}

func (e *Engine) emit(ev Event) {
	ev.Seq = e.cur.Seq
	ev.Time = e.cur.Time
	ev.Index = uint32(len(e.events) - e.start)
	e.events = append(e.events, ev)
}

func (e *Engine) account(id string) (*account, *apperr.Error) {
	if id == "" {
		return nil, apperr.New(apperr.InvalidParameter, "account is required")
	}
	a := e.accounts[id]
	if a == nil {
		return nil, apperr.New(apperr.UnknownAccount, "unknown account %q", id)
	}
	return a, nil
}

func (e *Engine) openAccount(c Command) *apperr.Error {
	if !ValidAccountID(c.Account) || !ValidAccountID(c.Owner) {
		return apperr.New(apperr.InvalidParameter, "account and owner must be 1-64 lower-case letters, digits or dashes")
	}
	switch c.AccountKind {
	case KindMiner, KindTrader, KindMarketMaker, KindOperator:
	default:
		return apperr.New(apperr.InvalidParameter, "unknown account kind %q", c.AccountKind)
	}
	if a := e.accounts[c.Account]; a != nil {
		if a.owner == c.Owner && a.kind == c.AccountKind {
			e.emit(Event{Kind: EvDuplicate, Account: a.id, Owner: a.owner, AccountKind: a.kind})
			return nil
		}
		return apperr.New(apperr.Conflict, "account %q exists with another owner or kind", c.Account)
	}
	e.accounts[c.Account] = &account{id: c.Account, owner: c.Owner, kind: c.AccountKind,
		perms: map[Permission]bool{}, balances: map[string]*balance{}, clientIDs: map[string]uint64{}}
	e.emit(Event{Kind: EvAccountOpened, Account: c.Account, Owner: c.Owner, AccountKind: c.AccountKind})
	return nil
}

func (e *Engine) custody(c Command) (*account, *apperr.Error) {
	a, err := e.account(c.Account)
	if err != nil {
		return nil, err
	}
	if !e.assets[c.Asset] {
		return nil, apperr.New(apperr.UnknownAsset, "unknown asset %q", c.Asset)
	}
	if c.Amount <= 0 {
		return nil, apperr.New(apperr.InvalidQuantity, "amount must be positive")
	}
	if c.ExtRef == "" {
		return nil, apperr.New(apperr.InvalidParameter, "external reference is required")
	}
	return a, nil
}

func (e *Engine) deposit(c Command) *apperr.Error {
	a, err := e.custody(c)
	if err != nil {
		return err
	}
	ref := "dep:" + c.ExtRef
	if e.extRefs[ref] {
		e.emit(Event{Kind: EvDuplicate, Account: a.id, Asset: c.Asset, ExtRef: c.ExtRef})
		return nil
	}
	b := a.bal(c.Asset)
	if b.free > 1<<63-1-c.Amount {
		return apperr.New(apperr.InvalidQuantity, "deposit would overflow the balance")
	}
	e.extRefs[ref] = true
	b.free += c.Amount
	e.emit(Event{Kind: EvDeposited, Account: a.id, Asset: c.Asset, Amount: c.Amount, ExtRef: c.ExtRef})
	return nil
}

func (e *Engine) withdraw(c Command) *apperr.Error {
	a, err := e.custody(c)
	if err != nil {
		return err
	}
	ref := "wd:" + c.ExtRef
	if e.extRefs[ref] {
		e.emit(Event{Kind: EvDuplicate, Account: a.id, Asset: c.Asset, ExtRef: c.ExtRef})
		return nil
	}
	b := a.bal(c.Asset)
	if b.free < c.Amount {
		return apperr.New(apperr.InsufficientFunds, "free %s balance is below the withdrawal", c.Asset)
	}
	e.extRefs[ref] = true
	b.free -= c.Amount
	e.emit(Event{Kind: EvWithdrawn, Account: a.id, Asset: c.Asset, Amount: c.Amount, ExtRef: c.ExtRef})
	return nil
}

func (e *Engine) setPermission(c Command) *apperr.Error {
	a, err := e.account(c.Account)
	if err != nil {
		return err
	}
	if c.Permission != PermMandatorySell {
		return apperr.New(apperr.InvalidParameter, "unknown permission %q", c.Permission)
	}
	a.perms[c.Permission] = c.Granted
	e.emit(Event{Kind: EvPermissionSet, Account: a.id, Permission: c.Permission, Granted: c.Granted})
	return nil
}
