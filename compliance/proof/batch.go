package proof

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"

	"golang.org/x/mod/sumdb/tlog"
)

// A batch inclusion proof shows that a set of entries is in a log of n
// entries with one list of hashes instead of one audit path per entry. It
// follows RFC 6962's own definition of the tree hash, MTH(D[lo:hi]) = the
// leaf hash when hi-lo = 1, else NodeHash(MTH(D[lo:lo+k]), MTH(D[lo+k:hi]))
// with k the largest power of two below hi-lo: walking that recursion from
// [0, n), the proof holds, in walk order, MTH of every subtree that contains
// none of the entries; the subtrees that do are recomputed from the entries
// themselves. The walk is fixed by n and the entries' indexes, so the
// verifier consumes the hashes in the order the prover wrote them, and
// every hash must be consumed. Each entry's RFC 6962 audit path consists of
// nodes the walk computes or reads (AuditPath), so a batch proof proves
// exactly what the entries' separate inclusion proofs prove.
//
// A certificate of 10,000 fills settled in runs of 1,000 (20,002 entries in
// a log of 23,000) carries 96 hashes instead of some 20,000 distinct ones
// (or 300,000 with every path written out), and checking it hashes each
// node once.

// split is RFC 6962's k: the largest power of two smaller than n (n ≥ 2).
func split(n int64) int64 { return 1 << (bits.Len64(uint64(n-1)) - 1) }

// ProveEntries returns the batch inclusion proof of the entries at indexes
// (strictly increasing, each below size) in the log of size entries, from
// the log's stored hashes.
func ProveEntries(size int64, indexes []int64, r tlog.HashReader) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, errNoEntries
	}
	if err := checkIndexes(size, indexes); err != nil {
		return nil, err
	}
	// The subtrees without entries, in walk order; then the stored hashes
	// that make them up, read in one call.
	type span struct{ lo, hi int64 }
	var spans []span
	var walk func(lo, hi int64, idx []int64)
	walk = func(lo, hi int64, idx []int64) {
		switch {
		case len(idx) == 0:
			spans = append(spans, span{lo, hi})
		case hi-lo > 1:
			k := split(hi - lo)
			m := sort.Search(len(idx), func(i int) bool { return idx[i] >= lo+k })
			walk(lo, lo+k, idx[:m])
			walk(lo+k, hi, idx[m:])
		}
	}
	walk(0, size, indexes)
	// A subtree of the walk is either complete (a power of two wide,
	// aligned: one stored hash) or the log's right edge [lo, size), the
	// right fold of its complete subtrees, widest first.
	var stored []int64
	parts := make([]int, len(spans)) // how many stored hashes each span takes
	for i, s := range spans {
		for lo := s.lo; lo < s.hi; {
			level := bits.Len64(uint64(s.hi-lo)) - 1
			stored = append(stored, tlog.StoredHashIndex(level, lo>>level))
			lo += 1 << level
			parts[i]++
		}
	}
	hs, err := r.ReadHashes(stored)
	if err != nil {
		return nil, err
	}
	if len(hs) != len(stored) {
		return nil, fmt.Errorf("proof: read %d stored hashes, want %d", len(hs), len(stored))
	}
	out := make([]tlog.Hash, len(spans))
	for i, n := range parts {
		part := hs[:n]
		hs = hs[n:]
		h := part[n-1]
		for j := n - 2; j >= 0; j-- {
			h = tlog.NodeHash(part[j], h)
		}
		out[i] = h
	}
	return out, nil
}

var errNoEntries = errors.New("a batch proof needs at least one entry")

// checkIndexes refuses indexes that are not strictly increasing below size.
func checkIndexes(size int64, indexes []int64) error {
	for i, x := range indexes {
		switch {
		case x < 0 || x >= size:
			return fmt.Errorf("entry %d: index %d is outside the log of %d", i, x, size)
		case i > 0 && x == indexes[i-1]:
			return fmt.Errorf("entry %d: index %d appears twice", i, x)
		case i > 0 && x < indexes[i-1]:
			return fmt.Errorf("entry %d: index %d comes after index %d: entries must be in log order", i, x, indexes[i-1])
		}
	}
	return nil
}

// batch recomputes a root from entries' leaf hashes and a batch proof.
type batch struct {
	indexes []int64
	leaves  []tlog.Hash
	proof   []tlog.Hash
	next    int // the next proof hash to consume
	// For AuditPath: the entry whose path is collected, bottom up.
	target int64
	path   []tlog.Hash
}

func (b *batch) root(lo, hi int64, a, z int) (tlog.Hash, error) {
	if a == z {
		if b.next == len(b.proof) {
			return tlog.Hash{}, fmt.Errorf("the batch proof is too short: it has %d hashes", len(b.proof))
		}
		b.next++
		return b.proof[b.next-1], nil
	}
	if hi-lo == 1 {
		return b.leaves[a], nil
	}
	k := split(hi - lo)
	m := a + sort.Search(z-a, func(i int) bool { return b.indexes[a+i] >= lo+k })
	l, err := b.root(lo, lo+k, a, m)
	if err != nil {
		return tlog.Hash{}, err
	}
	r, err := b.root(lo+k, hi, m, z)
	if err != nil {
		return tlog.Hash{}, err
	}
	switch {
	case b.target >= lo && b.target < lo+k:
		b.path = append(b.path, r)
	case b.target >= lo+k && b.target < hi:
		b.path = append(b.path, l)
	}
	return tlog.NodeHash(l, r), nil
}

// BatchRoot is the root of the log of size entries that holds the leaves at
// indexes (strictly increasing) given the batch proof; every proof hash must
// be used.
func BatchRoot(size int64, indexes []int64, leaves, proof []tlog.Hash) (tlog.Hash, error) {
	h, _, err := batchWalk(size, indexes, leaves, proof, -1)
	return h, err
}

// AuditPath is the RFC 6962 inclusion proof (audit path, bottom up) of the
// entry at index target — one of indexes — derived from a batch proof,
// with the root it leads to.
func AuditPath(size int64, indexes []int64, leaves, proof []tlog.Hash, target int64) (tlog.RecordProof, tlog.Hash, error) {
	if _, ok := slices.BinarySearch(indexes, target); !ok {
		return nil, tlog.Hash{}, fmt.Errorf("index %d is not one of the entries", target)
	}
	h, path, err := batchWalk(size, indexes, leaves, proof, target)
	return path, h, err
}

func batchWalk(size int64, indexes []int64, leaves, proof []tlog.Hash, target int64) (tlog.Hash, tlog.RecordProof, error) {
	if len(indexes) == 0 {
		return tlog.Hash{}, nil, errNoEntries
	}
	if len(leaves) != len(indexes) {
		return tlog.Hash{}, nil, fmt.Errorf("a batch proof needs one leaf per index: %d leaves, %d indexes", len(leaves), len(indexes))
	}
	if err := checkIndexes(size, indexes); err != nil {
		return tlog.Hash{}, nil, err
	}
	b := &batch{indexes: indexes, leaves: leaves, proof: proof, target: target}
	h, err := b.root(0, size, 0, len(indexes))
	if err != nil {
		return tlog.Hash{}, nil, err
	}
	if b.next != len(proof) {
		return tlog.Hash{}, nil, fmt.Errorf("the batch proof has %d hashes, the entries use %d", len(proof), b.next)
	}
	return h, b.path, nil
}
