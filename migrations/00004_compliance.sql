-- Compliance (issue 7): the regulator's full registry with an audit log,
-- licence status history, report versions and pool statements, obligations
-- with their computation history, overdue obligations and violations,
-- excluded fills with their reason, electricity quotas and metered
-- consumption, mining-fee assessments; and the API keys that say who may
-- read and change what.

-- +goose Up

-- Who changed the registry, when, what and why. Append-only.
CREATE TABLE registry_audit (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    subject text NOT NULL,
    reason  text NOT NULL,
    detail  jsonb NOT NULL
);
CREATE INDEX registry_audit_subject_idx ON registry_audit (subject, id);
CREATE TRIGGER registry_audit_append_only BEFORE UPDATE OR DELETE ON registry_audit
    FOR EACH ROW EXECUTE FUNCTION append_only();

-- Contacts of a miner.
ALTER TABLE miners ADD COLUMN email text NOT NULL DEFAULT '';
ALTER TABLE miners ADD COLUMN phone text NOT NULL DEFAULT '';
ALTER TABLE miners ADD COLUMN address text NOT NULL DEFAULT '';
-- The permission to place mandatory orders last sent to the engine for
-- the miner's accounts (NULL: never sent).
ALTER TABLE miners ADD COLUMN mandatory_sell boolean;

-- A licence's status history: suspensions (1-6 months), reinstatements,
-- revocations, each from a date. licences.status stays the status it was
-- registered with. Append-only.
CREATE TABLE licence_changes (
    id         bigserial PRIMARY KEY,
    licence_id bigint NOT NULL REFERENCES licences (id),
    kind       text NOT NULL CHECK (kind IN ('suspend', 'reinstate', 'revoke')),
    from_day   date NOT NULL,
    until_day  date CHECK ((kind = 'suspend') = (until_day IS NOT NULL) AND (until_day IS NULL OR until_day > from_day)),
    reason     text NOT NULL CHECK (reason <> ''),
    actor      text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX licence_changes_licence_idx ON licence_changes (licence_id, id);
CREATE TRIGGER licence_changes_append_only BEFORE UPDATE OR DELETE ON licence_changes
    FOR EACH ROW EXECUTE FUNCTION append_only();

-- Digital-mining data centres, accredited pools, and the register of mining
-- equipment (Art. 4 §11).
CREATE TABLE data_centres (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    operator    text NOT NULL,
    miner_id    text REFERENCES miners (id),
    location    text NOT NULL,
    capacity_kw bigint NOT NULL CHECK (capacity_kw > 0),
    created_at  timestamptz NOT NULL
);
CREATE TABLE mining_pools (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    accreditation text NOT NULL UNIQUE,
    accredited_on date NOT NULL,
    location      text NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE TABLE equipment (
    serial        text PRIMARY KEY,
    model         text NOT NULL,
    hash_rate_ths numeric NOT NULL CHECK (hash_rate_ths > 0),
    rated_power_w bigint NOT NULL CHECK (rated_power_w > 0),
    location      text NOT NULL,
    data_centre   text REFERENCES data_centres (id),
    pool          text REFERENCES mining_pools (id),
    miner_id      text NOT NULL REFERENCES miners (id),
    created_at    timestamptz NOT NULL
);
CREATE INDEX equipment_miner_idx ON equipment (miner_id);

-- Electricity: the quota allocated per miner and month, and the metered
-- consumption by energy source (kWh; average price paid in tenge per kWh).
CREATE TABLE energy_quotas (
    miner_id     text NOT NULL REFERENCES miners (id),
    period_start date NOT NULL CHECK (extract(day FROM period_start) = 1),
    kwh          bigint NOT NULL CHECK (kwh >= 0),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (miner_id, period_start)
);
CREATE TABLE energy_consumption (
    miner_id     text NOT NULL REFERENCES miners (id),
    period_start date NOT NULL CHECK (extract(day FROM period_start) = 1),
    source       text NOT NULL CHECK (source IN ('grid', 'imported', 'own', 'own_renewable')),
    kwh          bigint NOT NULL CHECK (kwh >= 0),
    metered      boolean NOT NULL,
    avg_price    numeric NOT NULL CHECK (avg_price >= 0),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (miner_id, period_start, source)
);

-- Mining-fee assessments per miner and quarter; a re-assessment is a new
-- version, the old one stays.
CREATE TABLE fee_assessments (
    miner_id      text NOT NULL REFERENCES miners (id),
    quarter       text NOT NULL CHECK (quarter ~ '^[0-9]{4}-Q[1-4]$'),
    version       integer NOT NULL CHECK (version >= 1),
    table_id      text NOT NULL,
    table_version integer NOT NULL,
    total_kwh     bigint NOT NULL,
    amount        numeric NOT NULL CHECK (amount >= 0),
    return_due    date,
    payment_due   date NOT NULL,
    secondary     boolean NOT NULL,
    lines         jsonb NOT NULL,
    assessed_at   timestamptz NOT NULL,
    actor         text NOT NULL,
    PRIMARY KEY (miner_id, quarter, version)
);
CREATE TRIGGER fee_assessments_append_only BEFORE UPDATE OR DELETE ON fee_assessments
    FOR EACH ROW EXECUTE FUNCTION append_only();

-- Reports: mining_reports is the report (miner, asset, month); each
-- submission or amendment is a version, never overwritten. Version 1 is
-- back-filled from the reports already stored.
CREATE TABLE report_versions (
    report_id    bigint NOT NULL REFERENCES mining_reports (id),
    version      integer NOT NULL CHECK (version >= 1),
    mined        numeric NOT NULL CHECK (mined >= 0),
    wallets      text[] NOT NULL DEFAULT '{}',
    source       text NOT NULL CHECK (source IN ('miner', 'pool')),
    pool_id      text REFERENCES mining_pools (id),
    reason       text NOT NULL,
    actor        text NOT NULL,
    submitted_at timestamptz NOT NULL,
    PRIMARY KEY (report_id, version),
    CHECK ((source = 'pool') = (pool_id IS NOT NULL))
);
INSERT INTO report_versions (report_id, version, mined, source, reason, actor, submitted_at)
    SELECT id, 1, mined, 'miner', 'submitted', 'migration', submitted_at FROM mining_reports;
CREATE TRIGGER report_versions_append_only BEFORE UPDATE OR DELETE ON report_versions
    FOR EACH ROW EXECUTE FUNCTION append_only();

-- A pool's distribution statement: what it paid a miner in a month.
CREATE TABLE pool_statements (
    pool_id      text NOT NULL REFERENCES mining_pools (id),
    miner_id     text NOT NULL REFERENCES miners (id),
    asset        text NOT NULL REFERENCES assets (code),
    period_start date NOT NULL CHECK (extract(day FROM period_start) = 1),
    quantity     numeric NOT NULL CHECK (quantity >= 0),
    submitted_at timestamptz NOT NULL,
    actor        text NOT NULL,
    PRIMARY KEY (pool_id, miner_id, asset, period_start)
);

-- Obligations: overdue is a state; every computation (the first and one
-- per amendment) is kept with its inputs.
ALTER TABLE obligations DROP CONSTRAINT obligations_status_check;
ALTER TABLE obligations ADD CONSTRAINT obligations_status_check CHECK (status IN ('open', 'met', 'overdue'));
ALTER TABLE obligations ADD COLUMN report_version integer NOT NULL DEFAULT 1;
ALTER TABLE obligations ADD COLUMN overdue_at timestamptz;
CREATE INDEX obligations_open_idx ON obligations (deadline) WHERE status = 'open';
CREATE TABLE obligation_computations (
    obligation_id   bigint NOT NULL REFERENCES obligations (id),
    version         integer NOT NULL CHECK (version >= 1),
    report_version  integer NOT NULL,
    mined           numeric NOT NULL,
    share           numeric NOT NULL,
    ruleset         text NOT NULL,
    ruleset_version integer NOT NULL,
    required        numeric NOT NULL,
    computed_at     timestamptz NOT NULL,
    PRIMARY KEY (obligation_id, version)
);
INSERT INTO obligation_computations (obligation_id, version, report_version, mined, share, ruleset, ruleset_version, required, computed_at)
    SELECT id, 1, 1, mined, share, ruleset, ruleset_version, required, created_at FROM obligations;
CREATE TRIGGER obligation_computations_append_only BEFORE UPDATE OR DELETE ON obligation_computations
    FOR EACH ROW EXECUTE FUNCTION append_only();

-- A counted fill records the reference price it was checked against.
ALTER TABLE obligation_fills ADD COLUMN reference numeric;
ALTER TABLE obligation_fills ADD COLUMN basis text NOT NULL DEFAULT 'none';
-- The reference price of a mandatory sale is the VWAP of its symbol's
-- trades in the window before it: read by symbol and time.
CREATE INDEX fills_symbol_idx ON fills (symbol, executed_at);
-- Fills sold by a miner's account that count towards nothing, and why.
CREATE TABLE excluded_fills (
    shard     text NOT NULL,
    fill_id   text NOT NULL,
    miner_id  text NOT NULL REFERENCES miners (id),
    asset     text NOT NULL,
    quantity  numeric NOT NULL CHECK (quantity > 0),
    reason    text NOT NULL CHECK (reason IN ('not_mandatory', 'buyer_same_owner', 'price_out_of_tolerance',
                                               'no_open_obligation', 'outside_window', 'excess')),
    detail    text NOT NULL,
    reference numeric,
    basis     text NOT NULL,
    PRIMARY KEY (shard, fill_id)
);
CREATE INDEX excluded_fills_miner_idx ON excluded_fills (miner_id, asset);

-- Violations: an obligation overdue at its deadline; the fine from the
-- rule set's sanctions table; a repeat may carry a suspension
-- recommendation for the regulator. The fine in tenge is NULL when the
-- year's MCI is not confirmed.
CREATE TABLE violations (
    id                bigserial PRIMARY KEY,
    obligation_id     bigint NOT NULL UNIQUE REFERENCES obligations (id),
    miner_id          text NOT NULL REFERENCES miners (id),
    arose_on          date NOT NULL,
    number            integer NOT NULL CHECK (number >= 1),
    fine_mci          bigint NOT NULL CHECK (fine_mci >= 0),
    fine_tenge        numeric,
    fine_note         text NOT NULL,
    suspension_months integer NOT NULL CHECK (suspension_months BETWEEN 0 AND 6),
    ruleset           text NOT NULL,
    ruleset_version   integer NOT NULL,
    source            text NOT NULL,
    created_at        timestamptz NOT NULL
);
CREATE INDEX violations_miner_idx ON violations (miner_id, arose_on);
CREATE TRIGGER violations_append_only BEFORE UPDATE OR DELETE ON violations
    FOR EACH ROW EXECUTE FUNCTION append_only();

-- API keys: a bearer secret (only its SHA-256 is stored) with a role and,
-- for miners and traders, the miner or account it acts for.
CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    secret_hash bytea NOT NULL,
    role        text NOT NULL CHECK (role IN ('miner', 'trader', 'market_maker', 'operator', 'regulator')),
    miner_id    text REFERENCES miners (id),
    account     text,
    label       text NOT NULL,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CHECK ((role = 'miner') = (miner_id IS NOT NULL)),
    CHECK ((role IN ('trader', 'market_maker')) = (account IS NOT NULL))
);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE violations;
DROP TABLE excluded_fills;
DROP INDEX fills_symbol_idx;
ALTER TABLE obligation_fills DROP COLUMN basis;
ALTER TABLE obligation_fills DROP COLUMN reference;
DROP TABLE obligation_computations;
DROP INDEX obligations_open_idx;
ALTER TABLE obligations DROP COLUMN overdue_at;
ALTER TABLE obligations DROP COLUMN report_version;
UPDATE obligations SET status = 'open' WHERE status = 'overdue';
ALTER TABLE obligations DROP CONSTRAINT obligations_status_check;
ALTER TABLE obligations ADD CONSTRAINT obligations_status_check CHECK (status IN ('open', 'met'));
DROP TABLE pool_statements;
DROP TABLE report_versions;
DROP TABLE fee_assessments;
DROP TABLE energy_consumption;
DROP TABLE energy_quotas;
DROP TABLE equipment;
DROP TABLE mining_pools;
DROP TABLE data_centres;
DROP TABLE licence_changes;
ALTER TABLE miners DROP COLUMN mandatory_sell;
ALTER TABLE miners DROP COLUMN address;
ALTER TABLE miners DROP COLUMN phone;
ALTER TABLE miners DROP COLUMN email;
DROP TABLE registry_audit;
