package matching

// order is a resting or incoming order. Orders are pooled and linked
// intrusively (no per-order allocation in steady state): prev/next chain the
// orders of one price level in time priority.
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
	quote      int64  // the quote amount of its fills so far, fees apart
	expireAt   int64  // GTD expiry, Unix ms; 0 otherwise
	heapIdx    int32  // position in the expiry heap; -1 when not there
	cidRec     uint32 // its client ID's record in Engine.cids
	cidHash    uint64 // the hash of its (account, client ID)

	lvl        *level
	prev, next *order
}

func (o *order) filled() int64 { return o.qty - o.remaining }

// level is one price level: its orders in time priority and aggregates.
type level struct {
	price      int64
	visible    int64 // sum of the orders' visible quantities
	total      int64 // sum of the orders' remaining quantities (auctions see it all)
	count      int32
	head, tail *order
}

func (l *level) pushBack(o *order) {
	o.lvl, o.prev, o.next = l, l.tail, nil
	if l.tail != nil {
		l.tail.next = o
	} else {
		l.head = o
	}
	l.tail = o
	l.visible += o.visible
	l.total += o.remaining
	l.count++
}

func (l *level) unlink(o *order) {
	if o.prev != nil {
		o.prev.next = o.next
	} else {
		l.head = o.next
	}
	if o.next != nil {
		o.next.prev = o.prev
	} else {
		l.tail = o.prev
	}
	l.visible -= o.visible
	l.total -= o.remaining
	l.count--
	o.lvl, o.prev, o.next = nil, nil, nil
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

func (p *pool) putLevel(l *level) { p.levels.put(l) }

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
