package postgres

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/apperr"
)

// LogSize is the number of entries in the log.
func (s *Store) LogSize(ctx context.Context) (int64, error) {
	var size int64
	if err := s.db.QueryRow(ctx, `SELECT size FROM log_state WHERE id = 1`).Scan(&size); err != nil {
		return 0, fmt.Errorf("proof: log size: %w", err)
	}
	return size, nil
}

func (s *Store) reader(ctx context.Context) *hashReader { return s.readerOn(ctx, s.db) }

// readerOn reads the log's stored hashes through q (a transaction's
// snapshot, or the pool).
func (s *Store) readerOn(ctx context.Context, q querier) *hashReader {
	return &hashReader{s: s, ctx: ctx, q: q}
}

// StoredCheckpoint is a signed checkpoint as archived.
type StoredCheckpoint struct {
	Size      int64     `json:"size"`
	Note      string    `json:"checkpoint"`
	CreatedAt time.Time `json:"createdAt"`
}

// Checkpoint signs the log's current size and root with signer and archives
// it; when the log has not grown since the newest checkpoint, that one is
// returned instead.
func (s *Store) Checkpoint(ctx context.Context, signer note.Signer) (StoredCheckpoint, error) {
	if signer == nil {
		return StoredCheckpoint{}, apperr.New(apperr.Unavailable, "this server has no log signing key")
	}
	size, err := s.LogSize(ctx)
	if err != nil {
		return StoredCheckpoint{}, err
	}
	if last, err := s.LatestCheckpoint(ctx); err == nil && last.Size == size {
		return last, nil
	}
	root := tlog.Hash{}
	if size > 0 {
		if root, err = tlog.TreeHash(size, s.reader(ctx)); err != nil {
			return StoredCheckpoint{}, fmt.Errorf("proof: tree hash: %w", err)
		}
	}
	signed, err := proof.Sign(proof.Checkpoint{Origin: signer.Name(), Size: size, Root: root}, signer)
	if err != nil {
		return StoredCheckpoint{}, err
	}
	cp := StoredCheckpoint{Size: size, Note: signed, CreatedAt: s.Clock().UTC()}
	_, err = s.db.Exec(ctx, `INSERT INTO log_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (size) DO NOTHING`, size, root[:], signed, cp.CreatedAt)
	if err != nil {
		return StoredCheckpoint{}, fmt.Errorf("proof: archive checkpoint: %w", err)
	}
	return s.CheckpointAt(ctx, size)
}

// LatestCheckpoint returns the newest archived checkpoint.
func (s *Store) LatestCheckpoint(ctx context.Context) (StoredCheckpoint, error) {
	return s.checkpoint(ctx, `ORDER BY size DESC LIMIT 1`)
}

// CheckpointAt returns the archived checkpoint of a size.
func (s *Store) CheckpointAt(ctx context.Context, size int64) (StoredCheckpoint, error) {
	return s.checkpoint(ctx, `WHERE size = $1`, size)
}

func (s *Store) checkpoint(ctx context.Context, where string, args ...any) (StoredCheckpoint, error) {
	return s.checkpointOn(ctx, s.db, where, args...)
}

func (s *Store) checkpointOn(ctx context.Context, q querier, where string, args ...any) (StoredCheckpoint, error) {
	var cp StoredCheckpoint
	err := q.QueryRow(ctx, `SELECT size, note, created_at FROM log_checkpoints `+where, args...).Scan(&cp.Size, &cp.Note, &cp.CreatedAt)
	if isNoRows(err) {
		return cp, apperr.New(apperr.InvalidParameter, "no checkpoint of that size")
	}
	if err != nil {
		return cp, fmt.Errorf("proof: checkpoint: %w", err)
	}
	return cp, nil
}

// InclusionProof proves the entry at index is in the log of size.
func (s *Store) InclusionProof(ctx context.Context, index, size int64) (tlog.RecordProof, error) {
	if err := s.checkSizes(ctx, index, size, true); err != nil {
		return nil, err
	}
	p, err := tlog.ProveRecord(size, index, s.reader(ctx))
	if err != nil {
		return nil, fmt.Errorf("proof: inclusion: %w", err)
	}
	return p, nil
}

// BatchProof proves the entries at indexes (strictly increasing) are in
// the log of size, with one batch inclusion proof (proof.ProveEntries).
func (s *Store) BatchProof(ctx context.Context, size int64, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, apperr.New(apperr.InvalidParameter, "a batch proof needs at least one index")
	}
	for i, x := range indexes {
		if x < 0 || i > 0 && x <= indexes[i-1] {
			return nil, apperr.New(apperr.InvalidParameter, "indexes must be strictly increasing from 0: %d at %d", x, i)
		}
	}
	if err := s.checkSizes(ctx, indexes[len(indexes)-1], size, true); err != nil {
		return nil, err
	}
	hs, err := proof.ProveEntries(size, indexes, s.reader(ctx))
	if err != nil {
		return nil, fmt.Errorf("proof: batch: %w", err)
	}
	return hs, nil
}

// ConsistencyProof proves the log of size from is a prefix of the log of
// size to. Every log extends the empty one: from 0 the proof is empty
// (RFC 6962 defines none, and tlog.ProveTree refuses it), which a witness
// that first saw the log empty asks for once the log has grown.
func (s *Store) ConsistencyProof(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	if err := s.checkSizes(ctx, from, to, false); err != nil {
		return nil, err
	}
	if from == 0 {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(to, from, s.reader(ctx))
	if err != nil {
		return nil, fmt.Errorf("proof: consistency: %w", err)
	}
	return p, nil
}

// checkSizes refuses an index (strict) or a smaller size beyond size, and a
// size beyond the log.
func (s *Store) checkSizes(ctx context.Context, n, size int64, strict bool) error {
	have, err := s.LogSize(ctx)
	if err != nil {
		return err
	}
	switch {
	case n < 0 || size < 0 || size > have:
		return apperr.New(apperr.InvalidParameter, "sizes must be between 0 and the log's size %d", have)
	case strict && n >= size:
		return apperr.New(apperr.InvalidParameter, "index %d is not below size %d", n, size)
	case !strict && n > size:
		return apperr.New(apperr.InvalidParameter, "from %d is above to %d", n, size)
	}
	return nil
}

// certEntry is an entry a certificate will carry, before its proof.
type certEntry struct {
	index int64
	what  string // for messages: "fill s1/7-1"
	data  []byte
}

// Certificate builds an obligation's certificate: its claim, every log
// entry it rests on — re-encoded from the database rows where the rows are
// the record (fills, report versions, computations) and checked against the
// log's stored leaf hash, so an edited or deleted row fails the build with
// the row named — and their batch inclusion proof to the newest checkpoint
// that holds them all (signing a new one with signer when there is none).
//
// The claim, the entries and the newest checkpoint are read in one
// read-only REPEATABLE READ transaction: settlement commits an
// obligation's new sold volume and status in the same transaction as
// their log entries, so in one snapshot the claim is exactly what its
// entries add up to — read separately, a batch settling in between made an
// honest certificate INVALID. The proof is then read outside it: the log
// only grows, and its stored hashes below a checkpoint's size never change.
func (s *Store) Certificate(ctx context.Context, obligationID int64, signer note.Signer) (proof.Certificate, error) {
	var claim proof.Claim
	var ents []certEntry
	var cp StoredCheckpoint
	var haveCheckpoint bool
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		o, err := s.certifiedObligation(ctx, tx, obligationID)
		if err != nil {
			return err
		}
		claim = proof.Claim{ID: o.ID, Miner: o.Miner, Asset: o.Asset, Period: o.Period, Required: o.Required, Sold: o.Sold, Status: string(o.Status)}
		if ents, err = s.obligationEntries(ctx, tx, o); err != nil {
			return err
		}
		cp, err = s.checkpointOn(ctx, tx, `ORDER BY size DESC LIMIT 1`)
		haveCheckpoint = err == nil
		if apperr.CodeOf(err) == apperr.InvalidParameter { // none yet
			err = nil
		}
		return err
	})
	if err != nil {
		return proof.Certificate{}, err
	}
	var maxIndex int64 = -1
	for _, e := range ents {
		maxIndex = max(maxIndex, e.index)
	}
	// The checkpoint must hold every entry read. One signed now is of the
	// log as it is now, which holds the snapshot's whole log.
	if !haveCheckpoint || cp.Size <= maxIndex {
		if cp, err = s.Checkpoint(ctx, signer); err != nil {
			return proof.Certificate{}, err
		}
		if cp.Size <= maxIndex { // impossible: the log never shrinks
			return proof.Certificate{}, fmt.Errorf("proof: the newest checkpoint, of %d entries, does not hold entry %d", cp.Size, maxIndex)
		}
	}
	cert := proof.Certificate{Format: proof.Format, Obligation: claim, Checkpoint: cp.Note, Entries: make([]proof.Entry, len(ents))}
	indexes := make([]int64, len(ents))
	for i, e := range ents {
		cert.Entries[i] = proof.Entry{Index: e.index, Data: string(e.data)}
		indexes[i] = e.index
	}
	hs, err := s.BatchProof(ctx, cp.Size, indexes)
	if err != nil {
		return proof.Certificate{}, err
	}
	cert.Proof = proof.EncodeHashes(hs)
	return cert, nil
}

// certifiedObligation reads the obligation a certificate is of through q:
// what obligationEntries and the claim need, written as Obligation writes it.
func (s *Store) certifiedObligation(ctx context.Context, q querier, id int64) (compliance.ObligationView, error) {
	var o compliance.ObligationView
	var start, deadline time.Time
	var required, sold, status string
	err := q.QueryRow(ctx, `SELECT id, miner_id, asset, period_start, deadline, required::text, sold::text, status
		FROM obligations WHERE id = $1`, id).Scan(&o.ID, &o.Miner, &o.Asset, &start, &deadline, &required, &sold, &status)
	if isNoRows(err) {
		return o, apperr.New(apperr.InvalidParameter, "unknown obligation %d", id)
	}
	if err != nil {
		return o, fmt.Errorf("proof: obligation %d: %w", id, err)
	}
	o.Period, o.PeriodStart, o.Deadline = start.Format("2006-01"), day(start), day(deadline)
	o.Required, o.Sold, o.Status = s.normal(o.Asset, required), s.normal(o.Asset, sold), compliance.Status(status)
	return o, nil
}

// obligationEntries gathers an obligation's entries, in log order, each
// checked against the log.
func (s *Store) obligationEntries(ctx context.Context, q querier, o compliance.ObligationView) ([]certEntry, error) {
	start, _ := time.Parse(time.DateOnly, o.PeriodStart)
	deadline, _ := time.Parse(time.DateOnly, o.Deadline)
	from, to := compliance.OpenObligation{PeriodStart: start, Deadline: deadline}.Window()
	rows, err := q.Query(ctx, `SELECT index, kind, ref, data FROM log_entries WHERE obligation_id = $1
		UNION ALL
		SELECT e.index, e.kind, e.ref, e.data FROM log_entries e
			JOIN excluded_fills x ON e.ref = x.shard || '/' || x.fill_id
			JOIN fills f ON f.shard = x.shard AND f.id = x.fill_id
		WHERE e.kind = 'attribution' AND e.obligation_id IS NULL AND e.miner_id = $2 AND x.miner_id = $2 AND x.asset = $3
			AND f.executed_at >= $4 AND f.executed_at < $5
		ORDER BY 1`, o.ID, o.Miner, o.Asset, from, to)
	if err != nil {
		return nil, fmt.Errorf("proof: entries: %w", err)
	}
	type row struct {
		index     int64
		kind, ref string
		data      []byte
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.index, &x.kind, &x.ref, &x.data)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("proof: entries: %w", err)
	}
	var out []certEntry
	fills := map[string]bool{}
	for _, x := range list {
		e := certEntry{index: x.index, what: x.kind + " " + x.ref, data: x.data}
		switch x.kind {
		case proof.KindReport:
			if e.data, err = s.reportData(ctx, q, x.ref); err != nil {
				return nil, err
			}
		case proof.KindComputation:
			if e.data, err = s.computationData(ctx, q, x.ref); err != nil {
				return nil, err
			}
		case proof.KindAttribution:
			fills[x.ref] = true
		}
		out = append(out, e)
	}
	fillEntries, err := s.fillEntries(ctx, q, fills)
	if err != nil {
		return nil, err
	}
	out = append(out, fillEntries...)
	// In log order, as promised: fillEntries walks a map of runs, and a
	// certificate must not change between two builds at one checkpoint.
	sort.SliceStable(out, func(i, j int) bool { return out[i].index < out[j].index })
	if err := s.checkLeaves(ctx, q, out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkLeaves compares each entry's data with the leaf hash the log stored
// at its index.
func (s *Store) checkLeaves(ctx context.Context, q querier, ents []certEntry) error {
	r := s.readerOn(ctx, q)
	for _, e := range ents {
		hs, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, e.index)})
		if err != nil {
			return err
		}
		if hs[0] != proof.LeafHash(e.data) {
			return apperr.New(apperr.Conflict, "%s (log index %d): the database no longer matches what the log recorded", e.what, e.index)
		}
	}
	return nil
}

// reportData re-encodes report version "reportID/version" from its row.
func (s *Store) reportData(ctx context.Context, q querier, ref string) ([]byte, error) {
	id, version, err := splitRef(ref)
	if err != nil {
		return nil, err
	}
	var p proof.Report
	var period time.Time
	err = q.QueryRow(ctx, `SELECT r.miner_id, r.asset, r.period_start, v.version, v.mined::text, v.wallets, v.source,
			coalesce(v.pool_id, ''), v.reason
		FROM report_versions v JOIN mining_reports r ON r.id = v.report_id WHERE v.report_id = $1 AND v.version = $2`, id, version).
		Scan(&p.Miner, &p.Asset, &period, &p.Version, &p.Mined, &p.Wallets, &p.Source, &p.Pool, &p.Reason)
	if isNoRows(err) {
		return nil, apperr.New(apperr.Conflict, "report version %s is in the log but not in the database", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("proof: report %s: %w", ref, err)
	}
	p.Period, p.Mined, p.Wallets = period.Format("2006-01"), s.normal(p.Asset, p.Mined), nonNil(p.Wallets)
	return proof.Encode(proof.KindReport, p)
}

// computationData re-encodes computation "obligationID/version" from its row.
func (s *Store) computationData(ctx context.Context, q querier, ref string) ([]byte, error) {
	id, version, err := splitRef(ref)
	if err != nil {
		return nil, err
	}
	var c proof.Computation
	var period, deadline time.Time
	err = q.QueryRow(ctx, `SELECT c.obligation_id, c.version, o.miner_id, o.asset, o.period_start, o.deadline, c.report_version,
			c.mined::text, c.share::text, c.ruleset, c.ruleset_version, c.required::text
		FROM obligation_computations c JOIN obligations o ON o.id = c.obligation_id WHERE c.obligation_id = $1 AND c.version = $2`, id, version).
		Scan(&c.Obligation, &c.Version, &c.Miner, &c.Asset, &period, &deadline, &c.ReportVersion, &c.Mined, &c.Share, &c.RuleSet,
			&c.RuleSetVersion, &c.Required)
	if isNoRows(err) {
		return nil, apperr.New(apperr.Conflict, "computation %s is in the log but not in the database", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("proof: computation %s: %w", ref, err)
	}
	share, err := compliance.ParseShare(c.Share)
	if err == nil {
		c.Share = share.String()
	}
	c.Period, c.Deadline = period.Format("2006-01"), day(deadline)
	c.Mined, c.Required = s.normal(c.Asset, c.Mined), s.normal(c.Asset, c.Required)
	return proof.Encode(proof.KindComputation, c)
}

func splitRef(ref string) (int64, int, error) {
	a, b, ok := strings.Cut(ref, "/")
	id, err1 := strconv.ParseInt(a, 10, 64)
	v, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("proof: malformed log reference %q", ref)
	}
	return id, v, nil
}

// fillEntries finds the log index of each named fill ("shard/id") — its
// run's first index plus its position in the run — and re-encodes it from
// its row.
func (s *Store) fillEntries(ctx context.Context, q querier, names map[string]bool) ([]certEntry, error) {
	type run struct {
		shard          string
		first          int64
		firstSeq, last int64
	}
	// The run of each fill's sequence number, one query per shard (not one
	// per fill: a certificate names thousands).
	type named struct{ name, id string }
	byShard := map[string]map[int64][]named{}
	for name := range names {
		shard, id, _ := strings.Cut(name, "/")
		seqText, _, _ := strings.Cut(id, "-")
		seq, err := strconv.ParseInt(seqText, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("proof: fill id %q", name)
		}
		if byShard[shard] == nil {
			byShard[shard] = map[int64][]named{}
		}
		byShard[shard][seq] = append(byShard[shard][seq], named{name, id})
	}
	runs := map[run][]string{}
	for shard, bySeq := range byShard {
		seqs := make([]int64, 0, len(bySeq))
		for seq := range bySeq {
			seqs = append(seqs, seq)
		}
		rows, err := q.Query(ctx, `SELECT q.seq, r.first_index, r.first_seq, r.last_seq FROM unnest($2::bigint[]) AS q(seq)
			LEFT JOIN LATERAL (SELECT first_index, first_seq, last_seq FROM log_fill_runs
				WHERE shard = $1 AND first_seq <= q.seq ORDER BY first_seq DESC LIMIT 1) r ON true`, shard, seqs)
		if err != nil {
			return nil, fmt.Errorf("proof: fill run: %w", err)
		}
		var seq int64
		var first, firstSeq, last *int64
		_, err = pgx.ForEachRow(rows, []any{&seq, &first, &firstSeq, &last}, func() error {
			if first == nil || seq > *last {
				return apperr.New(apperr.Conflict, "fill %s is named in the log but no run of logged fills holds it", bySeq[seq][0].name)
			}
			r := run{shard: shard, first: *first, firstSeq: *firstSeq, last: *last}
			for _, n := range bySeq[seq] {
				runs[r] = append(runs[r], n.id)
			}
			return nil
		})
		if apperr.CodeOf(err) == apperr.Conflict {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("proof: fill run: %w", err)
		}
	}
	var out []certEntry
	for r, ids := range runs {
		want := map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
		rows, err := q.Query(ctx, `SELECT id, seq, symbol, base_asset, quote_asset, price::text, quantity::text, quote_amount::text,
				buyer_account, seller_account, mandatory, executed_at
			FROM fills WHERE shard = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq, split_part(id, '-', 2)::int`, r.shard, r.firstSeq, r.last)
		if err != nil {
			return nil, fmt.Errorf("proof: fills: %w", err)
		}
		pos := int64(0)
		var f proof.Fill
		var at time.Time
		_, err = pgx.ForEachRow(rows, []any{&f.ID, &f.Seq, &f.Symbol, &f.Base, &f.Quote, &f.Price, &f.Quantity, &f.QuoteAmount,
			&f.Buyer, &f.Seller, &f.Mandatory, &at}, func() error {
			if want[f.ID] {
				f.Shard, f.ExecutedAt = r.shard, stamp(at)
				f.Price, f.Quantity, f.QuoteAmount = s.normal(f.Quote, f.Price), s.normal(f.Base, f.Quantity), s.normal(f.Quote, f.QuoteAmount)
				data, err := proof.Encode(proof.KindFill, f)
				if err != nil {
					return err
				}
				out = append(out, certEntry{index: r.first + pos, what: "fill " + r.shard + "/" + f.ID, data: data})
				delete(want, f.ID)
			}
			pos++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("proof: fills: %w", err)
		}
		for id := range want {
			return nil, apperr.New(apperr.Conflict, "fill %s/%s is in the log but not in the database", r.shard, id)
		}
	}
	return out, nil
}
