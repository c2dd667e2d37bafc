package proof

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/money"
)

// Format names the certificate format.
const Format = "satu-certificate/v1"

// Certificate is one obligation's proof: the claim, the signed checkpoint,
// and every log entry the claim rests on with its inclusion proof to that
// checkpoint — every report version and computation of the obligation, its
// state changes, every attribution of a sale to it, and every sale in its
// window that counted towards nothing, with the fills they name.
type Certificate struct {
	Format     string  `json:"format"`
	Obligation Claim   `json:"obligation"`
	Checkpoint string  `json:"checkpoint"`
	Entries    []Entry `json:"entries"`
}

// Claim is what the exchange says about the obligation.
type Claim struct {
	ID       int64  `json:"id"`
	Miner    string `json:"miner"`
	Asset    string `json:"asset"`
	Period   string `json:"period"` // YYYY-MM
	Required string `json:"required"`
	Sold     string `json:"sold"`
	Status   string `json:"status"`
}

// Entry is one log entry in a certificate.
type Entry struct {
	Index int64    `json:"index"`
	Data  string   `json:"data"`  // the exact leaf data
	Proof []string `json:"proof"` // base64 hashes: the inclusion proof at the checkpoint's size
}

// NewEntry builds a certificate entry.
func NewEntry(index int64, data []byte, p tlog.RecordProof) Entry {
	e := Entry{Index: index, Data: string(data), Proof: make([]string, len(p))}
	// One string holds every hash's text (a certificate has hundreds of
	// thousands of hashes: one allocation per entry, not per hash).
	n := base64.StdEncoding.EncodedLen(tlog.HashSize)
	buf := make([]byte, n*len(p))
	for i, h := range p {
		base64.StdEncoding.Encode(buf[i*n:], h[:])
	}
	all := string(buf)
	for i := range p {
		e.Proof[i] = all[i*n : (i+1)*n]
	}
	return e
}

// Verdict is what verification established.
type Verdict struct {
	Checkpoint     Checkpoint
	Obligation     Claim
	RuleSet        string
	RuleSetVersion int
	Share, Mined   string
	Computations   int
	Counted        int      // counted attributions
	Excluded       []string // "fill: reason" of each excluded sale
}

// String is the verdict in one paragraph.
func (v Verdict) String() string {
	var b strings.Builder
	o := v.Obligation
	fmt.Fprintf(&b, "obligation %d (%s, %s %s): %s\n", o.ID, o.Miner, o.Asset, o.Period, strings.ToUpper(o.Status))
	fmt.Fprintf(&b, "  required %s = ceil(%s mined × %s) under %s v%d (computation %d)\n", o.Required, v.Mined, v.Share,
		v.RuleSet, v.RuleSetVersion, v.Computations)
	fmt.Fprintf(&b, "  counted %s %s in %d attribution(s); %d sale(s) excluded", o.Sold, o.Asset, v.Counted, len(v.Excluded))
	for _, x := range v.Excluded {
		fmt.Fprintf(&b, "\n    excluded %s", x)
	}
	fmt.Fprintf(&b, "\n  every entry is in the log of %s at size %d, signed by the exchange\n", v.Checkpoint.Origin, v.Checkpoint.Size)
	return b.String()
}

// Verify checks a certificate offline: the checkpoint's signature by the
// exchange's key; every entry's inclusion proof to it; that the newest
// computation follows from its report version under the named rule set
// (required = ceil(mined × share), the share and deadline in force); that
// the counted attributions name included mandatory fills sold in the
// obligation's window and sum to the claimed sold volume; and that the
// claimed status follows (met iff sold ≥ required; overdue only with an
// overdue state entry). The first failure is returned with its reason.
func Verify(c Certificate, vkey string, book *compliance.RuleBook) (Verdict, error) {
	v := Verdict{Obligation: c.Obligation}
	if c.Format != Format {
		return v, fmt.Errorf("format %q is not %q", c.Format, Format)
	}
	cp, err := OpenCheckpoint(c.Checkpoint, vkey)
	if err != nil {
		return v, err
	}
	v.Checkpoint = cp
	ents, err := checkEntries(c.Entries, cp)
	if err != nil {
		return v, err
	}
	o := c.Obligation
	comp, report, err := ents.computation(o)
	if err != nil {
		return v, err
	}
	v.Computations, v.RuleSet, v.RuleSetVersion, v.Share, v.Mined = comp.Version, comp.RuleSet, comp.RuleSetVersion, comp.Share, comp.Mined
	scale := decimals(comp.Mined)
	ob, err := recompute(comp, report, book, scale)
	if err != nil {
		return v, err
	}
	if got := money.Format(ob.Required, scale); got != comp.Required || got != o.Required {
		return v, fmt.Errorf("required: ceil(%s × %s) is %s, the computation says %s and the claim %s", comp.Mined, comp.Share, got, comp.Required, o.Required)
	}
	sold, err := ents.counted(o, ob, scale, &v)
	if err != nil {
		return v, err
	}
	if got := money.Format(sold, scale); got != o.Sold {
		return v, fmt.Errorf("sold: the counted attributions sum to %s, the claim says %s", got, o.Sold)
	}
	want := string(compliance.StatusOpen)
	switch {
	case sold >= ob.Required:
		want = string(compliance.StatusMet)
	case ents.overdue[o.ID]:
		want = string(compliance.StatusOverdue)
	}
	if o.Status != want {
		return v, fmt.Errorf("status: the entries make the obligation %s, the claim says %s", want, o.Status)
	}
	return v, nil
}

// entries are a certificate's decoded entries, checked against the checkpoint.
type entries struct {
	fills        map[string]*Fill // by shard/id
	reports      []*Report
	computations []*Computation
	attributions []*Attribution
	overdue      map[int64]bool
}

func checkEntries(list []Entry, cp Checkpoint) (*entries, error) {
	ents := &entries{fills: map[string]*Fill{}, overdue: map[int64]bool{}}
	seen := map[int64]bool{}
	for i, e := range list {
		if e.Index < 0 || e.Index >= cp.Size {
			return nil, fmt.Errorf("entry %d: index %d is outside the checkpoint's log of %d", i, e.Index, cp.Size)
		}
		if seen[e.Index] {
			return nil, fmt.Errorf("entry %d: index %d appears twice", i, e.Index)
		}
		seen[e.Index] = true
		p := make(tlog.RecordProof, len(e.Proof))
		for j, s := range e.Proof {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil || len(b) != tlog.HashSize {
				return nil, fmt.Errorf("entry %d: proof hash %d is not a base64 SHA-256 hash", i, j)
			}
			copy(p[j][:], b)
		}
		if err := tlog.CheckRecord(p, cp.Size, cp.Root, e.Index, LeafHash([]byte(e.Data))); err != nil {
			return nil, fmt.Errorf("entry %d (index %d): not in the log at the checkpoint: %v", i, e.Index, err)
		}
		kind, val, err := Decode([]byte(e.Data))
		if err != nil {
			return nil, fmt.Errorf("entry %d (index %d): %v", i, e.Index, err)
		}
		switch kind {
		case KindFill:
			f := val.(*Fill)
			ents.fills[f.Shard+"/"+f.ID] = f
		case KindReport:
			ents.reports = append(ents.reports, val.(*Report))
		case KindComputation:
			ents.computations = append(ents.computations, val.(*Computation))
		case KindAttribution:
			ents.attributions = append(ents.attributions, val.(*Attribution))
		case KindState:
			if s := val.(*State); s.Status == string(compliance.StatusOverdue) {
				ents.overdue[s.Obligation] = true
			}
		}
	}
	return ents, nil
}

// computation returns the obligation's newest computation and the report
// version it was computed from; the computations must be 1…n, all present.
func (e *entries) computation(o Claim) (*Computation, *Report, error) {
	var newest *Computation
	versions := map[int]bool{}
	for _, c := range e.computations {
		if c.Obligation != o.ID {
			continue
		}
		if c.Miner != o.Miner || c.Asset != o.Asset || c.Period != o.Period {
			return nil, nil, fmt.Errorf("computation %d is of %s %s %s, not the claim's %s %s %s", c.Version, c.Miner, c.Asset, c.Period, o.Miner, o.Asset, o.Period)
		}
		versions[c.Version] = true
		if newest == nil || c.Version > newest.Version {
			newest = c
		}
	}
	if newest == nil {
		return nil, nil, fmt.Errorf("no computation of obligation %d", o.ID)
	}
	for v := 1; v <= newest.Version; v++ {
		if !versions[v] {
			return nil, nil, fmt.Errorf("computation %d of obligation %d is missing", v, o.ID)
		}
	}
	for _, r := range e.reports {
		if r.Miner == o.Miner && r.Asset == o.Asset && r.Period == o.Period && r.Version == newest.ReportVersion {
			if r.Mined != newest.Mined {
				return nil, nil, fmt.Errorf("computation %d uses %s mined, report version %d says %s", newest.Version, newest.Mined, r.Version, r.Mined)
			}
			return newest, r, nil
		}
	}
	return nil, nil, fmt.Errorf("report version %d of %s %s %s is missing", newest.ReportVersion, o.Miner, o.Asset, o.Period)
}

// recompute derives the obligation from the report under the named rule
// set and checks the computation's share and deadline.
func recompute(c *Computation, r *Report, book *compliance.RuleBook, scale int) (compliance.Obligation, error) {
	rules, err := book.Get(c.RuleSet)
	if err != nil {
		return compliance.Obligation{}, fmt.Errorf("rule set: %v", err)
	}
	if rules.Version != c.RuleSetVersion {
		return compliance.Obligation{}, fmt.Errorf("rule set %s: the computation names version %d, this verifier knows version %d", c.RuleSet, c.RuleSetVersion, rules.Version)
	}
	period, err := time.Parse("2006-01", c.Period)
	if err != nil {
		return compliance.Obligation{}, fmt.Errorf("computation: period %q", c.Period)
	}
	mined, err := money.Parse(r.Mined, scale)
	if err != nil {
		return compliance.Obligation{}, fmt.Errorf("report: mined %q: %v", r.Mined, err)
	}
	ob, err := rules.Obligation(c.Miner, c.Asset, period, mined)
	if err != nil {
		return compliance.Obligation{}, fmt.Errorf("rule set %s v%d: %v", c.RuleSet, c.RuleSetVersion, err)
	}
	if ob.Share.String() != c.Share {
		return compliance.Obligation{}, fmt.Errorf("share: rule set %s v%d gives %s for %s, the computation used %s", c.RuleSet, c.RuleSetVersion, ob.Share, c.Period, c.Share)
	}
	if d := ob.Deadline.Format(time.DateOnly); d != c.Deadline {
		return compliance.Obligation{}, fmt.Errorf("deadline: rule set %s v%d gives %s, the computation says %s", c.RuleSet, c.RuleSetVersion, d, c.Deadline)
	}
	return ob, nil
}

// counted sums the attributions counted towards the obligation, checking
// that each names an included mandatory fill sold in the obligation's
// window and that no fill is counted beyond its quantity; excluded sales
// are listed in the verdict.
func (e *entries) counted(o Claim, ob compliance.Obligation, scale int, v *Verdict) (int64, error) {
	from, to := compliance.OpenObligation{PeriodStart: ob.PeriodStart, Deadline: ob.Deadline}.Window()
	used := map[string]int64{}
	var sold int64
	for _, a := range e.attributions {
		if a.Miner != o.Miner {
			continue
		}
		key := a.Shard + "/" + a.Fill
		f, ok := e.fills[key]
		if !ok {
			return 0, fmt.Errorf("attribution of fill %s: the fill is not in the certificate", key)
		}
		if !a.Counted {
			v.Excluded = append(v.Excluded, fmt.Sprintf("%s: %s %s (%s)", key, a.Quantity, o.Asset, a.Reason))
			continue
		}
		if a.Obligation != o.ID {
			continue
		}
		qty, err := money.Parse(a.Quantity, scale)
		if err != nil {
			return 0, fmt.Errorf("attribution of fill %s: quantity %q: %v", key, a.Quantity, err)
		}
		fq, err := money.Parse(f.Quantity, scale)
		if err != nil {
			return 0, fmt.Errorf("fill %s: quantity %q: %v", key, f.Quantity, err)
		}
		at, err := time.Parse(time.RFC3339Nano, f.ExecutedAt)
		if err != nil {
			return 0, fmt.Errorf("fill %s: time %q", key, f.ExecutedAt)
		}
		switch {
		case !f.Mandatory:
			return 0, fmt.Errorf("fill %s is counted but was not a mandatory sale", key)
		case f.Base != o.Asset:
			return 0, fmt.Errorf("fill %s sold %s, not %s", key, f.Base, o.Asset)
		case at.Before(from) || !at.Before(to):
			return 0, fmt.Errorf("fill %s executed %s, outside the obligation's window", key, f.ExecutedAt)
		case used[key]+qty > fq:
			return 0, fmt.Errorf("fill %s of %s is counted for more than its quantity", key, f.Quantity)
		}
		used[key] += qty
		sold += qty
		v.Counted++
	}
	return sold, nil
}

// decimals is the number of fractional digits of a decimal string, the
// asset's scale as the exchange writes every amount.
func decimals(s string) int {
	if _, frac, ok := strings.Cut(s, "."); ok {
		return len(frac)
	}
	return 0
}
