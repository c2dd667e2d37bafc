package compliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
)

// ruleSetFile is the JSON form of a rule set. Every setting carries whether
// the law confirms it or it is Satu's default, so a reader of the file (or of
// the regulator's view) can tell a fact from a choice.
type ruleSetFile struct {
	ID             string          `json:"id"`
	Version        int             `json:"version"`
	Title          string          `json:"title"`
	Base           string          `json:"base"`
	Steps          []shareStepDoc  `json:"steps"`
	Settings       settingsDoc     `json:"settings"`
	Attribution    attributionDoc  `json:"attribution"`
	Sanctions      sanctionsDoc    `json:"sanctions"`
	MCI            []mciDoc        `json:"mci"`
	LicenceFees    []licenceFeeDoc `json:"licence_fees"`
	MiningFeeTable setting[string] `json:"mining_fee_table"`
	Notes          []string        `json:"notes"`
}

type shareStepDoc struct {
	From      string `json:"from"`
	Share     string `json:"share"`
	Confirmed bool   `json:"confirmed"`
	Source    string `json:"source"`
}

type settingsDoc struct {
	Period           setting[string]   `json:"compliance_period"`
	DeadlineDays     setting[int]      `json:"deadline_days_after_period_end"`
	ProceedsCurrency setting[string]   `json:"proceeds_currency"`
	Exceptions       setting[[]string] `json:"exceptions"`
}

type attributionDoc struct {
	Venue           setting[string] `json:"venue"`
	Purpose         setting[string] `json:"purpose"`
	PriceTolerance  setting[string] `json:"price_tolerance"`
	ReferencePrice  setting[string] `json:"reference_price"`
	ReferenceWindow setting[int]    `json:"reference_window_hours"`
}

type sanctionsDoc struct {
	RepeatWindowMonths setting[int]  `json:"repeat_window_months"`
	Table              []sanctionDoc `json:"table"`
}

type sanctionDoc struct {
	From             string `json:"from"`
	Violation        int    `json:"violation"`
	FineMCI          int64  `json:"fine_mci"`
	SuspensionMonths int    `json:"suspension_months"`
	mark
}

type mciDoc struct {
	Year  int   `json:"year"`
	Tenge int64 `json:"tenge"`
	mark
}

type licenceFeeDoc struct {
	Subtype string `json:"subtype"`
	MCI     int64  `json:"mci"`
	mark
}

// setting is one configurable value and its mark.
type setting[T any] struct {
	Value T `json:"value"`
	mark
}

// mark says where a setting comes from. Exactly one of Confirmed and
// SatuDefault holds: a value is either confirmed by its source or marked as
// Satu's default, never an unmarked guess.
type mark struct {
	Confirmed   bool   `json:"confirmed"`
	SatuDefault bool   `json:"satu_default"`
	Source      string `json:"source"`
}

func (m mark) domain() Mark {
	return Mark{Confirmed: m.Confirmed, SatuDefault: m.SatuDefault, Source: m.Source}
}

// defaults checks every setting's mark and returns the names of those that
// are Satu's defaults, in file order.
func (f *ruleSetFile) defaults() ([]string, *fieldError) {
	var names []string
	for _, m := range []struct {
		name, path string
		mark
	}{
		{"compliance_period", "settings.compliance_period", f.Settings.Period.mark},
		{"deadline_days_after_period_end", "settings.deadline_days_after_period_end", f.Settings.DeadlineDays.mark},
		{"proceeds_currency", "settings.proceeds_currency", f.Settings.ProceedsCurrency.mark},
		{"exceptions", "settings.exceptions", f.Settings.Exceptions.mark},
		{"venue", "attribution.venue", f.Attribution.Venue.mark},
		{"purpose", "attribution.purpose", f.Attribution.Purpose.mark},
		{"price_tolerance", "attribution.price_tolerance", f.Attribution.PriceTolerance.mark},
		{"reference_price", "attribution.reference_price", f.Attribution.ReferencePrice.mark},
		{"reference_window_hours", "attribution.reference_window_hours", f.Attribution.ReferenceWindow.mark},
		{"repeat_window_months", "sanctions.repeat_window_months", f.Sanctions.RepeatWindowMonths.mark},
		{"mining_fee_table", "mining_fee_table", f.MiningFeeTable.mark},
	} {
		if e := m.domain().validate(m.path + "."); e != nil {
			return nil, fieldErr(e.path, "setting %s %s", m.name, e.msg)
		}
		if m.SatuDefault {
			names = append(names, m.name)
		}
	}
	return names, nil
}

// ParseRuleSet decodes one rule-set file and validates it (see
// RuleSet.Validate). Unknown fields, trailing data, malformed dates and
// shares, unmarked settings and any exception (which Satu cannot apply yet)
// are refused with apperr.InvalidParameter.
func ParseRuleSet(data []byte) (*RuleSet, error) { return ParseRuleSetFile("", data) }

// ParseRuleSetFile is ParseRuleSet for a named file: an error says
// "name:line: field: problem", so a broken file is fixed in one look.
func ParseRuleSetFile(name string, data []byte) (*RuleSet, error) {
	r, e := parseRuleSet(data)
	if e == nil {
		return r, nil
	}
	where, line := name, e.line
	if line == 0 {
		line = lineOf(data, e.path)
	}
	if line > 0 {
		if where == "" {
			where = "line"
		}
		where += ":" + itoa(line)
	}
	if where != "" {
		where += ": "
	}
	return nil, apperr.New(apperr.InvalidParameter, "rule set file %s%s", where, e)
}

func parseRuleSet(data []byte) (*RuleSet, *fieldError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f ruleSetFile
	if err := dec.Decode(&f); err != nil {
		return nil, decodeError(data, err)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		return nil, fieldErr("", "has data after its object")
	}
	r := &RuleSet{
		ID:               f.ID,
		Version:          f.Version,
		Title:            f.Title,
		Base:             f.Base,
		Period:           f.Settings.Period.Value,
		DeadlineDays:     f.Settings.DeadlineDays.Value,
		ProceedsCurrency: f.Settings.ProceedsCurrency.Value,
		Notes:            f.Notes,
		MiningFeeTable:   f.MiningFeeTable.Value,
	}
	defaults, e := f.defaults()
	if e != nil {
		return nil, e
	}
	r.Defaults = defaults
	if len(f.Settings.Exceptions.Value) > 0 {
		return nil, fieldErr("settings.exceptions.value", "lists exceptions %q; Satu cannot apply exceptions yet", f.Settings.Exceptions.Value)
	}
	for i, s := range f.Steps {
		at := func(field string) string { return "steps[" + itoa(i) + "]." + field }
		from, err := parseDate(s.From)
		if err != nil {
			return nil, fieldErr(at("from"), "step %d: %s", i+1, apperr.MessageOf(err))
		}
		share, err := ParseShare(s.Share)
		if err != nil {
			return nil, fieldErr(at("share"), "step %d: %s", i+1, apperr.MessageOf(err))
		}
		r.Steps = append(r.Steps, ShareStep{From: from, Share: share, Source: s.Source, Confirmed: s.Confirmed})
	}
	a := f.Attribution
	tolerance, err := ParseShare(a.PriceTolerance.Value)
	if err != nil {
		return nil, fieldErr("attribution.price_tolerance.value", "%s", apperr.MessageOf(err))
	}
	r.Attribution = Attribution{Venue: a.Venue.Value, Purpose: a.Purpose.Value, PriceTolerance: tolerance, ProceedsCurrency: r.ProceedsCurrency,
		ReferencePrice: a.ReferencePrice.Value, ReferenceWindow: time.Duration(a.ReferenceWindow.Value) * time.Hour}
	r.Sanctions = Sanctions{RepeatWindowMonths: f.Sanctions.RepeatWindowMonths.Value, Mark: f.Sanctions.RepeatWindowMonths.domain()}
	for i, s := range f.Sanctions.Table {
		from, err := parseDate(s.From)
		if err != nil {
			return nil, fieldErr("sanctions.table["+itoa(i)+"].from", "%s", apperr.MessageOf(err))
		}
		r.Sanctions.Steps = append(r.Sanctions.Steps, SanctionStep{From: from, Violation: s.Violation, FineMCI: s.FineMCI,
			SuspensionMonths: s.SuspensionMonths, Mark: s.domain()})
	}
	for _, m := range f.MCI {
		r.MCIValues = append(r.MCIValues, MCIValue{Year: m.Year, Tenge: m.Tenge, Mark: m.domain()})
	}
	for _, l := range f.LicenceFees {
		r.LicenceFees = append(r.LicenceFees, LicenceFee{Subtype: LicenceSubtype(l.Subtype), MCI: l.MCI, Mark: l.domain()})
	}
	if e := r.validate(); e != nil {
		return nil, e
	}
	return r, nil
}

// decodeError turns a JSON decoding error into a field error: a syntax or
// type error carries its offset, an unknown field its name.
func decodeError(data []byte, err error) *fieldError {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return &fieldError{line: lineAt(data, syntax.Offset), msg: fmt.Sprintf("not valid JSON: %v", err)}
	case errors.As(err, &typ):
		// Field leaves out array indices ("licence_fees.mci"); the offset
		// still finds the line.
		return &fieldError{line: lineAt(data, typ.Offset), path: typ.Field,
			msg: fmt.Sprintf("is a JSON %s, want %s", typ.Value, typ.Type)}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		field, _ := strconv.Unquote(name)
		return &fieldError{path: findKey(data, field), msg: fmt.Sprintf("unknown field %s", name)}
	}
	return fieldErr("", "is not valid: %v", err)
}
