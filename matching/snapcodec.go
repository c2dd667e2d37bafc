package matching

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"strings"
)

// The snapshot's binary encoding: what is stored and what the state hash
// covers. It is canonical because the snapshot is (every slice in a
// defined order) and every field is written, in a fixed order, with
// uvarints, zig-zag varints, single bytes and length-prefixed strings; the
// symbols' configuration is embedded as JSON (small, and it evolves). The
// first bytes are snapshotMagic and the encoding's version.

const snapshotMagic = "SATUSNAP"

// The binary encodings: version 2, the current one, adds each order's
// quote amount filled (OrderView.QuoteFilled) after its budget. Version 1
// is still read (the amounts then 0), and a snapshot read from it encodes
// back to it, so that a stored snapshot of either version proves its
// restore (redisbus: the restored engine's hash in the stored encoding).
const (
	snapshotEncodingV1 = 1
	snapshotEncodingV2 = 2
)

// Encoding is the binary encoding the snapshot was read from (0: none, a
// snapshot of a running engine); it encodes and hashes in that encoding.
func (s *Snapshot) Encoding() int { return s.encoding }

// InEncoding makes s encode and hash in encoding v (1 or 2), as a snapshot
// read from v does: a version-1 encoding leaves the quote amounts out.
func (s *Snapshot) InEncoding(v int) { s.encoding = v }

func (s *Snapshot) encodingVersion() byte {
	if s.encoding == snapshotEncodingV1 {
		return snapshotEncodingV1
	}
	return snapshotEncodingV2
}

// MarshalBinary encodes the snapshot canonically.
func (s *Snapshot) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the snapshot's canonical encoding (MarshalBinary's)
// to dst. A caller that encodes snapshot after snapshot and keeps the
// previous one's buffer (dst[:0]) writes into memory the process already
// has: a fresh buffer of tens of megabytes is faulted in page by page,
// which on a virtual machine costs more than the encoding itself.
func (s *Snapshot) AppendBinary(dst []byte) ([]byte, error) {
	symbols, err := json.Marshal(s.Symbols)
	if err != nil {
		return nil, err
	}
	w := snapWriter{b: slices.Grow(dst, s.sizeHint(len(symbols)))}
	s.encode(&w, symbols)
	return w.b, nil
}

// hashSpill is how much of the encoding Hash holds before it hashes it.
const hashSpill = 1 << 20

// Hash is the SHA-256 of the snapshot's canonical binary encoding
// (MarshalBinary), in hex. The encoding is hashed as it is written, a
// megabyte at a time, instead of being written whole first: for a large
// engine that spares a buffer of tens of megabytes faulted in page by page
// (a restart checks the restored engine's hash this way).
func (s *Snapshot) Hash() string {
	symbols, err := json.Marshal(s.Symbols)
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	h := sha256.New()
	w := snapWriter{b: make([]byte, 0, min(s.sizeHint(len(symbols)), hashSpill+64<<10)), h: h}
	s.encode(&w, symbols)
	h.Write(w.b)
	return hex.EncodeToString(h.Sum(nil))
}

// encode writes the encoding through w; symbols is the symbols' JSON.
func (s *Snapshot) encode(w *snapWriter, symbols []byte) {
	w.b = append(w.b, snapshotMagic...)
	w.v = s.encodingVersion()
	w.b = append(w.b, w.v)
	w.int(int64(s.Version))
	w.uint(s.Seq)
	w.int(s.Now)
	w.uint(s.NextID)
	w.str(s.FeeAccount)
	w.int(s.RetentionMs)
	w.str(string(symbols))
	w.uint(uint64(len(s.Markets)))
	for i := range s.Markets {
		m := &s.Markets[i]
		w.str(m.Symbol)
		w.byte(byte(m.State.Phase))
		w.bool(m.State.Halted)
		w.int(m.State.RefPrice)
		w.int(m.State.LastPrice)
		w.int(m.State.ClosePrice)
		w.int(m.State.Until)
		w.byte(byte(m.SchedPhase))
		for _, side := range [][]OrderSnap{m.Bids, m.Asks} {
			w.uint(uint64(len(side)))
			for j := range side {
				w.order(&side[j])
				w.spill()
			}
		}
	}
	w.uint(uint64(len(s.Accounts)))
	for i := range s.Accounts {
		a := &s.Accounts[i]
		w.str(a.ID)
		w.str(a.Owner)
		w.byte(byte(a.Kind))
		w.uint(uint64(len(a.Permissions)))
		for _, p := range a.Permissions {
			w.byte(byte(p))
		}
		w.byte(byte(a.STP))
		w.uint(uint64(len(a.Balances)))
		for _, b := range a.Balances {
			w.str(b.Asset)
			w.int(b.Free)
			w.int(b.Held)
		}
		w.uint(uint64(len(a.ClientIDs)))
		for _, c := range a.ClientIDs {
			w.str(c.ClientID)
			w.uint(c.OrderID)
			w.spill()
		}
		w.spill()
	}
	for _, refs := range [][]string{s.Deposits, s.Withdrawals} {
		w.uint(uint64(len(refs)))
		for _, r := range refs {
			w.str(r)
			w.spill()
		}
	}
	w.uint(uint64(len(s.Finished)))
	for _, f := range s.Finished {
		w.str(f.Account)
		w.str(f.ClientID)
		w.int(f.At)
		w.spill()
	}
}

// sizeHint is a little more than the size of the snapshot's encoding, so
// that it is written without growing and without a buffer several times
// too large (zeroed, when the memory is reused): its strings' lengths, and
// for the numbers about what their varints take.
func (s *Snapshot) sizeHint(symbols int) int {
	n := 64 + symbols
	for _, m := range s.Markets {
		n += len(m.Symbol) + 64
		for _, side := range [2][]OrderSnap{m.Bids, m.Asks} {
			for i := range side {
				o := &side[i]
				n += 56 + len(o.Account) + len(o.Symbol) + len(o.ClientID) + len(o.Obligation)
			}
		}
	}
	for i := range s.Accounts {
		a := &s.Accounts[i]
		n += 16 + len(a.ID) + len(a.Owner) + len(a.Permissions)
		for _, b := range a.Balances {
			n += 24 + len(b.Asset)
		}
		for _, c := range a.ClientIDs {
			n += 12 + len(c.ClientID)
		}
	}
	for _, refs := range [][]string{s.Deposits, s.Withdrawals} {
		for _, r := range refs {
			n += 2 + len(r)
		}
	}
	for _, f := range s.Finished {
		n += 16 + len(f.Account) + len(f.ClientID)
	}
	return n
}

// snapWriter appends the encoding to b; with h set, it hands b to h
// whenever b holds hashSpill bytes or more (spill, between records).
type snapWriter struct {
	b []byte
	h hash.Hash
	v byte // the encoding's version
}

func (w *snapWriter) spill() {
	if w.h != nil && len(w.b) >= hashSpill {
		w.h.Write(w.b)
		w.b = w.b[:0]
	}
}

func (w *snapWriter) uint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *snapWriter) int(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *snapWriter) byte(v byte)   { w.b = append(w.b, v) }
func (w *snapWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}
func (w *snapWriter) str(s string) { w.uint(uint64(len(s))); w.b = append(w.b, s...) }

func (w *snapWriter) order(o *OrderSnap) {
	w.uint(o.ID)
	w.str(o.Account)
	w.str(o.Symbol)
	w.str(o.ClientID)
	w.byte(byte(o.Side))
	w.byte(byte(o.Type))
	w.byte(byte(o.TIF))
	w.byte(byte(o.STP))
	w.byte(byte(o.Purpose))
	w.str(o.Obligation)
	w.bool(o.PostOnly)
	w.int(o.Price)
	w.int(o.Quantity)
	w.int(o.Remaining)
	w.int(o.Visible)
	w.int(o.Display)
	w.int(o.Held)
	w.int(o.ExpireAt)
	w.bool(o.ByQuote)
	w.int(o.Budget)
	if w.v >= snapshotEncodingV2 {
		w.int(o.QuoteFilled)
	}
}

// UnmarshalBinary decodes MarshalBinary's encoding. Strings that recur
// (accounts, symbols, assets) are shared; the result holds no reference
// to data.
func (s *Snapshot) UnmarshalBinary(data []byte) error {
	if !bytes.HasPrefix(data, []byte(snapshotMagic)) || len(data) <= len(snapshotMagic) {
		return fmt.Errorf("%w: not a binary snapshot", ErrSnapshotEncoding)
	}
	v := data[len(snapshotMagic)]
	if v != snapshotEncodingV1 && v != snapshotEncodingV2 {
		return fmt.Errorf("%w: encoding version %d", ErrSnapshotEncoding, v)
	}
	r := snapReader{d: decoder{s: string(data), i: len(snapshotMagic) + 1}, interned: map[string]string{}, v: v}
	var out Snapshot
	out.encoding = int(v)
	out.Version = int(r.d.varint())
	out.Seq = r.d.uvarint()
	out.Now = r.d.varint()
	out.NextID = r.d.uvarint()
	out.FeeAccount = r.str()
	out.RetentionMs = r.d.varint()
	if sym := r.d.str(); r.d.err == nil {
		if err := json.Unmarshal([]byte(sym), &out.Symbols); err != nil {
			return fmt.Errorf("%w: symbols: %v", ErrSnapshotEncoding, err)
		}
	}
	out.Markets = make([]MarketSnap, r.count(minMarketBytes))
	for i := range out.Markets {
		m := &out.Markets[i]
		m.Symbol = r.str()
		m.State.Phase = Phase(r.d.byte())
		m.State.Halted = r.d.byte() != 0
		m.State.RefPrice = r.d.varint()
		m.State.LastPrice = r.d.varint()
		m.State.ClosePrice = r.d.varint()
		m.State.Until = r.d.varint()
		m.SchedPhase = Phase(r.d.byte())
		for _, side := range []*[]OrderSnap{&m.Bids, &m.Asks} {
			*side = make([]OrderSnap, r.count(minOrderBytes))
			for j := range *side {
				r.order(&(*side)[j])
			}
		}
	}
	out.Accounts = make([]AccountSnap, r.count(minAccountBytes))
	for i := range out.Accounts {
		a := &out.Accounts[i]
		a.ID = r.str()
		a.Owner = r.str()
		a.Kind = AccountKind(r.d.byte())
		a.Permissions = make([]Permission, r.count(1))
		for j := range a.Permissions {
			a.Permissions[j] = Permission(r.d.byte())
		}
		a.STP = STPMode(r.d.byte())
		a.Balances = make([]BalanceSnap, r.count(minBalanceBytes))
		for j := range a.Balances {
			a.Balances[j] = BalanceSnap{Asset: r.str(), Free: r.d.varint(), Held: r.d.varint()}
		}
		a.ClientIDs = make([]ClientIDSnap, r.count(minCIDBytes))
		for j := range a.ClientIDs {
			a.ClientIDs[j] = ClientIDSnap{ClientID: strings.Clone(r.d.str()), OrderID: r.d.uvarint()}
		}
	}
	for _, refs := range []*[]string{&out.Deposits, &out.Withdrawals} {
		*refs = make([]string, r.count(1))
		for j := range *refs {
			(*refs)[j] = strings.Clone(r.d.str())
		}
	}
	out.Finished = make([]FinishedSnap, r.count(minFinishBytes))
	for j := range out.Finished {
		out.Finished[j] = FinishedSnap{Account: r.str(), ClientID: strings.Clone(r.d.str()), At: r.d.varint()}
	}
	if r.d.err != nil {
		return fmt.Errorf("%w: %v", ErrSnapshotEncoding, r.d.err)
	}
	if r.d.i != len(r.d.s) {
		return fmt.Errorf("%w: %d trailing bytes", ErrSnapshotEncoding, len(r.d.s)-r.d.i)
	}
	*s = out
	return nil
}

// ErrSnapshotEncoding reports bytes that are not a valid binary snapshot.
var ErrSnapshotEncoding = fmt.Errorf("matching: bad snapshot encoding")

type snapReader struct {
	d        decoder
	interned map[string]string
	v        byte // the encoding's version
}

// str reads a string that recurs (an account, symbol or asset) and shares it.
func (r *snapReader) str() string {
	s := r.d.str()
	if v, ok := r.interned[s]; ok {
		return v
	}
	v := strings.Clone(s)
	r.interned[v] = v
	return v
}

// The fewest bytes each element of a snapshot's lists takes encoded: what
// bounds a count read from the data (count).
const (
	minMarketBytes  = 10 // symbol, phase, halted, four prices, scheduled phase, two counts
	minOrderBytes   = 20 // ID, account, symbol, client ID, five enums, obligation, post-only, seven numbers, by-quote, budget (and, in encoding 2, the quote amount: 21)
	minAccountBytes = 7  // ID, owner, kind, permissions' count, STP, balances' and client IDs' counts
	minBalanceBytes = 3
	minCIDBytes     = 2
	minFinishBytes  = 3
)

// count reads a length, bounded by what is left to read at min bytes an
// element, so that a corrupt count cannot allocate more than a small
// multiple of the snapshot's own size (a Go slice of n elements is
// allocated at once, and running out of memory is fatal, not an error).
func (r *snapReader) count(min int) int {
	n := r.d.uvarint()
	if n > uint64((len(r.d.s)-r.d.i)/min) {
		r.d.fail("count beyond the data")
		return 0
	}
	return int(n)
}

func (r *snapReader) order(o *OrderSnap) {
	o.ID = r.d.uvarint()
	o.Account = r.str()
	o.Symbol = r.str()
	o.ClientID = strings.Clone(r.d.str())
	o.Side = Side(r.d.byte())
	o.Type = OrderType(r.d.byte())
	o.TIF = TimeInForce(r.d.byte())
	o.STP = STPMode(r.d.byte())
	o.Purpose = Purpose(r.d.byte())
	o.Obligation = r.str()
	o.PostOnly = r.d.byte() != 0
	o.Price = r.d.varint()
	o.Quantity = r.d.varint()
	o.Remaining = r.d.varint()
	o.Visible = r.d.varint()
	o.Display = r.d.varint()
	o.Held = r.d.varint()
	o.ExpireAt = r.d.varint()
	o.ByQuote = r.d.byte() != 0
	o.Budget = r.d.varint()
	if r.v >= snapshotEncodingV2 {
		o.QuoteFilled = r.d.varint()
	}
}
