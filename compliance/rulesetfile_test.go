package compliance_test

import (
	"strings"
	"testing"

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
		if got := strings.Join(r.Defaults, ","); got != "compliance_period,proceeds_currency,exceptions" {
			t.Errorf("Defaults = %s", got)
		}
	})
	for _, tc := range []struct{ name, old, new string }{
		{"ErrUnknownField", `"notes"`, `"note"`},
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
