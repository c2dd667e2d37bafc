// Package postgres is compliance's PostgreSQL adapter: the registry (miners,
// licences and their history, data centres, pools, equipment, electricity),
// mined-volume reports and their versions, the obligations computed from
// them, violations, mining-fee assessments, and the settlement hook that
// attributes miners' sales to obligations. Every registry change is written
// to registry_audit in the same transaction.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/miningfee"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/money"
)

// Store is the compliance store.
type Store struct {
	db      *pgxpool.Pool
	rules   *compliance.RuleSet
	fees    *miningfee.Tables
	scales  map[string]int
	digital map[string]bool // assets that can be mined
	runs    runCache        // committed runs of the log's stored hashes
	// Clock is the time source of every date decision (today's date for
	// reports, deadlines, licence status) and of the audit log; tests move
	// it. It defaults to time.Now.
	Clock func() time.Time
}

// NewStore returns a store computing obligations under the given rule set
// and mining fees under the shipped fee tables.
func NewStore(ctx context.Context, db *pgxpool.Pool, rules *compliance.RuleSet) (*Store, error) {
	fees, err := miningfee.Load()
	if err != nil {
		return nil, fmt.Errorf("compliance: %w", err)
	}
	if fees.ID != rules.MiningFeeTable {
		return nil, fmt.Errorf("compliance: rule set %s v%d names the mining-fee table %q, but the shipped table is %q",
			rules.ID, rules.Version, rules.MiningFeeTable, fees.ID)
	}
	rows, err := db.Query(ctx, `SELECT code, scale, kind = 'digital' FROM assets`)
	if err != nil {
		return nil, fmt.Errorf("compliance: load assets: %w", err)
	}
	scales, digital := map[string]int{}, map[string]bool{}
	var code string
	var scale int
	var isDigital bool
	if _, err := pgx.ForEachRow(rows, []any{&code, &scale, &isDigital}, func() error {
		scales[code], digital[code] = scale, isDigital
		return nil
	}); err != nil {
		return nil, fmt.Errorf("compliance: load assets: %w", err)
	}
	return &Store{db: db, rules: rules, fees: fees, scales: scales, digital: digital, Clock: time.Now}, nil
}

// RuleSet is the rule set new obligations are computed under.
func (s *Store) RuleSet() *compliance.RuleSet { return s.rules }

// Today is the compliance day (in Kazakhstan) the clock is on.
func (s *Store) Today() time.Time { return compliance.DayOf(s.Clock()) }

// Scale returns an asset's scale, or UNKNOWN_ASSET.
func (s *Store) Scale(asset string) (int, error) {
	sc, ok := s.scales[asset]
	if !ok {
		return 0, apperr.New(apperr.UnknownAsset, "unknown asset %q", asset)
	}
	return sc, nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (s *Store) minerExists(ctx context.Context, q querier, minerID string) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM miners WHERE id = $1`, minerID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return apperr.New(apperr.UnknownMiner, "unknown miner %q", minerID)
	}
	if err != nil {
		return fmt.Errorf("compliance: miner: %w", err)
	}
	return nil
}

// audit records who changed what and why, in the change's transaction.
func (s *Store) audit(ctx context.Context, tx pgx.Tx, a compliance.Actor, action, subject string, detail any) error {
	if a.ID == "" {
		return apperr.New(apperr.InvalidParameter, "a registry change needs an actor")
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("compliance: audit: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO registry_audit (at, actor, action, subject, reason, detail) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.Clock().UTC(), a.ID, action, subject, a.Reason, b); err != nil {
		return fmt.Errorf("compliance: audit: %w", err)
	}
	return nil
}

// AuditEntry is one row of the registry's audit log.
type AuditEntry struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Subject string          `json:"subject"`
	Reason  string          `json:"reason"`
	Detail  json.RawMessage `json:"detail"`
}

// Audit returns the audit log, newest first, optionally for one subject
// (a miner ID, a licence number, ...), at most limit rows.
func (s *Store) Audit(ctx context.Context, subject string, limit int) ([]AuditEntry, error) {
	rows, err := s.db.Query(ctx, `SELECT id, at, actor, action, subject, reason, detail FROM registry_audit
		WHERE $1 = '' OR subject = $1 ORDER BY id DESC LIMIT $2`, subject, limit)
	if err != nil {
		return nil, fmt.Errorf("compliance: audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[AuditEntry])
	if err != nil {
		return nil, fmt.Errorf("compliance: audit: %w", err)
	}
	return nonNil(out), nil
}

func (s *Store) numeric(asset string, minor int64) string {
	return money.Format(minor, s.scales[asset])
}

func (s *Store) parse(asset, v string) (int64, error) {
	return money.Parse(v, s.scales[asset])
}

// nonNil makes an empty list marshal as [] rather than null.
func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func day(t time.Time) string { return t.Format(time.DateOnly) }

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
