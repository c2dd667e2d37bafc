package postgres

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement"
)

// logLock is the advisory lock every transaction that appends to the log
// takes first, before any obligation, licence or report row: the log is one
// sequence, and taking it first keeps the lock order the same for all.
const logLock int64 = 0x5341545501 // "SATU" 01

// logItem is one entry to append. Data is its leaf data; kinds whose rows
// are re-encoded from their own tables (fills, reports, computations) keep
// none in log_entries.
type logItem struct {
	kind, ref  string
	obligation int64
	miner      string
	data       []byte
	keepData   bool
}

// lockLog takes the log's lock for the rest of the transaction.
func lockLog(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, logLock); err != nil {
		return fmt.Errorf("proof: lock the log: %w", err)
	}
	return nil
}

// appendLog appends a run of fills (may be nil) and then items to the log,
// in the caller's transaction, which holds the log's lock: the stored hashes
// of all of them in one log_hashes row, the items' rows, the fills' run, the
// new size.
func (s *Store) appendLog(ctx context.Context, tx pgx.Tx, shard string, fills []settlement.Fill, items []logItem) error {
	if len(fills) == 0 && len(items) == 0 {
		return nil
	}
	if err := lockLog(ctx, tx); err != nil {
		return err
	}
	// base is the size before this transaction's first append (a
	// transaction may append more than once): the runs below it are
	// committed and may be cached, this transaction's own may yet roll back.
	var size, base int64
	if err := tx.QueryRow(ctx, `SELECT size, coalesce(nullif(current_setting('satu.log_base', true), ''),
			set_config('satu.log_base', size::text, true))::bigint FROM log_state WHERE id = 1`).Scan(&size, &base); err != nil {
		return fmt.Errorf("proof: log size: %w", err)
	}
	r := &hashReader{s: s, ctx: ctx, q: tx, start: tlog.StoredHashIndex(0, size),
		inTx: true, ownFrom: tlog.StoredHashIndex(0, base)}
	add := func(data []byte) error {
		hs, err := tlog.StoredHashes(size+int64(r.count()), data, r)
		if err != nil {
			return fmt.Errorf("proof: stored hashes: %w", err)
		}
		r.pending = append(r.pending, hs...)
		r.records++
		return nil
	}
	for i := range fills {
		if err := add(s.fillEntry(shard, &fills[i].Event, fills[i].ID)); err != nil {
			return err
		}
	}
	if len(fills) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO log_fill_runs (first_index, shard, first_seq, last_seq, count) VALUES ($1, $2, $3, $4, $5)`,
			size, shard, int64(fills[0].Event.Seq), int64(fills[len(fills)-1].Event.Seq), len(fills)); err != nil {
			return fmt.Errorf("proof: fill run: %w", err)
		}
	}
	for _, it := range items {
		index := size + int64(r.records)
		if err := add(it.data); err != nil {
			return err
		}
		var data []byte
		if it.keepData {
			data = it.data
		}
		var ob *int64
		if it.obligation != 0 {
			ob = &it.obligation
		}
		if _, err := tx.Exec(ctx, `INSERT INTO log_entries (index, kind, ref, obligation_id, miner_id, data) VALUES ($1, $2, $3, $4, nullif($5, ''), $6)`,
			index, it.kind, it.ref, ob, it.miner, data); err != nil {
			return fmt.Errorf("proof: log entry: %w", err)
		}
	}
	buf := make([]byte, 0, len(r.pending)*tlog.HashSize)
	for _, h := range r.pending {
		buf = append(buf, h[:]...)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO log_hashes (start, hashes) VALUES ($1, $2)`, r.start, buf); err != nil {
		return fmt.Errorf("proof: log hashes: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE log_state SET size = $1 WHERE id = 1`, size+int64(r.records)); err != nil {
		return fmt.Errorf("proof: log size: %w", err)
	}
	return nil
}

// hashReader reads stored hashes: the ones this append computed so far
// (from start), else runs from log_hashes, through the store's cache of
// committed runs (committed runs never change).
type hashReader struct {
	s       *Store
	ctx     context.Context
	q       querier
	start   int64 // stored-hash index of pending[0]
	pending []tlog.Hash
	records int
	// In an appending transaction (inTx), the runs from stored-hash index
	// ownFrom on are its own, not committed: read, never cached.
	inTx    bool
	ownFrom int64
}

func (r *hashReader) count() int { return r.records }

func (r *hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= r.start && x < r.start+int64(len(r.pending)) && r.pending != nil {
			out[i] = r.pending[x-r.start]
			continue
		}
		committed := int64(math.MaxInt64)
		if r.inTx {
			committed = r.ownFrom
		}
		h, err := r.s.runs.hash(r.ctx, r.q, x, committed)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// runCache holds committed runs of stored hashes by their first index.
type runCache struct {
	mu     sync.Mutex
	starts []int64 // sorted
	runs   map[int64][]byte
}

// maxCachedRuns bounds the cache; past it the cache starts over (a run is
// one appending transaction's hashes, about 64 KiB for a batch of 1,000
// fills).
const maxCachedRuns = 4096

// hash returns stored hash index, caching the run read from q if it starts
// below committed.
func (c *runCache) hash(ctx context.Context, q querier, index, committed int64) (tlog.Hash, error) {
	c.mu.Lock()
	if i := sort.Search(len(c.starts), func(i int) bool { return c.starts[i] > index }) - 1; i >= 0 {
		run := c.runs[c.starts[i]]
		if off := (index - c.starts[i]) * tlog.HashSize; off+tlog.HashSize <= int64(len(run)) {
			var h tlog.Hash
			copy(h[:], run[off:])
			c.mu.Unlock()
			return h, nil
		}
	}
	c.mu.Unlock()
	var start int64
	var run []byte
	if err := q.QueryRow(ctx, `SELECT start, hashes FROM log_hashes WHERE start <= $1 ORDER BY start DESC LIMIT 1`, index).
		Scan(&start, &run); err != nil {
		return tlog.Hash{}, fmt.Errorf("proof: stored hash %d: %w", index, err)
	}
	off := (index - start) * tlog.HashSize
	if off+tlog.HashSize > int64(len(run)) {
		return tlog.Hash{}, fmt.Errorf("proof: stored hash %d is not in the log", index)
	}
	if start >= committed {
		var h tlog.Hash
		copy(h[:], run[off:])
		return h, nil
	}
	c.mu.Lock()
	if c.runs == nil || len(c.runs) >= maxCachedRuns {
		c.runs, c.starts = map[int64][]byte{}, nil
	}
	if _, ok := c.runs[start]; !ok {
		c.runs[start] = run
		i := sort.Search(len(c.starts), func(i int) bool { return c.starts[i] > start })
		c.starts = append(c.starts, 0)
		copy(c.starts[i+1:], c.starts[i:])
		c.starts[i] = start
	}
	c.mu.Unlock()
	var h tlog.Hash
	copy(h[:], run[off:])
	return h, nil
}

// fillEntry is a settled fill's leaf data.
func (s *Store) fillEntry(shard string, ev *matching.Event, id string) []byte {
	return proof.MustEncode(proof.KindFill, proof.Fill{Shard: shard, ID: id, Seq: ev.Seq, Symbol: ev.Symbol,
		Base: ev.BaseAsset, Quote: ev.QuoteAsset, Price: money.Format(ev.Price, s.scales[ev.QuoteAsset]),
		Quantity: money.Format(ev.Quantity, s.scales[ev.BaseAsset]), QuoteAmount: money.Format(ev.QuoteAmount, s.scales[ev.QuoteAsset]),
		Buyer: ev.BuyerAccount, Seller: ev.SellerAccount, Mandatory: ev.Purpose == matching.PurposeMandatory,
		ExecutedAt: stamp(time.UnixMilli(ev.Time))})
}

// stamp writes an instant as the log does: RFC 3339 UTC, milliseconds.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
