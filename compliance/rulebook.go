package compliance

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/satu-exchange/satu/internal/apperr"
)

//go:embed rulesets/*.json
var ruleSetFiles embed.FS

// RuleBook holds the rule sets Satu knows, by ID. It is immutable once built
// and safe for concurrent use.
type RuleBook struct {
	sets map[string]*RuleSet
}

// LoadRuleBook parses and validates the embedded rule-set files
// (rulesets/<id>.json) and checks that DefaultRuleSet is among them. An error
// here is a defect in the shipped files, not in user input.
func LoadRuleBook() (*RuleBook, error) { return LoadRuleBookFS(ruleSetFiles, "rulesets") }

// LoadRuleBookFS is LoadRuleBook over the *.json files of dir in fsys. A
// broken file fails the load with its name, line and field.
func LoadRuleBookFS(fsys fs.FS, dir string) (*RuleBook, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("load rule book: %w", err)
	}
	sets := make([]*RuleSet, 0, len(names))
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("load rule book: %w", err)
		}
		r, err := ParseRuleSetFile(name, data)
		if err != nil {
			return nil, fmt.Errorf("load rule book: %w", err)
		}
		if want := strings.TrimSuffix(path.Base(name), ".json"); r.ID != want {
			return nil, fmt.Errorf("load rule book: %s: id %q does not match the file name", name, r.ID)
		}
		sets = append(sets, r)
	}
	b, err := NewRuleBook(sets...)
	if err != nil {
		return nil, fmt.Errorf("load rule book: %w", err)
	}
	if _, ok := b.sets[DefaultRuleSet]; !ok {
		return nil, fmt.Errorf("load rule book: the default rule set %q is missing", DefaultRuleSet)
	}
	return b, nil
}

// NewRuleBook builds a rule book from rule sets, validating each and refusing
// two with the same ID (apperr.InvalidParameter). It keeps its own copies.
func NewRuleBook(sets ...*RuleSet) (*RuleBook, error) {
	b := &RuleBook{sets: make(map[string]*RuleSet, len(sets))}
	for _, r := range sets {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		if _, dup := b.sets[r.ID]; dup {
			return nil, apperr.New(apperr.InvalidParameter, "rule set %q is defined twice", r.ID)
		}
		b.sets[r.ID] = r.clone()
	}
	return b, nil
}

// Get returns a copy of the rule set with this ID; an unknown ID gets
// apperr.InvalidParameter.
func (b *RuleBook) Get(id string) (*RuleSet, error) {
	r, ok := b.sets[id]
	if !ok {
		return nil, apperr.New(apperr.InvalidParameter, "unknown rule set %q (known: %s)", id, strings.Join(b.IDs(), ", "))
	}
	return r.clone(), nil
}

// IDs returns the IDs of the rule sets in the book, sorted.
func (b *RuleBook) IDs() []string {
	ids := make([]string, 0, len(b.sets))
	for id := range b.sets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
