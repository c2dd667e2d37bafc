package matching

// The client-ID memory and its retention queue hold an entry for every
// order that finished within the retention window — tens of millions in a
// busy day; an account's open-order list can hold millions. As contiguous
// slices they were copied whole at every growth (and the queue compacted
// by copying its live half). Appending 30 million
// 40-byte records one by one to a Go slice on the reference machine, the
// slowest single append — one growth: allocating, copying, and the garbage
// collector's assist for so large an allocation — took 13.6 s; in a short
// run the growth was the largest cost after the engine itself. Stored in
// fixed-size pages, they grow and shrink without ever copying an entry.

const (
	pageBits = 12
	pageSize = 1 << pageBits
)

// pages is a growable array in fixed-size pages. Its first page starts
// small and grows by appending (a short array costs little memory); every
// later page is allocated whole, so a long array is never copied.
type pages[T any] struct {
	p [][]T
	n int
}

// at returns entry i (i < n).
func (s *pages[T]) at(i int) *T { return &s.p[i>>pageBits][i&(pageSize-1)] }

// push appends v and returns its index.
func (s *pages[T]) push(v T) int {
	c := s.n >> pageBits
	if c == len(s.p) {
		size := pageSize
		if c == 0 {
			size = firstPage
		}
		s.p = append(s.p, make([]T, 0, size))
	}
	s.p[c] = append(s.p[c], v)
	s.n++
	return s.n - 1
}

// firstPage is the first page's starting capacity.
const firstPage = 4

// truncate keeps the first n entries (n ≤ the count), dropping the pages
// past them; the first page keeps its capacity.
func (s *pages[T]) truncate(n int) {
	c := max(0, (n-1)>>pageBits) // the page entry n−1 is on (the first when n is 0)
	if c < len(s.p) {
		clear(s.p[c+1:])
		s.p = s.p[:c+1]
		s.p[c] = s.p[c][:n-c<<pageBits]
	}
	s.n = n
}

// fifo is a queue in fixed-size pages; a page is recycled once every entry
// on it is popped (a queue in steady state allocates nothing).
type fifo[T any] struct {
	p          [][]T
	spare      []T // the last page emptied, for the next push that needs one
	head, tail int // positions within the first page and past the last entry, counted from the first page's start
}

func (q *fifo[T]) len() int { return q.tail - q.head }

func (q *fifo[T]) push(v T) {
	if q.tail>>pageBits == len(q.p) {
		page := q.spare
		if page == nil {
			page = make([]T, pageSize)
		}
		q.p, q.spare = append(q.p, page), nil
	}
	q.p[q.tail>>pageBits][q.tail&(pageSize-1)] = v
	q.tail++
}

// front returns the oldest entry (len() > 0).
func (q *fifo[T]) front() *T { return &q.p[0][q.head] }

// pop removes the oldest entry (len() > 0). Popped entries are not
// cleared: fifo holds values without pointers.
func (q *fifo[T]) pop() {
	q.head++
	if q.head == pageSize {
		q.spare, q.p[0] = q.p[0], nil
		q.p = q.p[1:]
		q.head -= pageSize
		q.tail -= pageSize
	}
}

// each calls f for every entry, oldest first.
func (q *fifo[T]) each(f func(*T)) {
	for i := q.head; i < q.tail; i++ {
		f(&q.p[i>>pageBits][i&(pageSize-1)])
	}
}
