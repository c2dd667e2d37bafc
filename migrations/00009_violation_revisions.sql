-- Compliance: a violation's number and sanction can change after it is
-- recorded — when an earlier violation of the same miner is recorded later
-- (its report came last), the later ones become repeats. Violations are
-- append-only, so a change is a revision: a row of its own with the new
-- number, fine and suspension recommendation and why, never an update.
-- violations_now gives each violation with its newest revision applied.

-- +goose Up
CREATE TABLE violation_revisions (
    id                bigserial PRIMARY KEY,
    violation_id      bigint NOT NULL REFERENCES violations (id),
    number            integer NOT NULL CHECK (number >= 1),
    fine_mci          bigint NOT NULL CHECK (fine_mci >= 0),
    fine_tenge        numeric,
    fine_note         text NOT NULL,
    suspension_months integer NOT NULL CHECK (suspension_months BETWEEN 0 AND 6),
    ruleset_version   integer NOT NULL,
    source            text NOT NULL,
    reason            text NOT NULL,
    created_at        timestamptz NOT NULL
);
CREATE INDEX violation_revisions_violation_idx ON violation_revisions (violation_id, id);
CREATE TRIGGER violation_revisions_append_only BEFORE UPDATE OR DELETE ON violation_revisions
    FOR EACH ROW EXECUTE FUNCTION append_only();

CREATE VIEW violations_now AS
SELECT v.id, v.obligation_id, v.miner_id, v.arose_on,
    coalesce(r.number, v.number) AS number,
    coalesce(r.fine_mci, v.fine_mci) AS fine_mci,
    CASE WHEN r.id IS NULL THEN v.fine_tenge ELSE r.fine_tenge END AS fine_tenge,
    coalesce(r.fine_note, v.fine_note) AS fine_note,
    coalesce(r.suspension_months, v.suspension_months) AS suspension_months,
    v.ruleset,
    coalesce(r.ruleset_version, v.ruleset_version) AS ruleset_version,
    coalesce(r.source, v.source) AS source,
    v.created_at,
    r.id IS NOT NULL AS revised
FROM violations v
LEFT JOIN LATERAL (
    SELECT * FROM violation_revisions x WHERE x.violation_id = v.id ORDER BY x.id DESC LIMIT 1
) r ON true;

-- +goose Down
DROP VIEW violations_now;
DROP TABLE violation_revisions;
