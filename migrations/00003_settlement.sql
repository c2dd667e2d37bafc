-- Settlement (issue 6): every settled row is immutable; postings carry the
-- engine sequence and time that booked them (statements are by engine
-- time, not by commit time); custody movements keep their external
-- reference; and the engine's own view of every balance (free, held) is
-- written in the same transaction as the postings, so that reconciliation
-- compares engine and ledger at exactly one sequence.

-- +goose Up

-- One guard for every append-only table.
-- +goose StatementBegin
CREATE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER fills_append_only BEFORE UPDATE OR DELETE ON fills
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER fills_no_truncate BEFORE TRUNCATE ON fills
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();
CREATE TRIGGER settlement_batches_append_only BEFORE UPDATE OR DELETE ON settlement_batches
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER settlement_batches_no_truncate BEFORE TRUNCATE ON settlement_batches
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();

-- Postings learn their engine sequence, engine time and kind. Rows settled
-- before this migration are back-filled (the one sanctioned rewrite, with
-- the guard lifted for this transaction only): the sequence from the event
-- ID, the time from the fill or else the commit time, the kind from the
-- event's shape.
ALTER TABLE ledger_entries ADD COLUMN seq bigint;
ALTER TABLE ledger_entries ADD COLUMN booked_at timestamptz;
ALTER TABLE ledger_entries ADD COLUMN kind text;
ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_update;
UPDATE ledger_entries e SET
    seq = split_part(e.event_id, '-', 1)::bigint,
    booked_at = coalesce((SELECT f.executed_at FROM fills f WHERE f.shard = e.shard AND f.id = e.event_id), e.created_at),
    kind = CASE
        WHEN EXISTS (SELECT 1 FROM fills f WHERE f.shard = e.shard AND f.id = e.event_id) THEN
            CASE WHEN EXISTS (SELECT 1 FROM accounts a WHERE a.id = e.account AND a.kind = 'fee') THEN 'fee' ELSE 'trade' END
        WHEN EXISTS (SELECT 1 FROM ledger_entries c WHERE c.shard = e.shard AND c.event_id = e.event_id
                     AND c.account = 'custody-external' AND c.amount < 0) THEN 'deposit'
        ELSE 'withdrawal' END;
ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_update;
ALTER TABLE ledger_entries ALTER COLUMN seq SET NOT NULL;
ALTER TABLE ledger_entries ALTER COLUMN booked_at SET NOT NULL;
ALTER TABLE ledger_entries ALTER COLUMN kind SET NOT NULL;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
    CHECK (kind IN ('trade', 'fee', 'deposit', 'withdrawal'));
-- Statements and paging read an account's postings by engine time.
DROP INDEX ledger_entries_account_idx;
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account, booked_at, id);

-- The foreign keys of the two hot tables go: each was a trigger and an index
-- probe per row, and together they halved settlement's throughput (measured:
-- BENCHMARKS.md). The settlement writer is their only writer: it takes the
-- batch ID from the row it inserted in the same transaction and refuses an
-- asset it does not know before writing; reconciliation's "batches" check
-- reports any row whose batch or asset does not exist.
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_batch_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_asset_fkey;
ALTER TABLE fills DROP CONSTRAINT fills_batch_id_fkey;
ALTER TABLE fills DROP CONSTRAINT fills_base_asset_fkey;
ALTER TABLE fills DROP CONSTRAINT fills_quote_asset_fkey;

-- Deposits and withdrawals with their external reference (e.g. the
-- on-chain transaction hash). The engine already refuses a repeated
-- reference; the unique key is the ledger's own backstop.
CREATE TABLE custody_movements (
    shard      text NOT NULL,
    event_id   text NOT NULL,
    seq        bigint NOT NULL,
    batch_id   bigint NOT NULL REFERENCES settlement_batches (id),
    direction  text NOT NULL CHECK (direction IN ('deposit', 'withdrawal')),
    account    text NOT NULL,
    asset      text NOT NULL REFERENCES assets (code),
    amount     numeric NOT NULL CHECK (amount > 0),
    ext_ref    text NOT NULL,
    booked_at  timestamptz NOT NULL,
    PRIMARY KEY (shard, event_id),
    UNIQUE (direction, ext_ref)
);
CREATE TRIGGER custody_movements_append_only BEFORE UPDATE OR DELETE ON custody_movements
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER custody_movements_no_truncate BEFORE TRUNCATE ON custody_movements
    FOR EACH STATEMENT EXECUTE FUNCTION append_only();

-- No settled balance is negative, except the custody mirror, which is minus
-- everything deposited and not withdrawn. A trigger, not a CHECK: settlement
-- upserts a batch's net change, and PostgreSQL checks a CHECK constraint on
-- the proposed insert row (the net change, which may be negative) before
-- it knows the row exists; an AFTER trigger sees the final row.
-- +goose StatementBegin
CREATE FUNCTION balance_not_negative() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.amount < 0 AND NEW.account <> 'custody-external' THEN
        RAISE EXCEPTION 'balance of % in % would be negative: %', NEW.account, NEW.asset, NEW.amount
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE CONSTRAINT TRIGGER balances_not_negative AFTER INSERT OR UPDATE ON balances
    FOR EACH ROW EXECUTE FUNCTION balance_not_negative();

-- Each shard engine's view of each balance after the last settled batch
-- that touched it, from the engine's balance events. Ledger balance = the
-- sum over shards of free + held is what reconciliation checks, each shard
-- at its settlement position's sequence.
CREATE TABLE engine_balances (
    shard   text NOT NULL,
    account text NOT NULL,
    asset   text NOT NULL REFERENCES assets (code),
    free    numeric NOT NULL CHECK (free >= 0),
    held    numeric NOT NULL CHECK (held >= 0),
    seq     bigint NOT NULL,
    PRIMARY KEY (shard, account, asset)
);

-- +goose Down
DROP TABLE engine_balances;
DROP TRIGGER balances_not_negative ON balances;
DROP FUNCTION balance_not_negative();
DROP TABLE custody_movements;
ALTER TABLE fills ADD CONSTRAINT fills_quote_asset_fkey FOREIGN KEY (quote_asset) REFERENCES assets (code);
ALTER TABLE fills ADD CONSTRAINT fills_base_asset_fkey FOREIGN KEY (base_asset) REFERENCES assets (code);
ALTER TABLE fills ADD CONSTRAINT fills_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES settlement_batches (id);
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_asset_fkey FOREIGN KEY (asset) REFERENCES assets (code);
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES settlement_batches (id);
DROP INDEX ledger_entries_account_idx;
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account, asset, id);
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check;
ALTER TABLE ledger_entries DROP COLUMN kind;
ALTER TABLE ledger_entries DROP COLUMN booked_at;
ALTER TABLE ledger_entries DROP COLUMN seq;
DROP TRIGGER settlement_batches_no_truncate ON settlement_batches;
DROP TRIGGER settlement_batches_append_only ON settlement_batches;
DROP TRIGGER fills_no_truncate ON fills;
DROP TRIGGER fills_append_only ON fills;
DROP FUNCTION append_only();
