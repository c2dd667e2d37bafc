package matching

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// SnapshotVersion is the version of the snapshot encoding.
const SnapshotVersion = 1

// Snapshot is the engine's whole state in a canonical form: every slice in
// a defined order, so the same state always encodes to the same bytes.
// Pools, scratch space and indexes are not state: Restore rebuilds them.
type Snapshot struct {
	Version     int            `json:"version"`
	Seq         uint64         `json:"seq"`
	Now         int64          `json:"now"`
	NextID      uint64         `json:"nextId"`
	FeeAccount  string         `json:"feeAccount"`
	RetentionMs int64          `json:"retentionMs"`
	Symbols     []Symbol       `json:"symbols"`
	Markets     []MarketSnap   `json:"markets"`
	Accounts    []AccountSnap  `json:"accounts"`
	Deposits    []string       `json:"deposits"`
	Withdrawals []string       `json:"withdrawals"`
	Finished    []FinishedSnap `json:"finished"`

	encoding int // the binary encoding it was read from (Encoding)
}

// MarketSnap is one symbol's state and book, each side best first.
type MarketSnap struct {
	Symbol     string      `json:"symbol"`
	State      MarketState `json:"state"`
	SchedPhase Phase       `json:"schedPhase"`
	Bids       []OrderSnap `json:"bids"`
	Asks       []OrderSnap `json:"asks"`
}

// OrderSnap is one resting order.
type OrderSnap struct {
	OrderView
	ByQuote bool  `json:"byQuote,omitempty"`
	Budget  int64 `json:"budget,omitempty"`
}

// AccountSnap is one account.
type AccountSnap struct {
	ID          string         `json:"id"`
	Owner       string         `json:"owner"`
	Kind        AccountKind    `json:"kind"`
	Permissions []Permission   `json:"permissions"`
	STP         STPMode        `json:"stp"`
	Balances    []BalanceSnap  `json:"balances"`
	ClientIDs   []ClientIDSnap `json:"clientIds"`
}

// BalanceSnap is one asset's balance.
type BalanceSnap struct {
	Asset string `json:"asset"`
	Free  int64  `json:"free"`
	Held  int64  `json:"held"`
}

// ClientIDSnap is one remembered client order ID.
type ClientIDSnap struct {
	ClientID string `json:"clientId"`
	OrderID  uint64 `json:"orderId"`
}

// FinishedSnap is one entry of the client-ID retention queue.
type FinishedSnap struct {
	Account  string `json:"account"`
	ClientID string `json:"clientId"`
	At       int64  `json:"at"`
}

// Snapshot captures the engine's state between commands.
func (e *Engine) Snapshot() *Snapshot { return e.SnapshotLater()() }

// SnapshotLater captures the engine's state between commands — a copy of
// what commands change — and returns a function that completes the
// Snapshot from that copy: sorting the accounts, their client IDs and the
// custody references, and grouping the client IDs by account. The engine
// may apply commands again as soon as SnapshotLater returns, and the
// function may run on any goroutine: the runner's pause for a snapshot is
// only the copy (sorting a large engine's hundred thousand accounts and
// million client IDs had been a third of it).
func (e *Engine) SnapshotLater() func() *Snapshot { return e.SnapshotLaterIn(nil) }

// SnapshotMemory is the memory of snapshots taken one after another: each
// SnapshotLaterIn with the same SnapshotMemory copies the state into the
// arrays of the snapshot before, and Encoded keeps its encoding's buffer
// (Snapshot.AppendBinary). A snapshot of a million orders is a few hundred
// megabytes of copies; written into fresh memory, the pages are faulted in
// one by one, which on a virtual machine took longer than the copying.
// The price is that the memory stays with its owner between snapshots.
//
// A snapshot taken in a SnapshotMemory is valid until the next one is
// taken in it: one owner, one snapshot at a time.
type SnapshotMemory struct {
	sides       [][]OrderSnap // each market's bids, then asks
	accts       []AccountSnap // the accounts in the map's order
	sorted      []AccountSnap // and by ID
	perms       []Permission
	bals        []BalanceSnap
	cids        []heldCID
	all         []ClientIDSnap
	finished    []FinishedSnap
	order, rank []int32
	start, next []int
	refs        [2][]string // deposits, withdrawals

	Encoded []byte
}

// reuse returns s emptied, with room for n, clearing what s held beyond n
// so that no stale string stays reachable; a new array when s is too
// small, with an eighth more room, as state tends to grow.
func reuse[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, 0, n+n/8)
	}
	if n < len(s) {
		clear(s[n:])
	}
	return s[:0]
}

// SnapshotLaterIn is SnapshotLater copying into mem's arrays (nil: fresh
// memory).
func (e *Engine) SnapshotLaterIn(mem *SnapshotMemory) func() *Snapshot {
	if mem == nil {
		mem = &SnapshotMemory{}
	}
	s := &Snapshot{Version: SnapshotVersion, Seq: e.seq, Now: e.now, NextID: e.nextID,
		FeeAccount: e.cfg.FeeAccount, RetentionMs: e.cfg.ClientIDRetentionMs, Symbols: e.Symbols()}
	if len(mem.sides) < 2*len(e.markets) {
		mem.sides = append(mem.sides, make([][]OrderSnap, 2*len(e.markets)-len(mem.sides))...)
	}
	for i, m := range e.markets {
		st, _ := e.Market(m.Name)
		bids, asks := m.bids.snap(mem.sides[2*i]), m.asks.snap(mem.sides[2*i+1])
		mem.sides[2*i], mem.sides[2*i+1] = bids, asks
		s.Markets = append(s.Markets, MarketSnap{Symbol: m.Name, State: st, SchedPhase: m.schedPhase, Bids: orNil(bids), Asks: orNil(asks)})
	}
	// The accounts in the map's order. Every account's permissions and
	// balances are slices of two arrays: two allocations, not two per
	// account. Each account notes its place (snapIdx) for the client IDs.
	accts := reuse(mem.accts, len(e.accounts))
	perms := reuse(mem.perms, len(e.accounts)*(len(permissionNames)-1))
	bals := reuse(mem.bals, len(e.accounts)*len(e.assets))
	for _, a := range e.accounts {
		a.snapIdx = int32(len(accts))
		from := len(perms)
		for p := Permission(1); int(p) < len(permissionNames); p++ {
			if a.has(p) {
				perms = append(perms, p)
			}
		}
		as := AccountSnap{ID: a.id, Owner: a.owner, Kind: a.kind, STP: a.stp, Permissions: perms[from:len(perms):len(perms)]}
		from = len(bals)
		for j, b := range a.bal {
			if b.free != 0 || b.held != 0 {
				bals = append(bals, BalanceSnap{Asset: e.assets[j], Free: b.free, Held: b.held})
			}
		}
		if len(bals) > from {
			as.Balances = bals[from:len(bals):len(bals)]
		}
		accts = append(accts, as)
	}
	mem.accts, mem.perms, mem.bals = accts, perms, bals
	cids := reuse(mem.cids, e.cids.n)
	e.cids.each(func(a *account, cid string, id uint64) {
		cids = append(cids, heldCID{acct: a.snapIdx, ClientIDSnap: ClientIDSnap{ClientID: cid, OrderID: id}})
	})
	mem.cids = cids
	for k, m := range [2]map[string]struct{}{e.deposits, e.withdraws} {
		refs := reuse(mem.refs[k], len(m))
		for r := range m {
			refs = append(refs, r)
		}
		mem.refs[k] = refs
	}
	if n := e.finished.len(); n > 0 {
		s.Finished = reuse(mem.finished, n)
	}
	e.finished.each(func(f *finishedID) {
		fs := FinishedSnap{At: f.at}
		if f.rec != noCID {
			r := e.cids.recs.at(int(f.rec))
			fs.Account, fs.ClientID = r.acct.id, r.cid
		}
		s.Finished = append(s.Finished, fs)
	})
	if s.Finished != nil {
		mem.finished = s.Finished
	}
	return func() *Snapshot {
		s.Accounts = mem.sortedAccounts()
		slices.Sort(mem.refs[0])
		slices.Sort(mem.refs[1])
		s.Deposits, s.Withdrawals = orNil(mem.refs[0]), orNil(mem.refs[1])
		return s
	}
}

// orNil is s, or nil when s is empty, as in a snapshot taken in fresh
// memory (reused memory leaves empty lists non-nil).
func orNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// heldCID is a remembered client ID with the place of its account in
// SnapshotLater's copy.
type heldCID struct {
	acct int32
	ClientIDSnap
}

// sortedAccounts orders the copied accounts (mem.accts) by ID and gives
// each its client IDs (mem.cids), ordered by client ID. One backing array
// holds all the client IDs, filled in two passes (count, then place).
func (mem *SnapshotMemory) sortedAccounts() []AccountSnap {
	accts, cids := mem.accts, mem.cids
	order := reuse(mem.order, len(accts))[:len(accts)] // order[k]: the copy's index of the k-th account by ID
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int { return cmp.Compare(accts[x].ID, accts[y].ID) })
	rank := reuse(mem.rank, len(accts))[:len(accts)] // rank[i]: the place of the copy's account i
	for k, i := range order {
		rank[i] = int32(k)
	}
	start := reuse(mem.start, len(accts)+1)[:len(accts)+1]
	clear(start)
	for _, c := range cids {
		start[rank[c.acct]+1]++
	}
	for k := 1; k < len(start); k++ {
		start[k] += start[k-1]
	}
	all := reuse(mem.all, len(cids))[:len(cids)]
	next := append(reuse(mem.next, len(accts)), start[:len(accts)]...)
	for _, c := range cids {
		k := rank[c.acct]
		all[next[k]] = c.ClientIDSnap
		next[k]++
	}
	out := reuse(mem.sorted, len(accts))[:len(accts)]
	for k, i := range order {
		out[k] = accts[i]
		if start[k] < start[k+1] {
			ids := all[start[k]:start[k+1]:start[k+1]]
			slices.SortFunc(ids, func(x, y ClientIDSnap) int { return cmp.Compare(x.ClientID, y.ClientID) })
			out[k].ClientIDs = ids
		}
	}
	mem.order, mem.rank, mem.start, mem.next, mem.all, mem.sorted = order, rank, start, next, all, out
	return out
}

// snap copies the side's orders, best first, into out's memory.
func (b *bookSide) snap(out []OrderSnap) []OrderSnap {
	n := 0
	for _, l := range b.levels {
		n += int(l.count)
	}
	out = reuse(out, n) // sized up front: a deep book's copy grew by doubling, most of a snapshot's time
	for i := len(b.levels) - 1; i >= 0; i-- {
		for o := b.levels[i].head; o != nil; o = o.next {
			out = append(out, OrderSnap{OrderView: o.view(), ByQuote: o.byQuote, Budget: o.budget})
		}
	}
	return out
}

// StateHash is the hash of the engine's whole state: equal for engines that
// applied the same commands.
func (e *Engine) StateHash() string { return e.Snapshot().Hash() }

// Restore builds an engine from a snapshot. The snapshot carries its own
// configuration; cfg, when it has symbols, must match it (a changed symbol
// configuration needs a deliberate migration, not a silent restore).
func Restore(s *Snapshot, cfg Config) (*Engine, error) {
	if s.Version != SnapshotVersion {
		return nil, fmt.Errorf("matching: snapshot version %d, want %d", s.Version, SnapshotVersion)
	}
	if cfg.Symbols != nil {
		a, _ := json.Marshal(cfg.Symbols)
		b, _ := json.Marshal(s.Symbols)
		if string(a) != string(b) {
			return nil, fmt.Errorf("matching: snapshot symbols differ from the configuration")
		}
	}
	e, err := NewWithConfig(Config{Symbols: s.Symbols, FeeAccount: s.FeeAccount, ClientIDRetentionMs: s.RetentionMs})
	if err != nil {
		return nil, err
	}
	e.seq, e.now, e.nextID = s.Seq, s.Now, s.NextID
	delete(e.accounts, e.cfg.FeeAccount)
	e.lastAcct = nil
	for _, as := range s.Accounts {
		a := e.newAccount(as.ID, as.Owner, as.Kind, as.STP)
		for _, p := range as.Permissions {
			a.perms |= 1 << p
		}
		for _, b := range as.Balances {
			i, ok := e.assetIdx[b.Asset]
			if !ok {
				return nil, fmt.Errorf("matching: snapshot balance in unknown asset %q", b.Asset)
			}
			a.bal[i].free, a.bal[i].held = b.Free, b.Held
			e.addSupply(i, b.Free)
			e.addSupply(i, b.Held)
		}
		for _, c := range as.ClientIDs {
			e.cids.put(e.cids.hash(a, c.ClientID), a, c.ClientID, c.OrderID)
		}
	}
	if e.feeAcct = e.accounts[e.cfg.FeeAccount]; e.feeAcct == nil {
		return nil, fmt.Errorf("matching: snapshot has no fee account")
	}
	for _, d := range s.Deposits {
		e.deposits[d] = struct{}{}
	}
	for _, w := range s.Withdrawals {
		e.withdraws[w] = struct{}{}
	}
	n := 0
	for _, ms := range s.Markets {
		n += len(ms.Bids) + len(ms.Asks)
	}
	all := make([]*order, 0, n)
	for _, ms := range s.Markets {
		m := e.bySymbol[ms.Symbol]
		if m == nil {
			return nil, fmt.Errorf("matching: snapshot market %q not configured", ms.Symbol)
		}
		m.phase, m.halted, m.lastPrice, m.closePrice = ms.State.Phase, ms.State.Halted, ms.State.LastPrice, ms.State.ClosePrice
		m.volUntil, m.schedPhase = ms.State.Until, ms.SchedPhase // Until is set only in a volatility auction
		if len(m.Schedule) > 0 && s.Seq > 0 {
			// The step in force at the last command was applied by it
			// (advance runs before every command).
			_, m.schedStep = m.scheduledStep(s.Now)
		}
		m.setRef(ms.State.RefPrice)
		for k, side := range [][]OrderSnap{ms.Bids, ms.Asks} {
			for _, os := range side {
				o, err := e.restoreOrder(m, [2]Side{Buy, Sell}[k], os)
				if err != nil {
					return nil, err
				}
				e.enter(o, m) // listed below, in ID order
				all = append(all, o)
			}
		}
	}
	e.touchedLvl, e.touchedBal = e.touchedLvl[:0], e.touchedBal[:0]
	e.forgetTouchedSet()
	e.deadLevels = e.deadLevels[:0]
	for _, a := range e.accounts {
		for i := range a.bal {
			a.bal[i].mark = 0
		}
	}
	// Resting orders are listed in ID order — the order in which they first
	// rested — as the running engine lists them.
	slices.SortFunc(all, func(x, y *order) int { return cmp.Compare(x.id, y.id) })
	for i, o := range all {
		if i > 0 && o.id == all[i-1].id { // sorted: a repeated ID is next to itself
			return nil, fmt.Errorf("matching: snapshot order %d twice", o.id)
		}
		e.list(o)
	}
	if len(all) > 0 && all[len(all)-1].id > e.nextID {
		return nil, fmt.Errorf("matching: snapshot's next order ID %d is not past its order %d", e.nextID, all[len(all)-1].id)
	}
	if err := e.checkHolds(all); err != nil {
		return nil, err
	}
	var last int64
	for _, f := range s.Finished {
		a := e.accounts[f.Account]
		if a == nil {
			return nil, fmt.Errorf("matching: snapshot retention entry for unknown account %q", f.Account)
		}
		if f.At < last {
			return nil, fmt.Errorf("matching: snapshot retention entries out of time order at %q of %q", f.ClientID, f.Account)
		}
		last = f.At
		h := e.cids.hash(a, f.ClientID)
		rec, ok := e.cids.find(h, a, f.ClientID)
		if !ok { // an entry exists exactly while its client ID is remembered
			return nil, fmt.Errorf("matching: snapshot retention entry for client ID %q of %q, which it does not remember", f.ClientID, f.Account)
		}
		e.finished.push(finishedID{hash: h, rec: rec, at: f.At})
	}
	return e, nil
}

// checkHolds checks a restored engine's held balances against its resting
// orders: every account's held amount of every asset is what its orders
// in that asset hold. A snapshot that disagrees would let a cancel move
// into the free balance what was never held.
func (e *Engine) checkHolds(orders []*order) error {
	held := map[*account][]int64{}
	for _, o := range orders {
		h := held[o.acct]
		if h == nil {
			h = make([]int64, len(e.assets))
			held[o.acct] = h
		}
		i := o.holdAsset()
		if h[i] > math.MaxInt64-o.held {
			return fmt.Errorf("matching: snapshot holds of %q in %s overflow", o.acct.id, e.assets[i])
		}
		h[i] += o.held
	}
	for _, a := range e.accounts {
		for i := range a.bal {
			var want int64
			if h := held[a]; h != nil {
				want = h[i]
			}
			if a.bal[i].held != want {
				return fmt.Errorf("matching: snapshot account %q holds %d %s, its orders %d", a.id, a.bal[i].held, e.assets[i], want)
			}
		}
	}
	return nil
}

// restoreOrder makes a resting order of m's book side from its snapshot,
// refusing one that could not rest there: another side, nothing remaining,
// more visible than remaining, a negative hold, a price off the tick, or a
// client ID the snapshot does not remember for it.
func (e *Engine) restoreOrder(m *market, side Side, s OrderSnap) (*order, error) {
	a := e.accounts[s.Account]
	if a == nil {
		return nil, fmt.Errorf("matching: snapshot order %d of unknown account %q", s.ID, s.Account)
	}
	switch {
	case s.ID == 0:
		return nil, fmt.Errorf("matching: snapshot order with ID 0")
	case s.Side != side:
		return nil, fmt.Errorf("matching: snapshot order %d (%s) on the %s side of %s", s.ID, s.Side, side, m.Name)
	case s.Remaining <= 0 || s.Remaining > s.Quantity || s.Visible <= 0 || s.Visible > s.Remaining || s.Held < 0:
		return nil, fmt.Errorf("matching: snapshot order %d: quantity %d, remaining %d, visible %d, held %d cannot rest",
			s.ID, s.Quantity, s.Remaining, s.Visible, s.Held)
	case s.QuoteFilled < 0 || s.QuoteFilled > 0 && s.Remaining == s.Quantity:
		return nil, fmt.Errorf("matching: snapshot order %d: a quote amount filled of %d with %d of %d filled",
			s.ID, s.QuoteFilled, s.Quantity-s.Remaining, s.Quantity)
	case s.Price <= 0 || s.Price%m.TickSize != 0:
		return nil, fmt.Errorf("matching: snapshot order %d: price %d is not on %s's tick %d", s.ID, s.Price, m.Name, m.TickSize)
	}
	o := e.pool.order()
	o.id, o.acct, o.sym, o.clientID, o.obligation = s.ID, a, m, s.ClientID, s.Obligation
	o.side, o.typ, o.tif, o.stp, o.purpose, o.postOnly = s.Side, s.Type, s.TIF, s.STP, s.Purpose, s.PostOnly
	o.price, o.qty, o.remaining, o.visible, o.display = s.Price, s.Quantity, s.Remaining, s.Visible, s.Display
	o.held, o.expireAt, o.byQuote, o.budget, o.heapIdx = s.Held, s.ExpireAt, s.ByQuote, s.Budget, -1
	o.quote = s.QuoteFilled
	o.cidHash = e.cids.hash(a, s.ClientID)
	rec, ok := e.cids.find(o.cidHash, a, s.ClientID)
	if !ok || e.cids.recs.at(int(rec)).id != s.ID {
		e.pool.putOrder(o)
		return nil, fmt.Errorf("matching: snapshot order %d: its client ID %q is not remembered for it", s.ID, s.ClientID)
	}
	o.cidRec = rec
	return o, nil
}
