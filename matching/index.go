package matching

import "hash/maphash"

// The engine's two churning indexes — open orders by ID and remembered
// client order IDs — are open-addressing hash tables with linear probing
// and backward-shift deletion. Go's maps leave tombstones behind deletes,
// and an exchange deletes as often as it inserts: probe sequences grew
// until map probing was a fifth of the matching profile. Here a delete
// moves the following entries back, so probes stay short forever.
// Nothing iterates these tables in an order that reaches the output, so
// their layout (which depends on a per-process hash seed) never matters.

// orderIndex maps order IDs to open orders.
type orderIndex struct {
	slots []*order
	shift uint
	n     int
}

const fib = 0x9E3779B97F4A7C15 // 2^64 / φ: spreads sequential IDs evenly

func (t *orderIndex) home(id uint64) int { return int((id * fib) >> t.shift) }

func (t *orderIndex) get(id uint64) *order {
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.home(id); ; i = (i + 1) & mask {
		o := t.slots[i]
		if o == nil || o.id == id {
			return o
		}
	}
}

func (t *orderIndex) put(o *order) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := len(t.slots) - 1
	i := t.home(o.id)
	for t.slots[i] != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = o
	t.n++
}

func (t *orderIndex) del(id uint64) {
	mask := len(t.slots) - 1
	i := t.home(id)
	for t.slots[i].id != id { // the caller deletes only present IDs
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; t.slots[j] != nil; j = (j + 1) & mask {
		// The entry at j may move back to the hole at i unless its home
		// lies cyclically in (i, j].
		if k := t.home(t.slots[j].id); (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = nil
	t.n--
}

func (t *orderIndex) grow() {
	old := t.slots
	size := max(64, 2*len(old))
	t.slots = make([]*order, size)
	t.shift = uint(64 - bitsLen(size-1))
	t.n = 0
	for _, o := range old {
		if o != nil {
			t.put(o)
		}
	}
}

func bitsLen(v int) int {
	n := 0
	for ; v > 0; v >>= 1 {
		n++
	}
	return n
}

// cidIndex maps (account, client order ID) to the order ID, for open
// orders and for finished ones within the retention period.
type cidIndex struct {
	slots []cidEntry
	seed  maphash.Seed
	n     int
}

type cidEntry struct {
	hash uint64
	acct *account // nil: empty slot
	cid  string
	id   uint64
}

func newCIDIndex() cidIndex { return cidIndex{seed: maphash.MakeSeed()} }

func (t *cidIndex) hash(a *account, cid string) uint64 {
	return maphash.String(t.seed, cid) ^ a.salt
}

func (t *cidIndex) get(a *account, cid string) (uint64, bool) {
	if t.n == 0 {
		return 0, false
	}
	h := t.hash(a, cid)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.acct == nil {
			return 0, false
		}
		if s.hash == h && s.acct == a && s.cid == cid {
			return s.id, true
		}
	}
}

// put adds an entry; the caller has checked that it is absent.
func (t *cidIndex) put(a *account, cid string, id uint64) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	t.insert(cidEntry{hash: t.hash(a, cid), acct: a, cid: cid, id: id})
}

func (t *cidIndex) insert(e cidEntry) {
	mask := uint64(len(t.slots) - 1)
	i := e.hash & mask
	for t.slots[i].acct != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = e
	t.n++
}

func (t *cidIndex) del(a *account, cid string) {
	if t.n == 0 {
		return
	}
	h := t.hash(a, cid)
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for {
		s := &t.slots[i]
		if s.acct == nil {
			return
		}
		if s.hash == h && s.acct == a && s.cid == cid {
			break
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; t.slots[j].acct != nil; j = (j + 1) & mask {
		if k := t.slots[j].hash & mask; (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = cidEntry{}
	t.n--
}

func (t *cidIndex) grow() {
	old := t.slots
	t.slots = make([]cidEntry, max(64, 2*len(old)))
	t.n = 0
	for _, e := range old {
		if e.acct != nil {
			t.insert(e)
		}
	}
}

// each calls f for every entry, in no particular order.
func (t *cidIndex) each(f func(a *account, cid string, id uint64)) {
	for _, e := range t.slots {
		if e.acct != nil {
			f(e.acct, e.cid, e.id)
		}
	}
}
