package matching

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestLevelQueue checks the level's queue against a plain slice through
// random appends, removals from the front and from anywhere (which drive
// both the dropping of a taken front and the packing of holes), and the
// recycling of an emptied level.
func TestLevelQueue(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	var p pool
	l := p.level(100)
	var want []*order
	next := uint64(1)
	for step := 0; step < 200_000; step++ {
		switch k := r.IntN(10); {
		case k < 4 || len(want) == 0:
			o := p.order()
			o.id, o.remaining, o.visible = next, 1, 1
			next++
			l.pushBack(o)
			want = append(want, o)
		case k < 7:
			o := want[0]
			if l.head() != o {
				t.Fatalf("step %d: head %v, want order %d", step, l.head(), o.id)
			}
			l.unlink(o)
			want = want[1:]
		default:
			i := r.IntN(len(want))
			l.unlink(want[i])
			want = slices.Delete(want, i, i+1)
		}
		if len(want) == 0 && r.IntN(4) == 0 { // recycle the empty level
			p.putLevel(l)
			l = p.level(100)
		}
		var got []*order
		for _, o := range l.queue() {
			if o != nil {
				got = append(got, o)
			}
		}
		if !slices.Equal(got, want) || int(l.count) != len(want) || l.total != int64(len(want)) {
			t.Fatalf("step %d: queue has %d orders (count %d), want %d", step, len(got), l.count, len(want))
		}
		for _, o := range want {
			if o.lvl != l || l.q[o.qpos-l.base] != o {
				t.Fatalf("step %d: order %d's position %d is stale", step, o.id, o.qpos)
			}
		}
		if len(l.q) > 4*len(want)+40 {
			t.Fatalf("step %d: queue of %d slots for %d orders", step, len(l.q), len(want))
		}
		for _, o := range l.q[:cap(l.q)][len(l.q):] {
			if o != nil {
				t.Fatalf("step %d: a stale pointer beyond the queue", step)
			}
		}
	}
}
