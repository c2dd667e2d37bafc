package compliance_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/apperr"
)

func TestLoadRuleBook(t *testing.T) {
	b, err := compliance.LoadRuleBook()
	if err != nil {
		t.Fatalf("LoadRuleBook: %v", err)
	}
	if got, want := b.IDs(), []string{"kz-law-193", "kz-paper-2024"}; !slices.Equal(got, want) {
		t.Fatalf("IDs() = %v, want %v", got, want)
	}
	for _, id := range b.IDs() {
		t.Run(id, func(t *testing.T) {
			r, err := b.Get(id)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if r.ID != id || r.Version < 1 || r.Title == "" || r.Base == "" {
				t.Errorf("header = %q v%d %q, base %q", r.ID, r.Version, r.Title, r.Base)
			}
			// Satu's defaults, marked as such: the law does not confirm them.
			if r.Period != compliance.PeriodCalendarMonth || r.DeadlineDays != 30 || r.ProceedsCurrency != "KZT" {
				t.Errorf("settings = %q, %d days, %q; want calendar_month, 30, KZT", r.Period, r.DeadlineDays, r.ProceedsCurrency)
			}
			wantDefaults := []string{"compliance_period", "deadline_days_after_period_end", "proceeds_currency", "exceptions",
				"purpose", "price_tolerance", "reference_price", "reference_window_hours", "repeat_window_months", "mining_fee_table"}
			if !slices.Equal(r.Defaults, wantDefaults) {
				t.Errorf("Defaults = %v, want %v", r.Defaults, wantDefaults)
			}
			notes := strings.Join(r.Notes, "\n")
			for _, amendment := range []string{"115-VIII", "231-VIII"} {
				if !strings.Contains(notes, amendment) {
					t.Errorf("notes do not mention amendment %s", amendment)
				}
			}
			for i, s := range r.Steps {
				if !s.Confirmed || s.Source == "" {
					t.Errorf("step %d: confirmed %v, source %q", i+1, s.Confirmed, s.Source)
				}
			}
		})
	}
	t.Run("Default", func(t *testing.T) {
		if _, err := b.Get(compliance.DefaultRuleSet); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrUnknown", func(t *testing.T) {
		_, err := b.Get("kz-law-999")
		wantCode(t, err, apperr.InvalidParameter)
		if !strings.Contains(apperr.MessageOf(err), "unknown rule set") {
			t.Errorf("message = %q", apperr.MessageOf(err))
		}
	})
	t.Run("GetReturnsACopy", func(t *testing.T) {
		r, _ := b.Get(compliance.DefaultRuleSet)
		r.Steps[0].Share = compliance.Share{Num: 1, Den: 1}
		r.Notes[0] = "changed"
		again, _ := b.Get(compliance.DefaultRuleSet)
		if again.Steps[0].Share.String() != "0" || again.Notes[0] == "changed" {
			t.Fatal("changing a rule set from Get changed the book")
		}
	})
}

func TestRuleSet_ShareOn(t *testing.T) {
	law := mustRuleSet(t, "kz-law-193")
	paper := mustRuleSet(t, "kz-paper-2024")
	for _, tc := range []struct {
		rules *compliance.RuleSet
		day   string
		want  string // share, or "" for RULE_NOT_CONFIRMED
	}{
		{law, "2023-03-31", ""},
		{law, "2023-04-01", "0"},
		{law, "2023-12-31", "0"},
		{law, "2024-01-01", "0.5"},
		{law, "2024-12-31", "0.5"},
		{law, "2025-01-01", "0.75"},
		{law, "2030-06-15", "0.75"},
		{paper, "2023-12-31", ""},
		{paper, "2024-01-01", "0.5"},
		{paper, "2024-12-31", "0.5"},
		{paper, "2025-01-01", "0.8"},
		{paper, "2026-03-01", "0.8"},
	} {
		t.Run(tc.rules.ID+"/"+tc.day, func(t *testing.T) {
			step, err := tc.rules.ShareOn(day(t, tc.day))
			if tc.want == "" {
				wantCode(t, err, apperr.RuleNotConfirmed)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := step.Share.String(); got != tc.want {
				t.Errorf("share = %s, want %s", got, tc.want)
			}
			if !step.Confirmed || step.Source == "" {
				t.Errorf("step confirmed %v, source %q", step.Confirmed, step.Source)
			}
		})
	}
	t.Run("InstantNotDate", func(t *testing.T) {
		// The last nanosecond of 2024 is still under the 2024 share.
		step, err := law.ShareOn(day(t, "2025-01-01").Add(-time.Nanosecond))
		if err != nil || step.Share.String() != "0.5" {
			t.Fatalf("ShareOn = %v, %v; want 0.5", step.Share, err)
		}
	})
	t.Run("ErrUnconfirmedStep", func(t *testing.T) {
		r := validRuleSet(t)
		r.Steps[1].Confirmed = false
		_, err := r.ShareOn(day(t, "2025-02-01"))
		wantCode(t, err, apperr.RuleNotConfirmed)
		if _, err := r.ShareOn(day(t, "2024-02-01")); err != nil {
			t.Fatalf("the confirmed step before it: %v", err)
		}
	})
	t.Run("ErrNoSteps", func(t *testing.T) {
		_, err := (&compliance.RuleSet{ID: "empty", Version: 1}).ShareOn(day(t, "2024-01-01"))
		wantCode(t, err, apperr.RuleNotConfirmed)
	})
}

// validRuleSet returns a small valid rule set for tests to break.
func validRuleSet(tb testing.TB) *compliance.RuleSet {
	return &compliance.RuleSet{
		ID: "test-rules", Version: 1, Title: "test",
		Steps: []compliance.ShareStep{
			{From: day(tb, "2024-01-01"), Share: compliance.Share{Num: 1, Den: 2}, Source: "test", Confirmed: true},
			{From: day(tb, "2025-01-01"), Share: compliance.Share{Num: 3, Den: 4}, Source: "test", Confirmed: true},
		},
		Period: compliance.PeriodCalendarMonth, DeadlineDays: 30, ProceedsCurrency: "KZT",
		Attribution: compliance.Attribution{Venue: "Satu", Purpose: "mandatory", PriceTolerance: compliance.Share{Num: 5, Den: 100},
			ReferencePrice: compliance.ReferenceVWAPElseAuction, ReferenceWindow: 24 * time.Hour},
		Sanctions: compliance.Sanctions{RepeatWindowMonths: 12, Steps: []compliance.SanctionStep{
			{From: day(tb, "2024-01-01"), Violation: 1, FineMCI: 15, Mark: dflt},
			{From: day(tb, "2024-01-01"), Violation: 2, FineMCI: 150, SuspensionMonths: 3, Mark: dflt},
		}},
		MCIValues: []compliance.MCIValue{{Year: 2023, Tenge: 3450, Mark: confirmed}},
		LicenceFees: []compliance.LicenceFee{{Subtype: compliance.SubtypeOwnDataCentre, MCI: 2000, Mark: confirmed},
			{Subtype: compliance.SubtypeHosted, MCI: 5, Mark: confirmed}},
		MiningFeeTable: "kz-mining-fee",
	}
}

var (
	dflt      = compliance.Mark{SatuDefault: true, Source: "test default"}
	confirmed = compliance.Mark{Confirmed: true, Source: "B: test"}
)

func TestRuleSet_Validate(t *testing.T) {
	if err := validRuleSet(t).Validate(); err != nil {
		t.Fatalf("valid rule set: %v", err)
	}
	for _, tc := range []struct {
		name  string
		spoil func(r *compliance.RuleSet)
	}{
		{"ErrID", func(r *compliance.RuleSet) { r.ID = "Bad ID" }},
		{"ErrEmptyID", func(r *compliance.RuleSet) { r.ID = "" }},
		{"ErrVersion", func(r *compliance.RuleSet) { r.Version = 0 }},
		{"ErrTitle", func(r *compliance.RuleSet) { r.Title = " " }},
		{"ErrNoSteps", func(r *compliance.RuleSet) { r.Steps = nil }},
		{"ErrStepsNotIncreasing", func(r *compliance.RuleSet) { r.Steps[1].From = r.Steps[0].From }},
		{"ErrStepsDecreasing", func(r *compliance.RuleSet) { r.Steps[0], r.Steps[1] = r.Steps[1], r.Steps[0] }},
		{"ErrStepNotMidnight", func(r *compliance.RuleSet) { r.Steps[0].From = r.Steps[0].From.Add(time.Hour) }},
		{"ErrShareAboveOne", func(r *compliance.RuleSet) { r.Steps[0].Share = compliance.Share{Num: 101, Den: 100} }},
		{"ErrShareNegative", func(r *compliance.RuleSet) { r.Steps[0].Share = compliance.Share{Num: -1, Den: 100} }},
		{"ErrShareZeroDen", func(r *compliance.RuleSet) { r.Steps[0].Share = compliance.Share{} }},
		{"ErrNoSource", func(r *compliance.RuleSet) { r.Steps[0].Source = "" }},
		{"ErrPeriod", func(r *compliance.RuleSet) { r.Period = "quarter" }},
		{"ErrDeadline", func(r *compliance.RuleSet) { r.DeadlineDays = -1 }},
		{"ErrCurrency", func(r *compliance.RuleSet) { r.ProceedsCurrency = "tenge" }},
		{"ErrVenue", func(r *compliance.RuleSet) { r.Attribution.Venue = "" }},
		{"ErrPurpose", func(r *compliance.RuleSet) { r.Attribution.Purpose = "voluntary" }},
		{"ErrTolerance", func(r *compliance.RuleSet) { r.Attribution.PriceTolerance = compliance.Share{Num: 2, Den: 1} }},
		{"ErrReferenceMethod", func(r *compliance.RuleSet) { r.Attribution.ReferencePrice = "mid" }},
		{"ErrReferenceWindow", func(r *compliance.RuleSet) { r.Attribution.ReferenceWindow = time.Minute }},
		{"ErrMiningFeeTable", func(r *compliance.RuleSet) { r.MiningFeeTable = "" }},
		{"ErrRepeatWindow", func(r *compliance.RuleSet) { r.Sanctions.RepeatWindowMonths = 0 }},
		{"ErrNoSanctions", func(r *compliance.RuleSet) { r.Sanctions.Steps = nil }},
		{"ErrNoFirstViolation", func(r *compliance.RuleSet) { r.Sanctions.Steps = r.Sanctions.Steps[1:] }},
		{"ErrSuspensionTooLong", func(r *compliance.RuleSet) { r.Sanctions.Steps[1].SuspensionMonths = 7 }},
		{"ErrNegativeFine", func(r *compliance.RuleSet) { r.Sanctions.Steps[0].FineMCI = -1 }},
		{"ErrSanctionUnmarked", func(r *compliance.RuleSet) { r.Sanctions.Steps[0].Mark = compliance.Mark{Source: "x"} }},
		{"ErrSanctionTwice", func(r *compliance.RuleSet) { r.Sanctions.Steps[1].Violation = 1 }},
		{"ErrNoMCI", func(r *compliance.RuleSet) { r.MCIValues = nil }},
		{"ErrMCIZero", func(r *compliance.RuleSet) { r.MCIValues[0].Tenge = 0 }},
		{"ErrMCIOrder", func(r *compliance.RuleSet) {
			r.MCIValues = append(r.MCIValues, compliance.MCIValue{Year: 2022, Tenge: 3063, Mark: confirmed})
		}},
		{"ErrLicenceFeeMissing", func(r *compliance.RuleSet) { r.LicenceFees = r.LicenceFees[:1] }},
		{"ErrLicenceFeeSubtype", func(r *compliance.RuleSet) { r.LicenceFees[1].Subtype = "III" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := validRuleSet(t)
			tc.spoil(r)
			wantCode(t, r.Validate(), apperr.InvalidParameter)
		})
	}
}

func TestNewRuleBook(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		b, err := compliance.NewRuleBook(validRuleSet(t))
		if err != nil {
			t.Fatal(err)
		}
		if got := b.IDs(); !slices.Equal(got, []string{"test-rules"}) {
			t.Fatalf("IDs() = %v", got)
		}
	})
	t.Run("ErrDuplicateID", func(t *testing.T) {
		_, err := compliance.NewRuleBook(validRuleSet(t), validRuleSet(t))
		wantCode(t, err, apperr.InvalidParameter)
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		r := validRuleSet(t)
		r.Version = 0
		_, err := compliance.NewRuleBook(r)
		wantCode(t, err, apperr.InvalidParameter)
	})
}
