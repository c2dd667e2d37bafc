package compliance

import (
	"strings"
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
)

// LicenceSubtype is the kind of digital-mining licence (Law No. 193-VII
// Art. 9), decided by who holds the data-processing centre.
type LicenceSubtype string

// The subtypes; the values match the licences.subtype column.
const (
	// SubtypeOwnDataCentre (I): the miner owns or legally holds a
	// digital-mining data centre.
	SubtypeOwnDataCentre LicenceSubtype = "I"
	// SubtypeHosted (II): the miner's own hardware sits in someone else's
	// data centre.
	SubtypeHosted LicenceSubtype = "II"
)

// LicenceStatus is a licence's current standing in the registry.
type LicenceStatus string

// The statuses; the values match the licences.status column.
const (
	LicenceActive    LicenceStatus = "active"
	LicenceSuspended LicenceStatus = "suspended" // for 1 to 6 months, Art. 9 §4
	LicenceRevoked   LicenceStatus = "revoked"
)

// LicenceTermYears is the term of a digital-mining licence (Art. 9).
const LicenceTermYears = 3

// Licence is a digital-mining licence in the registry. IssuedOn and ExpiresOn
// are calendar days at UTC midnight; the licence covers IssuedOn up to but not
// including ExpiresOn.
type Licence struct {
	Number    string
	Subtype   LicenceSubtype
	IssuedOn  time.Time
	ExpiresOn time.Time
	Status    LicenceStatus
}

// LicenceExpiresOn returns the expiry date of a licence issued on issuedOn:
// the same calendar day LicenceTermYears later or, for a licence issued on
// 29 February, the last day of that February (a term in years ends on the
// corresponding day, or on the month's last day when there is none).
func LicenceExpiresOn(issuedOn time.Time) time.Time {
	d := issuedOn.UTC()
	y, m, day := d.Year()+LicenceTermYears, d.Month(), d.Day()
	if last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day(); day > last {
		day = last
	}
	return time.Date(y, m, day, 0, 0, 0, 0, time.UTC)
}

// Validate checks a licence record: a non-empty number, subtype I or II, a
// known status, IssuedOn and ExpiresOn calendar days at 00:00 UTC, and
// ExpiresOn == LicenceExpiresOn(IssuedOn), the three-year term. It returns
// apperr.InvalidParameter naming the first problem.
func (l Licence) Validate() error {
	bad := func(format string, args ...any) error {
		return apperr.New(apperr.InvalidParameter, "licence %q: "+format, append([]any{l.Number}, args...)...)
	}
	switch {
	case strings.TrimSpace(l.Number) == "":
		return apperr.New(apperr.InvalidParameter, "licence number is empty")
	case l.Subtype != SubtypeOwnDataCentre && l.Subtype != SubtypeHosted:
		return bad("subtype %q is neither %q nor %q", l.Subtype, SubtypeOwnDataCentre, SubtypeHosted)
	case l.Status != LicenceActive && l.Status != LicenceSuspended && l.Status != LicenceRevoked:
		return bad("status %q is not one of active, suspended, revoked", l.Status)
	case !isDate(l.IssuedOn):
		return bad("issue date %s is not a calendar day at 00:00 UTC", l.IssuedOn.Format(time.RFC3339))
	case !isDate(l.ExpiresOn):
		return bad("expiry date %s is not a calendar day at 00:00 UTC", l.ExpiresOn.Format(time.RFC3339))
	}
	if want := LicenceExpiresOn(l.IssuedOn); !l.ExpiresOn.Equal(want) {
		return bad("expires on %s but a licence issued on %s expires on %s (a %d-year term)",
			l.ExpiresOn.UTC().Format(dateLayout), l.IssuedOn.UTC().Format(dateLayout),
			want.Format(dateLayout), LicenceTermYears)
	}
	return nil
}

// ActiveOn reports whether the licence has status active and
// IssuedOn ≤ day < ExpiresOn. Status is the registry's current status, not a
// history: a suspended or revoked licence is active on no day.
func (l Licence) ActiveOn(day time.Time) bool {
	return l.Status == LicenceActive && !day.Before(l.IssuedOn) && day.Before(l.ExpiresOn)
}

// activeDuring reports whether the licence is active on some day of
// [from, to).
func (l Licence) activeDuring(from, to time.Time) bool {
	return l.Status == LicenceActive && l.IssuedOn.Before(to) && l.ExpiresOn.After(from)
}

// CheckReportPeriod decides whether a miner holding licences may report the
// month starting periodStart: it may iff at least one licence is active on at
// least one day of that month (one issued mid-month counts). periodStart must
// be the first day of a month at 00:00 UTC and every licence must be valid,
// else apperr.InvalidParameter; with no active licence the report is refused
// with apperr.NoLicence.
func CheckReportPeriod(licences []Licence, periodStart time.Time) error {
	start, err := monthStart(periodStart)
	if err != nil {
		return err
	}
	end := nextMonth(start)
	for _, l := range licences {
		if err := l.Validate(); err != nil {
			return err
		}
	}
	for _, l := range licences {
		if l.activeDuring(start, end) {
			return nil
		}
	}
	return apperr.New(apperr.NoLicence,
		"no licence was active on any day of %s; a report needs a licence active in its month",
		start.Format("2006-01"))
}
