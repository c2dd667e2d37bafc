-- The foundation schema: the ledger (settlement) and the registry and
-- obligations (compliance). Amounts are NUMERIC in whole units of the asset,
-- with the asset's scale; the engine's integer minor units are converted at
-- the edge, never through a float.

-- +goose Up

-- kind: 'digital' assets can be mined and reported; 'fiat' cannot.
CREATE TABLE assets (
    code  text PRIMARY KEY,
    scale smallint NOT NULL CHECK (scale BETWEEN 0 AND 18),
    kind  text NOT NULL CHECK (kind IN ('digital', 'fiat'))
);
INSERT INTO assets (code, scale, kind) VALUES ('BTC', 8, 'digital'), ('ETH', 9, 'digital'), ('USDT', 6, 'digital'), ('KZT', 2, 'fiat');

-- Accounts are opened by engine commands and recorded here when settled.
CREATE TABLE accounts (
    id         text PRIMARY KEY,
    owner      text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('miner', 'trader', 'market_maker', 'operator', 'fee', 'custody_external')),
    opened_seq bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- The mirror of assets in external custody: minus all deposits not withdrawn.
INSERT INTO accounts (id, owner, kind, opened_seq) VALUES ('custody-external', 'satu', 'custody_external', 0);

-- One row per committed settlement transaction.
CREATE TABLE settlement_batches (
    id             bigserial PRIMARY KEY,
    shard          text NOT NULL,
    first_seq      bigint NOT NULL,
    last_seq       bigint NOT NULL,
    last_stream_id text NOT NULL,
    events         integer NOT NULL,
    fills          integer NOT NULL,
    postings       integer NOT NULL,
    committed_at   timestamptz NOT NULL DEFAULT now()
);

-- Where each shard's settlement writer stands in the events stream; written
-- in the same transaction as the batch it settles.
CREATE TABLE settlement_positions (
    shard      text PRIMARY KEY,
    stream_id  text NOT NULL,
    seq        bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Fills, keyed by the engine's event ID (shard, sequence, index): the
-- backstop against settling one fill twice.
CREATE TABLE fills (
    shard          text NOT NULL,
    id             text NOT NULL,
    seq            bigint NOT NULL,
    batch_id       bigint NOT NULL REFERENCES settlement_batches (id),
    symbol         text NOT NULL,
    base_asset     text NOT NULL REFERENCES assets (code),
    quote_asset    text NOT NULL REFERENCES assets (code),
    price          numeric NOT NULL CHECK (price > 0),
    quantity       numeric NOT NULL CHECK (quantity > 0),
    quote_amount   numeric NOT NULL CHECK (quote_amount >= 0),
    buyer_account  text NOT NULL,
    seller_account text NOT NULL,
    buy_order_id   bigint NOT NULL,
    sell_order_id  bigint NOT NULL,
    taker_side     text NOT NULL CHECK (taker_side IN ('buy', 'sell')),
    mandatory      boolean NOT NULL,
    executed_at    timestamptz NOT NULL,
    PRIMARY KEY (shard, id)
);
CREATE INDEX fills_seller_idx ON fills (seller_account, executed_at);
CREATE INDEX fills_buyer_idx ON fills (buyer_account, executed_at);

-- Double-entry postings. Each engine event that moves money produces postings
-- that sum to zero per asset. Immutable: see the trigger below.
CREATE TABLE ledger_entries (
    id         bigserial PRIMARY KEY,
    batch_id   bigint NOT NULL REFERENCES settlement_batches (id),
    shard      text NOT NULL,
    event_id   text NOT NULL,
    account    text NOT NULL,
    asset      text NOT NULL REFERENCES assets (code),
    amount     numeric NOT NULL CHECK (amount <> 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account, asset, id);

-- +goose StatementBegin
CREATE FUNCTION ledger_entries_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_immutable();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_immutable();

-- Balances: the running sum of an account's postings per asset.
CREATE TABLE balances (
    account text NOT NULL,
    asset   text NOT NULL REFERENCES assets (code),
    amount  numeric NOT NULL,
    seq     bigint NOT NULL,
    PRIMARY KEY (account, asset)
);

-- Compliance: the regulator's registry.
CREATE TABLE miners (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    bin         text NOT NULL UNIQUE CHECK (bin ~ '^[0-9]{12}$'),
    entity_kind text NOT NULL CHECK (entity_kind IN ('legal_entity', 'individual_entrepreneur')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The exchange accounts a miner trades through (one owner for attribution).
CREATE TABLE miner_accounts (
    account  text PRIMARY KEY,
    miner_id text NOT NULL REFERENCES miners (id)
);

CREATE TABLE licences (
    id         bigserial PRIMARY KEY,
    miner_id   text NOT NULL REFERENCES miners (id),
    number     text NOT NULL UNIQUE,
    subtype    text NOT NULL CHECK (subtype IN ('I', 'II')),
    issued_on  date NOT NULL,
    expires_on date NOT NULL CHECK (expires_on > issued_on),
    status     text NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX licences_miner_idx ON licences (miner_id);

-- Mined-volume reports: one per miner, asset and month.
CREATE TABLE mining_reports (
    id           bigserial PRIMARY KEY,
    miner_id     text NOT NULL REFERENCES miners (id),
    asset        text NOT NULL REFERENCES assets (code),
    period_start date NOT NULL CHECK (extract(day FROM period_start) = 1),
    mined        numeric NOT NULL CHECK (mined >= 0),
    submitted_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (miner_id, asset, period_start)
);

-- Obligations: the mandatory sale computed from a report under a dated rule set.
CREATE TABLE obligations (
    id              bigserial PRIMARY KEY,
    miner_id        text NOT NULL REFERENCES miners (id),
    report_id       bigint NOT NULL UNIQUE REFERENCES mining_reports (id),
    asset           text NOT NULL REFERENCES assets (code),
    period_start    date NOT NULL,
    period_end      date NOT NULL,
    deadline        date NOT NULL,
    mined           numeric NOT NULL,
    share           numeric NOT NULL CHECK (share >= 0 AND share <= 1),
    ruleset         text NOT NULL,
    ruleset_version integer NOT NULL,
    required        numeric NOT NULL CHECK (required >= 0),
    sold            numeric NOT NULL DEFAULT 0 CHECK (sold >= 0),
    status          text NOT NULL CHECK (status IN ('open', 'met')),
    met_at          timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX obligations_miner_idx ON obligations (miner_id, asset, period_start);

-- Which settled mandatory fill counted towards which obligation, and how much.
CREATE TABLE obligation_fills (
    obligation_id bigint NOT NULL REFERENCES obligations (id),
    shard         text NOT NULL,
    fill_id       text NOT NULL,
    quantity      numeric NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (obligation_id, shard, fill_id),
    FOREIGN KEY (shard, fill_id) REFERENCES fills (shard, id)
);

-- +goose Down
DROP TABLE obligation_fills;
DROP TABLE obligations;
DROP TABLE mining_reports;
DROP TABLE licences;
DROP TABLE miner_accounts;
DROP TABLE miners;
DROP TABLE balances;
DROP TABLE ledger_entries;
DROP FUNCTION ledger_entries_immutable();
DROP TABLE fills;
DROP TABLE settlement_positions;
DROP TABLE settlement_batches;
DROP TABLE accounts;
DROP TABLE assets;
