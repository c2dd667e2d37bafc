package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/apperr"
)

// SubmitReport records the first version of a miner's report of an asset
// for a month and creates its obligation under the store's rule set.
// Refused: unknown miner, an asset that cannot be mined, a month that has
// not ended, no active licence in the month, a month already reported (an
// amendment is AmendReport), an unconfirmed rule.
func (s *Store) SubmitReport(ctx context.Context, r compliance.Report, a compliance.Actor) (compliance.ObligationView, error) {
	return s.writeReport(ctx, r, a, false)
}

// AmendReport records a new version of a report; the old versions stay. The
// obligation is recomputed from the new version (a new computation row) and
// keeps what was already sold: it is met if that covers the new required
// volume. An amendment after the deadline does not undo a violation.
func (s *Store) AmendReport(ctx context.Context, r compliance.Report, a compliance.Actor) (compliance.ObligationView, error) {
	if a.Reason == "" {
		return compliance.ObligationView{}, apperr.New(apperr.InvalidParameter, "an amendment needs a reason")
	}
	return s.writeReport(ctx, r, a, true)
}

func (s *Store) writeReport(ctx context.Context, r compliance.Report, a compliance.Actor, amend bool) (compliance.ObligationView, error) {
	if _, err := s.Scale(r.Asset); err != nil {
		return compliance.ObligationView{}, err
	}
	if !s.digital[r.Asset] {
		return compliance.ObligationView{}, apperr.New(apperr.InvalidParameter, "%s is not a digital asset: it cannot be mined", r.Asset)
	}
	today := s.Today()
	if err := r.Validate(today); err != nil {
		return compliance.ObligationView{}, err
	}
	ob, err := s.rules.Obligation(r.MinerID, r.Asset, r.PeriodStart, r.Mined)
	if err != nil {
		return compliance.ObligationView{}, err
	}
	var view compliance.ObligationView
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := lockLog(ctx, tx); err != nil {
			return err
		}
		if err := s.minerExists(ctx, tx, r.MinerID); err != nil {
			return err
		}
		lics, err := s.licences(ctx, tx, r.MinerID)
		if err != nil {
			return err
		}
		if err := compliance.CheckReportPeriod(lics, r.PeriodStart); err != nil {
			return err
		}
		if r.Pool != "" {
			var one int
			if err := tx.QueryRow(ctx, `SELECT 1 FROM mining_pools WHERE id = $1`, r.Pool).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
				return apperr.New(apperr.InvalidParameter, "pool %q is not registered", r.Pool)
			} else if err != nil {
				return fmt.Errorf("compliance: pool: %w", err)
			}
		}
		if amend {
			view, err = s.amend(ctx, tx, r, ob, a, today)
		} else {
			view, err = s.submit(ctx, tx, r, ob, a)
		}
		return err
	})
	return view, err
}

func (s *Store) submit(ctx context.Context, tx pgx.Tx, r compliance.Report, ob compliance.Obligation, a compliance.Actor) (compliance.ObligationView, error) {
	mined := s.numeric(r.Asset, r.Mined)
	now := s.Clock().UTC()
	var reportID int64
	err := tx.QueryRow(ctx, `INSERT INTO mining_reports (miner_id, asset, period_start, mined, submitted_at) VALUES ($1, $2, $3, $4::numeric, $5)
		RETURNING id`, r.MinerID, r.Asset, ob.PeriodStart, mined, now).Scan(&reportID)
	if isUniqueViolation(err) {
		return compliance.ObligationView{}, apperr.New(apperr.Conflict,
			"miner %q already reported %s for %s; send an amendment instead", r.MinerID, r.Asset, ob.PeriodStart.Format("2006-01"))
	}
	if err != nil {
		return compliance.ObligationView{}, fmt.Errorf("compliance: report: %w", err)
	}
	if err := s.insertVersion(ctx, tx, reportID, 1, r, a, "submitted", now); err != nil {
		return compliance.ObligationView{}, err
	}
	_, status := ob.Progress(0)
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO obligations (miner_id, report_id, asset, period_start, period_end, deadline,
			mined, share, ruleset, ruleset_version, required, sold, status, met_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8::numeric, $9, $10, $11::numeric, 0, $12,
			CASE WHEN $12::text = 'met' THEN $13::timestamptz END, $13) RETURNING id`,
		r.MinerID, reportID, r.Asset, ob.PeriodStart, ob.PeriodEnd, ob.Deadline, mined, ob.Share.String(),
		ob.RuleSet, ob.RuleSetVersion, s.numeric(r.Asset, ob.Required), string(status), now).Scan(&id)
	if err != nil {
		return compliance.ObligationView{}, fmt.Errorf("compliance: obligation: %w", err)
	}
	if err := s.insertComputation(ctx, tx, id, 1, 1, ob, now); err != nil {
		return compliance.ObligationView{}, err
	}
	if err := s.appendLog(ctx, tx, "", nil, []logItem{s.reportItem(reportID, id, r, ob, 1, "submitted"),
		s.computationItem(id, 1, 1, ob)}); err != nil {
		return compliance.ObligationView{}, err
	}
	if err := s.audit(ctx, tx, a, "report.submit", r.MinerID, reportDetail(r, ob, 1)); err != nil {
		return compliance.ObligationView{}, err
	}
	// A report sent after its deadline: nothing sold in the window can be
	// counted any more, so the obligation is overdue at once, with its
	// violation, instead of waiting for the next sweep.
	if status == compliance.StatusOpen && compliance.Overdue(ob.Deadline, s.Today()) {
		if _, err := s.violate(ctx, tx, id, r.MinerID, ob.Deadline.AddDate(0, 0, 1)); err != nil {
			return compliance.ObligationView{}, err
		}
		status = compliance.StatusOverdue
	}
	v := s.view(id, ob, 0, status)
	v.ReportVersion = 1
	return v, nil
}

func (s *Store) amend(ctx context.Context, tx pgx.Tx, r compliance.Report, ob compliance.Obligation, a compliance.Actor, today time.Time) (compliance.ObligationView, error) {
	var reportID, obID int64
	var version, computations int
	var soldText, status, ruleSet string
	var ruleSetVersion int
	err := tx.QueryRow(ctx, `SELECT r.id, o.id, o.sold::text, o.status, o.ruleset, o.ruleset_version,
			(SELECT max(version) FROM report_versions WHERE report_id = r.id),
			(SELECT max(version) FROM obligation_computations WHERE obligation_id = o.id)
		FROM mining_reports r JOIN obligations o ON o.report_id = r.id
		WHERE r.miner_id = $1 AND r.asset = $2 AND r.period_start = $3 FOR UPDATE OF o`,
		r.MinerID, r.Asset, ob.PeriodStart).Scan(&reportID, &obID, &soldText, &status, &ruleSet, &ruleSetVersion, &version, &computations)
	if errors.Is(err, pgx.ErrNoRows) {
		return compliance.ObligationView{}, apperr.New(apperr.InvalidParameter,
			"miner %q has no %s report for %s to amend; submit one first", r.MinerID, r.Asset, ob.PeriodStart.Format("2006-01"))
	}
	if err != nil {
		return compliance.ObligationView{}, fmt.Errorf("compliance: amend: %w", err)
	}
	// An obligation keeps the rule set that computed it. An amendment is
	// computed under the server's, which may be a later version of that
	// rule set (versions add dated data, such as later years' MCI, and keep
	// what earlier periods used) but not another rule set, nor an older
	// version: either would change the share behind the miner's back.
	if ruleSet != ob.RuleSet || ruleSetVersion > ob.RuleSetVersion {
		return compliance.ObligationView{}, apperr.New(apperr.Conflict,
			"the %s obligation of %s for %s was computed under rule set %s v%d; this server applies %s v%d: amend it where that rule set (or a later version of it) applies",
			r.Asset, r.MinerID, ob.PeriodStart.Format("2006-01"), ruleSet, ruleSetVersion, ob.RuleSet, ob.RuleSetVersion)
	}
	sold, err := s.parse(r.Asset, soldText)
	if err != nil {
		return compliance.ObligationView{}, err
	}
	now := s.Clock().UTC()
	version++
	if err := s.insertVersion(ctx, tx, reportID, version, r, a, a.Reason, now); err != nil {
		return compliance.ObligationView{}, err
	}
	if err := s.insertComputation(ctx, tx, obID, computations+1, version, ob, now); err != nil {
		return compliance.ObligationView{}, err
	}
	items := []logItem{s.reportItem(reportID, obID, r, ob, version, a.Reason), s.computationItem(obID, computations+1, version, ob)}
	// Met if what was sold covers the new figure; otherwise open while in
	// time, and an overdue obligation stays overdue (its violation stands).
	_, next := ob.Progress(sold)
	if next == compliance.StatusOpen && (status == string(compliance.StatusOverdue) || compliance.Overdue(ob.Deadline, today)) {
		next = compliance.StatusOverdue
	}
	if _, err := tx.Exec(ctx, `UPDATE obligations SET mined = $2::numeric, share = $3::numeric, ruleset = $4, ruleset_version = $5,
			required = $6::numeric, report_version = $7, status = $8,
			met_at = CASE WHEN $8::text = 'met' THEN coalesce(met_at, $9::timestamptz) END
		WHERE id = $1`, obID, s.numeric(r.Asset, ob.Mined), ob.Share.String(), ob.RuleSet, ob.RuleSetVersion,
		s.numeric(r.Asset, ob.Required), version, string(next), now); err != nil {
		return compliance.ObligationView{}, fmt.Errorf("compliance: recompute: %w", err)
	}
	if next == compliance.StatusMet && status != string(compliance.StatusMet) {
		items = append(items, stateItem(obID, r.MinerID, next, s.numeric(r.Asset, sold), now))
	}
	if err := s.appendLog(ctx, tx, "", nil, items); err != nil {
		return compliance.ObligationView{}, err
	}
	if err := s.audit(ctx, tx, a, "report.amend", r.MinerID, reportDetail(r, ob, version)); err != nil {
		return compliance.ObligationView{}, err
	}
	// Overdue now and without a violation — it was still open past its
	// deadline (the sweep had not reached it), or it was met in time and the
	// amendment raised what was due: what was sold by the deadline fell short
	// of the corrected figure, which is a violation like any other. The sweep
	// only looks at open obligations, so it is recorded here.
	if next == compliance.StatusOverdue {
		var has bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM violations WHERE obligation_id = $1)`, obID).Scan(&has); err != nil {
			return compliance.ObligationView{}, fmt.Errorf("compliance: amend: %w", err)
		}
		if !has {
			if _, err := s.violate(ctx, tx, obID, r.MinerID, ob.Deadline.AddDate(0, 0, 1)); err != nil {
				return compliance.ObligationView{}, err
			}
		}
	}
	v := s.view(obID, ob, sold, next)
	v.ReportVersion = version
	return v, nil
}

func reportDetail(r compliance.Report, ob compliance.Obligation, version int) map[string]any {
	return map[string]any{"asset": r.Asset, "period": ob.PeriodStart.Format("2006-01"), "version": version, "mined": r.Mined,
		"wallets": r.Wallets, "source": r.Source, "pool": r.Pool, "required": ob.Required, "share": ob.Share.String(),
		"ruleSet": ob.RuleSet, "ruleSetVersion": ob.RuleSetVersion}
}

func (s *Store) insertVersion(ctx context.Context, tx pgx.Tx, reportID int64, version int, r compliance.Report, a compliance.Actor, reason string, now time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO report_versions (report_id, version, mined, wallets, source, pool_id, reason, actor, submitted_at)
		VALUES ($1, $2, $3::numeric, $4, $5, nullif($6, ''), $7, $8, $9)`,
		reportID, version, s.numeric(r.Asset, r.Mined), r.Wallets, string(r.Source), r.Pool, reason, a.ID, now); err != nil {
		return fmt.Errorf("compliance: report version: %w", err)
	}
	return nil
}

func (s *Store) insertComputation(ctx context.Context, tx pgx.Tx, obID int64, version, reportVersion int, ob compliance.Obligation, now time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO obligation_computations (obligation_id, version, report_version, mined, share, ruleset,
			ruleset_version, required, computed_at)
		VALUES ($1, $2, $3, $4::numeric, $5::numeric, $6, $7, $8::numeric, $9)`,
		obID, version, reportVersion, s.numeric(ob.Asset, ob.Mined), ob.Share.String(), ob.RuleSet, ob.RuleSetVersion,
		s.numeric(ob.Asset, ob.Required), now); err != nil {
		return fmt.Errorf("compliance: computation: %w", err)
	}
	return nil
}

// ReportView is a report with all its versions and the pools' statements
// for the same miner, asset and month.
type ReportView struct {
	ID        int64  `json:"id"`
	Miner     string `json:"miner"`
	Asset     string `json:"asset"`
	Period    string `json:"period"`
	Mined     string `json:"mined"` // the newest version's
	Version   int    `json:"version"`
	PoolTotal string `json:"poolTotal"` // "" without statements
	// PoolMismatch flags a report whose figure differs from the pools'
	// statements; PoolDifference is reported minus pools.
	PoolMismatch   bool                `json:"poolMismatch"`
	PoolDifference string              `json:"poolDifference,omitempty"`
	Versions       []ReportVersionView `json:"versions"`
}

// ReportVersionView is one version of a report.
type ReportVersionView struct {
	Version     int       `json:"version"`
	Mined       string    `json:"mined"`
	Wallets     []string  `json:"wallets"`
	Source      string    `json:"source"`
	Pool        string    `json:"pool,omitempty"`
	Reason      string    `json:"reason"`
	Actor       string    `json:"actor"`
	SubmittedAt time.Time `json:"submittedAt"`
}

// ReportFilter selects reports; empty fields select all.
type ReportFilter struct {
	Miner  string
	Period string // "2025-01"
}

// Reports lists reports with their versions and the pool cross-check,
// oldest month first.
func (s *Store) Reports(ctx context.Context, f ReportFilter) ([]ReportView, error) {
	rows, err := s.db.Query(ctx, `SELECT r.id, r.miner_id, r.asset, to_char(r.period_start, 'YYYY-MM'),
			json_agg(json_build_object('version', v.version, 'mined', v.mined::text, 'wallets', v.wallets, 'source', v.source,
				'pool', coalesce(v.pool_id, ''), 'reason', v.reason, 'actor', v.actor, 'submittedAt', v.submitted_at) ORDER BY v.version),
			(SELECT sum(p.quantity)::text FROM pool_statements p WHERE p.miner_id = r.miner_id AND p.asset = r.asset AND p.period_start = r.period_start),
			(SELECT count(*) FROM pool_statements p WHERE p.miner_id = r.miner_id AND p.asset = r.asset AND p.period_start = r.period_start)
		FROM mining_reports r JOIN report_versions v ON v.report_id = r.id
		WHERE ($1 = '' OR r.miner_id = $1) AND ($2 = '' OR to_char(r.period_start, 'YYYY-MM') = $2)
		GROUP BY r.id ORDER BY r.period_start, r.miner_id, r.asset`, f.Miner, f.Period)
	if err != nil {
		return nil, fmt.Errorf("compliance: reports: %w", err)
	}
	out := []ReportView{}
	var v ReportView
	var poolTotal *string
	var statements int
	_, err = pgx.ForEachRow(rows, []any{&v.ID, &v.Miner, &v.Asset, &v.Period, &v.Versions, &poolTotal, &statements}, func() error {
		last := v.Versions[len(v.Versions)-1]
		v.Version, v.PoolTotal, v.PoolMismatch, v.PoolDifference = last.Version, "", false, ""
		mined, err := s.parse(v.Asset, last.Mined)
		if err != nil {
			return err
		}
		v.Mined = s.numeric(v.Asset, mined)
		for i := range v.Versions {
			if m, err := s.parse(v.Asset, v.Versions[i].Mined); err == nil {
				v.Versions[i].Mined = s.numeric(v.Asset, m)
			}
		}
		if poolTotal != nil {
			pools, err := s.parse(v.Asset, *poolTotal)
			if err != nil {
				return err
			}
			v.PoolTotal = s.numeric(v.Asset, pools)
			if diff, flagged := compliance.PoolMismatch(mined, pools, statements); flagged {
				v.PoolMismatch, v.PoolDifference = true, s.numeric(v.Asset, diff)
			}
		}
		out = append(out, v)
		v = ReportView{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compliance: reports: %w", err)
	}
	return out, nil
}

// PoolStatement is what a pool paid a miner for a month.
type PoolStatement struct {
	Pool, Miner, Asset string
	PeriodStart        time.Time
	Quantity           int64
}

// SubmitPoolStatement records a pool's distribution statement; the report
// list cross-checks it against the miner's report.
func (s *Store) SubmitPoolStatement(ctx context.Context, p PoolStatement, a compliance.Actor) error {
	if _, err := s.Scale(p.Asset); err != nil {
		return err
	}
	r := compliance.Report{MinerID: p.Miner, Asset: p.Asset, PeriodStart: p.PeriodStart, Mined: p.Quantity,
		Wallets: []string{"statement"}, Source: compliance.FromPool, Pool: p.Pool}
	if err := r.Validate(s.Today()); err != nil {
		return err
	}
	if err := s.minerExists(ctx, s.db, p.Miner); err != nil {
		return err
	}
	return s.insert(ctx, a, "pool.statement", p.Miner, map[string]any{"pool": p.Pool, "asset": p.Asset,
		"period": p.PeriodStart.Format("2006-01"), "quantity": p.Quantity},
		"a statement of pool "+p.Pool+" for "+p.Miner+" "+p.Asset+" "+p.PeriodStart.Format("2006-01"),
		`INSERT INTO pool_statements (pool_id, miner_id, asset, period_start, quantity, submitted_at, actor)
		VALUES ($1, $2, $3, $4, $5::numeric, $6, $7)`,
		p.Pool, p.Miner, p.Asset, p.PeriodStart, s.numeric(p.Asset, p.Quantity), s.Clock().UTC(), a.ID)
}

// reportItem is the log entry of a report version; the certificate
// re-encodes it from report_versions.
func (s *Store) reportItem(reportID, obligation int64, r compliance.Report, ob compliance.Obligation, version int, reason string) logItem {
	return logItem{kind: proof.KindReport, ref: fmt.Sprintf("%d/%d", reportID, version), obligation: obligation, miner: r.MinerID,
		data: proof.MustEncode(proof.KindReport, proof.Report{Miner: r.MinerID, Asset: r.Asset, Period: ob.PeriodStart.Format("2006-01"),
			Version: version, Mined: s.numeric(r.Asset, r.Mined), Wallets: nonNil(r.Wallets), Source: string(r.Source), Pool: r.Pool, Reason: reason})}
}

// computationItem is the log entry of an obligation's computation; the
// certificate re-encodes it from obligation_computations.
func (s *Store) computationItem(obligation int64, version, reportVersion int, ob compliance.Obligation) logItem {
	return logItem{kind: proof.KindComputation, ref: fmt.Sprintf("%d/%d", obligation, version), obligation: obligation, miner: ob.MinerID,
		data: proof.MustEncode(proof.KindComputation, proof.Computation{Obligation: obligation, Version: version, Miner: ob.MinerID,
			Asset: ob.Asset, Period: ob.PeriodStart.Format("2006-01"), Deadline: day(ob.Deadline), ReportVersion: reportVersion,
			Mined: s.numeric(ob.Asset, ob.Mined), Share: ob.Share.String(), RuleSet: ob.RuleSet, RuleSetVersion: ob.RuleSetVersion,
			Required: s.numeric(ob.Asset, ob.Required)})}
}
