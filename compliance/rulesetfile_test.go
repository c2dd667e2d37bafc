package compliance_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/apperr"
)

// goodFile is a valid rule-set file; the tests below break one thing at a time.
const goodFile = `{
  "id": "test-rules",
  "version": 2,
  "title": "test",
  "base": "mined volume",
  "steps": [
    {"from": "2024-01-01", "share": "0.50", "confirmed": true, "source": "B: test"},
    {"from": "2025-01-01", "share": "0.75", "confirmed": false, "source": "C: rumour"}
  ],
  "settings": {
    "compliance_period": {"value": "calendar_month", "confirmed": false, "satu_default": true, "source": "default"},
    "deadline_days_after_period_end": {"value": 15, "confirmed": true, "satu_default": false, "source": "A: test"},
    "proceeds_currency": {"value": "KZT", "confirmed": false, "satu_default": true, "source": "default"},
    "exceptions": {"value": [], "confirmed": false, "satu_default": true, "source": "default"}
  },
  "attribution": {
    "venue": {"value": "Satu", "confirmed": true, "satu_default": false, "source": "B: test"},
    "purpose": {"value": "mandatory", "confirmed": false, "satu_default": true, "source": "default"},
    "price_tolerance": {"value": "0.05", "confirmed": false, "satu_default": true, "source": "default"},
    "reference_price": {"value": "vwap_else_last_auction", "confirmed": false, "satu_default": true, "source": "default"},
    "reference_window_hours": {"value": 24, "confirmed": false, "satu_default": true, "source": "default"}
  },
  "sanctions": {
    "repeat_window_months": {"value": 12, "confirmed": false, "satu_default": true, "source": "default"},
    "table": [
      {"from": "2024-01-01", "violation": 1, "fine_mci": 15, "suspension_months": 0, "confirmed": false, "satu_default": true, "source": "P: test"},
      {"from": "2024-01-01", "violation": 2, "fine_mci": 150, "suspension_months": 3, "confirmed": false, "satu_default": true, "source": "P: test"}
    ]
  },
  "mci": [{"year": 2023, "tenge": 3450, "confirmed": true, "satu_default": false, "source": "A: test"}],
  "licence_fees": [
    {"subtype": "I", "mci": 2000, "confirmed": true, "satu_default": false, "source": "B: test"},
    {"subtype": "II", "mci": 5, "confirmed": true, "satu_default": false, "source": "B: test"}
  ],
  "mining_fee_table": {"value": "kz-mining-fee", "confirmed": false, "satu_default": true, "source": "default"},
  "notes": ["a note"]
}`

func TestParseRuleSet(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		r, err := compliance.ParseRuleSet([]byte(goodFile))
		if err != nil {
			t.Fatal(err)
		}
		if r.ID != "test-rules" || r.Version != 2 || r.DeadlineDays != 15 || len(r.Steps) != 2 {
			t.Fatalf("parsed %+v", r)
		}
		if s := r.Steps[1]; s.Share.Num != 75 || s.Share.Den != 100 || s.Confirmed || !s.From.Equal(day(t, "2025-01-01")) {
			t.Errorf("step 2 = %+v", s)
		}
		if got := strings.Join(r.Defaults, ","); got != "compliance_period,proceeds_currency,exceptions,purpose,price_tolerance,"+
			"reference_price,reference_window_hours,repeat_window_months,mining_fee_table" {
			t.Errorf("Defaults = %s", got)
		}
	})
	for _, tc := range []struct{ name, old, new string }{
		{"ErrUnknownField", `"notes"`, `"note"`},
		{"ErrTolerance", `"0.05"`, `"5%"`},
		{"ErrSanctionDate", `"from": "2024-01-01", "violation": 2`, `"from": "2024-13-01", "violation": 2`},
		{"ErrSuspension", `"suspension_months": 3`, `"suspension_months": 9`},
		{"ErrFineType", `"fine_mci": 15`, `"fine_mci": "15"`},
		{"ErrLicenceFee", `"subtype": "II"`, `"subtype": "III"`},
		{"ErrTrailingData", `["a note"]
}`, `["a note"]
} {}`},
		{"ErrDate", `"2025-01-01"`, `"2025-1-1"`},
		{"ErrDateTime", `"2025-01-01"`, `"2025-01-01T00:00:00Z"`},
		{"ErrImpossibleDate", `"2025-01-01"`, `"2025-02-30"`},
		{"ErrShareFloat", `"0.75"`, `0.75`},
		{"ErrShareAboveOne", `"0.75"`, `"1.75"`},
		{"ErrSharePercent", `"0.75"`, `"75%"`},
		{"ErrStepsOutOfOrder", `"2025-01-01"`, `"2023-01-01"`},
		{"ErrVersion", `"version": 2`, `"version": 0`},
		{"ErrID", `"id": "test-rules"`, `"id": "Test Rules"`},
		{"ErrUnmarkedSetting", `"value": "KZT", "confirmed": false, "satu_default": true`, `"value": "KZT", "confirmed": false, "satu_default": false`},
		{"ErrBothMarks", `"value": "KZT", "confirmed": false`, `"value": "KZT", "confirmed": true`},
		{"ErrNoSettingSource", `"value": 15, "confirmed": true, "satu_default": false, "source": "A: test"`, `"value": 15, "confirmed": true, "satu_default": false, "source": ""`},
		{"ErrExceptions", `"value": []`, `"value": ["renewable power"]`},
		{"ErrPeriod", `"calendar_month"`, `"quarter"`},
		{"ErrCurrency", `"KZT"`, `"kzt"`},
		{"ErrNotJSON", `{`, `[`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(goodFile, tc.old, tc.new, 1)
			if bad == goodFile {
				t.Fatalf("test does not change the file: %q not found", tc.old)
			}
			_, err := compliance.ParseRuleSet([]byte(bad))
			wantCode(t, err, apperr.InvalidParameter)
		})
	}
}

// TestParseRuleSetFile checks that a broken file's error names the file, the
// line and the field, so an operator fixes it in one look.
func TestParseRuleSetFile(t *testing.T) {
	for _, tc := range []struct{ name, old, new, want string }{
		{"ShareOfStep2", `"share": "0.75"`, `"share": "1.75"`, "rules.json:8: steps[1].share: step 2: share"},
		{"StepDateOrder", `"from": "2025-01-01"`, `"from": "2023-01-01"`, "rules.json:8: steps[1].from: step 2"},
		{"Deadline", `"value": 15`, `"value": -3`, "rules.json:12: settings.deadline_days_after_period_end.value:"},
		{"Suspension", `"suspension_months": 3`, `"suspension_months": 9`, "rules.json:27: sanctions.table[1].suspension_months: 9"},
		{"UnknownField", `"fine_mci": 150`, `"fine": 150`, "rules.json:27: sanctions.table[1].fine: unknown field"},
		{"WrongType", `"mci": 2000`, `"mci": "2000"`, "rules.json:32: licence_fees.mci: is a JSON string"},
		{"Unmarked", `"value": "vwap_else_last_auction", "confirmed": false`, `"value": "vwap_else_last_auction", "confirmed": true`,
			"rules.json:20: attribution.reference_price.confirmed: setting reference_price must be"},
		{"Syntax", `"title": "test",`, `"title": "test",,`, "rules.json:4: not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(goodFile, tc.old, tc.new, 1)
			if bad == goodFile {
				t.Fatalf("test does not change the file: %q not found", tc.old)
			}
			_, err := compliance.ParseRuleSetFile("rules.json", []byte(bad))
			wantCode(t, err, apperr.InvalidParameter)
			if msg := apperr.MessageOf(err); !strings.Contains(msg, tc.want) {
				t.Fatalf("message = %q, want it to contain %q", msg, tc.want)
			}
		})
	}
}

// FuzzParseRuleSet checks that the decoder never panics and that whatever it
// accepts is a valid rule set.
func FuzzParseRuleSet(f *testing.F) {
	f.Add([]byte(goodFile))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := compliance.ParseRuleSet(data)
		if err != nil {
			wantCode(t, err, apperr.InvalidParameter)
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted an invalid rule set: %v", err)
		}
	})
}

// TestLoadRuleBookFS: one broken file among good ones fails the whole load,
// naming the file and the line — start-up never runs on half a rule book.
func TestLoadRuleBookFS(t *testing.T) {
	good := strings.Replace(goodFile, `"test-rules"`, `"good-rules"`, 1)
	bad := strings.Replace(strings.Replace(goodFile, `"test-rules"`, `"bad-rules"`, 1), `"fine_mci": 150`, `"fine_mci": -150`, 1)
	fsys := fstest.MapFS{"rules/good-rules.json": {Data: []byte(good)}, "rules/bad-rules.json": {Data: []byte(bad)}}
	_, err := compliance.LoadRuleBookFS(fsys, "rules")
	if err == nil || !strings.Contains(err.Error(), "rules/bad-rules.json:27: sanctions.table[1].fine_mci: -150 is negative") {
		t.Fatalf("err = %v", err)
	}
	delete(fsys, "rules/bad-rules.json")
	if _, err := compliance.LoadRuleBookFS(fsys, "rules"); err == nil || !strings.Contains(err.Error(), "default rule set") {
		t.Fatalf("a book without the default loaded: %v", err)
	}
}
