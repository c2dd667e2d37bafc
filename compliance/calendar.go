package compliance

import (
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
)

// dateLayout is the only date format of the rule-set files and of messages.
const dateLayout = "2006-01-02"

// isDate reports whether t is a calendar day: a non-zero instant at 00:00 UTC.
// The instant is what counts, not the location it is written in.
func isDate(t time.Time) bool {
	u := t.UTC()
	return !t.IsZero() && u.Equal(time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC))
}

// parseDate reads a strict YYYY-MM-DD date as UTC midnight.
func parseDate(s string) (time.Time, error) {
	t, err := time.Parse(dateLayout, s)
	if err != nil || t.Format(dateLayout) != s {
		return time.Time{}, apperr.New(apperr.InvalidParameter, "date %q is not a YYYY-MM-DD calendar date", s)
	}
	return t, nil
}

// monthStart checks that periodStart is the first day of a month at UTC
// midnight and returns it in the UTC location. The instant is what counts:
// the same instant written in another zone is accepted.
func monthStart(periodStart time.Time) (time.Time, error) {
	t := periodStart.UTC()
	first := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	if !t.Equal(first) {
		return time.Time{}, apperr.New(apperr.InvalidParameter,
			"period start %s is not the first day of a month at 00:00 UTC", periodStart.Format(time.RFC3339))
	}
	return first, nil
}

// nextMonth returns the first day of the month after the one starting at first.
func nextMonth(first time.Time) time.Time { return first.AddDate(0, 1, 0) }
