package miningfee

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
)

// dateLayout is the only date format of the table file and of messages.
const dateLayout = "2006-01-02"

// Quarter is a calendar quarter, the fee's tax period: Q 1 covers January to
// March, 2 April to June, 3 July to September, 4 October to December.
type Quarter struct {
	// Year is the calendar year, 1…9999.
	Year int
	// Q is the quarter within the year, 1…4.
	Q int
}

// QuarterOf returns the quarter containing t, read in UTC: the package works
// in UTC calendar days throughout, so a caller holding a local time must
// convert the day it means to UTC midnight first.
func QuarterOf(t time.Time) Quarter {
	u := t.UTC()
	return Quarter{Year: u.Year(), Q: (int(u.Month())-1)/3 + 1}
}

var quarterPattern = regexp.MustCompile(`^([0-9]{4})-Q([1-4])$`)

// ParseQuarter reads the strict form "YYYY-Qn" written by String, e.g.
// "2023-Q2". Anything else — lower-case q, spaces, a sign, a short year, year
// 0000 — is refused with apperr.InvalidParameter, so one quarter has exactly
// one spelling.
func ParseQuarter(s string) (Quarter, error) {
	m := quarterPattern.FindStringSubmatch(s)
	if m == nil {
		return Quarter{}, apperr.New(apperr.InvalidParameter, "quarter %q is not of the form YYYY-Qn (e.g. 2023-Q2)", s)
	}
	year, _ := strconv.Atoi(m[1]) // four digits: cannot fail
	q, _ := strconv.Atoi(m[2])
	quarter := Quarter{Year: year, Q: q}
	if err := quarter.Validate(); err != nil {
		return Quarter{}, err
	}
	return quarter, nil
}

// Validate checks that the year is 1…9999 (the range String writes in four
// digits) and the quarter 1…4, with apperr.InvalidParameter otherwise.
func (q Quarter) Validate() error {
	if q.Year < 1 || q.Year > 9999 || q.Q < 1 || q.Q > 4 {
		return apperr.New(apperr.InvalidParameter, "quarter %d-Q%d is not a quarter of a year 0001…9999", q.Year, q.Q)
	}
	return nil
}

// String returns the quarter as "YYYY-Qn", e.g. "2023-Q2", the form
// ParseQuarter reads.
func (q Quarter) String() string { return fmt.Sprintf("%04d-Q%d", q.Year, q.Q) }

// Start returns the quarter's first day at UTC midnight. Tables are chosen by
// it.
func (q Quarter) Start() time.Time {
	return time.Date(q.Year, time.Month(3*(q.Q-1)+1), 1, 0, 0, 0, 0, time.UTC)
}

// End returns the quarter's last day at UTC midnight (not the instant the
// quarter ends): a calendar day, like every date of the package.
func (q Quarter) End() time.Time {
	return time.Date(q.Year, time.Month(3*q.Q)+1, 0, 0, 0, 0, 0, time.UTC)
}

// monthIn returns the first day of the month t is, after checking that t is
// the first day of a month at 00:00 UTC (the instant counts, not its
// location) and lies in q. It refuses with apperr.InvalidParameter.
func (q Quarter) monthIn(t time.Time) (time.Time, error) {
	u := t.UTC()
	first := time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC)
	if !u.Equal(first) {
		return time.Time{}, apperr.New(apperr.InvalidParameter,
			"month %s is not the first day of a month at 00:00 UTC", t.Format(time.RFC3339))
	}
	if QuarterOf(first) != q {
		return time.Time{}, apperr.New(apperr.InvalidParameter, "month %s is outside %s (%s…%s)",
			first.Format(dateLayout), q, q.Start().Format(dateLayout), q.End().Format(dateLayout))
	}
	return first, nil
}
