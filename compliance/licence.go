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
	// LicenceExpired is never stored: a licence is expired on and after its
	// ExpiresOn whatever its status (StatusOn).
	LicenceExpired LicenceStatus = "expired"
	// LicenceNotIssued is never stored: StatusOn a day before IssuedOn.
	LicenceNotIssued LicenceStatus = "not_issued"
)

// Suspension bounds: Art. 9 §4 suspends a licence for 1 to 6 months.
const (
	MinSuspensionMonths = 1
	MaxSuspensionMonths = 6
)

// ChangeKind is what a licence status change does.
type ChangeKind string

// The change kinds; the values match the licence_changes.kind column.
const (
	// ChangeSuspend suspends the licence from From until Until (exclusive),
	// 1 to 6 months; after Until it is active again by itself.
	ChangeSuspend ChangeKind = "suspend"
	// ChangeReinstate ends a suspension early, from From.
	ChangeReinstate ChangeKind = "reinstate"
	// ChangeRevoke revokes the licence from From, for good.
	ChangeRevoke ChangeKind = "revoke"
)

// StatusChange is one dated change of a licence's status, kept for ever: a
// report for a past month is judged by the status in force then, not now.
type StatusChange struct {
	Kind  ChangeKind `json:"kind"`
	From  time.Time  `json:"from"`
	Until time.Time  `json:"until,omitzero"` // suspensions only
	// Reason is why the regulator made the change (audit).
	Reason string `json:"reason"`
}

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
	// Status is the status the licence was registered with (normally
	// active); Changes alter it from their dates on.
	Status LicenceStatus
	// Changes are the status changes in the order they were made, each
	// starting no earlier than the one before.
	Changes []StatusChange
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
	for i, c := range l.Changes {
		if err := l.checkChange(c, l.Changes[:i]); err != nil {
			return err
		}
	}
	return nil
}

// CheckChange decides whether change may be made to the licence as it
// stands: a known kind, a date inside the term and not before the last
// change, a suspension of 1 to 6 whole months, a reinstatement only of a
// suspended licence, nothing after a revocation, and a reason. It returns
// apperr.InvalidParameter or apperr.InvalidTransition naming the problem.
func (l Licence) CheckChange(c StatusChange) error { return l.checkChange(c, l.Changes) }

func (l Licence) checkChange(c StatusChange, before []StatusChange) error {
	bad := func(code apperr.Code, format string, args ...any) error {
		return apperr.New(code, "licence %q: %s "+format, append([]any{l.Number, c.Kind}, args...)...)
	}
	switch {
	case c.Kind != ChangeSuspend && c.Kind != ChangeReinstate && c.Kind != ChangeRevoke:
		return apperr.New(apperr.InvalidParameter, "licence %q: change %q is not one of suspend, reinstate, revoke", l.Number, c.Kind)
	case !isDate(c.From):
		return bad(apperr.InvalidParameter, "date %s is not a calendar day at 00:00 UTC", c.From.Format(time.RFC3339))
	case c.From.Before(l.IssuedOn) || !c.From.Before(l.ExpiresOn):
		return bad(apperr.InvalidParameter, "from %s is outside the licence's term %s to %s", c.From.UTC().Format(dateLayout),
			l.IssuedOn.UTC().Format(dateLayout), l.ExpiresOn.UTC().Format(dateLayout))
	case strings.TrimSpace(c.Reason) == "":
		return bad(apperr.InvalidParameter, "needs a reason")
	case c.Kind != ChangeSuspend && !c.Until.IsZero():
		return bad(apperr.InvalidParameter, "takes no end date")
	}
	if n := len(before); n > 0 && c.From.Before(before[n-1].From) {
		return bad(apperr.InvalidParameter, "from %s comes before the previous change's %s",
			c.From.UTC().Format(dateLayout), before[n-1].From.UTC().Format(dateLayout))
	}
	status := l.statusAfter(c.From, before)
	switch c.Kind {
	case ChangeSuspend:
		months := 0
		for m := MinSuspensionMonths; m <= MaxSuspensionMonths; m++ {
			if c.Until.Equal(c.From.AddDate(0, m, 0)) {
				months = m
			}
		}
		if months == 0 {
			return bad(apperr.InvalidParameter, "until %s is not 1 to 6 whole months after %s (Art. 9 §4)",
				c.Until.UTC().Format(dateLayout), c.From.UTC().Format(dateLayout))
		}
		if status != LicenceActive {
			return bad(apperr.InvalidTransition, "of a licence that is %s on %s", status, c.From.UTC().Format(dateLayout))
		}
	case ChangeReinstate:
		if status != LicenceSuspended {
			return bad(apperr.InvalidTransition, "of a licence that is %s on %s", status, c.From.UTC().Format(dateLayout))
		}
	case ChangeRevoke:
		if status == LicenceRevoked {
			return bad(apperr.InvalidTransition, "of a licence already revoked")
		}
	}
	return nil
}

// statusAfter is the registry status on day after applying changes, ignoring
// the term.
func (l Licence) statusAfter(day time.Time, changes []StatusChange) LicenceStatus {
	s := l.Status
	for _, c := range changes {
		if c.From.After(day) {
			break
		}
		switch c.Kind {
		case ChangeSuspend:
			if day.Before(c.Until) {
				s = LicenceSuspended
			} else if s != LicenceRevoked {
				s = LicenceActive
			}
		case ChangeReinstate:
			s = LicenceActive
		case ChangeRevoke:
			s = LicenceRevoked
		}
	}
	return s
}

// StatusOn returns the licence's status on day: not issued before IssuedOn,
// expired from ExpiresOn, else its registered status as the changes up to
// day leave it (a suspension ends by itself at its Until).
func (l Licence) StatusOn(day time.Time) LicenceStatus {
	switch {
	case day.Before(l.IssuedOn):
		return LicenceNotIssued
	case !day.Before(l.ExpiresOn):
		return LicenceExpired
	}
	return l.statusAfter(day, l.Changes)
}

// ActiveOn reports whether the licence is active on day (StatusOn).
func (l Licence) ActiveOn(day time.Time) bool { return l.StatusOn(day) == LicenceActive }

// activeDuring reports whether the licence is active on some day of
// [from, to). Status only changes at the term's ends and at change dates
// (and a suspension's end), so those are the only days to look at.
func (l Licence) activeDuring(from, to time.Time) bool {
	days := []time.Time{from, l.IssuedOn}
	for _, c := range l.Changes {
		days = append(days, c.From, c.Until)
	}
	for _, d := range days {
		if !d.IsZero() && !d.Before(from) && d.Before(to) && l.ActiveOn(d) {
			return true
		}
	}
	return false
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
