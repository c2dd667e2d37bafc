package compliance_test

import (
	"math"
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/apperr"
)

func TestRuleSet_Obligation(t *testing.T) {
	law := mustRuleSet(t, "kz-law-193")
	paper := mustRuleSet(t, "kz-paper-2024")
	t.Run("Required", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			rules  *compliance.RuleSet
			period string
			mined  int64 // satoshi
			want   int64 // satoshi
		}{
			{"1.00000001 BTC in 2025 under the law", law, "2025-01-01", 100_000_001, 75_000_001},
			{"1.00000001 BTC in 2024 under the law", law, "2024-12-01", 100_000_001, 50_000_001},
			{"1.00000001 BTC in 2025 under the paper", paper, "2025-01-01", 100_000_001, 80_000_001},
			{"1 BTC in 2025 under the law", law, "2025-06-01", 100_000_000, 75_000_000},
			{"3.2 BTC in 2025 under the paper", paper, "2025-06-01", 320_000_000, 256_000_000},
			{"12.5 BTC in 2024 under the law", law, "2024-03-01", 1_250_000_000, 625_000_000},
			{"2023 under the law is 0", law, "2023-04-01", 100_000_001, 0},
			{"nothing mined", law, "2025-01-01", 0, 0},
			{"max int64", law, "2025-01-01", math.MaxInt64, 6917529027641081856},
		} {
			t.Run(tc.name, func(t *testing.T) {
				o, err := tc.rules.Obligation("miner-1", "BTC", day(t, tc.period), tc.mined)
				if err != nil {
					t.Fatal(err)
				}
				if o.Required != tc.want {
					t.Errorf("Required = %d, want %d", o.Required, tc.want)
				}
				if o.Mined != tc.mined || o.MinerID != "miner-1" || o.Asset != "BTC" ||
					o.RuleSet != tc.rules.ID || o.RuleSetVersion != tc.rules.Version {
					t.Errorf("obligation = %+v", o)
				}
			})
		}
	})
	t.Run("NothingMinedIsMet", func(t *testing.T) {
		o, err := law.Obligation("miner-1", "BTC", day(t, "2025-01-01"), 0)
		if err != nil {
			t.Fatal(err)
		}
		if remaining, status := o.Progress(0); remaining != 0 || status != compliance.StatusMet {
			t.Fatalf("Progress(0) = %d, %s; want 0, met", remaining, status)
		}
	})
	t.Run("Dates", func(t *testing.T) {
		for _, tc := range []struct{ period, end, deadline string }{
			{"2024-02-01", "2024-02-29", "2024-03-30"}, // leap year
			{"2025-02-01", "2025-02-28", "2025-03-30"},
			{"2024-12-01", "2024-12-31", "2025-01-30"},
			{"2025-01-01", "2025-01-31", "2025-03-02"},
			{"2024-04-01", "2024-04-30", "2024-05-30"},
		} {
			t.Run(tc.period, func(t *testing.T) {
				o, err := law.Obligation("miner-1", "BTC", day(t, tc.period), 1)
				if err != nil {
					t.Fatal(err)
				}
				if !o.PeriodStart.Equal(day(t, tc.period)) || !o.PeriodEnd.Equal(day(t, tc.end)) || !o.Deadline.Equal(day(t, tc.deadline)) {
					t.Errorf("period %s…%s, deadline %s; want %s…%s, %s",
						o.PeriodStart.Format(time.DateOnly), o.PeriodEnd.Format(time.DateOnly), o.Deadline.Format(time.DateOnly),
						tc.period, tc.end, tc.deadline)
				}
				if o.PeriodEnd.Location() != time.UTC || o.Deadline.Location() != time.UTC {
					t.Errorf("dates not in UTC")
				}
			})
		}
	})
	t.Run("ShareOfTheFirstDay", func(t *testing.T) {
		o, err := law.Obligation("miner-1", "BTC", day(t, "2024-12-01"), 100)
		if err != nil {
			t.Fatal(err)
		}
		if o.Share.String() != "0.5" {
			t.Fatalf("December 2024 share = %s, want 0.5", o.Share)
		}
	})
	t.Run("SameInstantInAnotherZone", func(t *testing.T) {
		almaty := time.FixedZone("Asia/Almaty", 5*60*60)
		o, err := law.Obligation("miner-1", "BTC", time.Date(2025, 1, 1, 5, 0, 0, 0, almaty), 4)
		if err != nil {
			t.Fatal(err)
		}
		if !o.PeriodStart.Equal(day(t, "2025-01-01")) || o.PeriodStart.Location() != time.UTC {
			t.Fatalf("PeriodStart = %v", o.PeriodStart)
		}
	})
	t.Run("ErrBadPeriodStart", func(t *testing.T) {
		for _, start := range []time.Time{
			day(t, "2025-01-02"),
			day(t, "2025-01-01").Add(time.Hour),
			day(t, "2025-01-01").Add(-time.Nanosecond),
			time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("Asia/Almaty", 5*60*60)),
		} {
			_, err := law.Obligation("miner-1", "BTC", start, 1)
			wantCode(t, err, apperr.InvalidParameter)
		}
	})
	t.Run("ErrBeforeFirstStep", func(t *testing.T) {
		_, err := law.Obligation("miner-1", "BTC", day(t, "2023-03-01"), 1)
		wantCode(t, err, apperr.RuleNotConfirmed)
		_, err = paper.Obligation("miner-1", "BTC", day(t, "2023-12-01"), 1)
		wantCode(t, err, apperr.RuleNotConfirmed)
	})
	t.Run("ErrNegativeMined", func(t *testing.T) {
		_, err := law.Obligation("miner-1", "BTC", day(t, "2025-01-01"), -1)
		wantCode(t, err, apperr.InvalidQuantity)
	})
	t.Run("ErrMinerRequired", func(t *testing.T) {
		_, err := law.Obligation(" ", "BTC", day(t, "2025-01-01"), 1)
		wantCode(t, err, apperr.InvalidParameter)
	})
	t.Run("ErrAssetRequired", func(t *testing.T) {
		_, err := law.Obligation("miner-1", "", day(t, "2025-01-01"), 1)
		wantCode(t, err, apperr.InvalidParameter)
	})
}

func TestProgress(t *testing.T) {
	for _, tc := range []struct {
		name           string
		required, sold int64
		remaining      int64
		status         compliance.Status
	}{
		{"nothing sold", 75_000_001, 0, 75_000_001, compliance.StatusOpen},
		{"part sold", 75_000_001, 75_000_000, 1, compliance.StatusOpen},
		{"exactly sold", 75_000_001, 75_000_001, 0, compliance.StatusMet},
		{"more sold", 75_000_001, 100_000_000, 0, compliance.StatusMet},
		{"nothing required", 0, 0, 0, compliance.StatusMet},
		{"max required, nothing sold", math.MaxInt64, 0, math.MaxInt64, compliance.StatusOpen},
		{"negative sold is 0", math.MaxInt64, -1, math.MaxInt64, compliance.StatusOpen},
		{"negative required is 0", -5, 0, 0, compliance.StatusMet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remaining, status := compliance.Progress(tc.required, tc.sold)
			if remaining != tc.remaining || status != tc.status {
				t.Errorf("Progress(%d, %d) = %d, %s; want %d, %s", tc.required, tc.sold, remaining, status, tc.remaining, tc.status)
			}
		})
	}
}
