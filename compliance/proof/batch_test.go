package proof_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance/proof"
)

// memLog is a log in memory: tlog's stored hashes.
type memLog struct {
	leaves []tlog.Hash
	stored []tlog.Hash
}

func newMemLog(t testing.TB, n int) *memLog {
	l := &memLog{}
	for i := range n {
		data := []byte(fmt.Sprintf("entry %d", i))
		hs, err := tlog.StoredHashes(int64(i), data, l)
		if err != nil {
			t.Fatal(err)
		}
		l.leaves = append(l.leaves, proof.LeafHash(data))
		l.stored = append(l.stored, hs...)
	}
	return l
}

func (l *memLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = l.stored[x]
	}
	return out, nil
}

// TestBatchProof: for every log size up to 70 and random sets of entries,
// the batch proof leads to tlog's tree hash, every entry's audit path
// derived from it is tlog's own inclusion proof, and changing any leaf or
// proof hash, or the set of indexes, breaks it.
func TestBatchProof(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	full := newMemLog(t, 70)
	for size := int64(1); size <= 70; size++ {
		root, err := tlog.TreeHash(size, full)
		if err != nil {
			t.Fatal(err)
		}
		for range 8 {
			var idx []int64
			for i := range size {
				if rng.IntN(4) == 0 {
					idx = append(idx, i)
				}
			}
			if len(idx) == 0 {
				idx = []int64{rng.Int64N(size)}
			}
			leaves := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				leaves[i] = full.leaves[x]
			}
			p, err := proof.ProveEntries(size, idx, full)
			if err != nil {
				t.Fatalf("size %d %v: %v", size, idx, err)
			}
			got, err := proof.BatchRoot(size, idx, leaves, p)
			if err != nil || got != root {
				t.Fatalf("size %d %v: root %v, %v; want %v", size, idx, got, err, root)
			}
			for _, x := range idx {
				path, r, err := proof.AuditPath(size, idx, leaves, p, x)
				want, err2 := tlog.ProveRecord(size, x, full)
				if err != nil || err2 != nil || r != root || !slices.Equal(path, want) {
					t.Fatalf("size %d %v: audit path of %d %v (%v), tlog's %v (%v)", size, idx, x, path, err, want, err2)
				}
			}
			// Any changed hash leads elsewhere.
			for i := range p {
				bad := slices.Clone(p)
				bad[i][0] ^= 1
				if got, err := proof.BatchRoot(size, idx, leaves, bad); err == nil && got == root {
					t.Fatalf("size %d %v: proof hash %d changed, same root", size, idx, i)
				}
			}
			for i := range leaves {
				bad := slices.Clone(leaves)
				bad[i][0] ^= 1
				if got, err := proof.BatchRoot(size, idx, bad, p); err == nil && got == root {
					t.Fatalf("size %d %v: leaf %d changed, same root", size, idx, i)
				}
			}
			// An entry claimed at a free index, with its proof, does not
			// lead to the root either.
			for i := range idx {
				moved := slices.Clone(idx)
				moved[i]++
				if moved[i] >= size || i+1 < len(idx) && moved[i] == idx[i+1] {
					continue
				}
				if got, err := proof.BatchRoot(size, moved, leaves, p); err == nil && got == root {
					t.Fatalf("size %d %v: entry %d moved to %d, same root", size, idx, idx[i], moved[i])
				}
			}
		}
	}
}

// TestBatchProofRefusals: bad index lists and proofs of the wrong length
// are refused with the reason.
func TestBatchProofRefusals(t *testing.T) {
	l := newMemLog(t, 10)
	p, err := proof.ProveEntries(10, []int64{2, 5}, l)
	if err != nil {
		t.Fatal(err)
	}
	leaves := []tlog.Hash{l.leaves[2], l.leaves[5]}
	for _, c := range []struct {
		name    string
		indexes []int64
		leaves  []tlog.Hash
		proof   []tlog.Hash
		want    string
	}{
		{"ErrNoEntries", nil, nil, p, "at least one entry"},
		{"ErrLeafCount", []int64{2, 5}, leaves[:1], p, "one leaf per index"},
		{"ErrOutside", []int64{2, 10}, leaves, p, "entry 1: index 10 is outside the log of 10"},
		{"ErrNegative", []int64{-1, 5}, leaves, p, "entry 0: index -1 is outside the log of 10"},
		{"ErrTwice", []int64{5, 5}, leaves, p, "entry 1: index 5 appears twice"},
		{"ErrOrder", []int64{5, 2}, leaves, p, "entry 1: index 2 comes after index 5: entries must be in log order"},
		{"ErrShort", []int64{2, 5}, leaves, p[:len(p)-1], "the batch proof is too short"},
		{"ErrLong", []int64{2, 5}, leaves, append(slices.Clone(p), p[0]), fmt.Sprintf("the batch proof has %d hashes, the entries use %d", len(p)+1, len(p))},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := proof.BatchRoot(10, c.indexes, c.leaves, c.proof)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	if _, _, err := proof.AuditPath(10, []int64{2, 5}, leaves, p, 3); err == nil || !strings.Contains(err.Error(), "index 3 is not one of the entries") {
		t.Fatalf("audit path of an absent entry: %v", err)
	}
	if _, err := proof.ProveEntries(10, []int64{5, 2}, l); err == nil {
		t.Fatal("ProveEntries accepted indexes out of order")
	}
	for _, size := range []int64{0, 10} {
		if _, err := proof.ProveEntries(size, nil, l); err == nil || !strings.Contains(err.Error(), "at least one entry") {
			t.Fatalf("ProveEntries of no entries in a log of %d: %v", size, err)
		}
	}
}
