package matching

import "sort"

// order is a resting or incoming limit order.
type order struct {
	id        uint64
	account   *account
	symbol    *Symbol
	clientID  string
	side      Side
	price     int64
	qty       int64 // original quantity
	remaining int64
	held      int64 // what this order still holds: base for a sell, quote for a buy
	mandatory bool
	tif       TimeInForce
}

func (o *order) filled() int64 { return o.qty - o.remaining }

// level is one price level: orders in time priority.
type level struct {
	price  int64
	orders []*order
}

// book is one symbol's order book. Bids are kept best (highest) first, asks
// best (lowest) first. This is the straightforward form; the allocation-free
// book replaces it behind the same methods.
type book struct {
	bids []*level
	asks []*level
}

func (b *book) side(s Side) *[]*level {
	if s == Buy {
		return &b.bids
	}
	return &b.asks
}

// better reports whether price p has priority over q on side s.
func better(s Side, p, q int64) bool {
	if s == Buy {
		return p > q
	}
	return p < q
}

// add rests o at the back of its price level.
func (b *book) add(o *order) {
	levels := b.side(o.side)
	i := sort.Search(len(*levels), func(i int) bool { return !better(o.side, (*levels)[i].price, o.price) })
	if i < len(*levels) && (*levels)[i].price == o.price {
		(*levels)[i].orders = append((*levels)[i].orders, o)
		return
	}
	*levels = append(*levels, nil)
	copy((*levels)[i+1:], (*levels)[i:])
	(*levels)[i] = &level{price: o.price, orders: []*order{o}}
}

// best returns the first order on side s, or nil.
func (b *book) best(s Side) *order {
	levels := *b.side(s)
	if len(levels) == 0 {
		return nil
	}
	return levels[0].orders[0]
}

// remove takes o out of the book.
func (b *book) remove(o *order) {
	levels := b.side(o.side)
	for li, l := range *levels {
		if l.price != o.price {
			continue
		}
		for oi, x := range l.orders {
			if x == o {
				l.orders = append(l.orders[:oi], l.orders[oi+1:]...)
				break
			}
		}
		if len(l.orders) == 0 {
			*levels = append((*levels)[:li], (*levels)[li+1:]...)
		}
		return
	}
}

// Level is one aggregated price level for depth queries.
type Level struct {
	Price    int64
	Quantity int64
	Orders   int
}

func (b *book) depth(s Side, n int) []Level {
	levels := *b.side(s)
	if n > len(levels) {
		n = len(levels)
	}
	out := make([]Level, 0, n)
	for _, l := range levels[:n] {
		var q int64
		for _, o := range l.orders {
			q += o.remaining
		}
		out = append(out, Level{Price: l.price, Quantity: q, Orders: len(l.orders)})
	}
	return out
}
