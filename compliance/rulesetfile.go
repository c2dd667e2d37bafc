package compliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/satu-exchange/satu/internal/apperr"
)

// ruleSetFile is the JSON form of a rule set. Every setting carries whether
// the law confirms it or it is Satu's default, so a reader of the file (or of
// the regulator's view) can tell a fact from a choice.
type ruleSetFile struct {
	ID       string         `json:"id"`
	Version  int            `json:"version"`
	Title    string         `json:"title"`
	Base     string         `json:"base"`
	Steps    []shareStepDoc `json:"steps"`
	Settings settingsDoc    `json:"settings"`
	Notes    []string       `json:"notes"`
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

// defaults checks every setting's mark and returns the names of those that
// are Satu's defaults, in file order.
func (s settingsDoc) defaults() ([]string, error) {
	var names []string
	for _, m := range []struct {
		name string
		mark
	}{
		{"compliance_period", s.Period.mark},
		{"deadline_days_after_period_end", s.DeadlineDays.mark},
		{"proceeds_currency", s.ProceedsCurrency.mark},
		{"exceptions", s.Exceptions.mark},
	} {
		switch {
		case m.Confirmed == m.SatuDefault:
			return nil, fmt.Errorf("setting %s must be either confirmed or satu_default", m.name)
		case strings.TrimSpace(m.Source) == "":
			return nil, fmt.Errorf("setting %s has no source", m.name)
		case m.SatuDefault:
			names = append(names, m.name)
		}
	}
	return names, nil
}

// ParseRuleSet decodes one rule-set file and validates it (see
// RuleSet.Validate). Unknown fields, trailing data, malformed dates and
// shares, unmarked settings and any exception (which Satu cannot apply yet)
// are refused with apperr.InvalidParameter.
func ParseRuleSet(data []byte) (*RuleSet, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f ruleSetFile
	if err := dec.Decode(&f); err != nil {
		return nil, apperr.New(apperr.InvalidParameter, "rule set file is not valid: %v", err)
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		return nil, apperr.New(apperr.InvalidParameter, "rule set file has data after its object")
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
	}
	defaults, err := f.Settings.defaults()
	if err != nil {
		return nil, apperr.New(apperr.InvalidParameter, "rule set %q: %v", f.ID, err)
	}
	r.Defaults = defaults
	if len(f.Settings.Exceptions.Value) > 0 {
		return nil, apperr.New(apperr.InvalidParameter,
			"rule set %q lists exceptions %q; Satu cannot apply exceptions yet", f.ID, f.Settings.Exceptions.Value)
	}
	for i, s := range f.Steps {
		from, err := parseDate(s.From)
		if err != nil {
			return nil, apperr.New(apperr.InvalidParameter, "rule set %q: step %d: %s", f.ID, i+1, apperr.MessageOf(err))
		}
		share, err := ParseShare(s.Share)
		if err != nil {
			return nil, apperr.New(apperr.InvalidParameter, "rule set %q: step %d: %s", f.ID, i+1, apperr.MessageOf(err))
		}
		r.Steps = append(r.Steps, ShareStep{From: from, Share: share, Source: s.Source, Confirmed: s.Confirmed})
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}
