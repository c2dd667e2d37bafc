package matching

import "hash/maphash"

// The engine's two churning indexes — open orders by ID and remembered
// client order IDs — are not Go maps. Go's maps leave tombstones behind
// deletes, and an exchange deletes as often as it inserts: probe sequences
// grew until map probing was a fifth of the matching profile. The hash
// tables here use linear probing with backward-shift deletion (a delete
// moves the following entries back, so probes stay short forever). Nothing
// iterates them in an order that reaches the output, so their layout (which
// depends on a per-process hash seed) never matters.

// orderIndex maps order IDs to open orders. IDs are handed out in sequence,
// so the recent ones — nearly every open order of a busy book — live in a
// window indexed by ID modulo its size: a put writes the next slot (a
// sequential write, not a random one), and a get or delete is one load, with
// no hashing or probing. When the window moves past an order that is still
// open (a long-resting one), the order moves to an overflow hash table; when
// that happens often (a deep book of resting orders), the window doubles, up
// to orderWindowMax.
type orderIndex struct {
	win     []*order // win[id & (len-1)]: the open order with that ID, for IDs in (top − len, top], unless in old
	top     uint64   // the highest ID the window has reached
	evicted int      // orders moved to old since the window last grew
	old     orderTable
}

const (
	orderWindowMin = 1 << 12
	orderWindowMax = 1 << 20 // 8 MiB of pointers
)

func (t *orderIndex) get(id uint64) *order {
	if id > t.top || id == 0 {
		return nil
	}
	if t.top-id < uint64(len(t.win)) {
		// A slot in the window's range holds that ID's order or nothing;
		// the order may still be in old if it moved there before the
		// window grew.
		if o := t.win[id&uint64(len(t.win)-1)]; o != nil || t.old.n == 0 {
			return o
		}
	}
	return t.old.get(id)
}

func (t *orderIndex) put(o *order) {
	if t.win == nil {
		t.win = make([]*order, orderWindowMin)
	}
	if o.id > t.top {
		// The slots of IDs (top, o.id] are reused: what they hold is now
		// too old for the window.
		mask := uint64(len(t.win) - 1)
		from := max(t.top+1, o.id-min(o.id, mask))
		for id := from; id <= o.id; id++ {
			if x := t.win[id&mask]; x != nil {
				t.old.put(x)
				t.win[id&mask] = nil
				t.evicted++
			}
		}
		t.top = o.id
		if t.evicted > len(t.win)/4 && len(t.win) < orderWindowMax {
			t.growWindow()
		}
	}
	if t.top-o.id < uint64(len(t.win)) {
		t.win[o.id&uint64(len(t.win)-1)] = o
	} else {
		t.old.put(o)
	}
}

// growWindow doubles the window. A slot's ID follows from its index and
// top, so no order is read.
func (t *orderIndex) growWindow() {
	old, mask := t.win, uint64(len(t.win)-1)
	t.win = make([]*order, 2*len(old))
	nmask := uint64(len(t.win) - 1)
	for j, o := range old {
		if o != nil {
			id := t.top - ((t.top - uint64(j)) & mask)
			t.win[id&nmask] = o
		}
	}
	t.evicted = 0
}

func (t *orderIndex) del(id uint64) {
	if t.top-id < uint64(len(t.win)) {
		if j := id & uint64(len(t.win)-1); t.win[j] != nil {
			t.win[j] = nil
			return
		}
	}
	t.old.del(id)
}

// orderTable is an open-addressing table of orders by ID. A slot holds the
// ID beside the pointer, so probing, deleting and growing never read the
// orders themselves (each a likely cache miss). It grows incrementally, as
// cidIndex does: a table twice the size takes the new entries and each put
// moves whole clusters of the previous one over (a rehash at once had
// paused one command for 100 ms at two million slots).
type orderTable struct {
	slots []orderSlot
	shift uint
	n     int // entries, in slots and in the previous table
	prev  growth[orderSlot]
}

type orderSlot struct {
	id uint64 // 0: empty (order IDs start at 1)
	o  *order
}

const fib = 0x9E3779B97F4A7C15 // 2^64 / φ: spreads sequential IDs evenly

func orderHome(id uint64, shift uint) int { return int((id * fib) >> shift) }

func (t *orderTable) get(id uint64) *order {
	if t.n == 0 || id == 0 {
		return nil
	}
	if o := orderGet(t.slots, t.shift, id); o != nil || t.prev.slots == nil {
		return o
	}
	return orderGet(t.prev.slots, t.prev.shift, id)
}

func orderGet(slots []orderSlot, shift uint, id uint64) *order {
	mask := len(slots) - 1
	for i := orderHome(id, shift); ; i = (i + 1) & mask {
		s := &slots[i]
		if s.id == id {
			return s.o
		}
		if s.id == 0 {
			return nil
		}
	}
}

func (t *orderTable) put(o *order) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	orderInsert(t.slots, t.shift, orderSlot{o.id, o})
	t.n++
	t.migrate(migrateSlots)
}

func orderInsert(slots []orderSlot, shift uint, s orderSlot) {
	mask := len(slots) - 1
	i := orderHome(s.id, shift)
	for slots[i].id != 0 {
		i = (i + 1) & mask
	}
	slots[i] = s
}

// del removes id, which the caller knows is present.
func (t *orderTable) del(id uint64) {
	if orderDel(t.slots, t.shift, id) || t.prev.slots != nil && orderDel(t.prev.slots, t.prev.shift, id) {
		t.n--
	}
}

// orderDel removes id from one table, if there, by backward shift.
func orderDel(slots []orderSlot, shift uint, id uint64) bool {
	mask := len(slots) - 1
	i := orderHome(id, shift)
	for slots[i].id != id {
		if slots[i].id == 0 {
			return false
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; slots[j].id != 0; j = (j + 1) & mask {
		if movesBack(i, j, orderHome(slots[j].id, shift)) {
			slots[i] = slots[j]
			i = j
		}
	}
	slots[i] = orderSlot{}
	return true
}

func (t *orderTable) grow() { t.prev.grow(&t.slots, &t.shift, 64, orderSlotUsed, t.moveIn) }

func (t *orderTable) migrate(budget int) { t.prev.step(budget, orderSlotUsed, t.moveIn) }

func (t *orderTable) moveIn(s orderSlot) { orderInsert(t.slots, t.shift, s) }

func orderSlotUsed(s orderSlot) bool { return s.id != 0 }

// growth is a hash table's previous table while its entries move to one
// twice the size: a few whole clusters at each put, so that no put waits
// for a rehash of everything. Lookups and deletes look in both tables;
// puts go to the new one. Both tables probe linearly from a home given by
// the key hash's top bits.
//
// Entries left in the previous table stay reachable because it is only
// ever emptied a whole cluster at a time: visiting starts just after an
// empty slot and stops only after one, and a backward-shift delete moves
// entries only within their cluster. Visiting at least migrateSlots slots
// per put empties a table within an eighth of its size in puts, while the
// new one, twice the size, fills to its limit only after half.
type growth[S any] struct {
	slots []S // nil when not growing
	shift uint
	next  int // the next slot to visit
	left  int // slots left to visit
}

// migrateSlots is how many slots of the previous table a put visits at
// least (then on to the end of the cluster it is in).
const migrateSlots = 8

// grow starts moving the table *slots, with *shift (its homes are the top
// bits of a hashBits-bit hash), to one twice the size — the first table
// has 64 slots — after finishing, with move, a previous growth.
func (g *growth[S]) grow(slots *[]S, shift *uint, hashBits int, used func(S) bool, move func(S)) {
	g.step(len(g.slots), used, move)
	size := max(64, 2*len(*slots))
	if len(*slots) > 0 {
		// Visit the table from just after an empty slot (it is at most
		// half full), so that every run moved is a whole cluster.
		empty := 0
		for used((*slots)[empty]) {
			empty++
		}
		*g = growth[S]{slots: *slots, shift: *shift, next: (empty + 1) & (len(*slots) - 1), left: len(*slots)}
	}
	*slots, *shift = make([]S, size), uint(hashBits-bitsLen(size-1))
}

// step visits at least budget slots, then on to an empty one, handing
// each entry to move and clearing its slot; the previous table is dropped
// once every slot was visited.
func (g *growth[S]) step(budget int, used func(S) bool, move func(S)) {
	if g.slots == nil {
		return
	}
	mask := len(g.slots) - 1
	var zero S
	for visited := 0; g.left > 0; visited++ {
		i := g.next
		s := g.slots[i]
		g.next, g.left = (i+1)&mask, g.left-1
		if used(s) {
			move(s)
			g.slots[i] = zero
		} else if visited >= budget {
			break
		}
	}
	if g.left == 0 {
		*g = growth[S]{}
	}
}

// movesBack says whether, in a backward-shift delete with a hole at i,
// the entry at j whose home is k may move back to the hole: unless its
// home lies cyclically in (i, j].
func movesBack(i, j, k int) bool {
	return (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)
}

func bitsLen(v int) int {
	n := 0
	for ; v > 0; v >>= 1 {
		n++
	}
	return n
}

// cidIndex remembers (account, client order ID) → order ID for open orders
// and for finished ones within the retention period. The table holds only
// 8-byte slots — the high half of the key's hash as a tag and the number of
// the key's record — so a probe reads one cache line of a table a fifth the
// size of one holding the keys; a record (account, client ID, order ID) is
// read only when its tag matches, which for a new client ID is almost never.
// Every match is confirmed against the record, so a tag collision cannot
// make a new order a duplicate. Records are recycled through a free list.
//
// The table grows without a pause: a table twice the size takes the new
// entries, and each put moves a few whole clusters of the previous table
// over (migrate), which is gone long before the new one fills. Rehashing
// all at once had stopped the engine for 16 ms at half a million slots in
// BenchmarkAckLatency, and would stop it for seconds at the tens of
// millions of client IDs a day's retention holds.
type cidIndex struct {
	slots []cidSlot
	shift uint // 32 − log2(len(slots)): a slot's home is its tag's top bits
	prev  growth[cidSlot]
	recs  pages[cidRec]
	free  []uint32
	seed  maphash.Seed
	n     int // entries, in slots and in the previous table
}

type cidSlot struct {
	tag uint32 // the key's hash >> 32
	rec uint32 // the record's index + 1; 0: an empty slot
}

type cidRec struct {
	acct *account
	cid  string
	id   uint64
	hash uint64
}

// noCID is the record number of a key that is not remembered.
const noCID = ^uint32(0)

func newCIDIndex() cidIndex { return cidIndex{seed: maphash.MakeSeed()} }

func (t *cidIndex) hash(a *account, cid string) uint64 {
	return maphash.String(t.seed, cid) ^ a.salt
}

// find returns the record number of (a, cid), whose hash is h.
func (t *cidIndex) find(h uint64, a *account, cid string) (uint32, bool) {
	if t.n == 0 {
		return noCID, false
	}
	if rec, ok := t.findIn(t.slots, t.shift, h, a, cid); ok || t.prev.slots == nil {
		return rec, ok
	}
	return t.findIn(t.prev.slots, t.prev.shift, h, a, cid)
}

// findIn looks (a, cid) up in one table, whose home bits start at shift.
func (t *cidIndex) findIn(slots []cidSlot, shift uint, h uint64, a *account, cid string) (uint32, bool) {
	mask := len(slots) - 1
	tag := uint32(h >> 32)
	for i := int(tag >> shift); ; i = (i + 1) & mask {
		s := slots[i]
		if s.rec == 0 {
			return noCID, false
		}
		if s.tag == tag {
			if r := t.recs.at(int(s.rec - 1)); r.hash == h && r.acct == a && r.cid == cid {
				return s.rec - 1, true
			}
		}
	}
}

// get returns the order ID remembered for (a, cid).
func (t *cidIndex) get(a *account, cid string) (uint64, bool) {
	if rec, ok := t.find(t.hash(a, cid), a, cid); ok {
		return t.recs.at(int(rec)).id, true
	}
	return 0, false
}

// put remembers (a, cid) → id, whose hash is h, and returns its record
// number; the caller has checked that the key is absent.
func (t *cidIndex) put(h uint64, a *account, cid string, id uint64) uint32 {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	var rec uint32
	if n := len(t.free); n > 0 {
		rec = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		rec = uint32(t.recs.push(cidRec{}))
	}
	*t.recs.at(int(rec)) = cidRec{acct: a, cid: cid, id: id, hash: h}
	insertSlot(t.slots, t.shift, cidSlot{tag: uint32(h >> 32), rec: rec + 1})
	t.n++
	t.migrate(migrateSlots)
	return rec
}

// insertSlot puts s in the first free slot from its home.
func insertSlot(slots []cidSlot, shift uint, s cidSlot) {
	mask := len(slots) - 1
	i := int(s.tag >> shift)
	for slots[i].rec != 0 {
		i = (i + 1) & mask
	}
	slots[i] = s
}

// del forgets record rec, whose key's hash is h.
func (t *cidIndex) del(h uint64, rec uint32) {
	if rec == noCID || t.n == 0 {
		return
	}
	if delIn(t.slots, t.shift, h, rec) || t.prev.slots != nil && delIn(t.prev.slots, t.prev.shift, h, rec) {
		t.n--
		// The record is left as it is (reading or clearing it would cost a
		// cache miss per expiry): no slot points to it, and put overwrites it.
		t.free = append(t.free, rec)
	}
	// Otherwise not remembered (cannot happen in a consistent state).
}

// delIn removes record rec from one table, if there, by backward shift.
func delIn(slots []cidSlot, shift uint, h uint64, rec uint32) bool {
	mask := len(slots) - 1
	i := int(uint32(h>>32) >> shift)
	for slots[i].rec != rec+1 {
		if slots[i].rec == 0 {
			return false
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; slots[j].rec != 0; j = (j + 1) & mask {
		if movesBack(i, j, int(slots[j].tag>>shift)) {
			slots[i] = slots[j]
			i = j
		}
	}
	slots[i] = cidSlot{}
	return true
}

func (t *cidIndex) grow() { t.prev.grow(&t.slots, &t.shift, 32, cidSlotUsed, t.moveIn) }

func (t *cidIndex) migrate(budget int) { t.prev.step(budget, cidSlotUsed, t.moveIn) }

func (t *cidIndex) moveIn(s cidSlot) { insertSlot(t.slots, t.shift, s) }

func cidSlotUsed(s cidSlot) bool { return s.rec != 0 }

// each calls f for every entry, in no particular order.
func (t *cidIndex) each(f func(a *account, cid string, id uint64)) {
	for _, slots := range [2][]cidSlot{t.slots, t.prev.slots} {
		for _, s := range slots {
			if s.rec != 0 {
				r := t.recs.at(int(s.rec - 1))
				f(r.acct, r.cid, r.id)
			}
		}
	}
}
