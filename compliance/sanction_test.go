package compliance_test

import (
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/apperr"
)

func TestSanctions(t *testing.T) {
	s := mustRuleSet(t, compliance.DefaultRuleSet).Sanctions
	t.Run("ViolationNumber", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			on      string
			earlier []string
			want    int
		}{
			{"first", "2025-03-02", nil, 1},
			{"repeat within 12 months", "2025-03-02", []string{"2024-04-01"}, 2},
			{"12 months ago exactly is not a repeat", "2025-03-02", []string{"2024-03-02"}, 1},
			{"same day is not a repeat", "2025-03-02", []string{"2025-03-02"}, 1},
			{"later ones do not count", "2025-03-02", []string{"2025-04-01"}, 1},
			{"third", "2025-03-02", []string{"2024-06-01", "2025-01-01"}, 3},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var earlier []time.Time
				for _, e := range tc.earlier {
					earlier = append(earlier, day(t, e))
				}
				if got := s.ViolationNumber(day(t, tc.on), earlier); got != tc.want {
					t.Fatalf("ViolationNumber = %d, want %d", got, tc.want)
				}
			})
		}
	})
	t.Run("Sanction", func(t *testing.T) {
		for _, tc := range []struct {
			nth        int
			fine       int64
			suspension int
		}{{1, 15, 0}, {2, 150, 3}, {5, 150, 3}} {
			st, err := s.Sanction(day(t, "2025-03-02"), tc.nth)
			if err != nil {
				t.Fatal(err)
			}
			if st.FineMCI != tc.fine || st.SuspensionMonths != tc.suspension || !st.Mark.SatuDefault || st.Mark.Source == "" {
				t.Errorf("violation %d: %+v, want %d MCI and %d months, marked a Satu default", tc.nth, st, tc.fine, tc.suspension)
			}
		}
	})
	t.Run("ErrBeforeTable", func(t *testing.T) {
		_, err := s.Sanction(day(t, "2023-12-31"), 1)
		wantCode(t, err, apperr.RuleNotConfirmed)
	})
}

func TestRuleSet_MCI(t *testing.T) {
	r := mustRuleSet(t, compliance.DefaultRuleSet)
	if v, err := r.MCI(2023); err != nil || v != 3450 {
		t.Fatalf("MCI(2023) = %d, %v", v, err)
	}
	if v, err := r.InTenge(2000, 2023); err != nil || v != 6_900_000 {
		t.Fatalf("licence fee I in 2023 = %d, %v; want 6,900,000 ₸", v, err)
	}
	for _, tc := range []struct {
		sub  compliance.LicenceSubtype
		want int64
	}{{compliance.SubtypeOwnDataCentre, 2000}, {compliance.SubtypeHosted, 5}} {
		if got, err := r.LicenceFeeMCI(tc.sub); err != nil || got != tc.want {
			t.Errorf("LicenceFeeMCI(%s) = %d, %v", tc.sub, got, err)
		}
	}
	// Only confirmed years convert: a fine in 2025 stays in MCI.
	_, err := r.MCI(2025)
	wantCode(t, err, apperr.RuleNotConfirmed)
	_, err = r.InTenge(15, 2025)
	wantCode(t, err, apperr.RuleNotConfirmed)
	_, err = r.InTenge(1<<62, 2023)
	wantCode(t, err, apperr.InvalidQuantity)
}
