package compliance

import (
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
)

// Sanctions is a rule set's table of what an overdue obligation costs. The
// law's article and amounts are not confirmed (RULES.md); the shipped table
// is Satu's default from the paper's range ($112 to $1,144, about 15 to
// 150 MCI at 2023 rates), marked as such in the file.
type Sanctions struct {
	// RepeatWindowMonths: a violation is a repeat when an earlier one of the
	// same miner arose less than this many months before it.
	RepeatWindowMonths int
	// Steps are dated table rows, one per violation number from each From.
	Steps []SanctionStep
	// Mark says where the repeat window comes from.
	Mark Mark
}

// SanctionStep is the sanction for a miner's nth violation (Violation = n;
// the highest row also applies to every later violation) arising on or
// after From.
type SanctionStep struct {
	From      time.Time
	Violation int
	// FineMCI is the fine in monthly calculation indices.
	FineMCI int64
	// SuspensionMonths > 0 makes the violation a recommendation to the
	// regulator to suspend the licence for that long (1 to 6 months,
	// Art. 9 §4). Satu recommends; the regulator decides.
	SuspensionMonths int
	Mark             Mark
}

// Mark says where a figure comes from: confirmed by its source, or Satu's
// default where the law is unconfirmed. Exactly one of the two holds.
type Mark struct {
	Confirmed   bool   `json:"confirmed"`
	SatuDefault bool   `json:"satuDefault"`
	Source      string `json:"source"`
}

// Sanction returns the row for a miner's nth violation arising on day: among
// the rows in force on day (the latest From not after day, per violation
// number), the one for n or, past the table's end, the highest. No row in
// force gets apperr.RuleNotConfirmed.
func (s Sanctions) Sanction(day time.Time, nth int) (SanctionStep, error) {
	var best SanctionStep
	found := false
	for _, st := range s.Steps {
		if st.From.After(day) || st.Violation > nth {
			continue
		}
		// Prefer the highest violation number not above n, then the latest From.
		if !found || st.Violation > best.Violation || (st.Violation == best.Violation && st.From.After(best.From)) {
			best, found = st, true
		}
	}
	if !found {
		return SanctionStep{}, apperr.New(apperr.RuleNotConfirmed,
			"no sanction is defined for violation %d on %s", nth, day.UTC().Format(dateLayout))
	}
	return best, nil
}

// ViolationNumber counts which violation of a miner one arising on day is:
// 1 plus the violations that arose on earlier days within the repeat window
// before it. Two violations arising the same day (two assets of one month)
// are both first: neither was established before the other.
func (s Sanctions) ViolationNumber(day time.Time, earlier []time.Time) int {
	since := day.AddDate(0, -s.RepeatWindowMonths, 0)
	n := 1
	for _, e := range earlier {
		if e.After(since) && e.Before(day) {
			n++
		}
	}
	return n
}

func (s Sanctions) validate() *fieldError {
	if s.RepeatWindowMonths < 1 || s.RepeatWindowMonths > 120 {
		return fieldErr("sanctions.repeat_window_months", "%d months is outside 1…120", s.RepeatWindowMonths)
	}
	if len(s.Steps) == 0 {
		return fieldErr("sanctions.table", "has no rows")
	}
	hasFirst := false
	for i, st := range s.Steps {
		at := func(f string) string { return "sanctions.table[" + itoa(i) + "]." + f }
		switch {
		case !isDate(st.From):
			return fieldErr(at("from"), "is not a calendar day")
		case st.Violation < 1:
			return fieldErr(at("violation"), "%d is below 1", st.Violation)
		case st.FineMCI < 0:
			return fieldErr(at("fine_mci"), "%d is negative", st.FineMCI)
		case st.SuspensionMonths != 0 && (st.SuspensionMonths < MinSuspensionMonths || st.SuspensionMonths > MaxSuspensionMonths):
			return fieldErr(at("suspension_months"), "%d is neither 0 nor 1…6 (Art. 9 §4)", st.SuspensionMonths)
		}
		if e := st.Mark.validate(at("")); e != nil {
			return e
		}
		hasFirst = hasFirst || st.Violation == 1
		for _, o := range s.Steps[:i] {
			if o.Violation == st.Violation && o.From.Equal(st.From) {
				return fieldErr(at("violation"), "row for violation %d from %s is defined twice", st.Violation, st.From.Format(dateLayout))
			}
		}
	}
	if !hasFirst {
		return fieldErr("sanctions.table", "has no row for a first violation")
	}
	return nil
}
