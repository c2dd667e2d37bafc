// Package postgres is compliance's PostgreSQL adapter: the registry (miners,
// their exchange accounts, licences), mined-volume reports, the obligations
// computed from them, and the settlement hook that counts mandatory fills.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/settlement"
)

// Store is the compliance store.
type Store struct {
	db      *pgxpool.Pool
	rules   *compliance.RuleSet
	scales  map[string]int
	digital map[string]bool // assets that can be mined
}

// NewStore returns a store computing obligations under the given rule set.
func NewStore(ctx context.Context, db *pgxpool.Pool, rules *compliance.RuleSet) (*Store, error) {
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
	return &Store{db: db, rules: rules, scales: scales, digital: digital}, nil
}

// RuleSet is the rule set new obligations are computed under.
func (s *Store) RuleSet() *compliance.RuleSet { return s.rules }

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

// CreateMiner registers a miner and the exchange accounts it trades through.
func (s *Store) CreateMiner(ctx context.Context, m compliance.Miner) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO miners (id, name, bin, entity_kind) VALUES ($1, $2, $3, $4)`,
			m.ID, m.Name, m.BIN, string(m.EntityKind))
		if isUniqueViolation(err) {
			return apperr.New(apperr.Conflict, "a miner with id %q or BIN %s is already registered", m.ID, m.BIN)
		}
		if err != nil {
			return fmt.Errorf("compliance: create miner: %w", err)
		}
		for _, a := range m.Accounts {
			_, err := tx.Exec(ctx, `INSERT INTO miner_accounts (account, miner_id) VALUES ($1, $2)`, a, m.ID)
			if isUniqueViolation(err) {
				return apperr.New(apperr.Conflict, "account %q already belongs to a miner", a)
			}
			if err != nil {
				return fmt.Errorf("compliance: link account: %w", err)
			}
		}
		return nil
	})
}

// MinerAccounts returns a miner's exchange accounts, or UNKNOWN_MINER.
func (s *Store) MinerAccounts(ctx context.Context, minerID string) ([]string, error) {
	if err := s.minerExists(ctx, s.db, minerID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT account FROM miner_accounts WHERE miner_id = $1 ORDER BY account`, minerID)
	if err != nil {
		return nil, fmt.Errorf("compliance: miner accounts: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
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

// AddLicence records a licence for a miner.
func (s *Store) AddLicence(ctx context.Context, minerID string, l compliance.Licence) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if err := s.minerExists(ctx, s.db, minerID); err != nil {
		return err
	}
	_, err := s.db.Exec(ctx, `INSERT INTO licences (miner_id, number, subtype, issued_on, expires_on, status)
		VALUES ($1, $2, $3, $4, $5, $6)`, minerID, l.Number, string(l.Subtype), l.IssuedOn.UTC(), l.ExpiresOn.UTC(), string(l.Status))
	if isUniqueViolation(err) {
		return apperr.New(apperr.Conflict, "licence number %q is already registered", l.Number)
	}
	if err != nil {
		return fmt.Errorf("compliance: add licence: %w", err)
	}
	return nil
}

// Licences returns a miner's licences.
func (s *Store) Licences(ctx context.Context, minerID string) ([]compliance.Licence, error) {
	return s.licences(ctx, s.db, minerID)
}

func (s *Store) licences(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, minerID string) ([]compliance.Licence, error) {
	rows, err := q.Query(ctx, `SELECT number, subtype, issued_on, expires_on, status FROM licences WHERE miner_id = $1 ORDER BY issued_on`, minerID)
	if err != nil {
		return nil, fmt.Errorf("compliance: licences: %w", err)
	}
	var out []compliance.Licence
	var l compliance.Licence
	var subtype, status string
	_, err = pgx.ForEachRow(rows, []any{&l.Number, &subtype, &l.IssuedOn, &l.ExpiresOn, &status}, func() error {
		l.Subtype, l.Status = compliance.LicenceSubtype(subtype), compliance.LicenceStatus(status)
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compliance: licences: %w", err)
	}
	return out, nil
}

// SubmitReport records a miner's mined volume of an asset for the month
// starting periodStart and creates its obligation under the store's rule
// set. Refused: unknown miner, no active licence in the month, a second
// report for the same month, an unconfirmed rule.
func (s *Store) SubmitReport(ctx context.Context, minerID, asset string, periodStart time.Time, mined int64) (compliance.ObligationView, error) {
	if _, err := s.Scale(asset); err != nil {
		return compliance.ObligationView{}, err
	}
	if !s.digital[asset] {
		return compliance.ObligationView{}, apperr.New(apperr.InvalidParameter, "%s is not a digital asset: it cannot be mined", asset)
	}
	ob, err := s.rules.Obligation(minerID, asset, periodStart, mined)
	if err != nil {
		return compliance.ObligationView{}, err
	}
	var view compliance.ObligationView
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := s.minerExists(ctx, tx, minerID); err != nil {
			return err
		}
		lics, err := s.licences(ctx, tx, minerID)
		if err != nil {
			return err
		}
		if err := compliance.CheckReportPeriod(lics, periodStart); err != nil {
			return err
		}
		minedNum := s.numeric(asset, mined)
		var reportID int64
		err = tx.QueryRow(ctx, `INSERT INTO mining_reports (miner_id, asset, period_start, mined) VALUES ($1, $2, $3, $4::numeric)
			RETURNING id`, minerID, asset, ob.PeriodStart, minedNum).Scan(&reportID)
		if isUniqueViolation(err) {
			return apperr.New(apperr.Conflict, "miner %q already reported %s for %s", minerID, asset, ob.PeriodStart.Format("2006-01"))
		}
		if err != nil {
			return fmt.Errorf("compliance: report: %w", err)
		}
		_, status := ob.Progress(0)
		var id int64
		err = tx.QueryRow(ctx, `INSERT INTO obligations (miner_id, report_id, asset, period_start, period_end, deadline,
				mined, share, ruleset, ruleset_version, required, sold, status, met_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8::numeric, $9, $10, $11::numeric, 0, $12,
				CASE WHEN $12::text = 'met' THEN now() END) RETURNING id`,
			minerID, reportID, asset, ob.PeriodStart, ob.PeriodEnd, ob.Deadline, minedNum, ob.Share.String(),
			ob.RuleSet, ob.RuleSetVersion, s.numeric(asset, ob.Required), string(status)).Scan(&id)
		if err != nil {
			return fmt.Errorf("compliance: obligation: %w", err)
		}
		view = s.view(id, ob, 0)
		return nil
	})
	return view, err
}

func (s *Store) numeric(asset string, minor int64) string {
	return money.Format(minor, s.scales[asset])
}

func (s *Store) view(id int64, ob compliance.Obligation, sold int64) compliance.ObligationView {
	remaining, status := ob.Progress(sold)
	day := func(t time.Time) string { return t.Format("2006-01-02") }
	return compliance.ObligationView{ID: id, Miner: ob.MinerID, Asset: ob.Asset, Period: ob.PeriodStart.Format("2006-01"),
		PeriodStart: day(ob.PeriodStart), PeriodEnd: day(ob.PeriodEnd), Deadline: day(ob.Deadline),
		Mined: s.numeric(ob.Asset, ob.Mined), Share: ob.Share.String(), RuleSet: ob.RuleSet, RuleSetVersion: ob.RuleSetVersion,
		Required: s.numeric(ob.Asset, ob.Required), Sold: s.numeric(ob.Asset, sold),
		Remaining: s.numeric(ob.Asset, remaining), Status: status}
}

// Obligations returns a miner's obligations, oldest period first, or UNKNOWN_MINER.
func (s *Store) Obligations(ctx context.Context, minerID string) ([]compliance.ObligationView, error) {
	if err := s.minerExists(ctx, s.db, minerID); err != nil {
		return nil, err
	}
	rows, err := s.db.Query(ctx, `SELECT id, asset, period_start, period_end, deadline, mined::text, share::text,
			ruleset, ruleset_version, required::text, sold::text
		FROM obligations WHERE miner_id = $1 ORDER BY period_start, asset`, minerID)
	if err != nil {
		return nil, fmt.Errorf("compliance: obligations: %w", err)
	}
	out := []compliance.ObligationView{}
	var id int64
	var ob compliance.Obligation
	var mined, share, required, sold string
	_, err = pgx.ForEachRow(rows, []any{&id, &ob.Asset, &ob.PeriodStart, &ob.PeriodEnd, &ob.Deadline, &mined, &share,
		&ob.RuleSet, &ob.RuleSetVersion, &required, &sold}, func() error {
		ob.MinerID = minerID
		scale := s.scales[ob.Asset]
		var soldMinor int64
		var err error
		if ob.Mined, err = money.Parse(mined, scale); err != nil {
			return err
		}
		if ob.Required, err = money.Parse(required, scale); err != nil {
			return err
		}
		if soldMinor, err = money.Parse(sold, scale); err != nil {
			return err
		}
		if ob.Share, err = compliance.ParseShare(share); err != nil {
			return err
		}
		out = append(out, s.view(id, ob, soldMinor))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compliance: obligations: %w", err)
	}
	return out, nil
}

// ApplyMandatoryFills counts settled mandatory fills towards the selling
// miner's open obligations in the asset, oldest period first, inside the
// settlement transaction. A fill larger than what is open is counted up to
// the open amount; the rest stays on record as a mandatory fill without an
// obligation. Fill IDs are unique within a shard, so the shard names the
// fill. Implements settlement/postgres.MandatorySink.
func (s *Store) ApplyMandatoryFills(ctx context.Context, tx pgx.Tx, shard string, fills []settlement.MandatoryFill) error {
	for _, f := range fills {
		if err := s.applyFill(ctx, tx, shard, f); err != nil {
			return fmt.Errorf("fill %s: %w", f.FillID, err)
		}
	}
	return nil
}

func (s *Store) applyFill(ctx context.Context, tx pgx.Tx, shard string, f settlement.MandatoryFill) error {
	scale, ok := s.scales[f.Asset]
	if !ok {
		return fmt.Errorf("unknown asset %q", f.Asset)
	}
	rows, err := tx.Query(ctx, `SELECT o.id, o.required::text, o.sold::text FROM obligations o
		JOIN miner_accounts ma ON ma.miner_id = o.miner_id
		WHERE ma.account = $1 AND o.asset = $2 AND o.status = 'open'
		ORDER BY o.period_start, o.id FOR UPDATE OF o`, f.SellerAccount, f.Asset)
	if err != nil {
		return err
	}
	type open struct {
		id             int64
		required, sold int64
	}
	var opens []open
	var o open
	var required, sold string
	_, err = pgx.ForEachRow(rows, []any{&o.id, &required, &sold}, func() error {
		var err error
		if o.required, err = money.Parse(required, scale); err != nil {
			return err
		}
		if o.sold, err = money.Parse(sold, scale); err != nil {
			return err
		}
		opens = append(opens, o)
		return nil
	})
	if err != nil {
		return err
	}
	left := f.Quantity
	for _, o := range opens {
		if left == 0 {
			break
		}
		remaining, _ := compliance.Progress(o.required, o.sold)
		take := min(left, remaining)
		if take <= 0 {
			continue
		}
		left -= take
		newSold := o.sold + take
		_, status := compliance.Progress(o.required, newSold)
		if _, err := tx.Exec(ctx, `UPDATE obligations SET sold = $2::numeric, status = $3,
				met_at = CASE WHEN $3::text = 'met' THEN $4::timestamptz ELSE NULL END WHERE id = $1`,
			o.id, money.Format(newSold, scale), string(status), time.UnixMilli(f.ExecutedAt).UTC()); err != nil {
			return err
		}
		// The foreign key to fills makes a fill that was not recorded an error, never a silent skip.
		if _, err := tx.Exec(ctx, `INSERT INTO obligation_fills (obligation_id, shard, fill_id, quantity)
			VALUES ($1, $2, $3, $4::numeric)`, o.id, shard, f.FillID, money.Format(take, scale)); err != nil {
			return err
		}
	}
	return nil
}
