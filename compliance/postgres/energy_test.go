package postgres_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/miningfee"
	"github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
)

// consumption returns alpha's metered record of a month and source at an
// average price in tiyn per kWh.
func consumption(t *testing.T, month string, src miningfee.Source, kwh, priceTiyn int64) postgres.Consumption {
	return postgres.Consumption{Miner: "alpha", Consumption: miningfee.Consumption{Month: day(t, month), KWh: kwh, Source: src,
		Metered: true, PriceTiyn: priceTiyn}}
}

func record(t *testing.T, s *postgres.Store, cs ...postgres.Consumption) {
	t.Helper()
	for _, c := range cs {
		if err := s.RecordConsumption(context.Background(), c, regulator); err != nil {
			t.Fatalf("RecordConsumption(%s %s): %v", c.Month.Format("2006-01"), c.Source, err)
		}
	}
}

func setQuota(t *testing.T, s *postgres.Store, month string, kwh int64) {
	t.Helper()
	if err := s.SetQuota(context.Background(), "alpha", day(t, month), kwh, regulator); err != nil {
		t.Fatalf("SetQuota(%s): %v", month, err)
	}
}

// energySource is one element of EnergyMonth.Sources.
type energySource = struct {
	Source   string `json:"source"`
	KWh      int64  `json:"kwh"`
	Metered  bool   `json:"metered"`
	AvgPrice string `json:"avgPrice"`
}

func TestEnergy_QuotaAndConsumption(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2023-01-15", "alpha-1")
	register(t, s, "beta", "222222222222", "2023-01-15", "beta-1")
	setNow(t, s, "2023-07-05 12:00")
	setQuota(t, s, "2023-04-01", 100_000)
	setQuota(t, s, "2023-05-01", 200_000)
	setQuota(t, s, "2023-05-01", 150_000) // re-allocated: replaces 200,000
	record(t, s,
		consumption(t, "2023-04-01", miningfee.Grid, 120_000, 750),
		consumption(t, "2023-05-01", miningfee.Grid, 150_000, 600),
		consumption(t, "2023-06-01", miningfee.Grid, 80_000, 900),
		consumption(t, "2023-06-01", miningfee.OwnRenewable, 50_000, 0))

	t.Run("OK", func(t *testing.T) {
		got, err := s.Energy(ctx, "alpha")
		if err != nil {
			t.Fatalf("Energy: %v", err)
		}
		q := func(v int64) *int64 { return &v }
		want := []postgres.EnergyMonth{
			// 120,000 kWh used of 100,000 allocated: 20,000 over.
			{Miner: "alpha", Month: "2023-04", QuotaKWh: q(100_000), ConsumedKWh: 120_000, OverrunKWh: 20_000, Overrun: true,
				Sources: []energySource{{"grid", 120_000, true, "7.50"}}},
			// Exactly the quota is not an overrun.
			{Miner: "alpha", Month: "2023-05", QuotaKWh: q(150_000), ConsumedKWh: 150_000,
				Sources: []energySource{{"grid", 150_000, true, "6.00"}}},
			// No quota allocated: nothing to overrun.
			{Miner: "alpha", Month: "2023-06", ConsumedKWh: 130_000,
				Sources: []energySource{{"grid", 80_000, true, "9.00"}, {"own_renewable", 50_000, true, "0.00"}}},
		}
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("Energy =\n%s, want\n%s", g, w)
		}
		if all, err := s.Energy(ctx, ""); err != nil || len(all) != 3 {
			t.Errorf("Energy(\"\") = %d months, %v; want 3", len(all), err)
		}
		if none, err := s.Energy(ctx, "beta"); err != nil || none == nil || len(none) != 0 {
			t.Errorf("Energy(beta) = %#v, %v; want []", none, err)
		}
		sum, err := s.Summary(ctx, "alpha")
		if err != nil || sum.QuotaOverruns != 1 {
			t.Errorf("Summary.QuotaOverruns = %d (%v), want 1", sum.QuotaOverruns, err)
		}
		wantAudit(t, lastAudit(t, s, "alpha"), "regulator-1", "energy.consumption", "alpha", "test setup")
	})

	t.Run("OKCorrection", func(t *testing.T) {
		record(t, s, consumption(t, "2023-05-01", miningfee.Grid, 151_000, 600))
		got, err := s.Energy(ctx, "alpha")
		if err != nil || len(got) != 3 || got[1].ConsumedKWh != 151_000 || !got[1].Overrun || got[1].OverrunKWh != 1_000 {
			t.Errorf("May after correction = %+v (%v), want 151,000 kWh, 1,000 over", got, err)
		}
		record(t, s, consumption(t, "2023-05-01", miningfee.Grid, 150_000, 600))
	})

	month := day(t, "2023-04-01")
	for _, tc := range []struct {
		name  string
		write func() error
		want  apperr.Code
	}{
		{"ErrQuotaNegative", func() error { return s.SetQuota(ctx, "alpha", month, -1, regulator) }, apperr.InvalidQuantity},
		{"ErrQuotaNotMonthStart", func() error { return s.SetQuota(ctx, "alpha", day(t, "2023-04-02"), 1, regulator) },
			apperr.InvalidParameter},
		{"ErrQuotaUnknownMiner", func() error { return s.SetQuota(ctx, "nobody", month, 1, regulator) }, apperr.UnknownMiner},
		{"ErrQuotaNoActor", func() error { return s.SetQuota(ctx, "alpha", day(t, "2023-08-01"), 1, compliance.Actor{}) },
			apperr.InvalidParameter},
		{"ErrConsumptionMonthNotEnded", func() error {
			return s.RecordConsumption(ctx, consumption(t, "2023-07-01", miningfee.Grid, 1, 750), regulator)
		}, apperr.InvalidParameter},
		{"ErrConsumptionNegative", func() error {
			return s.RecordConsumption(ctx, consumption(t, "2023-03-01", miningfee.Grid, -1, 750), regulator)
		}, apperr.InvalidQuantity},
		{"ErrConsumptionNegativePrice", func() error {
			return s.RecordConsumption(ctx, consumption(t, "2023-03-01", miningfee.Grid, 1, -1), regulator)
		}, apperr.InvalidPrice},
		{"ErrConsumptionSource", func() error {
			return s.RecordConsumption(ctx, consumption(t, "2023-03-01", "coal", 1, 750), regulator)
		}, apperr.InvalidParameter},
		{"ErrConsumptionUnknownMiner", func() error {
			c := consumption(t, "2023-03-01", miningfee.Grid, 1, 750)
			c.Miner = "nobody"
			return s.RecordConsumption(ctx, c, regulator)
		}, apperr.UnknownMiner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unchanged(t, db, []string{"energy_quotas", "energy_consumption", "registry_audit"}, func() {
				wantCode(t, tc.write(), tc.want)
			})
		})
	}
}

func TestEnergy_AssessFee(t *testing.T) {
	ctx := context.Background()
	s, db := newStore(t, compliance.DefaultRuleSet)
	register(t, s, "alpha", "111111111111", "2023-01-15", "alpha-1")
	setNow(t, s, "2024-04-10 12:00")
	record(t, s,
		consumption(t, "2023-04-01", miningfee.Grid, 120_000, 750),
		consumption(t, "2023-05-01", miningfee.Grid, 150_000, 600),
		consumption(t, "2023-06-01", miningfee.Imported, 80_000, 900),
		consumption(t, "2023-06-01", miningfee.OwnRenewable, 50_000, 0),
		// Q3 2023: an average of 12 ₸, in the unconfirmed (10, 24) bracket.
		consumption(t, "2023-07-01", miningfee.Grid, 100_000, 1200),
		// Q1 2024: the flat 2 ₸ of the news reports.
		consumption(t, "2024-01-01", miningfee.Grid, 100_000, 3000))
	q2 := miningfee.Quarter{Year: 2023, Q: 2}
	fees := []string{"fee_assessments", "registry_audit"}

	// 2023-Q2 by hand: purchased power (grid and imported) 350,000 kWh at
	// an average of (120,000 × 7.50 + 150,000 × 6.00 + 80,000 × 9.00) /
	// 350,000 = 2,520,000 / 350,000 = 7.20 ₸, in [5, 10]: 10 ₸/kWh, so
	// 3,500,000 ₸; own renewable 50,000 kWh at 1 ₸: 50,000 ₸. Return by
	// 15 August, payment by 25 August (the 2nd month after the quarter).
	want := postgres.FeeAssessment{Miner: "alpha", Quarter: "2023-Q2", Version: 1, TableID: "kz-mining-fee", TableVersion: 1,
		TotalKWh: 400_000, Amount: "3550000.00", ReturnDue: "2023-08-15", PaymentDue: "2023-08-25", Secondary: false,
		Lines: []postgres.FeeLine{
			{Category: "purchased", KWh: 350_000, Rate: "10.00", Amount: "3500000.00", Rule: "avg price 7.20 ₸ in [5, 10] → 10 ₸"},
			{Category: "own_renewable", KWh: 50_000, Rate: "1.00", Amount: "50000.00", Rule: "own renewable generation → 1 ₸"},
		},
		AssessedAt: s.Clock().UTC(), Actor: "tax-officer-1"}
	officer := compliance.Actor{ID: "tax-officer-1", Reason: "quarterly assessment"}

	t.Run("OKConfirmedBracket", func(t *testing.T) {
		got, err := s.AssessFee(ctx, "alpha", q2, officer)
		if err != nil {
			t.Fatalf("AssessFee: %v", err)
		}
		if !sameAssessment(got, want) {
			t.Errorf("AssessFee =\n%+v, want\n%+v", got, want)
		}
		list, err := s.FeeAssessments(ctx, "alpha")
		if err != nil || len(list) != 1 || !sameAssessment(list[0], want) {
			t.Errorf("FeeAssessments = %+v (%v), want [%+v]", list, err, want)
		}
		wantAudit(t, lastAudit(t, s, "alpha"), "tax-officer-1", "fee.assess", "alpha", "quarterly assessment")
	})

	t.Run("ErrRuleNotConfirmed", func(t *testing.T) {
		unchanged(t, db, fees, func() {
			_, err := s.AssessFee(ctx, "alpha", miningfee.Quarter{Year: 2023, Q: 3}, officer)
			wantCode(t, err, apperr.RuleNotConfirmed)
		})
	})

	t.Run("OKReassessedNewestVersion", func(t *testing.T) {
		// May corrected to 100,000 kWh: (900,000 + 600,000 + 720,000) /
		// 300,000 = 7.40 ₸, still 10 ₸/kWh: 3,000,000 + 50,000 ₸.
		record(t, s, consumption(t, "2023-05-01", miningfee.Grid, 100_000, 600))
		setNow(t, s, "2024-04-11 09:00")
		got, err := s.AssessFee(ctx, "alpha", q2, officer)
		if err != nil {
			t.Fatalf("AssessFee: %v", err)
		}
		w := want
		w.Version, w.TotalKWh, w.Amount, w.AssessedAt = 2, 350_000, "3050000.00", s.Clock().UTC()
		w.Lines = []postgres.FeeLine{
			{Category: "purchased", KWh: 300_000, Rate: "10.00", Amount: "3000000.00", Rule: "avg price 7.40 ₸ in [5, 10] → 10 ₸"},
			want.Lines[1],
		}
		if !sameAssessment(got, w) {
			t.Errorf("AssessFee =\n%+v, want\n%+v", got, w)
		}
		list, err := s.FeeAssessments(ctx, "")
		if err != nil || len(list) != 1 || !sameAssessment(list[0], w) {
			t.Errorf("FeeAssessments = %+v (%v), want only version 2: %+v", list, err, w)
		}
		if n := counts(t, db, "fee_assessments")[0]; n != 2 {
			t.Errorf("%d assessments stored, want both versions", n)
		}
	})

	t.Run("OKFlat2024", func(t *testing.T) {
		got, err := s.AssessFee(ctx, "alpha", miningfee.Quarter{Year: 2024, Q: 1}, officer)
		if err != nil {
			t.Fatalf("AssessFee: %v", err)
		}
		// 100,000 kWh × 2 ₸ = 200,000 ₸, from news reports only.
		if got.Amount != "200000.00" || !got.Secondary || got.ReturnDue != "2024-05-15" || got.PaymentDue != "2024-05-25" ||
			len(got.Lines) != 1 || got.Lines[0].Rate != "2.00" {
			t.Errorf("AssessFee(2024-Q1) = %+v, want 200000.00 at 2.00, secondary, due 2024-05-15/25", got)
		}
		list, err := s.FeeAssessments(ctx, "alpha")
		if err != nil || len(list) != 2 || list[0].Quarter != "2023-Q2" || list[1].Quarter != "2024-Q1" {
			t.Errorf("FeeAssessments = %+v (%v), want 2023-Q2 then 2024-Q1", list, err)
		}
		sum, err := s.Summary(ctx, "alpha")
		if err != nil || len(sum.Fees) != 2 {
			t.Errorf("Summary.Fees = %+v (%v), want both quarters", sum.Fees, err)
		}
	})

	for _, tc := range []struct {
		name  string
		miner string
		q     miningfee.Quarter
		want  apperr.Code
	}{
		{"ErrQuarterNotEnded", "alpha", miningfee.Quarter{Year: 2024, Q: 2}, apperr.InvalidParameter},
		{"ErrNoConsumption", "alpha", miningfee.Quarter{Year: 2022, Q: 4}, apperr.InvalidParameter},
		{"ErrUnknownMiner", "nobody", q2, apperr.UnknownMiner},
		{"ErrInvalidQuarter", "alpha", miningfee.Quarter{Year: 2023, Q: 5}, apperr.InvalidParameter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unchanged(t, db, fees, func() {
				_, err := s.AssessFee(ctx, tc.miner, tc.q, officer)
				wantCode(t, err, tc.want)
			})
		})
	}

	// The last day of the quarter in Kazakhstan: not ended yet.
	t.Run("ErrQuarterEndsToday", func(t *testing.T) {
		setNow(t, s, "2024-06-30 23:59")
		april := consumption(t, "2024-04-01", miningfee.Grid, 1, 3000)
		if err := s.RecordConsumption(ctx, april, regulator); err != nil {
			t.Fatal(err)
		}
		unchanged(t, db, fees, func() {
			_, err := s.AssessFee(ctx, "alpha", miningfee.Quarter{Year: 2024, Q: 2}, officer)
			wantCode(t, err, apperr.InvalidParameter)
		})
		setNow(t, s, "2024-07-01 00:00")
		if _, err := s.AssessFee(ctx, "alpha", miningfee.Quarter{Year: 2024, Q: 2}, officer); err != nil {
			t.Errorf("AssessFee the day after the quarter: %v", err)
		}
	})
}

// sameAssessment compares assessments, the time as an instant.
func sameAssessment(got, want postgres.FeeAssessment) bool {
	if !got.AssessedAt.Equal(want.AssessedAt) {
		return false
	}
	got.AssessedAt = want.AssessedAt
	return reflect.DeepEqual(got, want)
}
