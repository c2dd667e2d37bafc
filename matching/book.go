package matching

// order is a resting or incoming order. Orders are pooled (no per-order
// allocation in steady state).
type order struct {
	id         uint64
	acct       *account
	sym        *market
	clientID   string
	obligation string
	side       Side
	typ        OrderType
	tif        TimeInForce
	stp        STPMode // resolved: never STPDefault
	purpose    Purpose
	postOnly   bool
	price      int64  // limit price; 0 for market orders
	qty        int64  // total quantity as accepted or amended
	remaining  int64  // unfilled quantity, visible and hidden
	visible    int64  // the part shown in the book (= remaining unless iceberg)
	display    int64  // iceberg display size; 0 when not an iceberg
	budget     int64  // market buy by quote amount: what it may still spend
	byQuote    bool   // a market buy sized by quote amount
	listed     bool   // in the ID index and its account's open orders (see Engine.list)
	held       int64  // what this order holds: base for a sell, quote for a buy
	expireAt   int64  // GTD expiry, Unix ms; 0 otherwise
	heapIdx    int32  // position in the expiry heap; -1 when not there
	cidRec     uint32 // its client ID's record in Engine.cids
	cidHash    uint64 // the hash of its (account, client ID)

	lvl  *level
	qpos int64 // its position in lvl's queue (see level)
}

func (o *order) filled() int64 { return o.qty - o.remaining }

// level is one price level: its orders in time priority and aggregates.
//
// The orders are a queue in a slice, not a linked list: taking an order out
// leaves a hole (nil) instead of writing to its neighbours — two more
// orders, each a likely cache miss — and matching reads the next order from
// the level's own memory. Position o.qpos is absolute: q[o.qpos − base].
// When the front of the slice is mostly taken, it is dropped (base grows;
// no order is touched); when holes are most of what is left, the live
// orders are packed and renumbered. Both are amortised O(1) per removal.
// Entries of q's backing array outside [first, len) are always nil.
type level struct {
	price   int64
	visible int64 // sum of the orders' visible quantities
	total   int64 // sum of the orders' remaining quantities (auctions see it all)
	count   int32
	first   int      // q[first] is the head when count > 0
	base    int64    // the absolute position of q[0]
	q       []*order // the orders in time priority from first on; nil: a hole
}

// head is the level's first order in time priority (nil when empty).
func (l *level) head() *order {
	if l.count == 0 {
		return nil
	}
	return l.q[l.first]
}

// queue is the level's orders in time priority, with holes (nil).
func (l *level) queue() []*order { return l.q[l.first:] }

func (l *level) pushBack(o *order) {
	o.lvl, o.qpos = l, l.base+int64(len(l.q))
	l.q = append(l.q, o)
	l.visible += o.visible
	l.total += o.remaining
	l.count++
}

func (l *level) unlink(o *order) {
	i := int(o.qpos - l.base)
	l.q[i] = nil
	l.visible -= o.visible
	l.total -= o.remaining
	l.count--
	o.lvl = nil
	switch {
	case l.count == 0:
		l.q, l.first, l.base = l.q[:0], 0, l.base+int64(len(l.q))
		return
	case i == l.first:
		for l.q[l.first] == nil {
			l.first++
		}
	}
	switch n := len(l.q); {
	case n-l.first-int(l.count) > int(l.count)+16: // mostly holes: pack
		k := 0
		for j := l.first; j < n; j++ {
			if x := l.q[j]; x != nil {
				l.q[k], x.qpos = x, l.base+int64(k)
				k++
			}
		}
		clear(l.q[k:n])
		l.q, l.first = l.q[:k], 0
	case l.first > 16 && 2*l.first > n: // mostly a taken front: drop it
		k := copy(l.q, l.q[l.first:])
		clear(l.q[k:n])
		l.q, l.base, l.first = l.q[:k], l.base+int64(l.first), 0
	}
}

// bookSide is one side of a book: levels sorted worst first, best last, so
// that the best level is removed and added at the end of the slice, and a
// price index for O(1) level lookup.
type bookSide struct {
	side    Side
	levels  []*level
	byPrice map[int64]*level
}

// better reports whether price p has priority over q on side s.
func better(s Side, p, q int64) bool {
	if s == Buy {
		return p > q
	}
	return p < q
}

func (b *bookSide) best() *level {
	if n := len(b.levels); n > 0 {
		return b.levels[n-1]
	}
	return nil
}

// insertLevel adds an empty level at price, keeping the order.
func (b *bookSide) insertLevel(l *level) {
	// Binary search for the first index whose price is better than l's:
	// levels before it are worse, so l goes there.
	lo, hi := 0, len(b.levels)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if better(b.side, b.levels[m].price, l.price) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	b.levels = append(b.levels, nil)
	copy(b.levels[lo+1:], b.levels[lo:])
	b.levels[lo] = l
	b.byPrice[l.price] = l
}

// removeLevel takes an empty level out.
func (b *bookSide) removeLevel(l *level) {
	delete(b.byPrice, l.price)
	n := len(b.levels)
	if b.levels[n-1] == l { // the common case: the best level emptied
		b.levels[n-1] = nil
		b.levels = b.levels[:n-1]
		return
	}
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if better(b.side, b.levels[m].price, l.price) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	// l is the last level not better than itself: index lo-1.
	i := lo - 1
	copy(b.levels[i:], b.levels[i+1:])
	b.levels[n-1] = nil
	b.levels = b.levels[:n-1]
}

// pool recycles orders and levels so that steady-state trading allocates
// nothing.
type pool struct {
	orders freeList[order]
	levels freeList[level]
}

func (p *pool) order() *order     { return p.orders.get() }
func (p *pool) putOrder(o *order) { p.orders.put(o) }

func (p *pool) level(price int64) *level {
	l := p.levels.get()
	l.price = price
	return l
}

// putLevel recycles an empty level, keeping its queue's memory.
func (p *pool) putLevel(l *level) {
	q := l.q[:0]
	*l = level{q: q}
	p.levels.free = append(p.levels.free, l)
}

// freeList hands out zeroed objects, allocated in chunks.
type freeList[T any] struct{ free []*T }

const poolChunk = 256

func (f *freeList[T]) get() *T {
	if len(f.free) == 0 {
		chunk := make([]T, poolChunk)
		for i := range chunk {
			f.free = append(f.free, &chunk[i])
		}
	}
	x := f.free[len(f.free)-1]
	f.free = f.free[:len(f.free)-1]
	return x
}

func (f *freeList[T]) put(x *T) {
	var zero T
	*x = zero
	f.free = append(f.free, x)
}

// expiryHeap orders GTD orders by (expireAt, id).
type expiryHeap []*order

func (h expiryHeap) less(i, j int) bool {
	if h[i].expireAt != h[j].expireAt {
		return h[i].expireAt < h[j].expireAt
	}
	return h[i].id < h[j].id
}

func (h expiryHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = int32(i), int32(j)
}

func (h *expiryHeap) push(o *order) {
	o.heapIdx = int32(len(*h))
	*h = append(*h, o)
	h.up(len(*h) - 1)
}

func (h *expiryHeap) remove(o *order) {
	i := int(o.heapIdx)
	n := len(*h) - 1
	if i != n {
		h.swap(i, n)
	}
	(*h)[n] = nil
	*h = (*h)[:n]
	o.heapIdx = -1
	if i != n {
		h.down(i)
		h.up(i)
	}
}

func (h expiryHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h expiryHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}
