// Package postgres is settlement's PostgreSQL adapter: the ledger store that
// writes each batch — fills, postings, netted balances, obligation progress
// and the consumer position — in one transaction.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/satu-exchange/satu/internal/streamid"
	"github.com/satu-exchange/satu/matching"

	"github.com/satu-exchange/satu/settlement"
)

// FillSink sees every batch's fills inside the settlement transaction, after
// they are written: compliance attributes miners' sales to their
// obligations there, so obligation progress commits with the fills.
type FillSink interface {
	ApplyFills(ctx context.Context, tx pgx.Tx, shard string, fills []settlement.Fill) error
}

// Store is the ledger store.
type Store struct {
	db     *pgxpool.Pool
	sink   FillSink
	scales map[string]int32
}

// NewStore loads the asset scales and returns a store. sink may be nil.
func NewStore(ctx context.Context, db *pgxpool.Pool, sink FillSink) (*Store, error) {
	rows, err := db.Query(ctx, `SELECT code, scale FROM assets`)
	if err != nil {
		return nil, fmt.Errorf("settlement: load assets: %w", err)
	}
	scales := map[string]int32{}
	var code string
	var scale int32
	if _, err := pgx.ForEachRow(rows, []any{&code, &scale}, func() error { scales[code] = scale; return nil }); err != nil {
		return nil, fmt.Errorf("settlement: load assets: %w", err)
	}
	return &Store{db: db, sink: sink, scales: scales}, nil
}

// Position returns the stream ID after which the shard's next batch starts ("0" if none).
func (s *Store) Position(ctx context.Context, shard string) (string, error) {
	var id string
	err := s.db.QueryRow(ctx, `SELECT stream_id FROM settlement_positions WHERE shard = $1`, shard).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "0", nil
	}
	if err != nil {
		return "", fmt.Errorf("settlement: position: %w", err)
	}
	return id, nil
}

// minor is an exact NUMERIC amount of an asset, from the engine's minor
// units: encoded without big.Int arithmetic on a connection prepared by
// RegisterMinor (Prepare prepares the connection of each batch's
// transaction), and exactly through pgx's own codec anywhere else.
func (s *Store) minor(asset string, v int64) (Minor, error) {
	scale, ok := s.scales[asset]
	if !ok {
		return Minor{}, fmt.Errorf("settlement: unknown asset %q", asset)
	}
	return Minor{V: v, Scale: scale}, nil
}

// PrepareLockTimeout bounds how long a batch's bulk write waits for a row
// lock. It never waits within one writer (its batches' rows are distinct);
// it can only wait for another writer's uncommitted batch, and two
// pipelines waiting on each other's batches would form a cycle that
// PostgreSQL cannot see (half of it is a wait in Go). Past the timeout the
// batch fails and its writer resumes from the stored position.
const PrepareLockTimeout = 2 * time.Second

// LockWriter takes the shard's writer lock (a session advisory lock, on a
// connection held for the purpose) and returns its release; it waits,
// polling, while another writer holds it. See settlement.WriterLocker.
func (s *Store) LockWriter(ctx context.Context, shard string) (func(), error) {
	conn, err := s.db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("settlement: writer lock: %w", err)
	}
	key := "settlement-writer:" + shard
	for {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, key).Scan(&ok); err != nil {
			conn.Release()
			return nil, fmt.Errorf("settlement: writer lock: %w", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			conn.Release()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return func() {
		// Unlocked explicitly: the connection goes back to the pool. If it
		// died, the lock died with its session.
		_, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key)
		if err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx)) // never pool a connection that may still hold it
		}
		conn.Release()
	}, nil
}

// Settle writes a batch exactly once; see settlement.Store.
func (s *Store) Settle(ctx context.Context, shard string, b *settlement.Batch) error {
	p, err := s.Prepare(ctx, shard, b)
	if err != nil {
		return err
	}
	return p.Commit(ctx)
}

// Prepare opens the batch's transaction and writes its rows that conflict
// with no other batch's: the batch row, fills, postings and custody
// movements. It is the bulk of the work, and it may run while the previous
// batch commits on another connection (settlement.Consumer pipelines the
// two). Commit does the rest, in order.
func (s *Store) Prepare(ctx context.Context, shard string, b *settlement.Batch) (settlement.Prepared, error) {
	// A batch that starts before the stored position was settled already
	// (the position cannot be locked here: in a pipeline the previous
	// batch, which holds it, is still committing).
	cur, err := s.Position(ctx, shard)
	if err != nil {
		return nil, err
	}
	if streamid.Less(b.After, cur) {
		return nil, fmt.Errorf("%w: at %s, batch continues from %s", settlement.ErrPositionMoved, cur, b.After)
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	RegisterMinor(tx.Conn().TypeMap())
	p := &prepared{s: s, tx: tx, shard: shard, b: b}
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = "+strconv.FormatInt(PrepareLockTimeout.Milliseconds(), 10)); err != nil {
		p.Rollback(ctx)
		return nil, fmt.Errorf("lock timeout: %w", err)
	}
	err = tx.QueryRow(ctx, `INSERT INTO settlement_batches (shard, first_seq, last_seq, last_stream_id, events, fills, postings)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		shard, int64(b.FirstSeq), int64(b.LastSeq), b.LastStreamID, b.Events, len(b.Fills), b.PostingCount).Scan(&p.batchID)
	if err != nil {
		p.Rollback(ctx)
		return nil, fmt.Errorf("batch: %w", err)
	}
	if err := p.steps(ctx, s.writeFills, s.writePostings, s.writeCustody); err != nil {
		p.Rollback(ctx)
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "55P03") {
			// Another writer settled (some of) these events meanwhile, or
			// holds them uncommitted past PrepareLockTimeout — or, for a
			// unique key, the batch conflicts with what is settled: the
			// constraint is named, so a conflict that repeats at every
			// retry is not blamed on a second writer.
			return nil, fmt.Errorf("%w (or the batch conflicts with the ledger: %s %s): %v", settlement.ErrPositionMoved, pe.TableName, pe.ConstraintName, err)
		}
		return nil, err
	}
	return p, nil
}

// prepared is a batch whose transaction is open.
type prepared struct {
	s       *Store
	tx      pgx.Tx
	shard   string
	b       *settlement.Batch
	batchID int64
}

func (p *prepared) steps(ctx context.Context, steps ...func(context.Context, pgx.Tx, string, int64, *settlement.Batch) error) error {
	for _, step := range steps {
		if err := step(ctx, p.tx, p.shard, p.batchID, p.b); err != nil {
			return err
		}
	}
	return nil
}

// Commit claims the position (refusing unless the stored one is the
// batch's start), applies the balance updates, the engine's balance view
// and obligation progress, moves the position and commits. On any error
// the whole transaction rolls back.
func (p *prepared) Commit(ctx context.Context) error {
	err := p.commit(ctx)
	if err != nil {
		p.Rollback(ctx)
	}
	return err
}

func (p *prepared) commit(ctx context.Context) error {
	s, tx, b := p.s, p.tx, p.b
	// The commit half waits as long as it must: it takes the shard's
	// advisory lock before any row, so its waits cannot form a cycle.
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = 0"); err != nil {
		return fmt.Errorf("lock timeout: %w", err)
	}
	if err := s.claim(ctx, tx, p.shard, b.After, b.FirstSeq); err != nil {
		return err
	}
	if err := p.steps(ctx, s.writeAccounts, s.writeBalances, s.writeEngineBalances); err != nil {
		return err
	}
	if len(b.Fills) > 0 && s.sink != nil {
		if err := s.sink.ApplyFills(ctx, tx, p.shard, b.Fills); err != nil {
			return fmt.Errorf("obligations: %w", err)
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO settlement_positions (shard, stream_id, seq, updated_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (shard) DO UPDATE SET stream_id = EXCLUDED.stream_id, seq = EXCLUDED.seq, updated_at = now()`,
		p.shard, b.LastStreamID, int64(b.LastSeq))
	if err != nil {
		return fmt.Errorf("position: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Rollback abandons the batch.
func (p *prepared) Rollback(ctx context.Context) { _ = p.tx.Rollback(context.WithoutCancel(ctx)) }

// claim locks the shard's position row and checks it is where the batch
// starts; a missing row is position "0".
func (s *Store) claim(ctx context.Context, tx pgx.Tx, shard, after string, first uint64) error {
	// Take the row lock even when the row does not exist yet: an advisory
	// transaction lock on the shard serialises first batches too.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('settlement:' || $1, 0))`, shard); err != nil {
		return fmt.Errorf("lock position: %w", err)
	}
	var cur string
	var seq int64
	err := tx.QueryRow(ctx, `SELECT stream_id, seq FROM settlement_positions WHERE shard = $1 FOR UPDATE`, shard).Scan(&cur, &seq)
	if errors.Is(err, pgx.ErrNoRows) {
		cur = "0"
	} else if err != nil {
		return fmt.Errorf("read position: %w", err)
	}
	if cur != after {
		return fmt.Errorf("%w: at %s, batch continues from %s", settlement.ErrPositionMoved, cur, after)
	}
	// Every command has events (at least its acknowledgement), so the
	// batch after a position starts at the next sequence. One that does
	// not was read from a stream trimmed past the position: the fills in
	// between are gone from Redis, and settling on would skip them without
	// a word.
	// With no position yet the next is sequence 1, the engine's first: a
	// ledger started over (recreated, or restored from before the shard's
	// first batch) beside a stream already trimmed must not begin midway.
	if first != uint64(seq)+1 {
		return fmt.Errorf("%w: settled through sequence %d, but the batch after it starts at %d: the events in between are missing (trimmed from the stream?)",
			settlement.ErrGap, seq, first)
	}
	return nil
}

func (s *Store) writeAccounts(ctx context.Context, tx pgx.Tx, _ string, _ int64, b *settlement.Batch) error {
	for _, ev := range b.Accounts {
		if _, err := tx.Exec(ctx, `INSERT INTO accounts (id, owner, kind, opened_seq) VALUES ($1, $2, $3, $4)
			ON CONFLICT (id) DO NOTHING`, ev.Account, ev.Owner, ev.AccountKind.String(), int64(ev.Seq)); err != nil {
			return fmt.Errorf("accounts: %w", err)
		}
	}
	for _, id := range b.FeeAccounts {
		if _, err := tx.Exec(ctx, `INSERT INTO accounts (id, owner, kind, opened_seq) VALUES ($1, 'satu', 'fee', 0)
			ON CONFLICT (id) DO NOTHING`, id); err != nil {
			return fmt.Errorf("fee account: %w", err)
		}
	}
	return nil
}

// fillColumns are the fills' columns in the order writeFills encodes them.
var fillColumns = []string{"shard", "id", "seq", "batch_id", "symbol", "base_asset", "quote_asset",
	"price", "quantity", "quote_amount", "buyer_account", "seller_account", "buy_order_id", "sell_order_id",
	"taker_side", "mandatory", "executed_at", "buyer_fee", "seller_fee", "obligation", "fee_account"}

// writeFills copies the batch's fills, each the journal entry of its trade
// (its legs are the view fill_legs), in binary COPY encoded by hand (see
// copyRows).
func (s *Store) writeFills(ctx context.Context, tx pgx.Tx, shard string, batchID int64, b *settlement.Batch) error {
	if len(b.Fills) == 0 {
		return nil
	}
	c := newCopyRows()
	defer c.release()
	for i := range b.Fills {
		f := &b.Fills[i]
		ev := &f.Event
		base, ok1 := s.scales[ev.BaseAsset]
		quote, ok2 := s.scales[ev.QuoteAsset]
		if !ok1 || !ok2 {
			return fmt.Errorf("settlement: fill %s: unknown asset %q or %q", f.ID, ev.BaseAsset, ev.QuoteAsset)
		}
		taker := "auction"
		if ev.TakerSide != 0 {
			taker = ev.TakerSide.String()
		}
		c.row(len(fillColumns))
		c.text(shard)
		c.text(f.ID)
		c.int8(int64(ev.Seq))
		c.int8(batchID)
		c.text(ev.Symbol)
		c.text(ev.BaseAsset)
		c.text(ev.QuoteAsset)
		// A price is quote minor units per whole base unit: a NUMERIC in quote units.
		for _, v := range [...]Minor{{ev.Price, quote}, {ev.Quantity, base}, {ev.QuoteAmount, quote}} {
			if err := c.numeric(v); err != nil {
				return err
			}
		}
		c.text(ev.BuyerAccount)
		c.text(ev.SellerAccount)
		c.int8(int64(ev.BuyOrderID))
		c.int8(int64(ev.SellOrderID))
		c.text(taker)
		c.bool(ev.Purpose == matching.PurposeMandatory)
		c.timestamptz(ev.Time)
		for _, v := range [...]Minor{{ev.BuyerFee, quote}, {ev.SellerFee, quote}} {
			if err := c.numeric(v); err != nil {
				return err
			}
		}
		c.textOrNull(ev.Obligation)
		c.textOrNull(ev.FeeAccount)
	}
	if err := c.copyTo(ctx, tx, "fills", fillColumns); err != nil {
		return fmt.Errorf("fills: %w", err)
	}
	return nil
}

func (s *Store) writePostings(ctx context.Context, tx pgx.Tx, shard string, batchID int64, b *settlement.Batch) error {
	if len(b.Postings) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(b.Postings))
	for _, p := range b.Postings {
		amt, err := s.minor(p.Asset, p.Amount)
		if err != nil {
			return err
		}
		rows = append(rows, []any{batchID, shard, p.EventID, int64(p.Seq), p.Leg, time.UnixMilli(p.Time).UTC(), string(p.Kind),
			p.Account, p.Asset, amt})
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger_entries"},
		[]string{"batch_id", "shard", "event_id", "seq", "leg", "booked_at", "kind", "account", "asset", "amount"}, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("postings: %w", err)
	}
	return nil
}

func (s *Store) writeCustody(ctx context.Context, tx pgx.Tx, shard string, batchID int64, b *settlement.Batch) error {
	if len(b.Custody) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(b.Custody))
	for _, m := range b.Custody {
		amt, err := s.minor(m.Asset, m.Amount)
		if err != nil {
			return err
		}
		rows = append(rows, []any{shard, m.EventID, int64(m.Seq), batchID, string(m.Kind), m.Account, m.Asset, amt,
			m.ExtRef, time.UnixMilli(m.Time).UTC()})
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"custody_movements"}, []string{"shard", "event_id", "seq", "batch_id",
		"direction", "account", "asset", "amount", "ext_ref", "booked_at"}, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("custody movements: %w", err)
	}
	return nil
}

// writeEngineBalances records the engine's view of every balance the batch
// touched, so that engine and ledger can be compared at the batch's
// sequence (see Reconcile).
func (s *Store) writeEngineBalances(ctx context.Context, tx pgx.Tx, shard string, _ int64, b *settlement.Batch) error {
	if len(b.EngineBalances) == 0 {
		return nil
	}
	keys := sortedKeys(b.EngineBalances)
	accounts := make([]string, len(keys))
	assets := make([]string, len(keys))
	free := make([]Minor, len(keys))
	held := make([]Minor, len(keys))
	seqs := make([]int64, len(keys))
	for i, k := range keys {
		v := b.EngineBalances[k]
		var err error
		if free[i], err = s.minor(k.Asset, v.Free); err != nil {
			return err
		}
		if held[i], err = s.minor(k.Asset, v.Held); err != nil {
			return err
		}
		accounts[i], assets[i], seqs[i] = k.Account, k.Asset, int64(v.Seq)
	}
	_, err := tx.Exec(ctx, `INSERT INTO engine_balances (shard, account, asset, free, held, seq)
		SELECT $6, a, s, f, h, q FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::bigint[])
			WITH ORDINALITY AS t(a, s, f, h, q, o) ORDER BY o
		ON CONFLICT (shard, account, asset) DO UPDATE SET free = EXCLUDED.free, held = EXCLUDED.held, seq = EXCLUDED.seq`,
		accounts, assets, free, held, seqs, shard)
	if err != nil {
		return fmt.Errorf("engine balances: %w", err)
	}
	return nil
}

// sortedKeys returns a map's balance keys by account, then asset: writers
// lock rows in one order.
func sortedKeys[V any](m map[settlement.BalanceKey]V) []settlement.BalanceKey {
	keys := make([]settlement.BalanceKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Account != keys[j].Account {
			return keys[i].Account < keys[j].Account
		}
		return keys[i].Asset < keys[j].Asset
	})
	return keys
}

// writeBalances applies the batch's netted postings, one upsert per balance,
// in a fixed order so concurrent writers of other shards lock rows alike.
// A balance whose postings net to zero in this batch is written too: a row
// exists exactly when the account has ever had a posting in the asset, so
// what balances show never depends on where batch boundaries fell.
func (s *Store) writeBalances(ctx context.Context, tx pgx.Tx, _ string, _ int64, b *settlement.Batch) error {
	net := b.Net()
	keys := sortedKeys(net)
	accounts := make([]string, len(keys))
	assets := make([]string, len(keys))
	amounts := make([]Minor, len(keys))
	for i, k := range keys {
		amt, err := s.minor(k.Asset, net[k])
		if err != nil {
			return err
		}
		accounts[i], assets[i], amounts[i] = k.Account, k.Asset, amt
	}
	_, err := tx.Exec(ctx, `INSERT INTO balances (account, asset, amount, seq)
		SELECT a, s, m, $4 FROM unnest($1::text[], $2::text[], $3::numeric[]) WITH ORDINALITY AS t(a, s, m, o) ORDER BY o
		ON CONFLICT (account, asset) DO UPDATE SET amount = balances.amount + EXCLUDED.amount, seq = EXCLUDED.seq`,
		accounts, assets, amounts, int64(b.LastSeq))
	if err != nil {
		return fmt.Errorf("balances: %w", err)
	}
	return nil
}

// Balance is an account's settled balance of one asset, in whole units.
type Balance struct {
	Asset  string `json:"asset"`
	Amount string `json:"amount"`
}

// Balances returns an account's settled balances, by asset.
func (s *Store) Balances(ctx context.Context, account string) ([]Balance, error) {
	rows, err := s.db.Query(ctx, `SELECT asset, amount::text FROM balances WHERE account = $1 ORDER BY asset`, account)
	if err != nil {
		return nil, fmt.Errorf("settlement: balances: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Balance])
	if err != nil {
		return nil, fmt.Errorf("settlement: balances: %w", err)
	}
	return out, nil
}

// EngineBalance is an account's free and held balance of one asset as the
// engine reported it, in whole units.
type EngineBalance struct {
	Asset string `json:"asset"`
	Free  string `json:"free"`
	Held  string `json:"held"`
}

// EngineBalances returns an account's free and held balances on a shard as
// of the shard's settled sequence (returned with them), by asset: the
// engine's own view, written with each settled batch.
func (s *Store) EngineBalances(ctx context.Context, shard, account string) (uint64, []EngineBalance, error) {
	var seq int64
	var out []EngineBalance
	err := pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM settlement_positions WHERE shard = $1), 0)`, shard).Scan(&seq); err != nil {
			return err
		}
		// Rounding to the asset's scale only fixes the spelling ("1" →
		// "1.00000000"): the engine's amounts are whole minor units.
		rows, err := tx.Query(ctx, `SELECT e.asset, round(e.free, a.scale)::text, round(e.held, a.scale)::text
			FROM engine_balances e JOIN assets a ON a.code = e.asset
			WHERE e.shard = $1 AND e.account = $2 ORDER BY e.asset`, shard, account)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[EngineBalance])
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("settlement: engine balances: %w", err)
	}
	return uint64(seq), out, nil
}
