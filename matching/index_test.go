package matching

import (
	"math/rand/v2"
	"testing"
)

// TestOrderIndex checks the window-and-overflow index of open orders against
// a map through puts with gaps, deletes of recent and random orders, and
// the window's growth.
func TestOrderIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	var ix orderIndex
	live := map[uint64]*order{}
	var ids []uint64
	next := uint64(1)
	for step := 0; step < 400_000; step++ {
		switch k := r.IntN(10); {
		case k < 6:
			next += uint64(r.IntN(3)) // gaps: IDs never listed
			o := &order{id: next}
			next++
			ix.put(o)
			live[o.id] = o
			ids = append(ids, o.id)
		case len(ids) > 0:
			i := r.IntN(len(ids))
			if r.IntN(3) == 0 {
				i = len(ids) - 1 - r.IntN(min(len(ids), 50))
			}
			id := ids[i]
			ids[i] = ids[len(ids)-1]
			ids = ids[:len(ids)-1]
			if ix.get(id) != live[id] {
				t.Fatalf("step %d: get %d", step, id)
			}
			ix.del(id)
			delete(live, id)
			if ix.get(id) != nil {
				t.Fatalf("step %d: %d still there", step, id)
			}
		}
		if step%50_000 == 0 {
			for id, o := range live {
				if ix.get(id) != o {
					t.Fatalf("step %d: lost %d (window %d)", step, id, len(ix.win))
				}
			}
			if ix.get(next+5) != nil || ix.get(0) != nil {
				t.Fatal("phantom")
			}
		}
	}
	t.Logf("window %d, overflow %d, live %d", len(ix.win), ix.old.n, len(live))
}

// TestPagesAndFIFO: the paged array keeps every entry where it was put
// across page boundaries; the paged queue pops in push order, drops its
// consumed pages, and lists what is left oldest first.
func TestPagesAndFIFO(t *testing.T) {
	var p pages[int]
	for i := range 3*pageSize + 5 {
		if got := p.push(i * 7); got != i {
			t.Fatalf("push %d returned index %d", i, got)
		}
	}
	for i := range p.n {
		if *p.at(i) != i*7 {
			t.Fatalf("entry %d is %d", i, *p.at(i))
		}
	}
	var q fifo[int]
	next, popped := 0, 0
	for round := range 6 {
		for range pageSize/2 + round*97 {
			q.push(next)
			next++
		}
		for range pageSize / 3 {
			if got := *q.front(); got != popped {
				t.Fatalf("front %d; want %d", got, popped)
			}
			q.pop()
			popped++
		}
		if q.len() != next-popped || len(q.p) > q.len()/pageSize+2 {
			t.Fatalf("queue of %d in %d pages; want %d", q.len(), len(q.p), next-popped)
		}
	}
	want := popped
	q.each(func(v *int) {
		if *v != want {
			t.Fatalf("each: %d; want %d", *v, want)
		}
		want++
	})
	if want != next {
		t.Fatalf("each listed up to %d; want %d", want, next)
	}
}
