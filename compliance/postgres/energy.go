package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/miningfee"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/money"
)

// tiynScale: tenge amounts and prices are NUMERIC with 2 decimals (tiyn).
const tiynScale = 2

// SetQuota allocates a miner's electricity quota for a month (kWh),
// replacing an earlier allocation for the same month (audited).
func (s *Store) SetQuota(ctx context.Context, minerID string, month time.Time, kwh int64, a compliance.Actor) error {
	month, err := checkMonth(month)
	if err != nil {
		return err
	}
	if kwh < 0 {
		return apperr.New(apperr.InvalidQuantity, "quota %d kWh is negative", kwh)
	}
	return s.upsert(ctx, minerID, a, "energy.quota", map[string]any{"month": month.Format("2006-01"), "kwh": kwh},
		`INSERT INTO energy_quotas (miner_id, period_start, kwh, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (miner_id, period_start) DO UPDATE SET kwh = EXCLUDED.kwh, created_at = EXCLUDED.created_at`,
		minerID, month, kwh, s.Clock().UTC())
}

// Consumption is a miner's metered electricity from one source in a month.
type Consumption struct {
	Miner string `json:"miner"`
	miningfee.Consumption
}

// RecordConsumption records (or corrects, audited) a month's metered
// consumption from one source.
func (s *Store) RecordConsumption(ctx context.Context, c Consumption, a compliance.Actor) error {
	month, err := checkMonth(c.Month)
	if err != nil {
		return err
	}
	c.Month = month
	switch {
	case !c.Source.Valid():
		return apperr.New(apperr.InvalidParameter, "energy source %q is not one of grid, imported, own, own_renewable", c.Source)
	case c.KWh < 0:
		return apperr.New(apperr.InvalidQuantity, "consumption %d kWh is negative", c.KWh)
	case c.PriceTiyn < 0:
		return apperr.New(apperr.InvalidPrice, "average price %d tiyn/kWh is negative", c.PriceTiyn)
	case !nextMonthStart(c.Month).Before(s.Today().AddDate(0, 0, 1)):
		return apperr.New(apperr.InvalidParameter, "month %s has not ended yet: consumption is recorded after the month", c.Month.Format("2006-01"))
	}
	return s.upsert(ctx, c.Miner, a, "energy.consumption", map[string]any{"month": c.Month.Format("2006-01"), "source": c.Source,
		"kwh": c.KWh, "metered": c.Metered, "avgPrice": money.Format(c.PriceTiyn, tiynScale)},
		`INSERT INTO energy_consumption (miner_id, period_start, source, kwh, metered, avg_price, created_at)
		VALUES ($1, $2, $3, $4, $5, $6::numeric, $7)
		ON CONFLICT (miner_id, period_start, source) DO UPDATE SET kwh = EXCLUDED.kwh, metered = EXCLUDED.metered,
			avg_price = EXCLUDED.avg_price, created_at = EXCLUDED.created_at`,
		c.Miner, c.Month, string(c.Source), c.KWh, c.Metered, money.Format(c.PriceTiyn, tiynScale), s.Clock().UTC())
}

// checkMonth accepts the first day of a month at 00:00 UTC (the instant, in
// whatever zone it is written) and returns it in UTC.
func checkMonth(m time.Time) (time.Time, error) {
	u := m.UTC()
	if m.IsZero() || !u.Equal(time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC)) {
		return time.Time{}, apperr.New(apperr.InvalidParameter, "month %s is not the first day of a month", m.Format(time.RFC3339))
	}
	return u, nil
}

func nextMonthStart(m time.Time) time.Time { return m.AddDate(0, 1, 0) }

// upsert writes one miner's energy row with its audit entry.
func (s *Store) upsert(ctx context.Context, minerID string, a compliance.Actor, action string, detail any, sql string, args ...any) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := s.minerExists(ctx, tx, minerID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("compliance: %s: %w", action, err)
		}
		return s.audit(ctx, tx, a, action, minerID, detail)
	})
}

// EnergyMonth is a miner's month of electricity: quota, consumption by
// source, and the overrun flag (consumption above the quota).
type EnergyMonth struct {
	Miner       string `json:"miner"`
	Month       string `json:"month"`
	QuotaKWh    *int64 `json:"quotaKwh"` // nil: no quota allocated
	ConsumedKWh int64  `json:"consumedKwh"`
	Sources     []struct {
		Source   string `json:"source"`
		KWh      int64  `json:"kwh"`
		Metered  bool   `json:"metered"`
		AvgPrice string `json:"avgPrice"`
	} `json:"sources"`
	OverrunKWh int64 `json:"overrunKwh"`
	Overrun    bool  `json:"overrun"`
}

// Energy lists quotas and consumption by month, of one miner or all ("").
func (s *Store) Energy(ctx context.Context, minerID string) ([]EnergyMonth, error) {
	return list(ctx, s.db, `WITH months AS (
			SELECT miner_id, period_start FROM energy_quotas UNION SELECT miner_id, period_start FROM energy_consumption)
		SELECT m.miner_id, to_char(m.period_start, 'YYYY-MM'), q.kwh,
			coalesce((SELECT sum(kwh) FROM energy_consumption c WHERE c.miner_id = m.miner_id AND c.period_start = m.period_start), 0)::bigint,
			coalesce((SELECT json_agg(json_build_object('source', c.source, 'kwh', c.kwh, 'metered', c.metered,
				'avgPrice', to_char(c.avg_price, 'FM999999990.00')) ORDER BY c.source)
				FROM energy_consumption c WHERE c.miner_id = m.miner_id AND c.period_start = m.period_start), '[]')
		FROM months m LEFT JOIN energy_quotas q ON q.miner_id = m.miner_id AND q.period_start = m.period_start
		WHERE $1 = '' OR m.miner_id = $1 ORDER BY m.period_start, m.miner_id`,
		func(rows pgx.Rows) (EnergyMonth, error) {
			var e EnergyMonth
			if err := rows.Scan(&e.Miner, &e.Month, &e.QuotaKWh, &e.ConsumedKWh, &e.Sources); err != nil {
				return e, err
			}
			if e.QuotaKWh != nil {
				e.OverrunKWh, e.Overrun = miningfee.QuotaOverrun(*e.QuotaKWh, e.ConsumedKWh)
			}
			return e, nil
		}, minerID)
}

// FeeAssessment is a stored mining-fee assessment.
type FeeAssessment struct {
	Miner        string    `json:"miner"`
	Quarter      string    `json:"quarter"`
	Version      int       `json:"version"`
	TableID      string    `json:"table"`
	TableVersion int       `json:"tableVersion"`
	TotalKWh     int64     `json:"totalKwh"`
	Amount       string    `json:"amount"` // tenge
	ReturnDue    string    `json:"returnDue"`
	PaymentDue   string    `json:"paymentDue"`
	Secondary    bool      `json:"secondarySource"`
	Lines        []FeeLine `json:"lines"`
	AssessedAt   time.Time `json:"assessedAt"`
	Actor        string    `json:"actor"`
}

// FeeLine is one category's fee.
type FeeLine struct {
	Category string `json:"category"`
	KWh      int64  `json:"kwh"`
	Rate     string `json:"rate"`   // tenge per kWh
	Amount   string `json:"amount"` // tenge
	Rule     string `json:"rule"`
}

// AssessFee computes a miner's mining fee for a quarter from its recorded
// consumption (miningfee.Tables.Assess) and stores it as a new version. A
// quarter that has not ended, a table that does not confirm the rate, or a
// quarter without consumption is refused; nothing is stored.
func (s *Store) AssessFee(ctx context.Context, minerID string, q miningfee.Quarter, a compliance.Actor) (FeeAssessment, error) {
	if err := q.Validate(); err != nil {
		return FeeAssessment{}, err
	}
	if !s.Today().After(q.End()) {
		return FeeAssessment{}, apperr.New(apperr.InvalidParameter, "quarter %s has not ended yet", q)
	}
	var out FeeAssessment
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := s.minerExists(ctx, tx, minerID); err != nil {
			return err
		}
		records, err := list(ctx, tx, `SELECT period_start, kwh, source, metered, (avg_price * 100)::bigint FROM energy_consumption
			WHERE miner_id = $1 AND period_start >= $2 AND period_start <= $3 ORDER BY period_start, source`,
			func(rows pgx.Rows) (miningfee.Consumption, error) {
				var c miningfee.Consumption
				var src string
				err := rows.Scan(&c.Month, &c.KWh, &src, &c.Metered, &c.PriceTiyn)
				c.Source = miningfee.Source(src)
				return c, err
			}, minerID, q.Start(), q.End())
		if err != nil {
			return err
		}
		if len(records) == 0 {
			return apperr.New(apperr.InvalidParameter, "miner %q has no consumption recorded in %s", minerID, q)
		}
		as, err := s.fees.Assess(q, records)
		if err != nil {
			return err
		}
		out = FeeAssessment{Miner: minerID, Quarter: q.String(), TableID: as.TableID, TableVersion: as.TableVersion,
			TotalKWh: as.TotalKWh, Amount: money.Format(as.TotalTiyn, tiynScale), PaymentDue: day(as.PaymentDue),
			Secondary: as.SecondarySource, AssessedAt: s.Clock().UTC(), Actor: a.ID}
		var returnDue *time.Time
		if !as.ReturnDue.IsZero() {
			out.ReturnDue, returnDue = day(as.ReturnDue), &as.ReturnDue
		}
		for _, l := range as.Lines {
			out.Lines = append(out.Lines, FeeLine{Category: string(l.Category), KWh: l.KWh, Rate: money.Format(l.RateTiyn, tiynScale),
				Amount: money.Format(l.AmountTiyn, tiynScale), Rule: l.Rule})
		}
		lines, err := json.Marshal(out.Lines)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO fee_assessments (miner_id, quarter, version, table_id, table_version, total_kwh, amount,
				return_due, payment_due, secondary, lines, assessed_at, actor)
			VALUES ($1, $2, coalesce((SELECT max(version) FROM fee_assessments WHERE miner_id = $1 AND quarter = $2), 0) + 1,
				$3, $4, $5, $6::numeric, $7, $8, $9, $10, $11, $12) RETURNING version`,
			minerID, out.Quarter, out.TableID, out.TableVersion, out.TotalKWh, out.Amount, returnDue, as.PaymentDue,
			out.Secondary, lines, out.AssessedAt, a.ID).Scan(&out.Version); err != nil {
			return fmt.Errorf("compliance: fee assessment: %w", err)
		}
		return s.audit(ctx, tx, a, "fee.assess", minerID, map[string]any{"quarter": out.Quarter, "version": out.Version,
			"amount": out.Amount, "totalKwh": out.TotalKWh})
	})
	return out, err
}

// FeeAssessments lists the newest assessment of each quarter, of one miner
// or all (""), oldest quarter first.
func (s *Store) FeeAssessments(ctx context.Context, minerID string) ([]FeeAssessment, error) {
	return list(ctx, s.db, `SELECT DISTINCT ON (miner_id, quarter) miner_id, quarter, version, table_id, table_version, total_kwh,
			to_char(amount, 'FM999999999999990.00'), coalesce(to_char(return_due, 'YYYY-MM-DD'), ''), to_char(payment_due, 'YYYY-MM-DD'),
			secondary, lines, assessed_at, actor
		FROM fee_assessments WHERE $1 = '' OR miner_id = $1 ORDER BY miner_id, quarter, version DESC`,
		func(rows pgx.Rows) (FeeAssessment, error) {
			var f FeeAssessment
			err := rows.Scan(&f.Miner, &f.Quarter, &f.Version, &f.TableID, &f.TableVersion, &f.TotalKWh, &f.Amount, &f.ReturnDue,
				&f.PaymentDue, &f.Secondary, &f.Lines, &f.AssessedAt, &f.Actor)
			return f, err
		}, minerID)
}
