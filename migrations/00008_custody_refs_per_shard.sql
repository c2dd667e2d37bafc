-- Settlement (issue 6): a deposit's or a withdrawal's external reference is
-- unique within its shard — what the engine that accepted it guarantees —
-- not across shards.
--
-- Each shard's engine refuses a reference repeated among its own commands,
-- and nothing more: it cannot see the others. Unique across shards, the key
-- made the ledger refuse what a second shard's engine had accepted, and
-- that shard's settlement then failed on it at every retry, for ever — no
-- fill of the shard settled after it, no obligation progressed, its Redis
-- streams were never trimmed. The ledger records what the engines did; a
-- reference that must be unique across the exchange (an on-chain
-- transaction and output) is for whoever issues it to keep so.

-- +goose Up
ALTER TABLE custody_movements DROP CONSTRAINT custody_movements_direction_ext_ref_key;
ALTER TABLE custody_movements ADD CONSTRAINT custody_movements_shard_direction_ext_ref_key
    UNIQUE (shard, direction, ext_ref);

-- +goose Down
ALTER TABLE custody_movements DROP CONSTRAINT custody_movements_shard_direction_ext_ref_key;
ALTER TABLE custody_movements ADD CONSTRAINT custody_movements_direction_ext_ref_key
    UNIQUE (direction, ext_ref);
