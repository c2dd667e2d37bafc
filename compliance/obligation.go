package compliance

import (
	"strings"
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
)

// Obligation is the mandatory sale due from one miner's report of one asset
// for one calendar month, with the rule set and version that produced it.
// Dates are calendar days at UTC midnight; volumes are minor units of Asset.
type Obligation struct {
	MinerID, Asset string
	// PeriodStart and PeriodEnd are the first and last day of the month.
	PeriodStart, PeriodEnd time.Time
	// Deadline is PeriodEnd plus the rule set's DeadlineDays.
	Deadline time.Time
	// Mined is the reported volume; Required = ceil(Mined × Share).
	Mined, Required int64
	// Share is the share in force on PeriodStart.
	Share          Share
	RuleSet        string
	RuleSetVersion int
}

// Obligation computes the mandatory sale for a miner's report: mined minor
// units of asset in the month starting periodStart. periodStart must be the
// first day of a month at 00:00 UTC (else apperr.InvalidParameter); the share
// in force on that day applies to the whole month (ShareOn's errors pass
// through); a negative mined volume gets apperr.InvalidQuantity.
func (r *RuleSet) Obligation(minerID, asset string, periodStart time.Time, mined int64) (Obligation, error) {
	switch {
	case strings.TrimSpace(minerID) == "":
		return Obligation{}, apperr.New(apperr.InvalidParameter, "miner id is empty")
	case strings.TrimSpace(asset) == "":
		return Obligation{}, apperr.New(apperr.InvalidParameter, "asset is empty")
	case mined < 0:
		return Obligation{}, apperr.New(apperr.InvalidQuantity, "mined volume %d is negative", mined)
	case r.Period != PeriodCalendarMonth:
		return Obligation{}, apperr.New(apperr.InvalidParameter,
			"rule set %q: period %q is not supported (only %q)", r.ID, r.Period, PeriodCalendarMonth)
	case r.DeadlineDays < 0:
		return Obligation{}, apperr.New(apperr.InvalidParameter,
			"rule set %q: deadline of %d days is negative", r.ID, r.DeadlineDays)
	}
	start, err := monthStart(periodStart)
	if err != nil {
		return Obligation{}, err
	}
	step, err := r.ShareOn(start)
	if err != nil {
		return Obligation{}, err
	}
	required, err := step.Share.Required(mined)
	if err != nil {
		return Obligation{}, err
	}
	end := nextMonth(start).AddDate(0, 0, -1)
	return Obligation{
		MinerID:        minerID,
		Asset:          asset,
		PeriodStart:    start,
		PeriodEnd:      end,
		Deadline:       end.AddDate(0, 0, r.DeadlineDays),
		Mined:          mined,
		Required:       required,
		Share:          step.Share,
		RuleSet:        r.ID,
		RuleSetVersion: r.Version,
	}, nil
}

// Status is where an obligation stands.
type Status string

// The statuses. They match the obligations.status column.
const (
	// StatusOpen: less than the required volume has been sold.
	StatusOpen Status = "open"
	// StatusMet: at least the required volume has been sold.
	StatusMet Status = "met"
	// StatusOverdue: the deadline passed with less than the required volume
	// sold; a violation was recorded. Sales after the deadline no longer
	// count towards it (its window has closed).
	StatusOverdue Status = "overdue"
)

// Overdue reports whether an obligation with this deadline, still open, is
// overdue on today: the deadline day itself is still in time.
func Overdue(deadline, today time.Time) bool { return today.After(deadline) }

// Progress compares the volume sold with the volume required: the obligation
// is met iff sold ≥ required, so a required volume of 0 is met at once.
// remaining is what is still to sell and never below 0. Both volumes are
// minor units and never negative in a valid state; a negative one is taken as
// 0, which keeps the subtraction from overflowing.
func Progress(required, sold int64) (remaining int64, status Status) {
	required, sold = max(required, 0), max(sold, 0)
	if sold >= required {
		return 0, StatusMet
	}
	return required - sold, StatusOpen
}

// Progress is Progress(o.Required, sold).
func (o Obligation) Progress(sold int64) (remaining int64, status Status) {
	return Progress(o.Required, sold)
}
