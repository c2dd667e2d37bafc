-- Proof of compliance (issue 8): an RFC 6962 Merkle log over the facts that
-- decide compliance, written in the same transaction as those facts, and
-- its signed checkpoints.
--
-- The tree's stored hashes (golang.org/x/mod/sumdb/tlog's numbering) are
-- kept in runs, one row per appending transaction: the hashes of its records
-- are contiguous. A fill's leaf is not stored: it is the fill row's canonical
-- encoding, at first_index + its position in its run; report versions and
-- computations likewise are re-encoded from their rows; attributions, state
-- changes and licence events keep their data here. A certificate re-encodes
-- every row it uses and compares the leaf hash with the stored one, so an
-- edited row is caught.

-- +goose Up
CREATE TABLE log_state (
    id   integer PRIMARY KEY CHECK (id = 1),
    size bigint NOT NULL CHECK (size >= 0)
);
INSERT INTO log_state (id, size) VALUES (1, 0);

CREATE TABLE log_hashes (
    start  bigint PRIMARY KEY,
    hashes bytea NOT NULL CHECK (length(hashes) > 0 AND length(hashes) % 32 = 0)
);
CREATE TRIGGER log_hashes_append_only BEFORE UPDATE OR DELETE ON log_hashes
    FOR EACH ROW EXECUTE FUNCTION append_only();

CREATE TABLE log_entries (
    index         bigint PRIMARY KEY,
    kind          text NOT NULL,
    ref           text NOT NULL,
    obligation_id bigint,
    miner_id      text,
    data          bytea
);
CREATE INDEX log_entries_obligation_idx ON log_entries (obligation_id);
CREATE INDEX log_entries_ref_idx ON log_entries (kind, ref);
CREATE TRIGGER log_entries_append_only BEFORE UPDATE OR DELETE ON log_entries
    FOR EACH ROW EXECUTE FUNCTION append_only();

CREATE TABLE log_fill_runs (
    first_index bigint PRIMARY KEY,
    shard       text NOT NULL,
    first_seq   bigint NOT NULL,
    last_seq    bigint NOT NULL,
    count       integer NOT NULL CHECK (count > 0)
);
CREATE INDEX log_fill_runs_shard_idx ON log_fill_runs (shard, first_seq);
CREATE TRIGGER log_fill_runs_append_only BEFORE UPDATE OR DELETE ON log_fill_runs
    FOR EACH ROW EXECUTE FUNCTION append_only();

-- A certificate re-encodes the fills of a run: read by shard and sequence.
CREATE INDEX fills_shard_seq_idx ON fills (shard, seq);

CREATE TABLE log_checkpoints (
    size       bigint PRIMARY KEY,
    root       bytea NOT NULL CHECK (length(root) = 32),
    note       text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TRIGGER log_checkpoints_append_only BEFORE UPDATE OR DELETE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION append_only();

-- What attribution decided is a record too: counted and excluded parts of
-- sales are written once and never changed.
CREATE TRIGGER obligation_fills_append_only BEFORE UPDATE OR DELETE ON obligation_fills
    FOR EACH ROW EXECUTE FUNCTION append_only();
CREATE TRIGGER excluded_fills_append_only BEFORE UPDATE OR DELETE ON excluded_fills
    FOR EACH ROW EXECUTE FUNCTION append_only();

-- +goose Down
DROP TRIGGER excluded_fills_append_only ON excluded_fills;
DROP TRIGGER obligation_fills_append_only ON obligation_fills;
DROP TABLE log_checkpoints;
DROP TABLE log_fill_runs;
DROP INDEX fills_shard_seq_idx;
DROP TABLE log_entries;
DROP TABLE log_hashes;
DROP TABLE log_state;
