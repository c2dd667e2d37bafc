-- Settlement (issue 6): a fill is its own journal entry.
--
-- A trade's five postings — base from seller to buyer, quote from buyer to
-- seller, both fees to the fee account — are fixed functions of the fill's
-- columns. Writing them as five more rows (each with two index entries)
-- made settlement write six rows per trade and held it at a third of its
-- target (BENCHMARKS.md). From this migration the fill row is the entry:
-- it records the fee account too, and the view `postings` shows its legs
-- next to the rows of ledger_entries, which now hold only custody
-- movements' postings. Nothing about the ledger's meaning changes: every
-- posting still has an event, a sequence, an engine time, a kind, an
-- account, an asset and an amount ≠ 0; each event's postings sum to zero;
-- nothing is updated or deleted after it is written (fills are append-only
-- like ledger_entries); a posting is identified by (shard, event_id, leg).
--
-- Legs of a fill, in the order settlement.Batch.Add books them:
--   0 seller, base, −quantity          1 buyer, base, +quantity
--   2 buyer, quote, −(quote + buyer fee)
--   3 seller, quote, +(quote − seller fee)
--   4 fee account, quote, +(buyer fee + seller fee)
-- A leg whose amount is zero is no posting (a quote amount that rounds to
-- zero, a trade without fees).

-- +goose Up
ALTER TABLE fills ADD COLUMN fee_account text;
ALTER TABLE ledger_entries ADD COLUMN leg smallint;

-- Rows settled before this migration: the fill learns its fee account from
-- its fee posting, each custody posting its leg (0 the debit, 1 the
-- credit, as they were written). The one sanctioned rewrite, guards lifted
-- for this transaction only.
ALTER TABLE fills DISABLE TRIGGER fills_append_only;
UPDATE fills f SET fee_account = e.account
    FROM ledger_entries e WHERE e.shard = f.shard AND e.event_id = f.id AND e.kind = 'fee';
ALTER TABLE fills ENABLE TRIGGER fills_append_only;
ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_update;
UPDATE ledger_entries e SET leg = n.leg
    FROM (SELECT id, (row_number() OVER (PARTITION BY shard, event_id ORDER BY id) - 1)::smallint AS leg
          FROM ledger_entries WHERE kind IN ('deposit', 'withdrawal')) n
    WHERE n.id = e.id;

CREATE VIEW fill_legs AS
SELECT f.shard, f.id AS event_id, f.seq, l.leg, f.batch_id, f.executed_at AS booked_at, l.kind, l.account, l.asset, l.amount
FROM fills f CROSS JOIN LATERAL (VALUES
    (0::smallint, 'trade'::text, f.seller_account, f.base_asset, -f.quantity),
    (1::smallint, 'trade'::text, f.buyer_account, f.base_asset, f.quantity),
    (2::smallint, 'trade'::text, f.buyer_account, f.quote_asset, -(f.quote_amount + f.buyer_fee)),
    (3::smallint, 'trade'::text, f.seller_account, f.quote_asset, f.quote_amount - f.seller_fee),
    (4::smallint, 'fee'::text, f.fee_account, f.quote_asset, f.buyer_fee + f.seller_fee)) AS l(leg, kind, account, asset, amount)
WHERE l.amount <> 0;

-- The trade postings already written must be exactly the legs their fills
-- now stand for; only then are they removed. Any difference stops the
-- migration and changes nothing.
-- +goose StatementBegin
DO $$
DECLARE
    diff bigint;
BEGIN
    SELECT count(*) INTO diff FROM (
        (SELECT shard, event_id, kind, account, asset, amount FROM fill_legs
         EXCEPT ALL
         SELECT shard, event_id, kind, account, asset, amount FROM ledger_entries WHERE kind IN ('trade', 'fee'))
        UNION ALL
        (SELECT shard, event_id, kind, account, asset, amount FROM ledger_entries WHERE kind IN ('trade', 'fee')
         EXCEPT ALL
         SELECT shard, event_id, kind, account, asset, amount FROM fill_legs)) d;
    IF diff <> 0 THEN
        RAISE EXCEPTION '% trade postings differ from their fills; settle the difference before migrating', diff
            USING ERRCODE = 'data_exception';
    END IF;
END;
$$;
-- +goose StatementEnd
DELETE FROM ledger_entries WHERE kind IN ('trade', 'fee');
ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_update;

ALTER TABLE ledger_entries ALTER COLUMN leg SET NOT NULL;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN ('deposit', 'withdrawal'));
ALTER TABLE fills ADD CONSTRAINT fills_fee_account_check CHECK (fee_account IS NOT NULL OR buyer_fee + seller_fee = 0);

-- Every posting of the ledger, stored or a fill's leg.
CREATE VIEW postings AS
SELECT shard, event_id, seq, leg, batch_id, booked_at, kind, account, asset, amount FROM ledger_entries
UNION ALL
SELECT shard, event_id, seq, leg, batch_id, booked_at, kind, account, asset, amount FROM fill_legs;

-- Indexes of fills: each B-tree entry cost about 3 µs per fill on this
-- machine (BENCHMARKS.md), so a fill keeps four — its key (the duplicate
-- backstop), its buyer's, its seller's and its fee account's legs by
-- engine time — and the range look-ups by time or sequence use BRIN
-- indexes, which cost next to nothing to maintain because fills arrive in
-- time and sequence order:
--   - the transparency log places fills by (shard, seq) ranges: BRIN on seq;
--   - compliance's reference price (the VWAP of a symbol's trades over the
--     window before a sale) reads a time range: BRIN on executed_at;
--   - its fallback, the last auction price, reads a symbol's auction fills
--     newest first: a partial B-tree over auction fills only.
CREATE INDEX fills_fee_account_idx ON fills (fee_account, executed_at);
DROP INDEX fills_shard_seq_idx;
CREATE INDEX fills_seq_brin ON fills USING brin (seq);
DROP INDEX fills_symbol_idx;
CREATE INDEX fills_executed_brin ON fills USING brin (executed_at);
CREATE INDEX fills_auction_idx ON fills (symbol, executed_at) WHERE taker_side = 'auction';

-- Like the hot tables' in 00003, custody movements' foreign keys go (each
-- was a trigger and a look-up per row, 50 µs a row measured); the settlement
-- writer takes the batch from the row it inserted in the same transaction
-- and refuses an unknown asset, and reconciliation's "batches" check
-- reports any row whose batch or asset does not exist.
ALTER TABLE custody_movements DROP CONSTRAINT custody_movements_batch_id_fkey;
ALTER TABLE custody_movements DROP CONSTRAINT custody_movements_asset_fkey;

-- +goose Down
ALTER TABLE custody_movements ADD CONSTRAINT custody_movements_asset_fkey FOREIGN KEY (asset) REFERENCES assets (code);
ALTER TABLE custody_movements ADD CONSTRAINT custody_movements_batch_id_fkey
    FOREIGN KEY (batch_id) REFERENCES settlement_batches (id);
DROP INDEX fills_auction_idx;
DROP INDEX fills_executed_brin;
CREATE INDEX fills_symbol_idx ON fills (symbol, executed_at);
DROP INDEX fills_seq_brin;
CREATE INDEX fills_shard_seq_idx ON fills (shard, seq);
DROP INDEX fills_fee_account_idx;
DROP VIEW postings;
ALTER TABLE fills DROP CONSTRAINT fills_fee_account_check;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
    CHECK (kind IN ('trade', 'fee', 'deposit', 'withdrawal'));
-- Version 6 listed an account's postings of one instant by row number, the
-- order they were settled in: the stored and the derived postings are
-- numbered again together, batch by batch, each batch's in event and leg
-- order, as version 6 wrote them (a trade's rows stamped with its batch's
-- commit time).
CREATE TEMPORARY TABLE journal_down ON COMMIT DROP AS
    SELECT batch_id, shard, event_id, seq, booked_at, kind, account, asset, amount, leg, created_at FROM ledger_entries
    UNION ALL
    SELECT l.batch_id, l.shard, l.event_id, l.seq, l.booked_at, l.kind, l.account, l.asset, l.amount, l.leg,
        coalesce((SELECT b.committed_at FROM settlement_batches b WHERE b.id = l.batch_id), now())
    FROM fill_legs l;
ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_update;
DELETE FROM ledger_entries;
INSERT INTO ledger_entries (batch_id, shard, event_id, seq, booked_at, kind, account, asset, amount, leg, created_at)
    SELECT batch_id, shard, event_id, seq, booked_at, kind, account, asset, amount, leg, created_at
    FROM journal_down ORDER BY batch_id, seq, split_part(event_id, '-', 2)::bigint, leg;
ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_update;
DROP VIEW fill_legs;
ALTER TABLE ledger_entries DROP COLUMN leg;
ALTER TABLE fills DROP COLUMN fee_account;
