package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/satu-exchange/satu/settlement"
)

// Every check is one query returning the differences it finds, as rows of
// (shard, account, asset, ref, ledger, expected, detail, total), the first
// settlement.MaxExamples of them; total is the count of all.
var checkQueries = map[string]string{
	settlement.CheckEngine: `
WITH e AS (SELECT account, asset, sum(free + held) AS amount FROM engine_balances GROUP BY account, asset),
d AS (SELECT coalesce(b.account, e.account) AS account, coalesce(b.asset, e.asset) AS asset,
             coalesce(b.amount, 0) AS ledger, coalesce(e.amount, 0) AS expected
      FROM balances b FULL JOIN e ON b.account = e.account AND b.asset = e.asset
      WHERE coalesce(b.account, e.account) <> 'custody-external')
SELECT '', account, asset, '', ledger::text, expected::text, 'ledger balance differs from the engine''s free + held',
       count(*) OVER ()
FROM d WHERE ledger <> expected ORDER BY account, asset`,

	settlement.CheckBalances: `
WITH p AS (SELECT account, asset, sum(amount) AS amount FROM postings GROUP BY account, asset),
d AS (SELECT coalesce(b.account, p.account) AS account, coalesce(b.asset, p.asset) AS asset,
             coalesce(b.amount, 0) AS ledger, coalesce(p.amount, 0) AS expected
      FROM balances b FULL JOIN p ON b.account = p.account AND b.asset = p.asset)
SELECT '', account, asset, '', ledger::text, expected::text, 'balance differs from the sum of its postings',
       count(*) OVER ()
FROM d WHERE ledger <> expected ORDER BY account, asset`,

	// The two zero-sum checks read only the stored postings: a fill's legs
	// sum to zero per asset by construction (base: −quantity + quantity;
	// quote: −(quote + buyer fee) + (quote − seller fee) + both fees), so
	// deriving them again from every fill — most of the ledger — would only
	// recompute that identity, for 3–4 s per 300,000 fills.
	settlement.CheckAssetZeroSum: `
SELECT '', '', asset, '', sum(amount)::text, '0', 'the postings of the asset do not sum to zero', count(*) OVER ()
FROM ledger_entries GROUP BY asset HAVING sum(amount) <> 0 ORDER BY asset`,

	settlement.CheckEventZeroSum: `
SELECT shard, '', asset, event_id, sum(amount)::text, '0', 'the postings of the event do not sum to zero', count(*) OVER ()
FROM ledger_entries GROUP BY shard, event_id, asset HAVING sum(amount) <> 0 ORDER BY shard, event_id, asset`,

	settlement.CheckNegative: `
SELECT '', account, asset, '', amount::text, '>= 0', 'negative balance', count(*) OVER ()
FROM balances WHERE amount < 0 AND account <> 'custody-external' ORDER BY account, asset`,

	// A fill is its trade's journal entry: its legs (the view fill_legs)
	// cannot disagree with it, but its accounts can be wrong — an account
	// settlement never opened, fees credited to no fee account — and its ID
	// must be its own sequence's.
	settlement.CheckFills: `
WITH d AS (
    SELECT f.shard, f.id AS ref, x.account, x.detail
    FROM fills f CROSS JOIN LATERAL (VALUES
        (f.buyer_account, CASE WHEN NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = f.buyer_account)
            THEN 'the buyer is no account settlement opened' END),
        (f.seller_account, CASE WHEN NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = f.seller_account)
            THEN 'the seller is no account settlement opened' END),
        (coalesce(f.fee_account, ''), CASE WHEN f.buyer_fee + f.seller_fee > 0
            AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = f.fee_account AND a.kind = 'fee')
            THEN 'the fees are credited to no fee account' END),
        ('', CASE WHEN split_part(f.id, '-', 1) <> f.seq::text THEN 'the fill''s ID is not of its sequence' END)
    ) AS x(account, detail)
    WHERE x.detail IS NOT NULL)
SELECT shard, account, '', ref, '', '', detail, count(*) OVER () FROM d ORDER BY shard, ref, detail`,

	settlement.CheckCustodyPosted: `
WITH want AS (
    SELECT m.shard, m.event_id AS ref, v.account, m.asset, v.amount
    FROM custody_movements m CROSS JOIN LATERAL (VALUES
        (m.account, CASE m.direction WHEN 'deposit' THEN m.amount ELSE -m.amount END),
        ('custody-external', CASE m.direction WHEN 'deposit' THEN -m.amount ELSE m.amount END)) AS v(account, amount)),
got AS (
    SELECT shard, event_id AS ref, account, asset, sum(amount) AS amount
    FROM ledger_entries GROUP BY 1, 2, 3, 4),
d AS (SELECT coalesce(w.shard, g.shard) AS shard, coalesce(w.ref, g.ref) AS ref, coalesce(w.account, g.account) AS account,
             coalesce(w.asset, g.asset) AS asset, coalesce(g.amount, 0) AS ledger, coalesce(w.amount, 0) AS expected
      FROM want w FULL JOIN got g ON w.shard = g.shard AND w.ref = g.ref AND w.account = g.account AND w.asset = g.asset)
SELECT shard, account, asset, ref, ledger::text, expected::text, 'custody postings differ from the recorded movement',
       count(*) OVER ()
FROM d WHERE ledger <> expected ORDER BY shard, ref, account, asset`,

	settlement.CheckBatches: `
WITH f AS (SELECT batch_id, count(*) AS n FROM fills GROUP BY batch_id),
p AS (SELECT batch_id, count(*) AS n FROM postings GROUP BY batch_id),
b AS (SELECT b.*, lag(b.last_seq) OVER (PARTITION BY b.shard ORDER BY b.first_seq, b.id) AS prev_last,
             last_value(b.last_seq) OVER (PARTITION BY b.shard ORDER BY b.first_seq, b.id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS final_seq,
             last_value(b.last_stream_id) OVER (PARTITION BY b.shard ORDER BY b.first_seq, b.id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS final_stream
      FROM settlement_batches b),
d AS (
    SELECT b.shard, 'batch ' || b.id AS ref, coalesce(f.n, 0)::text AS ledger, b.fills::text AS expected,
           'fills present differ from the batch''s count' AS detail
    FROM b LEFT JOIN f ON f.batch_id = b.id WHERE coalesce(f.n, 0) <> b.fills
    UNION ALL
    SELECT b.shard, 'batch ' || b.id, coalesce(p.n, 0)::text, b.postings::text, 'postings present differ from the batch''s count'
    FROM b LEFT JOIN p ON p.batch_id = b.id WHERE coalesce(p.n, 0) <> b.postings
    UNION ALL
    SELECT b.shard, 'batch ' || b.id, b.first_seq::text, '> ' || b.prev_last, 'the batch overlaps the previous one'
    FROM b WHERE b.first_seq <= b.prev_last
    UNION ALL
    SELECT b.shard, 'batch ' || b.id, b.first_seq::text, (coalesce(b.prev_last, 0) + 1)::text,
           'the batch does not start where the previous one ended (or, the first, at sequence 1): commands in between were never settled'
    FROM b WHERE b.first_seq > coalesce(b.prev_last, 0) + 1
    UNION ALL
    SELECT x.shard, x.ref, x.batch_id::text, '', x.detail FROM (
        SELECT e.shard, 'posting ' || e.id AS ref, e.batch_id, 'the posting''s batch does not exist' AS detail
        FROM ledger_entries e WHERE NOT EXISTS (SELECT 1 FROM settlement_batches s WHERE s.id = e.batch_id)
        UNION ALL
        SELECT f.shard, 'fill ' || f.id, f.batch_id, 'the fill''s batch does not exist'
        FROM fills f WHERE NOT EXISTS (SELECT 1 FROM settlement_batches s WHERE s.id = f.batch_id)
        UNION ALL
        SELECT e.shard, 'posting ' || e.id, e.batch_id, 'unknown asset ' || e.asset
        FROM ledger_entries e WHERE NOT EXISTS (SELECT 1 FROM assets a WHERE a.code = e.asset)
        UNION ALL
        SELECT m.shard, 'custody ' || m.event_id, m.batch_id, 'the movement''s batch does not exist'
        FROM custody_movements m WHERE NOT EXISTS (SELECT 1 FROM settlement_batches s WHERE s.id = m.batch_id)
        UNION ALL
        SELECT m.shard, 'custody ' || m.event_id, m.batch_id, 'unknown asset ' || m.asset
        FROM custody_movements m WHERE NOT EXISTS (SELECT 1 FROM assets a WHERE a.code = m.asset)
        UNION ALL
        SELECT f.shard, 'fill ' || f.id, f.batch_id, 'unknown asset ' || f.base_asset || '/' || f.quote_asset
        FROM fills f WHERE NOT EXISTS (SELECT 1 FROM assets a WHERE a.code = f.base_asset)
            OR NOT EXISTS (SELECT 1 FROM assets a WHERE a.code = f.quote_asset)) x
    UNION ALL
    SELECT s.shard, 'position', s.seq || ' ' || s.stream_id, coalesce(b.final_seq || ' ' || b.final_stream, 'none'),
           'the settlement position is not the last batch''s end'
    FROM settlement_positions s LEFT JOIN (SELECT DISTINCT shard, final_seq, final_stream FROM b) b ON b.shard = s.shard
    WHERE b.final_seq IS DISTINCT FROM s.seq OR b.final_stream IS DISTINCT FROM s.stream_id)
SELECT shard, '', '', ref, ledger, expected, detail, count(*) OVER () FROM d ORDER BY shard, ref`,
}

// Reconcile runs every check in one read-only, repeatable-read transaction,
// so all of them see the ledger — and the engine's balance view settled
// with it — at the same settlement positions. It reports; it never fixes.
func (s *Store) Reconcile(ctx context.Context) (settlement.Report, error) {
	var r settlement.Report
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var at time.Time
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&at); err != nil {
			return err
		}
		r.At = at.UTC()
		rows, err := tx.Query(ctx, `SELECT shard, seq, stream_id FROM settlement_positions ORDER BY shard`)
		if err != nil {
			return err
		}
		var p settlement.Position
		var seq int64
		if _, err := pgx.ForEachRow(rows, []any{&p.Shard, &seq, &p.StreamID}, func() error {
			p.Seq = uint64(seq)
			r.Positions = append(r.Positions, p)
			return nil
		}); err != nil {
			return err
		}
		for _, name := range settlement.Checks {
			c, err := runCheck(ctx, tx, name)
			if err != nil {
				return err
			}
			r.Checks = append(r.Checks, c)
		}
		return nil
	})
	if err != nil {
		return settlement.Report{}, fmt.Errorf("settlement: reconcile: %w", err)
	}
	return r, nil
}

func runCheck(ctx context.Context, tx pgx.Tx, name string) (settlement.CheckResult, error) {
	c := settlement.CheckResult{Name: name}
	rows, err := tx.Query(ctx, checkQueries[name]+" LIMIT "+strconv.Itoa(settlement.MaxExamples))
	if err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	var d settlement.Difference
	var total int64
	_, err = pgx.ForEachRow(rows, []any{&d.Shard, &d.Account, &d.Asset, &d.Ref, &d.Ledger, &d.Expected, &d.Detail, &total},
		func() error {
			c.Examples = append(c.Examples, d)
			c.Differences = int(total)
			return nil
		})
	if err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// CompareWithEngine compares every settled balance (but the custody
// mirror) with an engine's free + held, read through balance — a live
// engine paused at the settled sequence, or one that replayed the inbox to
// it. It returns the differences, in minor units, and how many balances it
// compared. Unlike Reconcile's engine check, which uses the engine's
// balance events, this reads the engine's own state.
func (s *Store) CompareWithEngine(ctx context.Context, balance func(account, asset string) (free, held int64)) ([]settlement.Difference, int, error) {
	return compareWithEngine(ctx, s.db, balance)
}

// ReplayCheck is reconciliation's independent check: in one snapshot of
// the ledger it reads the shard's settled sequence, asks engineAt for an
// engine at exactly that sequence (redisbus.Replay rebuilds one from the
// inbox alone), and compares every settled balance with it. The ledger's
// balances span shards, so it refuses a ledger settled by more than one.
func (s *Store) ReplayCheck(ctx context.Context, shard string,
	engineAt func(ctx context.Context, seq uint64) (balance func(account, asset string) (free, held int64), err error)) (settlement.CheckResult, error) {
	c := settlement.CheckResult{Name: settlement.CheckReplay}
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var seq, shards, own int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq) FILTER (WHERE shard = $1), 0), count(*), count(*) FILTER (WHERE shard = $1)
			FROM settlement_positions`, shard).Scan(&seq, &shards, &own); err != nil {
			return err
		}
		if shards > 1 {
			return fmt.Errorf("the ledger is settled by %d shards; a replay of one shard cannot account for all balances", shards)
		}
		if shards == 1 && own == 0 {
			return fmt.Errorf("the ledger is settled by another shard than %q (SATU_SHARD?)", shard)
		}
		balance, err := engineAt(ctx, uint64(seq))
		if err != nil {
			return err
		}
		diffs, _, err := compareWithEngine(ctx, tx, balance)
		c.Differences = len(diffs)
		c.Examples = diffs[:min(len(diffs), settlement.MaxExamples)]
		return err
	})
	if err != nil {
		return c, fmt.Errorf("settlement: replay check: %w", err)
	}
	return c, nil
}

func compareWithEngine(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, balance func(account, asset string) (free, held int64)) ([]settlement.Difference, int, error) {
	rows, err := q.Query(ctx, `SELECT account, asset, (amount * 10::numeric ^ a.scale)::bigint
		FROM balances JOIN assets a ON a.code = asset WHERE account <> 'custody-external' ORDER BY account, asset`)
	if err != nil {
		return nil, 0, fmt.Errorf("settlement: compare with engine: %w", err)
	}
	var diffs []settlement.Difference
	var account, asset string
	var amount int64
	n, err := pgx.ForEachRow(rows, []any{&account, &asset, &amount}, func() error {
		if free, held := balance(account, asset); free+held != amount {
			diffs = append(diffs, settlement.Difference{Account: account, Asset: asset, Ledger: strconv.FormatInt(amount, 10),
				Expected: strconv.FormatInt(free+held, 10), Detail: "ledger balance differs from the engine's free + held (minor units)"})
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("settlement: compare with engine: %w", err)
	}
	return diffs, int(n.RowsAffected()), nil
}
