package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/apperr"
)

func (s *Store) view(id int64, ob compliance.Obligation, sold int64, status compliance.Status) compliance.ObligationView {
	remaining, _ := ob.Progress(sold)
	return compliance.ObligationView{ID: id, Miner: ob.MinerID, Asset: ob.Asset, Period: ob.PeriodStart.Format("2006-01"),
		PeriodStart: day(ob.PeriodStart), PeriodEnd: day(ob.PeriodEnd), Deadline: day(ob.Deadline),
		Mined: s.numeric(ob.Asset, ob.Mined), Share: ob.Share.String(), RuleSet: ob.RuleSet, RuleSetVersion: ob.RuleSetVersion,
		Required: s.numeric(ob.Asset, ob.Required), Sold: s.numeric(ob.Asset, sold),
		Remaining: s.numeric(ob.Asset, remaining), Status: status}
}

// ObligationFilter selects obligations; empty fields select all.
type ObligationFilter struct {
	Miner  string
	Status compliance.Status
	Period string // "2025-01"
	Asset  string
}

// Obligations lists obligations, oldest period first. A filter naming an
// unknown miner gets UNKNOWN_MINER; an unknown status INVALID_PARAMETER.
func (s *Store) Obligations(ctx context.Context, f ObligationFilter) ([]compliance.ObligationView, error) {
	switch f.Status {
	case "", compliance.StatusOpen, compliance.StatusMet, compliance.StatusOverdue:
	default:
		return nil, apperr.New(apperr.InvalidParameter, "status %q is not one of open, met, overdue", f.Status)
	}
	if f.Miner != "" {
		if err := s.minerExists(ctx, s.db, f.Miner); err != nil {
			return nil, err
		}
	}
	return s.obligations(ctx, `WHERE ($1 = '' OR miner_id = $1) AND ($2 = '' OR status = $2)
		AND ($3 = '' OR to_char(period_start, 'YYYY-MM') = $3) AND ($4 = '' OR asset = $4)`,
		f.Miner, string(f.Status), f.Period, f.Asset)
}

func (s *Store) obligations(ctx context.Context, where string, args ...any) ([]compliance.ObligationView, error) {
	rows, err := s.db.Query(ctx, `SELECT id, miner_id, asset, period_start, period_end, deadline, mined::text, share::text,
			ruleset, ruleset_version, report_version, required::text, sold::text, status
		FROM obligations `+where+` ORDER BY period_start, miner_id, asset, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("compliance: obligations: %w", err)
	}
	out := []compliance.ObligationView{}
	var id int64
	var ob compliance.Obligation
	var reportVersion int
	var mined, share, required, sold, status string
	_, err = pgx.ForEachRow(rows, []any{&id, &ob.MinerID, &ob.Asset, &ob.PeriodStart, &ob.PeriodEnd, &ob.Deadline, &mined, &share,
		&ob.RuleSet, &ob.RuleSetVersion, &reportVersion, &required, &sold, &status}, func() error {
		var soldMinor int64
		var err error
		if ob.Mined, err = s.parse(ob.Asset, mined); err != nil {
			return err
		}
		if ob.Required, err = s.parse(ob.Asset, required); err != nil {
			return err
		}
		if soldMinor, err = s.parse(ob.Asset, sold); err != nil {
			return err
		}
		if ob.Share, err = compliance.ParseShare(share); err != nil {
			return err
		}
		v := s.view(id, ob, soldMinor, compliance.Status(status))
		v.ReportVersion = reportVersion
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compliance: obligations: %w", err)
	}
	return out, nil
}

// Computation is one computation of an obligation, with its inputs.
type Computation struct {
	Version        int       `json:"version"`
	ReportVersion  int       `json:"reportVersion"`
	Mined          string    `json:"mined"`
	Share          string    `json:"share"`
	RuleSet        string    `json:"ruleSet"`
	RuleSetVersion int       `json:"ruleSetVersion"`
	Required       string    `json:"required"`
	ComputedAt     time.Time `json:"computedAt"`
}

// CountedFill is a fill (or part) counted towards an obligation.
type CountedFill struct {
	Shard      string    `json:"shard"`
	FillID     string    `json:"fillId"`
	Quantity   string    `json:"quantity"`
	Price      string    `json:"price"`
	ExecutedAt time.Time `json:"executedAt"`
	Reference  string    `json:"reference"` // "" with basis none
	Basis      string    `json:"basis"`
}

// ExcludedFill is a fill sold by a miner's account that counts towards
// nothing, with the reason.
type ExcludedFill struct {
	Shard      string    `json:"shard"`
	FillID     string    `json:"fillId"`
	Miner      string    `json:"miner"`
	Asset      string    `json:"asset"`
	Quantity   string    `json:"quantity"`
	Price      string    `json:"price"`
	ExecutedAt time.Time `json:"executedAt"`
	Reason     string    `json:"reason"`
	Detail     string    `json:"detail"`
	Reference  string    `json:"reference"`
	Basis      string    `json:"basis"`
}

// ObligationDetail is one obligation with how it was computed, what counted
// towards it, what a miner sold in its window that did not count, and its
// violation if it became overdue.
type ObligationDetail struct {
	compliance.ObligationView
	Computations []Computation  `json:"computations"`
	Counted      []CountedFill  `json:"counted"`
	Excluded     []ExcludedFill `json:"excluded"`
	Violation    *Violation     `json:"violation"`
}

// Obligation returns one obligation's detail; an unknown ID is
// INVALID_PARAMETER.
func (s *Store) Obligation(ctx context.Context, id int64) (ObligationDetail, error) {
	obs, err := s.obligations(ctx, `WHERE id = $1`, id)
	if err != nil {
		return ObligationDetail{}, err
	}
	if len(obs) == 0 {
		return ObligationDetail{}, apperr.New(apperr.InvalidParameter, "unknown obligation %d", id)
	}
	d := ObligationDetail{ObligationView: obs[0]}
	if d.Computations, err = list(ctx, s.db, `SELECT version, report_version, mined::text, share::text, ruleset, ruleset_version,
			required::text, computed_at FROM obligation_computations WHERE obligation_id = $1 ORDER BY version`,
		func(rows pgx.Rows) (Computation, error) {
			var c Computation
			err := rows.Scan(&c.Version, &c.ReportVersion, &c.Mined, &c.Share, &c.RuleSet, &c.RuleSetVersion, &c.Required, &c.ComputedAt)
			c.Mined, c.Required = s.normal(d.Asset, c.Mined), s.normal(d.Asset, c.Required)
			return c, err
		}, id); err != nil {
		return ObligationDetail{}, err
	}
	if d.Counted, err = list(ctx, s.db, `SELECT of.shard, of.fill_id, of.quantity::text, f.price::text, f.executed_at,
			coalesce(of.reference::text, ''), of.basis
		FROM obligation_fills of JOIN fills f ON f.shard = of.shard AND f.id = of.fill_id
		WHERE of.obligation_id = $1 ORDER BY f.executed_at, of.shard, of.fill_id`,
		func(rows pgx.Rows) (CountedFill, error) {
			var c CountedFill
			err := rows.Scan(&c.Shard, &c.FillID, &c.Quantity, &c.Price, &c.ExecutedAt, &c.Reference, &c.Basis)
			c.Quantity = s.normal(d.Asset, c.Quantity)
			return c, err
		}, id); err != nil {
		return ObligationDetail{}, err
	}
	start, _ := time.Parse(time.DateOnly, d.PeriodStart)
	deadline, _ := time.Parse(time.DateOnly, d.Deadline)
	from, to := compliance.OpenObligation{PeriodStart: start, Deadline: deadline}.Window()
	if d.Excluded, err = s.excluded(ctx, `WHERE x.miner_id = $1 AND x.asset = $2 AND f.executed_at >= $3 AND f.executed_at < $4`,
		d.Miner, d.Asset, from, to); err != nil {
		return ObligationDetail{}, err
	}
	vs, err := s.violations(ctx, `WHERE v.obligation_id = $1`, id)
	if err != nil {
		return ObligationDetail{}, err
	}
	if len(vs) > 0 {
		d.Violation = &vs[0]
	}
	return d, nil
}

// normal rewrites a stored NUMERIC in the asset's scale ("0.6" → "0.60000000").
func (s *Store) normal(asset, v string) string {
	if m, err := s.parse(asset, v); err == nil {
		return s.numeric(asset, m)
	}
	return v
}

// ExcludedFills lists the excluded fills of one miner or all ("").
func (s *Store) ExcludedFills(ctx context.Context, minerID string) ([]ExcludedFill, error) {
	return s.excluded(ctx, `WHERE $1 = '' OR x.miner_id = $1`, minerID)
}

func (s *Store) excluded(ctx context.Context, where string, args ...any) ([]ExcludedFill, error) {
	return list(ctx, s.db, `SELECT x.shard, x.fill_id, x.miner_id, x.asset, x.quantity::text, f.price::text, f.executed_at,
			x.reason, x.detail, coalesce(x.reference::text, ''), x.basis
		FROM excluded_fills x JOIN fills f ON f.shard = x.shard AND f.id = x.fill_id `+where+`
		ORDER BY f.executed_at, x.shard, x.fill_id`,
		func(rows pgx.Rows) (ExcludedFill, error) {
			var e ExcludedFill
			err := rows.Scan(&e.Shard, &e.FillID, &e.Miner, &e.Asset, &e.Quantity, &e.Price, &e.ExecutedAt, &e.Reason, &e.Detail,
				&e.Reference, &e.Basis)
			e.Quantity = s.normal(e.Asset, e.Quantity)
			return e, err
		}, args...)
}

// Violation is an overdue obligation's sanction.
type Violation struct {
	ID           int64  `json:"id"`
	ObligationID int64  `json:"obligation"`
	Miner        string `json:"miner"`
	AroseOn      string `json:"aroseOn"`
	// Number is which violation of the miner within the repeat window this
	// is; a repeat may carry a suspension recommendation.
	Number  int   `json:"number"`
	FineMCI int64 `json:"fineMci"`
	// FineTenge is "" when the year's MCI is not confirmed; FineNote says why.
	FineTenge string `json:"fineTenge"`
	FineNote  string `json:"fineNote"`
	// SuspensionMonths > 0 recommends that the regulator suspend the
	// miner's licence for that long.
	SuspensionMonths int    `json:"suspensionRecommendedMonths"`
	RuleSet          string `json:"ruleSet"`
	RuleSetVersion   int    `json:"ruleSetVersion"`
	Source           string `json:"source"`
	// Revised: the number and sanction are a revision of those first
	// recorded (an earlier violation of the miner was recorded later; the
	// audit log has the change).
	Revised bool `json:"revised,omitempty"`
}

// Violations lists violations of one miner or all (""), oldest first.
func (s *Store) Violations(ctx context.Context, minerID string) ([]Violation, error) {
	return s.violations(ctx, `WHERE $1 = '' OR v.miner_id = $1`, minerID)
}

func (s *Store) violations(ctx context.Context, where string, args ...any) ([]Violation, error) {
	return list(ctx, s.db, `SELECT v.id, v.obligation_id, v.miner_id, v.arose_on, v.number, v.fine_mci, coalesce(v.fine_tenge::text, ''),
			v.fine_note, v.suspension_months, v.ruleset, v.ruleset_version, v.source, v.revised
		FROM violations_now v `+where+` ORDER BY v.arose_on, v.id`,
		func(rows pgx.Rows) (Violation, error) {
			var v Violation
			var arose time.Time
			err := rows.Scan(&v.ID, &v.ObligationID, &v.Miner, &arose, &v.Number, &v.FineMCI, &v.FineTenge, &v.FineNote,
				&v.SuspensionMonths, &v.RuleSet, &v.RuleSetVersion, &v.Source, &v.Revised)
			v.AroseOn = day(arose)
			return v, err
		}, args...)
}

// Sweep moves every open obligation whose deadline has passed (by the
// store's clock) to overdue and records its violation: numbered among the
// miner's violations in the repeat window, fined from the sanctions table
// in force on the day it arose (the day after the deadline), with a
// suspension recommendation where the table gives one. It returns the new
// violations. Running it again finds nothing new.
func (s *Store) Sweep(ctx context.Context) ([]Violation, error) {
	today := s.Today()
	var ids []int64
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := lockLog(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, miner_id, deadline FROM obligations WHERE status = 'open' AND deadline < $1
			ORDER BY deadline, miner_id, id FOR UPDATE`, today)
		if err != nil {
			return fmt.Errorf("compliance: sweep: %w", err)
		}
		type due struct {
			id       int64
			miner    string
			deadline time.Time
		}
		var dues []due
		var d due
		if _, err := pgx.ForEachRow(rows, []any{&d.id, &d.miner, &d.deadline}, func() error {
			dues = append(dues, d)
			return nil
		}); err != nil {
			return fmt.Errorf("compliance: sweep: %w", err)
		}
		for _, d := range dues {
			id, err := s.violate(ctx, tx, d.id, d.miner, d.deadline.AddDate(0, 0, 1))
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil || len(ids) == 0 {
		return []Violation{}, err
	}
	return s.violations(ctx, `WHERE v.id = ANY($1)`, ids)
}

// sanctionFor is the sanction of a miner's nth violation arising on day,
// under rule set r, with its fine in tenge where r confirms that year's MCI.
func sanctionFor(r *compliance.RuleSet, day time.Time, n int) (st compliance.SanctionStep, fineTenge *string, note string, err error) {
	if st, err = r.Sanctions.Sanction(day, n); err != nil {
		return st, nil, "", err
	}
	t, terr := r.InTenge(st.FineMCI, day.Year())
	if terr != nil {
		return st, nil, fmt.Sprintf("%d MCI; not converted to tenge: %s", st.FineMCI, apperr.MessageOf(terr)), nil
	}
	v := fmt.Sprintf("%d.00", t)
	return st, &v, fmt.Sprintf("%d MCI at the %d MCI", st.FineMCI, day.Year()), nil
}

func (s *Store) violate(ctx context.Context, tx pgx.Tx, obID int64, minerID string, arose time.Time) (int64, error) {
	rows, err := tx.Query(ctx, `SELECT arose_on FROM violations WHERE miner_id = $1`, minerID)
	if err != nil {
		return 0, fmt.Errorf("compliance: violations: %w", err)
	}
	earlier, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return 0, fmt.Errorf("compliance: violations: %w", err)
	}
	r := s.rules
	n := r.Sanctions.ViolationNumber(arose, earlier)
	st, fineTenge, note, err := sanctionFor(r, arose, n)
	if err != nil {
		return 0, err
	}
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO violations (obligation_id, miner_id, arose_on, number, fine_mci, fine_tenge, fine_note,
			suspension_months, ruleset, ruleset_version, source, created_at)
		VALUES ($1, $2, $3, $4, $5, $6::numeric, $7, $8, $9, $10, $11, $12) RETURNING id`,
		obID, minerID, arose, n, st.FineMCI, fineTenge, note, st.SuspensionMonths, r.ID, r.Version, st.Mark.Source, s.Clock().UTC()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("compliance: violation: %w", err)
	}
	if err := s.renumberLater(ctx, tx, minerID, arose, append(earlier, arose)); err != nil {
		return 0, err
	}
	var asset, sold string
	if err := tx.QueryRow(ctx, `UPDATE obligations SET status = 'overdue', overdue_at = $2 WHERE id = $1 RETURNING asset, sold::text`,
		obID, s.Clock().UTC()).Scan(&asset, &sold); err != nil {
		return 0, fmt.Errorf("compliance: overdue: %w", err)
	}
	if err := s.appendLog(ctx, tx, "", nil, []logItem{stateItem(obID, minerID, compliance.StatusOverdue, s.normal(asset, sold),
		compliance.StartOf(arose))}); err != nil {
		return 0, err
	}
	return id, s.audit(ctx, tx, compliance.Actor{ID: "system", Reason: "deadline passed with the required sale not met"},
		"obligation.overdue", minerID, map[string]any{"obligation": obID, "violation": id, "number": n, "fineMci": st.FineMCI,
			"suspensionRecommendedMonths": st.SuspensionMonths})
}

// renumberLater recounts the miner's violations that arose after day,
// against all (every arose_on of the miner, the new one included), once a
// violation arising on day is recorded after them: an obligation that fell
// due earlier but was created later (a late or amended report). Each whose
// number changes gets the sanction of its new number, from the store's rule
// set when it is the one the violation was recorded under, as a revision
// (violation_revisions; violations are append-only), with an audit entry of
// the number and fine before and after. Without this a late violation would
// leave the repeats after it fined as first ones.
func (s *Store) renumberLater(ctx context.Context, tx pgx.Tx, minerID string, day time.Time, all []time.Time) error {
	type later struct {
		id, obligation int64
		arose          time.Time
		number         int
		fine           int64
		suspension     int
		ruleSet        string
	}
	rows, err := tx.Query(ctx, `SELECT id, obligation_id, arose_on, number, fine_mci, suspension_months, ruleset
		FROM violations_now WHERE miner_id = $1 AND arose_on > $2 ORDER BY arose_on, id`, minerID, day)
	if err != nil {
		return fmt.Errorf("compliance: renumber violations: %w", err)
	}
	var ls []later
	var l later
	if _, err := pgx.ForEachRow(rows, []any{&l.id, &l.obligation, &l.arose, &l.number, &l.fine, &l.suspension, &l.ruleSet}, func() error {
		ls = append(ls, l)
		return nil
	}); err != nil {
		return fmt.Errorf("compliance: renumber violations: %w", err)
	}
	r := s.rules
	for _, l := range ls {
		if l.ruleSet != r.ID {
			// Another rule set's table and window: not this store's to
			// recompute. Left as recorded, and said so.
			if err := s.audit(ctx, tx, compliance.Actor{ID: "system", Reason: "an earlier violation was recorded late; " +
				"this one is under another rule set and was not renumbered"}, "violation.not_renumbered", minerID,
				map[string]any{"violation": l.id, "ruleSet": l.ruleSet}); err != nil {
				return err
			}
			continue
		}
		n := r.Sanctions.ViolationNumber(l.arose, all)
		if n == l.number {
			continue
		}
		st, fineTenge, note, err := sanctionFor(r, l.arose, n)
		if err != nil {
			return err
		}
		// Violations are append-only: the change is a revision of its own
		// (violations_now applies the newest).
		if _, err := tx.Exec(ctx, `INSERT INTO violation_revisions (violation_id, number, fine_mci, fine_tenge, fine_note,
				suspension_months, ruleset_version, source, reason, created_at)
			VALUES ($1, $2, $3, $4::numeric, $5, $6, $7, $8, $9, $10)`,
			l.id, n, st.FineMCI, fineTenge, note, st.SuspensionMonths, r.Version, st.Mark.Source,
			"renumbered: an earlier violation of the miner was recorded after this one", s.Clock().UTC()); err != nil {
			return fmt.Errorf("compliance: renumber violation %d: %w", l.id, err)
		}
		if err := s.audit(ctx, tx, compliance.Actor{ID: "system", Reason: "an earlier violation of the miner was recorded after this one"},
			"violation.renumbered", minerID, map[string]any{"violation": l.id, "obligation": l.obligation,
				"number": map[string]int{"was": l.number, "now": n}, "fineMci": map[string]int64{"was": l.fine, "now": st.FineMCI},
				"suspensionRecommendedMonths": map[string]int{"was": l.suspension, "now": st.SuspensionMonths}}); err != nil {
			return err
		}
	}
	return nil
}

// PermissionChange is a change of a miner's permission to place mandatory
// orders that the engine has not been sent yet.
type PermissionChange struct {
	Miner    string   `json:"miner"`
	Accounts []string `json:"accounts"`
	Granted  bool     `json:"granted"`
}

// PermissionChanges computes, for every miner, whether its accounts may
// place mandatory orders today — while it holds an active licence, or while
// any obligation of it is unmet (a suspended, expired or revoked licence
// does not cancel obligations already due: selling stays allowed and
// required) — and returns those that differ from what the engine was last
// sent. The caller sends them and then calls MarkPermission.
func (s *Store) PermissionChanges(ctx context.Context) ([]PermissionChange, error) {
	ms, err := s.Miners(ctx)
	if err != nil {
		return nil, err
	}
	today := s.Today()
	var out []PermissionChange
	for _, m := range ms {
		lics, err := s.Licences(ctx, m.ID)
		if err != nil {
			return nil, err
		}
		want := false
		for _, l := range lics {
			want = want || l.ActiveOn(today)
		}
		var sent *bool
		var unmet bool
		if err := s.db.QueryRow(ctx, `SELECT mandatory_sell, EXISTS (SELECT 1 FROM obligations
				WHERE miner_id = $1 AND status IN ('open', 'overdue') AND sold < required) FROM miners WHERE id = $1`, m.ID).
			Scan(&sent, &unmet); err != nil {
			return nil, fmt.Errorf("compliance: permissions: %w", err)
		}
		want = want || unmet
		if sent == nil || *sent != want {
			out = append(out, PermissionChange{Miner: m.ID, Accounts: m.Accounts, Granted: want})
		}
	}
	return out, nil
}

// permissionLock is the advisory lock a permission sync holds from reading
// the changes to recording them (see LockPermissions).
const permissionLock int64 = 0x5341545502 // "SATU" 02

// LockPermissions takes the permission sync's lock, across processes, and
// returns its release. A sync reads what changed, sends the engine the
// commands, then records them: two at once could send a grant and a revoke
// in one order and record them in the other, leaving the engine granting a
// miner the database says it revoked — and no later sync would see a
// difference to correct.
func (s *Store) LockPermissions(ctx context.Context) (unlock func(), err error) {
	conn, err := s.db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("compliance: permission lock: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, permissionLock); err != nil {
		conn.Release()
		return nil, fmt.Errorf("compliance: permission lock: %w", err)
	}
	return func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, permissionLock); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx)) // a closed session drops its locks
		}
		conn.Release()
	}, nil
}

// MarkPermission records that the engine was sent the permission.
func (s *Store) MarkPermission(ctx context.Context, c PermissionChange) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE miners SET mandatory_sell = $2 WHERE id = $1`, c.Miner, c.Granted)
		if err != nil {
			return fmt.Errorf("compliance: permission: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return apperr.New(apperr.UnknownMiner, "unknown miner %q", c.Miner)
		}
		return s.audit(ctx, tx, compliance.Actor{ID: "system", Reason: "licence status and open obligations"},
			"permission.mandatory_sell", c.Miner, c)
	})
}
