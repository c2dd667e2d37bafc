package compliance_test

import (
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/apperr"
)

// day parses a YYYY-MM-DD date at UTC midnight.
func day(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// mustRuleSet returns an embedded rule set by id.
func mustRuleSet(tb testing.TB, id string) *compliance.RuleSet {
	tb.Helper()
	b, err := compliance.LoadRuleBook()
	if err != nil {
		tb.Fatalf("LoadRuleBook: %v", err)
	}
	r, err := b.Get(id)
	if err != nil {
		tb.Fatalf("Get(%q): %v", id, err)
	}
	return r
}

// wantCode fails unless err carries the application error code want.
func wantCode(tb testing.TB, err error, want apperr.Code) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("error = nil, want %s", want)
	}
	if got := apperr.CodeOf(err); got != want {
		tb.Fatalf("error = %v, want code %s", err, want)
	}
}
