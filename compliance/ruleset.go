package compliance

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
)

// DefaultRuleSet is the rule set Satu applies unless told otherwise: the
// schedule of Law No. 193-VII as the law summaries give it (50 % / 75 %).
const DefaultRuleSet = "kz-law-193"

// PeriodCalendarMonth is the only compliance period Satu supports: one
// obligation per miner, asset and calendar month. The law's period is not
// confirmed; this is Satu's default.
const PeriodCalendarMonth = "calendar_month"

// RuleSet is one named, versioned schedule of the mandatory sale and the
// settings that go with it. Rule sets come from the embedded files under
// rulesets/ (see LoadRuleBook); an obligation records the ID and Version of
// the rule set that produced it.
type RuleSet struct {
	// ID names the rule set, e.g. "kz-law-193"; it is also its file name.
	ID string
	// Version starts at 1 and grows with every change to the file.
	Version int
	// Title says in one line what the rule set is.
	Title string
	// Base is what the share is taken of, with its source.
	Base string
	// Steps are the shares, each in force from its date until the next
	// step's; strictly increasing in date. Before the first step no share is
	// known and ShareOn refuses.
	Steps []ShareStep
	// Period is the compliance period; always PeriodCalendarMonth.
	Period string
	// DeadlineDays is how many days after the period's last day the required
	// sale is due.
	DeadlineDays int
	// ProceedsCurrency is the ISO 4217 code of the currency the sale is made
	// for, e.g. "KZT".
	ProceedsCurrency string
	// Defaults names the settings above that are Satu's defaults rather than
	// confirmed law ("compliance_period", "deadline_days_after_period_end",
	// "proceeds_currency", "exceptions"). Exceptions are always none: a rule
	// set that lists any is refused on load, since Satu cannot apply them yet.
	Defaults []string
	// Notes are caveats a reader must see: conflicts between sources,
	// amendments whose effect is not confirmed.
	Notes []string
}

// ShareStep is a share in force from a date until the next step.
type ShareStep struct {
	// From is the first day the share applies, at UTC midnight.
	From time.Time
	// Share is the fraction of the mined volume that must be sold.
	Share Share
	// Source is the grade and citation the figure rests on (RULES.md grades:
	// A law text, B summary, C news, P the paper).
	Source string
	// Confirmed says the cited source states this figure. ShareOn refuses an
	// unconfirmed step rather than apply a guess.
	Confirmed bool
}

var ruleSetID = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// ShareOn returns the step in force on day: the last step whose From is not
// after day. A day before the first step, or a step that is not confirmed,
// gets apperr.RuleNotConfirmed: Satu refuses to guess a share.
func (r *RuleSet) ShareOn(day time.Time) (ShareStep, error) {
	// Steps are sorted by From, so the step in force is the one before the
	// first step that starts after day.
	i, _ := slices.BinarySearchFunc(r.Steps, day, func(s ShareStep, d time.Time) int {
		if s.From.After(d) {
			return 1
		}
		return -1
	})
	if i == 0 {
		first := "it has no steps"
		if len(r.Steps) > 0 {
			first = "its first step starts " + r.Steps[0].From.UTC().Format(dateLayout)
		}
		return ShareStep{}, apperr.New(apperr.RuleNotConfirmed,
			"rule set %s v%d has no share for %s (%s); Satu does not guess one",
			r.ID, r.Version, day.UTC().Format(dateLayout), first)
	}
	step := r.Steps[i-1]
	if !step.Confirmed {
		return ShareStep{}, apperr.New(apperr.RuleNotConfirmed,
			"rule set %s v%d: the share %s from %s is not confirmed (%s); Satu does not apply it",
			r.ID, r.Version, step.Share, step.From.UTC().Format(dateLayout), step.Source)
	}
	return step, nil
}

// Validate checks a rule set's invariants: an id of lower-case words joined
// by hyphens, version ≥ 1, a title, at least one step, steps at UTC midnight
// strictly increasing in date, each with a valid share (0 ≤ share ≤ 1) and a
// source, the calendar-month period, a deadline from 0 to 366 days and a
// three-letter currency code. It returns apperr.InvalidParameter naming the
// first problem.
func (r *RuleSet) Validate() error {
	bad := func(format string, args ...any) error {
		return apperr.New(apperr.InvalidParameter, "rule set %q: "+format, append([]any{r.ID}, args...)...)
	}
	switch {
	case !ruleSetID.MatchString(r.ID):
		return bad("id must be lower-case words joined by hyphens")
	case r.Version < 1:
		return bad("version %d is below 1", r.Version)
	case strings.TrimSpace(r.Title) == "":
		return bad("title is empty")
	case len(r.Steps) == 0:
		return bad("has no steps")
	case r.Period != PeriodCalendarMonth:
		return bad("period %q is not supported (only %q)", r.Period, PeriodCalendarMonth)
	case r.DeadlineDays < 0 || r.DeadlineDays > 366:
		return bad("deadline of %d days after the period is outside 0…366", r.DeadlineDays)
	case !currencyCode.MatchString(r.ProceedsCurrency):
		return bad("proceeds currency %q is not a three-letter ISO 4217 code", r.ProceedsCurrency)
	}
	for i, s := range r.Steps {
		if !isDate(s.From) {
			return bad("step %d: date %s is not a calendar day at 00:00 UTC", i+1, s.From.Format(time.RFC3339))
		}
		if i > 0 && !s.From.After(r.Steps[i-1].From) {
			return bad("step %d: %s does not come after the previous step's %s",
				i+1, s.From.UTC().Format(dateLayout), r.Steps[i-1].From.UTC().Format(dateLayout))
		}
		if err := s.Share.Validate(); err != nil {
			return bad("step %d: share %d/%d is not a fraction from 0 to 1", i+1, s.Share.Num, s.Share.Den)
		}
		if strings.TrimSpace(s.Source) == "" {
			return bad("step %d has no source", i+1)
		}
	}
	return nil
}

// clone returns a deep copy, so callers of a RuleBook cannot change the
// book's own rule sets.
func (r *RuleSet) clone() *RuleSet {
	c := *r
	c.Steps = slices.Clone(r.Steps)
	c.Defaults = slices.Clone(r.Defaults)
	c.Notes = slices.Clone(r.Notes)
	return &c
}
