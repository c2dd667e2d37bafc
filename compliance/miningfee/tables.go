package miningfee

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
)

// tableFile is the shipped fee schedule. It is the package's only input
// besides its arguments.
//
//go:embed tables/kz-mining-fee.json
var tableFile []byte

// Tables is one named, versioned fee schedule: dated tables, each in force
// from its From until the next one's. An assessment records the ID and
// Version it was computed under, so a change to the file is traceable.
//
// Values returned by Load and Parse are validated; a caller that edits the
// fields must call Validate before assessing with them.
type Tables struct {
	// ID names the schedule, e.g. "kz-mining-fee".
	ID string
	// Version starts at 1 and grows with every change to the file.
	Version int
	// Title says in one line what the schedule is.
	Title string
	// Tables are strictly increasing in From; the first one's From is the
	// earliest quarter Satu can assess.
	Tables []Table
	// Notes are the caveats and Satu's assumptions a reader must see.
	Notes []string
}

// Table is the fee law in force from From: its rates and its due dates.
type Table struct {
	// From is the first day of the first quarter the table applies to, at
	// UTC midnight. Tables are chosen by the quarter's first day because the
	// fee is a quarterly tax: one quarter is never split between tables.
	From time.Time
	// Grade is the weakest RULES.md grade the table's figures rest on: "A",
	// "A-", "B", "C" or "P".
	Grade string
	// Source cites where the table's figures come from.
	Source string
	// SecondarySource marks a table known only from secondary sources (news),
	// so an assessment under it can say so.
	SecondarySource bool
	// Due is when the return and the payment for a quarter are due.
	Due DueRule
	// Purchased is the flat rate for metered grid and imported power; nil
	// when the table rates purchased power by price (PurchasedByPrice).
	Purchased *Rate
	// PurchasedByPrice is the regressive scale: the rate for metered
	// purchased power by the quarter's average price. Empty when Purchased
	// is set.
	PurchasedByPrice []Bracket
	// Own is the rate for power from the miner's own generation.
	Own Rate
	// OwnRenewable is the rate for power from the miner's own renewable
	// generation, whatever its price.
	OwnRenewable Rate
	// NoMetering is the rate for unmetered power; nil when the table has
	// none, and then unmetered power pays the Purchased rate.
	NoMetering *Rate
	// Maximum caps every rate of the table; nil when the table has no cap.
	Maximum *Rate
}

// Rate is one figure of a table, in tiyn per kWh, with its source. A rate that
// is not confirmed carries no figure at all: Assess refuses to apply it.
type Rate struct {
	// Tiyn is the fee per kWh in tiyn (1 ₸ = 100 tiyn); 0 and meaningless
	// when the rate is not confirmed.
	Tiyn int64
	// Confirmed says the cited source states the figure.
	Confirmed bool
	// Source is the grade and citation the figure rests on, or why there is
	// none.
	Source string
}

// DueRule fixes the return and payment dates of a quarter: the given days of
// the month MonthsAfterQuarter months after the quarter's last month.
type DueRule struct {
	// ReturnDay is the day of the month the return is due, or 0 when the
	// sources give no separate return date (2022).
	ReturnDay int
	// PaymentDay is the day of the month the fee must be paid.
	PaymentDay int
	// MonthsAfterQuarter counts months after the quarter's last month: 1 is
	// the month right after the quarter.
	MonthsAfterQuarter int
	// SatuDefault says the rule is Satu's assumption, not confirmed by its
	// source (2024 on: the 2023 rule carried forward).
	SatuDefault bool
	// Source is the grade and citation of the rule, or of the assumption.
	Source string
}

// Dates returns the return and payment due dates for q at UTC midnight; the
// return date is the zero time when the rule has none. Months past December
// roll into the next year (Q4 2023 + 2 months is February 2024).
func (d DueRule) Dates(q Quarter) (returnDue, paymentDue time.Time) {
	month := time.Month(3*q.Q + d.MonthsAfterQuarter) // time.Date normalises > 12
	if d.ReturnDay > 0 {
		returnDue = time.Date(q.Year, month, d.ReturnDay, 0, 0, 0, 0, time.UTC)
	}
	return returnDue, time.Date(q.Year, month, d.PaymentDay, 0, 0, 0, 0, time.UTC)
}

// Load parses and validates the embedded schedule
// (tables/kz-mining-fee.json). An error here is a defect in the shipped
// file, not in user input.
func Load() (*Tables, error) {
	t, err := Parse(tableFile)
	if err != nil {
		return nil, fmt.Errorf("load mining-fee tables: %w", err)
	}
	return t, nil
}

// The JSON form of the schedule. Figures are strings, never JSON numbers.
type (
	fileDoc struct {
		ID      string     `json:"id"`
		Version int        `json:"version"`
		Title   string     `json:"title"`
		Tables  []tableDoc `json:"tables"`
		Notes   []string   `json:"notes"`
	}
	tableDoc struct {
		From            string   `json:"from"`
		Grade           string   `json:"grade"`
		Source          string   `json:"source"`
		SecondarySource bool     `json:"secondary_source"`
		Due             dueDoc   `json:"due"`
		Rates           ratesDoc `json:"rates"`
	}
	// dueDoc carries a mark like the compliance rule sets: exactly one of
	// confirmed and satu_default holds.
	dueDoc struct {
		ReturnDay          int    `json:"return_day"`
		PaymentDay         int    `json:"payment_day"`
		MonthsAfterQuarter int    `json:"months_after_quarter"`
		Confirmed          bool   `json:"confirmed"`
		SatuDefault        bool   `json:"satu_default"`
		Source             string `json:"source"`
	}
	ratesDoc struct {
		Purchased        *rateDoc     `json:"purchased"`
		PurchasedByPrice []bracketDoc `json:"purchased_by_price"`
		Own              *rateDoc     `json:"own"`
		OwnRenewable     *rateDoc     `json:"own_renewable"`
		NoMetering       *rateDoc     `json:"no_metering"`
		Maximum          *rateDoc     `json:"maximum"`
	}
	rateDoc struct {
		Tenge     string `json:"tenge"`
		Confirmed bool   `json:"confirmed"`
		Source    string `json:"source"`
	}
	bracketDoc struct {
		Price string `json:"price"`
		rateDoc
	}
)

// rate converts a figure: a confirmed rate must state a tenge figure and an
// unconfirmed one must not, so no guess can sit in the file unmarked.
func (r rateDoc) rate() (Rate, error) {
	if !r.Confirmed {
		if r.Tenge != "" {
			return Rate{}, fmt.Errorf("is not confirmed but states %q; leave an unconfirmed figure out", r.Tenge)
		}
		return Rate{Source: r.Source}, nil
	}
	tiyn, err := parseTenge(r.Tenge)
	if err != nil {
		return Rate{}, err
	}
	return Rate{Tiyn: tiyn, Confirmed: true, Source: r.Source}, nil
}

// optRate converts an optional figure.
func optRate(r *rateDoc) (*Rate, error) {
	if r == nil {
		return nil, nil
	}
	v, err := r.rate()
	return &v, err
}

// Parse decodes a schedule file and validates it (see Validate). Unknown
// fields, data after the object, dates that are not strict YYYY-MM-DD,
// figures that are not decimal strings with at most two decimals, confirmed
// rates without a figure and unconfirmed ones with one are refused with
// apperr.InvalidParameter: the file is law, and a typo must not pass.
func Parse(data []byte) (*Tables, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileDoc
	if err := dec.Decode(&f); err != nil {
		return nil, apperr.New(apperr.InvalidParameter, "mining-fee file is not valid: %v", err)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		return nil, apperr.New(apperr.InvalidParameter, "mining-fee file has data after its object")
	}
	ts := &Tables{ID: f.ID, Version: f.Version, Title: f.Title, Notes: f.Notes}
	for i, d := range f.Tables {
		t, err := d.table()
		if err != nil {
			return nil, apperr.New(apperr.InvalidParameter, "mining-fee file %q: table %d: %v", f.ID, i+1, err)
		}
		ts.Tables = append(ts.Tables, t)
	}
	if err := ts.Validate(); err != nil {
		return nil, err
	}
	return ts, nil
}

// table converts one table's JSON form.
func (d tableDoc) table() (Table, error) {
	from, err := time.Parse(dateLayout, d.From)
	if err != nil || from.Format(dateLayout) != d.From {
		return Table{}, fmt.Errorf("from %q is not a YYYY-MM-DD calendar date", d.From)
	}
	if d.Due.Confirmed == d.Due.SatuDefault {
		return Table{}, errors.New("due must be either confirmed or satu_default")
	}
	t := Table{
		From:            from,
		Grade:           d.Grade,
		Source:          d.Source,
		SecondarySource: d.SecondarySource,
		Due: DueRule{
			ReturnDay:          d.Due.ReturnDay,
			PaymentDay:         d.Due.PaymentDay,
			MonthsAfterQuarter: d.Due.MonthsAfterQuarter,
			SatuDefault:        d.Due.SatuDefault,
			Source:             d.Due.Source,
		},
	}
	r := d.Rates
	if r.Own == nil || r.OwnRenewable == nil {
		return Table{}, errors.New("rates own and own_renewable are required")
	}
	for _, c := range []struct {
		name string
		doc  *rateDoc
		dst  *Rate
	}{{"own", r.Own, &t.Own}, {"own_renewable", r.OwnRenewable, &t.OwnRenewable}} {
		if *c.dst, err = c.doc.rate(); err != nil {
			return Table{}, fmt.Errorf("rate %s %v", c.name, err)
		}
	}
	for _, c := range []struct {
		name string
		doc  *rateDoc
		dst  **Rate
	}{{"purchased", r.Purchased, &t.Purchased}, {"no_metering", r.NoMetering, &t.NoMetering}, {"maximum", r.Maximum, &t.Maximum}} {
		if *c.dst, err = optRate(c.doc); err != nil {
			return Table{}, fmt.Errorf("rate %s %v", c.name, err)
		}
	}
	for i, bd := range r.PurchasedByPrice {
		b, err := parseBracketPrice(bd.Price)
		if err != nil {
			return Table{}, fmt.Errorf("bracket %d: %v", i+1, err)
		}
		if b.Rate, err = bd.rate(); err != nil {
			return Table{}, fmt.Errorf("bracket %s: rate %v", b, err)
		}
		t.PurchasedByPrice = append(t.PurchasedByPrice, b)
	}
	return t, nil
}

var tablesID = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

var grades = []string{"A", "A-", "B", "C", "P"}

// Validate checks the schedule's invariants and returns
// apperr.InvalidParameter naming the first problem: an id of lower-case
// words joined by hyphens, version ≥ 1, a title, at least one table, tables
// starting on the first day of a quarter and strictly increasing, a known
// grade and a source on every table, due days 1…28 (return day 0 for none)
// and 1…12 months after the quarter, and sound rates (see Table.validate).
func (ts *Tables) Validate() error {
	bad := func(format string, args ...any) error {
		return apperr.New(apperr.InvalidParameter, "mining-fee file %q: "+format, append([]any{ts.ID}, args...)...)
	}
	switch {
	case !tablesID.MatchString(ts.ID):
		return bad("id must be lower-case words joined by hyphens")
	case ts.Version < 1:
		return bad("version %d is below 1", ts.Version)
	case strings.TrimSpace(ts.Title) == "":
		return bad("title is empty")
	case len(ts.Tables) == 0:
		return bad("has no tables")
	}
	for i, t := range ts.Tables {
		from := t.From.UTC()
		if from.Before(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)) || from.Year() > 9999 || !from.Equal(QuarterOf(from).Start()) {
			return bad("table %d: from %s is not the first day of a quarter at 00:00 UTC", i+1, t.From.Format(time.RFC3339))
		}
		if i > 0 && !t.From.After(ts.Tables[i-1].From) {
			return bad("table %d: from %s does not come after the previous table's %s",
				i+1, from.Format(dateLayout), ts.Tables[i-1].From.UTC().Format(dateLayout))
		}
		if err := t.validate(); err != nil {
			return bad("table from %s: %v", from.Format(dateLayout), err)
		}
	}
	return nil
}

// validate checks one table: grade, source, due rule, exactly one way of
// rating purchased power, brackets covering [0, ∞) in order without gap or
// overlap, a no-metering rate wherever there is no flat purchased rate to
// fall back on (unmetered power has no price to look up), a confirmed
// maximum, and every confirmed rate non-negative and at most the maximum.
func (t Table) validate() error {
	d := t.Due
	switch {
	case !slices.Contains(grades, t.Grade):
		return fmt.Errorf("grade %q is not one of %v", t.Grade, grades)
	case strings.TrimSpace(t.Source) == "":
		return errors.New("has no source")
	case strings.TrimSpace(d.Source) == "":
		return errors.New("due rule has no source")
	case d.PaymentDay < 1 || d.PaymentDay > 28:
		return fmt.Errorf("payment day %d is outside 1…28", d.PaymentDay)
	case d.ReturnDay < 0 || d.ReturnDay > 28:
		return fmt.Errorf("return day %d is outside 1…28 (0 for none)", d.ReturnDay)
	case d.MonthsAfterQuarter < 1 || d.MonthsAfterQuarter > 12:
		return fmt.Errorf("due %d months after the quarter is outside 1…12", d.MonthsAfterQuarter)
	case (t.Purchased == nil) == (len(t.PurchasedByPrice) == 0):
		return errors.New("needs exactly one of purchased and purchased_by_price")
	case t.Purchased == nil && t.NoMetering == nil:
		return errors.New("rates purchased power by price, so it needs a no_metering rate")
	case t.Maximum != nil && !t.Maximum.Confirmed:
		return errors.New("maximum is not confirmed; leave it out instead")
	}
	type named struct {
		name string
		r    Rate
	}
	rates := []named{{"own", t.Own}, {"own_renewable", t.OwnRenewable}}
	for _, o := range []struct {
		name string
		r    *Rate
	}{{"purchased", t.Purchased}, {"no_metering", t.NoMetering}, {"maximum", t.Maximum}} {
		if o.r != nil {
			rates = append(rates, named{o.name, *o.r})
		}
	}
	for i, b := range t.PurchasedByPrice {
		if err := b.follows(t.PurchasedByPrice, i); err != nil {
			return err
		}
		rates = append(rates, named{"bracket " + b.String(), b.Rate})
	}
	for _, n := range rates {
		switch {
		case strings.TrimSpace(n.r.Source) == "":
			return fmt.Errorf("rate %s has no source", n.name)
		case n.r.Tiyn < 0 || !n.r.Confirmed && n.r.Tiyn != 0:
			return fmt.Errorf("rate %s has the figure %d tiyn; it must be non-negative, and 0 when not confirmed", n.name, n.r.Tiyn)
		case t.Maximum != nil && n.r.Tiyn > t.Maximum.Tiyn:
			return fmt.Errorf("rate %s of %s is above the maximum %s", n.name, formatRate(n.r.Tiyn), formatRate(t.Maximum.Tiyn))
		}
	}
	return nil
}

// follows checks that bracket i of bs continues the scale: the first starts
// at [0, every later one starts where the previous ends with exactly one of
// the two including the bound, and only the last is unbounded. So the
// brackets are sorted, never overlap and leave no gap.
func (b Bracket) follows(bs []Bracket, i int) error {
	if i == 0 {
		if b.Low != 0 || !b.LowInclusive {
			return fmt.Errorf("bracket %s: the first bracket must start at [0", b)
		}
	} else {
		p := bs[i-1]
		switch {
		case b.Low < p.High || b.Low == p.High && b.LowInclusive && p.HighInclusive:
			return fmt.Errorf("bracket %s overlaps the previous bracket %s", b, p)
		case b.Low > p.High || !b.LowInclusive && !p.HighInclusive:
			return fmt.Errorf("bracket %s leaves a gap after the previous bracket %s", b, p)
		}
	}
	switch last := i == len(bs)-1; {
	case last && !b.Unbounded:
		return fmt.Errorf("bracket %s: the last bracket must be open to ∞", b)
	case !last && b.Unbounded:
		return fmt.Errorf("bracket %s: only the last bracket may be open to ∞", b)
	}
	return nil
}

// TableFor returns the table in force for q: the last one whose From is not
// after q's first day. A quarter before the first table gets
// apperr.RuleNotConfirmed — Satu does not guess a fee for it — and an invalid
// quarter apperr.InvalidParameter.
func (ts *Tables) TableFor(q Quarter) (Table, error) {
	if err := q.Validate(); err != nil {
		return Table{}, err
	}
	start := q.Start()
	i := len(ts.Tables)
	for i > 0 && ts.Tables[i-1].From.After(start) {
		i--
	}
	if i == 0 {
		first := "it has no tables"
		if len(ts.Tables) > 0 {
			first = "its first table applies from " + ts.Tables[0].From.UTC().Format(dateLayout)
		}
		return Table{}, apperr.New(apperr.RuleNotConfirmed,
			"mining-fee file %s v%d has no table for %s (%s); Satu does not guess a fee", ts.ID, ts.Version, q, first)
	}
	return ts.Tables[i-1], nil
}
