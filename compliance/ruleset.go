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
	// Attribution decides which settled fills count towards an obligation.
	Attribution Attribution
	// Sanctions is the fine table for overdue obligations.
	Sanctions Sanctions
	// MCIValues are the monthly calculation index by year, ascending.
	MCIValues []MCIValue
	// LicenceFees are the licence fees per sub-type in MCI.
	LicenceFees []LicenceFee
	// MiningFeeTable names the mining-fee table file (package miningfee)
	// this rule set goes with.
	MiningFeeTable string
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
// source, the calendar-month period, a deadline from 0 to 366 days, a
// three-letter currency code, the attribution settings, a sanctions table,
// MCI values and both licence fees. It returns apperr.InvalidParameter
// naming the first problem and the field it is in.
func (r *RuleSet) Validate() error {
	if e := r.validate(); e != nil {
		return apperr.New(apperr.InvalidParameter, "rule set %q: %s", r.ID, e)
	}
	return nil
}

// validate is Validate with the problem's field path, so a file's error can
// point at its line.
func (r *RuleSet) validate() *fieldError {
	switch {
	case !ruleSetID.MatchString(r.ID):
		return fieldErr("id", "must be lower-case words joined by hyphens")
	case r.Version < 1:
		return fieldErr("version", "%d is below 1", r.Version)
	case strings.TrimSpace(r.Title) == "":
		return fieldErr("title", "is empty")
	case len(r.Steps) == 0:
		return fieldErr("steps", "has no steps")
	case r.Period != PeriodCalendarMonth:
		return fieldErr("settings.compliance_period.value", "period %q is not supported (only %q)", r.Period, PeriodCalendarMonth)
	case r.DeadlineDays < 0 || r.DeadlineDays > 366:
		return fieldErr("settings.deadline_days_after_period_end.value", "deadline of %d days after the period is outside 0…366", r.DeadlineDays)
	case !currencyCode.MatchString(r.ProceedsCurrency):
		return fieldErr("settings.proceeds_currency.value", "proceeds currency %q is not a three-letter ISO 4217 code", r.ProceedsCurrency)
	}
	for i, s := range r.Steps {
		at := func(f string) string { return "steps[" + itoa(i) + "]." + f }
		if !isDate(s.From) {
			return fieldErr(at("from"), "step %d: date %s is not a calendar day at 00:00 UTC", i+1, s.From.Format(time.RFC3339))
		}
		if i > 0 && !s.From.After(r.Steps[i-1].From) {
			return fieldErr(at("from"), "step %d: %s does not come after the previous step's %s",
				i+1, s.From.UTC().Format(dateLayout), r.Steps[i-1].From.UTC().Format(dateLayout))
		}
		if err := s.Share.Validate(); err != nil {
			return fieldErr(at("share"), "step %d: share %d/%d is not a fraction from 0 to 1", i+1, s.Share.Num, s.Share.Den)
		}
		if strings.TrimSpace(s.Source) == "" {
			return fieldErr(at("source"), "step %d has no source", i+1)
		}
	}
	a := r.Attribution
	switch {
	case strings.TrimSpace(a.Venue) == "":
		return fieldErr("attribution.venue.value", "is empty")
	case a.Purpose != "mandatory":
		return fieldErr("attribution.purpose.value", "%q is not an order purpose Satu has (only \"mandatory\")", a.Purpose)
	case a.PriceTolerance.Validate() != nil:
		return fieldErr("attribution.price_tolerance.value", "is not a fraction from 0 to 1")
	case a.ReferencePrice != ReferenceVWAPElseAuction:
		return fieldErr("attribution.reference_price.value", "method %q is unknown (only %q)", a.ReferencePrice, ReferenceVWAPElseAuction)
	case a.ReferenceWindow < time.Hour || a.ReferenceWindow > 31*24*time.Hour:
		return fieldErr("attribution.reference_window_hours.value", "%s is outside 1 hour…31 days", a.ReferenceWindow)
	case strings.TrimSpace(r.MiningFeeTable) == "":
		return fieldErr("mining_fee_table.value", "is empty")
	}
	if e := r.Sanctions.validate(); e != nil {
		return e
	}
	if e := validateMCI(r.MCIValues); e != nil {
		return e
	}
	return validateLicenceFees(r.LicenceFees)
}

// clone returns a deep copy, so callers of a RuleBook cannot change the
// book's own rule sets.
func (r *RuleSet) clone() *RuleSet {
	c := *r
	c.Steps = slices.Clone(r.Steps)
	c.Defaults = slices.Clone(r.Defaults)
	c.Notes = slices.Clone(r.Notes)
	c.Sanctions.Steps = slices.Clone(r.Sanctions.Steps)
	c.MCIValues = slices.Clone(r.MCIValues)
	c.LicenceFees = slices.Clone(r.LicenceFees)
	return &c
}
