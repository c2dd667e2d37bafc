// Package matching is Satu's exchange engine: a pure, deterministic state
// machine. Commands go in, in sequence order; events come out. It performs no
// I/O, reads no clock and starts no goroutines, so replaying the same
// commands always yields the same events and the same state (StateHash).
// Adapters (matching/redisbus, matching/wsgateway) sequence commands and
// carry events.
//
// Risk is checked inside the engine: every order is covered by a hold on the
// account's balance when accepted, and holds are released on fill, cancel
// and expiry, so no balance can go negative. docs/matching.md describes the
// phases, auctions, self-trade prevention and rejections with examples.
package matching

import (
	"fmt"
	"hash/maphash"
	"math"

	"github.com/satu-exchange/satu/internal/apperr"
)

// DefaultFeeAccount is the account fees are credited to.
const DefaultFeeAccount = "exchange-fees"

// Config configures an engine.
type Config struct {
	Symbols []Symbol
	// FeeAccount receives all trading fees; the engine opens it itself.
	FeeAccount string
	// ClientIDRetentionMs is how long, in sequenced time, a finished order's
	// client ID is remembered (a retry within it answers "duplicate"). Open
	// orders' client IDs are always remembered. Default 24 hours.
	ClientIDRetentionMs int64
}

type balance struct {
	free, held int64
	mark       uint64 // the command seq that last reported this balance as touched
}

type account struct {
	id, owner string
	ownerID   uint32 // the owner's number (Engine.owners): self-trade checks compare numbers, not strings
	kind      AccountKind
	perms     uint32 // bit per Permission
	stp       STPMode
	bal       []balance // by asset index
	salt      uint64    // mixes the account into client-ID hashes
	snapIdx   int32     // the account's place in the copy SnapshotLater is making
	// open holds the IDs of the account's open orders in the order they
	// were listed (oldest first), and also IDs of orders that have ended
	// since: ending an order only counts it down (no neighbours to unlink,
	// each a likely cache miss); list compacts it, a few IDs at a time,
	// when ended IDs are the majority, and readers skip IDs that are no
	// longer open.
	open      openList
	openCount int
}

func (a *account) has(p Permission) bool { return a.perms&(1<<p) != 0 }

// market is one symbol's configuration and state.
type market struct {
	Symbol
	base, quote int // asset indexes
	tick, lot   divisor
	bids, asks  bookSide
	phase       Phase
	halted      bool
	refPrice    int64 // the band's reference: the last trade or auction price
	bandLo      int64 // executions below bandLo or above bandHi are not made
	bandHi      int64
	closePrice  int64 // the closing auction's price, for trading at last
	lastPrice   int64 // the last trade's price
	volUntil    int64 // end of a volatility auction
	schedPhase  Phase // the phase the schedule last set
	schedStep   int64 // when the step the schedule last applied began (Unix ms; 0: none yet)
}

func (m *market) side(s Side) *bookSide {
	if s == Buy {
		return &m.bids
	}
	return &m.asks
}

func (m *market) setRef(p int64) {
	m.refPrice = p
	if m.PriceBandBps == 0 || p == 0 {
		m.bandLo, m.bandHi = 0, 1<<63-1
		return
	}
	d, _ := mulDivPow10(p, m.PriceBandBps, 4, false)
	m.bandLo, m.bandHi = p-d, p+d
}

// finishedID is an entry of the retention queue: a finished order's
// client-ID record (see cidIndex), its key's hash, and when it finished.
type finishedID struct {
	hash uint64
	at   int64
	rec  uint32
}

// Changes of the engine's rules take effect by sequenced time: a command
// applies the rules in force at its Time. The inbox is the journal, and a
// command journaled before a change must give, when replayed — by `satu
// reconcile -replay`, or by a restart from a snapshot older than the last
// command applied — what it gave then, or the replayed state parts from the
// events, the Redis order book and the ledger.
//
// RuleChange20261204 (2026-12-04T00:00:00Z): an iceberg's slice must be
// worth MinNotional at the order's price, and at an amend's new price; a
// market buy by quantity holds per price level, not per resting order; a
// schedule step naming the phase of the step before ends an operator's
// change; deposits bound each asset's total on the exchange at 2^62, not
// each balance.
const RuleChange20261204 = 1_796_342_400_000

// levelKey names a book level; touchedLevel is a level a command changed,
// with the level itself (dead, count 0, if it emptied: levels are recycled
// only after the command's events are out, so the pointer stays valid).
type levelKey struct {
	m     *market
	side  Side
	price int64
}

type touchedLevel struct {
	levelKey
	lvl *level
}

// Engine is the matching engine for one shard. It is not safe for concurrent
// use: one goroutine owns it (the sequencer's reader).
type Engine struct {
	cfg      Config
	seq      uint64
	now      int64
	nextID   uint64
	markets  []*market
	bySymbol map[string]*market
	assets   []string
	assetIdx map[string]int
	accounts map[string]*account
	lastAcct *account // the account account() found last: a command stream repeats its accounts
	// supply is, per asset, everything deposited and not withdrawn: the
	// sum of every account's free and held balances, which trades and fees
	// only move around. Deposits keep it at most maxSupply, so no balance
	// can pass it, and no credit can overflow.
	supply    []int64
	owners    map[string]uint32 // owner → its number, in order of first appearance
	orders    orderIndex
	cids      cidIndex
	deposits  map[string]struct{}
	withdraws map[string]struct{}
	expiry    expiryHeap
	finished  fifo[finishedID]
	feeAcct   *account
	pool      pool

	// per command: the output, where this command's events start, whether
	// timer events are being emitted, and what it touched.
	evs        []Event
	start      int
	timer      bool
	touchedBal []touchedBalance
	touchedLvl []touchedLevel
	// touchedSet indexes touchedLvl while a command touches many levels
	// (manyTouched); kept between such commands, emptied, unless it grew
	// large (see forgetTouchedSet).
	touchedSet  map[levelKey]struct{}
	manyTouched bool
	deadLevels  []*level // emptied in this command: recycled by flush
}

type touchedBalance struct {
	a     *account
	asset int
}

// New returns an engine for the given symbols with the default fee account
// and client-ID retention.
func New(symbols []Symbol) (*Engine, error) { return NewWithConfig(Config{Symbols: symbols}) }

// NewWithConfig returns an engine at sequence 0.
func NewWithConfig(cfg Config) (*Engine, error) {
	if cfg.FeeAccount == "" {
		cfg.FeeAccount = DefaultFeeAccount
	}
	if !ValidAccountID(cfg.FeeAccount) {
		return nil, fmt.Errorf("matching: invalid fee account %q", cfg.FeeAccount)
	}
	if cfg.ClientIDRetentionMs == 0 {
		cfg.ClientIDRetentionMs = 24 * 60 * 60 * 1000
	}
	if cfg.ClientIDRetentionMs < 0 {
		return nil, fmt.Errorf("matching: negative client ID retention")
	}
	cfg.Symbols = append([]Symbol(nil), cfg.Symbols...)
	e := &Engine{
		cfg:       cfg,
		bySymbol:  make(map[string]*market, len(cfg.Symbols)),
		assetIdx:  make(map[string]int),
		accounts:  make(map[string]*account),
		owners:    make(map[string]uint32),
		cids:      newCIDIndex(),
		deposits:  make(map[string]struct{}),
		withdraws: make(map[string]struct{}),
	}
	asset := func(name string) int {
		if i, ok := e.assetIdx[name]; ok {
			return i
		}
		e.assets = append(e.assets, name)
		e.assetIdx[name] = len(e.assets) - 1
		return len(e.assets) - 1
	}
	for _, s := range cfg.Symbols {
		if err := s.Validate(); err != nil {
			return nil, err
		}
		if _, dup := e.bySymbol[s.Name]; dup {
			return nil, fmt.Errorf("symbol %s configured twice", s.Name)
		}
		m := &market{Symbol: s, base: asset(s.Base), quote: asset(s.Quote),
			tick: newDivisor(s.TickSize), lot: newDivisor(s.LotSize),
			bids: bookSide{side: Buy, byPrice: map[int64]*level{}},
			asks: bookSide{side: Sell, byPrice: map[int64]*level{}}}
		m.phase = s.InitialPhase
		if m.phase == 0 {
			m.phase = PhaseContinuous
		}
		if len(s.Schedule) > 0 {
			m.phase = PhaseClosed // the first command's time sets the scheduled phase
		}
		m.setRef(s.RefPrice)
		e.markets = append(e.markets, m)
		e.bySymbol[s.Name] = m
	}
	e.feeAcct = e.newAccount(cfg.FeeAccount, cfg.FeeAccount, KindFee, STPExpireTaker)
	e.supply = make([]int64, len(e.assets))
	return e, nil
}

// maxSupply bounds each asset's total on the exchange (minor units): any
// one balance, at most the total, then fits int64 with room for a credit.
const maxSupply = 1 << 62

// addSupply adds amount to an asset's total. Before RuleChange20261204 only
// each balance was bounded, so the total of many could pass int64: it
// saturates at MaxInt64 instead of wrapping (a wrapped total could read as
// room for more), and a saturated total refuses every deposit after it.
func (e *Engine) addSupply(asset int, amount int64) {
	e.supply[asset] = AddSaturating(e.supply[asset], amount)
}

// subSupply takes amount off an asset's total; a saturated total is not
// known, and stays saturated.
func (e *Engine) subSupply(asset int, amount int64) {
	if e.supply[asset] != math.MaxInt64 {
		e.supply[asset] -= amount
	}
}

func (e *Engine) newAccount(id, owner string, kind AccountKind, stp STPMode) *account {
	oid, ok := e.owners[owner]
	if !ok {
		oid = uint32(len(e.owners))
		e.owners[owner] = oid
	}
	a := &account{id: id, owner: owner, ownerID: oid, kind: kind, stp: stp, bal: make([]balance, len(e.assets)),
		salt: maphash.String(e.cids.seed, id)}
	e.accounts[id] = a
	return a
}

// Seq is the sequence of the last applied command.
func (e *Engine) Seq() uint64 { return e.seq }

// Now is the sequenced time of the last applied command (Unix ms).
func (e *Engine) Now() int64 { return e.now }

// FeeAccount is the account fees are credited to.
func (e *Engine) FeeAccount() string { return e.cfg.FeeAccount }

// Apply applies one command and appends its events to out. The command's
// Seq must follow the engine's: anything else is a sequencer bug and is
// returned as an error with the engine unchanged. A command's time never
// moves the engine's clock backwards: an earlier Time counts as the
// engine's current time.
func (e *Engine) Apply(cmd Command, out []Event) ([]Event, error) {
	if cmd.Seq != e.seq+1 {
		return out, fmt.Errorf("matching: command seq %d does not follow %d", cmd.Seq, e.seq)
	}
	e.seq = cmd.Seq
	if cmd.Time > e.now {
		e.now = cmd.Time
	}
	e.evs, e.start = out, len(out)
	e.timer = true
	e.advance()
	e.timer = false
	own := len(e.evs)
	var err *apperr.Error
	switch cmd.Kind {
	case CmdPlaceOrder:
		err = e.placeOrder(&cmd)
	case CmdCancelOrder:
		err = e.cancelOrder(&cmd)
	case CmdAmendOrder:
		err = e.amendOrder(&cmd)
	case CmdCancelAll:
		err = e.cancelAll(&cmd)
	case CmdOpenAccount:
		err = e.openAccount(&cmd)
	case CmdDeposit:
		err = e.deposit(&cmd)
	case CmdWithdraw:
		err = e.withdraw(&cmd)
	case CmdSetPermission:
		err = e.setPermission(&cmd)
	case CmdSetSTP:
		err = e.setSTP(&cmd)
	case CmdSetPhase, CmdHalt, CmdResume:
		err = e.phaseCommand(&cmd)
	case CmdTick:
	default:
		err = apperr.New(apperr.UnknownMethod, "unknown or undecodable command")
	}
	if err != nil {
		// Every handler validates before it changes anything, so a refused
		// command leaves no trace but this event.
		ev := e.emit(EvRejected)
		ev.Account, ev.Symbol, ev.ClientID, ev.OrderID = cmd.Account, cmd.Symbol, cmd.ClientID, cmd.OrderID
		ev.Code, ev.Message = string(err.Code), err.Message
	}
	e.flush()
	if len(e.evs) == own {
		e.emit(EvAck)
	}
	out = e.evs
	e.evs = nil
	return out, nil
}

// emit appends an event of kind, stamped with the command's identity, and
// returns it for the caller to fill in place (no copy of the large struct).
func (e *Engine) emit(kind EventKind) *Event {
	n := len(e.evs)
	if n < cap(e.evs) {
		e.evs = e.evs[:n+1]
		e.evs[n] = Event{}
	} else {
		e.evs = append(e.evs, Event{})
	}
	ev := &e.evs[n]
	ev.Seq, ev.Index, ev.Kind, ev.Time, ev.Timer = e.seq, uint32(n-e.start), kind, e.now, e.timer
	return ev
}

// touch records that a balance changed in this command.
func (e *Engine) touch(a *account, asset int) {
	if b := &a.bal[asset]; b.mark != e.seq {
		b.mark = e.seq
		e.touchedBal = append(e.touchedBal, touchedBalance{a, asset})
	}
}

// touchLevel records that a book level changed in this command. A few
// levels are deduplicated by a scan; a command that touches many (a sweep,
// a mass cancel) switches to a set, so the cost stays linear.
func (e *Engine) touchLevel(m *market, side Side, l *level) {
	k := levelKey{m, side, l.price}
	if e.manyTouched {
		if _, seen := e.touchedSet[k]; !seen {
			e.touchedSet[k] = struct{}{}
			e.touchedLvl = append(e.touchedLvl, touchedLevel{k, l})
		}
		return
	}
	for i := range e.touchedLvl {
		if e.touchedLvl[i].levelKey == k {
			return
		}
	}
	e.touchedLvl = append(e.touchedLvl, touchedLevel{k, l})
	if len(e.touchedLvl) > 16 {
		if e.touchedSet == nil {
			e.touchedSet = make(map[levelKey]struct{}, 64)
		}
		e.manyTouched = true
		for _, x := range e.touchedLvl {
			e.touchedSet[x.levelKey] = struct{}{}
		}
	}
}

// maxKeptTouchedSet bounds the touched-level set kept for the next
// command that touches many levels: emptying a map costs its capacity, so
// one grown by a huge command (a cancel-all, a restore) is dropped instead.
const maxKeptTouchedSet = 1024

// forgetTouchedSet empties the touched-level set for the next command.
func (e *Engine) forgetTouchedSet() {
	if !e.manyTouched {
		return
	}
	e.manyTouched = false
	if len(e.touchedSet) > maxKeptTouchedSet {
		e.touchedSet = nil
		return
	}
	clear(e.touchedSet)
}

// flush emits one event per touched level and balance, with final values.
func (e *Engine) flush() {
	for _, t := range e.touchedLvl {
		ev := e.emit(EvLevel)
		ev.Symbol, ev.Side, ev.Price = t.m.Name, t.side, t.price
		l := t.lvl
		if l.count == 0 { // it emptied; another may have opened at its price
			l = t.m.side(t.side).byPrice[t.price]
		}
		if l != nil {
			ev.Quantity, ev.Orders = l.visible, l.count
		}
	}
	for _, t := range e.touchedBal {
		b := &t.a.bal[t.asset]
		ev := e.emit(EvBalance)
		ev.Account, ev.Asset, ev.Free, ev.Held = t.a.id, e.assets[t.asset], b.free, b.held
	}
	e.touchedLvl = e.touchedLvl[:0]
	e.touchedBal = e.touchedBal[:0]
	e.forgetTouchedSet()
	for i, l := range e.deadLevels {
		e.pool.putLevel(l)
		e.deadLevels[i] = nil
	}
	e.deadLevels = e.deadLevels[:0]
}

func (e *Engine) account(id string) (*account, *apperr.Error) {
	if id == "" {
		return nil, apperr.New(apperr.InvalidParameter, "account is required")
	}
	if a := e.lastAcct; a != nil && a.id == id {
		return a, nil
	}
	a := e.accounts[id]
	if a == nil {
		return nil, apperr.New(apperr.UnknownAccount, "unknown account %q", id)
	}
	e.lastAcct = a
	return a, nil
}

func (e *Engine) market(name string) (*market, *apperr.Error) {
	for _, m := range e.markets { // a handful per shard: faster than hashing
		if m.Name == name {
			return m, nil
		}
	}
	return nil, apperr.New(apperr.UnknownSymbol, "unknown symbol %q", name)
}

func (e *Engine) openAccount(c *Command) *apperr.Error {
	if !ValidAccountID(c.Account) || !ValidAccountID(c.Owner) {
		return apperr.New(apperr.InvalidParameter, "account and owner must be 1-64 lower-case letters, digits or dashes")
	}
	switch c.AccountKind {
	case KindMiner, KindTrader, KindMarketMaker, KindOperator:
	default:
		return apperr.New(apperr.InvalidParameter, "unknown account kind %q", c.AccountKind)
	}
	if int(c.STP) >= len(stpNames) {
		return apperr.New(apperr.InvalidParameter, "unknown STP mode")
	}
	stp := c.STP
	if stp == STPDefault {
		stp = STPExpireTaker
	}
	if a := e.accounts[c.Account]; a != nil {
		if a.owner == c.Owner && a.kind == c.AccountKind {
			ev := e.emit(EvDuplicate)
			ev.Account, ev.Owner, ev.AccountKind = a.id, a.owner, a.kind
			return nil
		}
		return apperr.New(apperr.Conflict, "account %q exists with another owner or kind", c.Account)
	}
	a := e.newAccount(c.Account, c.Owner, c.AccountKind, stp)
	ev := e.emit(EvAccountOpened)
	ev.Account, ev.Owner, ev.AccountKind, ev.STP = a.id, a.owner, a.kind, a.stp
	return nil
}

func (e *Engine) custody(c *Command) (*account, int, *apperr.Error) {
	a, err := e.account(c.Account)
	if err != nil {
		return nil, 0, err
	}
	if a.kind == KindFee {
		return nil, 0, apperr.New(apperr.NotPermitted, "the fee account takes no custody movements")
	}
	asset, ok := e.assetIdx[c.Asset]
	if !ok {
		return nil, 0, apperr.New(apperr.UnknownAsset, "unknown asset %q", c.Asset)
	}
	if c.Amount <= 0 {
		return nil, 0, apperr.New(apperr.InvalidQuantity, "amount must be positive")
	}
	if c.ExtRef == "" || len(c.ExtRef) > 128 {
		return nil, 0, apperr.New(apperr.InvalidParameter, "external reference must be 1 to 128 characters")
	}
	return a, asset, nil
}

func (e *Engine) custodyEvent(kind EventKind, a *account, c *Command) {
	ev := e.emit(kind)
	ev.Account, ev.Asset, ev.Amount, ev.ExtRef = a.id, c.Asset, c.Amount, c.ExtRef
}

func (e *Engine) deposit(c *Command) *apperr.Error {
	a, asset, err := e.custody(c)
	if err != nil {
		return err
	}
	if _, seen := e.deposits[c.ExtRef]; seen {
		e.custodyEvent(EvDuplicate, a, c)
		return nil
	}
	b := &a.bal[asset]
	if e.now < RuleChange20261204 { // before it, each balance was bounded, not the total
		if b.free+b.held > maxSupply-c.Amount {
			return apperr.New(apperr.InvalidQuantity, "deposit would overflow the balance")
		}
	} else if e.supply[asset] > maxSupply-c.Amount {
		return apperr.New(apperr.InvalidQuantity, "deposit would take the %s held on the exchange past 2^62 minor units", c.Asset)
	}
	e.deposits[c.ExtRef] = struct{}{}
	e.addSupply(asset, c.Amount)
	b.free += c.Amount
	e.touch(a, asset)
	e.custodyEvent(EvDeposited, a, c)
	return nil
}

func (e *Engine) withdraw(c *Command) *apperr.Error {
	a, asset, err := e.custody(c)
	if err != nil {
		return err
	}
	if _, seen := e.withdraws[c.ExtRef]; seen {
		e.custodyEvent(EvDuplicate, a, c)
		return nil
	}
	b := &a.bal[asset]
	if b.free < c.Amount {
		return apperr.New(apperr.InsufficientFunds, "free %s balance is below the withdrawal", c.Asset)
	}
	e.withdraws[c.ExtRef] = struct{}{}
	e.subSupply(asset, c.Amount)
	b.free -= c.Amount
	e.touch(a, asset)
	e.custodyEvent(EvWithdrawn, a, c)
	return nil
}

func (e *Engine) setPermission(c *Command) *apperr.Error {
	a, err := e.account(c.Account)
	if err != nil {
		return err
	}
	if c.Permission != PermMandatorySell {
		return apperr.New(apperr.InvalidParameter, "unknown permission %q", c.Permission)
	}
	if c.Granted {
		a.perms |= 1 << c.Permission
	} else {
		a.perms &^= 1 << c.Permission
	}
	ev := e.emit(EvPermissionSet)
	ev.Account, ev.Permission, ev.Granted = a.id, c.Permission, c.Granted
	return nil
}

func (e *Engine) setSTP(c *Command) *apperr.Error {
	a, err := e.account(c.Account)
	if err != nil {
		return err
	}
	if c.STP == STPDefault || int(c.STP) >= len(stpNames) {
		return apperr.New(apperr.InvalidParameter, "STP mode must be expire_taker, expire_maker, expire_both or decrement")
	}
	a.stp = c.STP
	ev := e.emit(EvSTPSet)
	ev.Account, ev.STP = a.id, a.stp
	return nil
}

// advance does what the passage of sequenced time requires, before the
// command itself: GTD expiries (in expiry, then order-ID order), then per
// symbol in configuration order the scheduled phase and the end of a
// volatility auction, then forgetting old client IDs.
func (e *Engine) advance() {
	for len(e.expiry) > 0 && e.expiry[0].expireAt <= e.now {
		e.done(e.expiry[0], StatusExpired, ReasonExpired)
	}
	for _, m := range e.markets {
		if len(m.Schedule) > 0 {
			// A new step, even one that names the phase of the step
			// before (closed at 18:00, closed again at midnight), ends an
			// operator's change: steps are told apart by when they began.
			// Before RuleChange20261204 such a step changed nothing.
			if p, at := m.scheduledStep(e.now); at != m.schedStep {
				apply := p != m.schedPhase || e.now >= RuleChange20261204
				m.schedPhase, m.schedStep = p, at
				if apply {
					e.transition(m, p)
				}
			}
		}
		if m.phase == PhaseVolatilityAuction && e.now >= m.volUntil {
			e.transition(m, PhaseContinuous)
		}
	}
	for e.finished.len() > 0 && e.finished.front().at+e.cfg.ClientIDRetentionMs <= e.now {
		f := e.finished.front()
		e.cids.del(f.hash, f.rec)
		e.finished.pop()
	}
}

// scheduledStep is the step of the schedule in force at time now: its
// phase and the instant (Unix ms) it began.
func (m *market) scheduledStep(now int64) (Phase, int64) {
	const dayMs = 86_400_000
	off := int64(m.UTCOffsetMinutes) * 60_000
	local := now + off
	midnight := local - ((local%dayMs)+dayMs)%dayMs // local midnight, in local ms
	minute := int((local - midnight) / 60_000)
	last := m.Schedule[len(m.Schedule)-1]
	p, at := last.Phase, midnight-dayMs+int64(last.Minute)*60_000 // before the first step: yesterday's last
	for _, st := range m.Schedule {
		if st.Minute > minute {
			break
		}
		p, at = st.Phase, midnight+int64(st.Minute)*60_000
	}
	return p, at - off
}
