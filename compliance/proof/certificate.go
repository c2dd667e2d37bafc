package proof

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/money"
)

// Format names the certificate format. v2 replaced v1's per-entry proofs
// (positions in a table of hashes) with one batch inclusion proof.
const Format = "satu-certificate/v2"

// Certificate is one obligation's proof: the claim, the signed checkpoint,
// and every log entry the claim rests on — every report version and
// computation of the obligation, its state changes, every attribution of a
// sale to it, and every sale in its window that counted towards nothing,
// with the fills they name — in log order, with one batch inclusion proof
// of all of them to that checkpoint (batch.go; AuditPath derives any
// entry's own RFC 6962 inclusion proof from it).
type Certificate struct {
	Format     string  `json:"format"`
	Obligation Claim   `json:"obligation"`
	Checkpoint string  `json:"checkpoint"`
	Entries    []Entry `json:"entries"`
	Proof      string  `json:"proof"` // base64 of the batch inclusion proof's hashes, 32 bytes each
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
	Index int64  `json:"index"`
	Data  string `json:"data"` // the exact leaf data
}

// EncodeHashes is hashes as a certificate's Proof.
func EncodeHashes(hs []tlog.Hash) string {
	b := make([]byte, 0, len(hs)*tlog.HashSize)
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// decodeHashes reads a certificate's Proof.
func decodeHashes(s string) ([]tlog.Hash, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw)%tlog.HashSize != 0 {
		return nil, fmt.Errorf("proof: not base64 of 32-byte hashes")
	}
	hs := make([]tlog.Hash, len(raw)/tlog.HashSize)
	for i := range hs {
		copy(hs[i][:], raw[i*tlog.HashSize:])
	}
	return hs, nil
}

// AuditPath is the RFC 6962 inclusion proof of the certificate's entry at
// log index to the checkpoint cp (opened from c.Checkpoint), derived from
// the batch proof — for tools that check one entry at a time. The batch
// proof must lead to cp's root.
func (c Certificate) AuditPath(cp Checkpoint, index int64) (tlog.RecordProof, error) {
	hs, err := decodeHashes(c.Proof)
	if err != nil {
		return nil, err
	}
	indexes, leaves := make([]int64, len(c.Entries)), make([]tlog.Hash, len(c.Entries))
	for i, e := range c.Entries {
		indexes[i], leaves[i] = e.Index, LeafHash([]byte(e.Data))
	}
	path, root, err := AuditPath(cp.Size, indexes, leaves, hs, index)
	if err != nil {
		return nil, err
	}
	if root != cp.Root {
		return nil, errRoot(root, cp)
	}
	return path, nil
}

// errRoot is the failure of a batch proof that leads elsewhere.
func errRoot(root tlog.Hash, cp Checkpoint) error {
	return fmt.Errorf("entries: not in the log at the checkpoint: with the batch proof they lead to root %s, the checkpoint's is %s", root, cp.Root)
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
	// Used is, per fill counted ("shard/id"), how much of it this
	// certificate counts, and Fills the fill's quantity, in minor units of
	// the obligation's asset: what CrossCheck compares across certificates.
	Used, Fills map[string]int64
}

// ErrSameObligation is CrossCheck's refusal of two certificates of one
// obligation, whose counts cannot be added.
var ErrSameObligation = errors.New("two certificates of obligation")

// CrossCheck checks verified certificates of distinct obligations
// against one another: no fill may be counted, over all of them, for more
// than its quantity. One certificate cannot show this — each holds only
// its own obligation's attributions — so a fill counted in full towards
// two miners' (or two months') obligations passes each alone.
func CrossCheck(vs []Verdict) error {
	seen := map[int64]bool{}
	fills := map[string]int64{}        // each fill's quantity
	by := map[string][]int64{}         // the obligations counting it
	roots := map[[2]string]tlog.Hash{} // each log size's root
	for _, v := range vs {
		if seen[v.Obligation.ID] {
			return fmt.Errorf("%w: %d (give one per obligation, the newest)", ErrSameObligation, v.Obligation.ID)
		}
		seen[v.Obligation.ID] = true
		size := [2]string{v.Checkpoint.Origin, fmt.Sprint(v.Checkpoint.Size)}
		if r, ok := roots[size]; ok && r != v.Checkpoint.Root {
			return fmt.Errorf("two checkpoints of %s at size %d with different roots: two logs, a fork", v.Checkpoint.Origin, v.Checkpoint.Size)
		}
		roots[size] = v.Checkpoint.Root
		for key, q := range v.Fills {
			if fq, ok := fills[key]; ok && fq != q {
				by[key] = append(by[key], v.Obligation.ID)
				return fmt.Errorf("fill %s has two quantities in the certificates of obligations %v", key, by[key])
			}
			fills[key] = q
			by[key] = append(by[key], v.Obligation.ID)
		}
	}
	keys := make([]string, 0, len(fills))
	for key := range fills {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		var used int64 // never above the fill's quantity, so fq − used cannot overflow
		for _, v := range vs {
			if q := v.Used[key]; q > fills[key]-used {
				return fmt.Errorf("fill %s is counted for more than its quantity over obligations %v", key, by[key])
			} else {
				used += q
			}
		}
	}
	return nil
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
// exchange's key; the batch inclusion proof of the entries, in log order,
// to it; that the newest computation follows from its report version
// under the named rule set (required = ceil(mined × share), the share and
// deadline in force); that the counted attributions name included
// mandatory fills sold in the obligation's window for the proceeds
// currency, at a price within the price tolerance of their reference, in
// parts each more than zero and together never beyond the fill's quantity,
// and sum to the claimed sold volume; and that the claimed status follows
// (met iff sold ≥ required; overdue only with an overdue state entry). The
// first failure is returned with its reason.
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
	ents, err := checkEntries(c, cp)
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
	ob, rules, err := recompute(comp, report, book, scale)
	if err != nil {
		return v, err
	}
	if got := money.Format(ob.Required, scale); got != comp.Required || got != o.Required {
		return v, fmt.Errorf("required: ceil(%s × %s) is %s, the computation says %s and the claim %s", comp.Mined, comp.Share, got, comp.Required, o.Required)
	}
	sold, err := ents.counted(o, ob, rules.Attribution, scale, &v)
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

func checkEntries(c Certificate, cp Checkpoint) (*entries, error) {
	hs, err := decodeHashes(c.Proof)
	if err != nil {
		return nil, err
	}
	list := c.Entries
	indexes := make([]int64, len(list))
	for i, e := range list {
		indexes[i] = e.Index
	}
	if err := checkIndexes(cp.Size, indexes); err != nil {
		return nil, err
	}
	// Each entry's leaf hash and decoding are independent: every CPU takes
	// a share; the batch proof then leads from all leaves to one root.
	leaves := make([]tlog.Hash, len(list))
	kinds, vals, errs := make([]string, len(list)), make([]any, len(list)), make([]error, len(list))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(list)/500))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * len(list) / workers; i < (w+1)*len(list)/workers; i++ {
				data := []byte(list[i].Data)
				leaves[i] = LeafHash(data)
				if kinds[i], vals[i], errs[i] = Decode(data); errs[i] != nil {
					errs[i] = fmt.Errorf("entry %d (index %d): %v", i, list[i].Index, errs[i])
				}
			}
		})
	}
	wg.Wait()
	root, err := BatchRoot(cp.Size, indexes, leaves, hs)
	if err != nil {
		return nil, fmt.Errorf("entries: %v", err)
	}
	if root != cp.Root {
		return nil, errRoot(root, cp)
	}
	ents := &entries{fills: map[string]*Fill{}, overdue: map[int64]bool{}}
	for i := range list {
		if errs[i] != nil {
			return nil, errs[i]
		}
		switch kinds[i] {
		case KindFill:
			f := vals[i].(*Fill)
			ents.fills[f.Shard+"/"+f.ID] = f
		case KindReport:
			ents.reports = append(ents.reports, vals[i].(*Report))
		case KindComputation:
			ents.computations = append(ents.computations, vals[i].(*Computation))
		case KindAttribution:
			ents.attributions = append(ents.attributions, vals[i].(*Attribution))
		case KindState:
			if st := vals[i].(*State); st.Status == string(compliance.StatusOverdue) {
				ents.overdue[st.Obligation] = true
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
// set, which it returns, and checks the computation's share and deadline.
func recompute(c *Computation, r *Report, book *compliance.RuleBook, scale int) (compliance.Obligation, *compliance.RuleSet, error) {
	rules, err := book.Get(c.RuleSet)
	if err != nil {
		return compliance.Obligation{}, nil, fmt.Errorf("rule set: %v", err)
	}
	// A later version of the rule set recomputes an older computation:
	// versions add dated data and keep what earlier periods used, and the
	// share and deadline it gives are checked against the computation's
	// below. An older one cannot know what the newer version added.
	if rules.Version < c.RuleSetVersion {
		return compliance.Obligation{}, nil, fmt.Errorf("rule set %s: the computation names version %d, this verifier knows only version %d", c.RuleSet, c.RuleSetVersion, rules.Version)
	}
	period, err := time.Parse("2006-01", c.Period)
	if err != nil {
		return compliance.Obligation{}, nil, fmt.Errorf("computation: period %q", c.Period)
	}
	mined, err := money.Parse(r.Mined, scale)
	if err != nil {
		return compliance.Obligation{}, nil, fmt.Errorf("report: mined %q: %v", r.Mined, err)
	}
	ob, err := rules.Obligation(c.Miner, c.Asset, period, mined)
	if err != nil {
		return compliance.Obligation{}, nil, fmt.Errorf("rule set %s v%d: %v", c.RuleSet, c.RuleSetVersion, err)
	}
	if ob.Share.String() != c.Share {
		return compliance.Obligation{}, nil, fmt.Errorf("share: rule set %s v%d gives %s for %s, the computation used %s", c.RuleSet, c.RuleSetVersion, ob.Share, c.Period, c.Share)
	}
	if d := ob.Deadline.Format(time.DateOnly); d != c.Deadline {
		return compliance.Obligation{}, nil, fmt.Errorf("deadline: rule set %s v%d gives %s, the computation says %s", c.RuleSet, c.RuleSetVersion, d, c.Deadline)
	}
	return ob, rules, nil
}

// counted sums the attributions counted towards the obligation, checking
// that each names an included mandatory fill sold in the obligation's
// window for the rules' proceeds currency, at a price within the rules'
// tolerance of its reference, and that no fill is counted beyond its
// quantity; excluded sales are listed in the verdict. Amounts are int64
// minor units and every sum is checked: a certificate's quantities are
// anything up to the largest int64, and a sum that wrapped could be made
// to equal any claim.
func (e *entries) counted(o Claim, ob compliance.Obligation, rules compliance.Attribution, scale int, v *Verdict) (int64, error) {
	from, to := compliance.OpenObligation{PeriodStart: ob.PeriodStart, Deadline: ob.Deadline}.Window()
	used := map[string]int64{} // never above the fill's quantity
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
		case rules.ProceedsCurrency != "" && f.Quote != rules.ProceedsCurrency:
			return 0, fmt.Errorf("fill %s sold for %s; the rule set counts sales for %s", key, f.Quote, rules.ProceedsCurrency)
		case at.Before(from) || !at.Before(to):
			return 0, fmt.Errorf("fill %s executed %s, outside the obligation's window", key, f.ExecutedAt)
		case qty <= 0:
			return 0, fmt.Errorf("attribution of fill %s counts %s: a counted part of a sale is more than zero", key, a.Quantity)
		// used[key] ≤ fq, so fq−used[key] cannot overflow where
		// used[key]+qty could.
		case qty > fq-used[key]:
			return 0, fmt.Errorf("fill %s of %s is counted for more than its quantity", key, f.Quantity)
		case sold > math.MaxInt64-qty:
			return 0, fmt.Errorf("sold: the counted attributions sum to more than %s, the largest amount this verifier holds",
				money.Format(math.MaxInt64, scale))
		}
		if err := withinTolerance(key, f, a, rules.PriceTolerance); err != nil {
			return 0, err
		}
		used[key] += qty
		sold += qty
		v.Counted++
		if v.Fills == nil {
			v.Fills = map[string]int64{}
		}
		v.Fills[key] = fq
	}
	v.Used = used
	return sold, nil
}

// withinTolerance checks a counted sale's price against the reference price
// its attribution records, as compliance.Attribution.Attribute does:
// |price − reference| ≤ tolerance × reference, exactly (rationals, never
// floats), the boundary included. With basis none there was no reference
// and nothing is checked. A last auction price is recorded exactly; a VWAP
// is a fraction of a minor unit, recorded rounded to the nearest minor unit
// of the price's scale (halves away from zero), so the exchange's exact
// reference R lies in [r − ½, r + ½) of the recorded r: the sale is refused
// only if no such R admits its price — the rule to within that rounding,
// and never an honest sale refused.
func withinTolerance(key string, f *Fill, a *Attribution, tolerance compliance.Share) error {
	switch a.Basis {
	case compliance.BasisNone:
		if a.Reference != "" {
			return fmt.Errorf("attribution of fill %s: reference %q with basis none, which has no reference price", key, a.Reference)
		}
		return nil
	case compliance.BasisVWAP, compliance.BasisLastAuction:
	default:
		return fmt.Errorf("attribution of fill %s: reference price basis %q is unknown", key, a.Basis)
	}
	if a.Reference == "" {
		return fmt.Errorf("attribution of fill %s: basis %s without its reference price", key, a.Basis)
	}
	scale := decimals(f.Price)
	if decimals(a.Reference) != scale {
		return fmt.Errorf("attribution of fill %s: reference %q is not written to the %d decimals of the fill's price %s", key, a.Reference, scale, f.Price)
	}
	p, err := money.Parse(f.Price, scale)
	if err != nil || p <= 0 {
		return fmt.Errorf("fill %s: price %q is not a positive amount", key, f.Price)
	}
	r, err := money.Parse(a.Reference, scale)
	if err != nil || r <= 0 {
		return fmt.Errorf("attribution of fill %s: reference %q is not a positive amount", key, a.Reference)
	}
	ref := new(big.Rat).SetInt64(r)
	ok := false
	if a.Basis == compliance.BasisLastAuction { // recorded exactly: attribution's own rule
		ok = compliance.WithinTolerance(p, ref, tolerance)
	} else {
		// The references that admit the price: price/(1+t) ≤ R ≤
		// price/(1−t) (no upper bound when t = 1); a VWAP is recorded
		// rounded, so some R in [r − ½, r + ½) must lie among them.
		price, t, one := new(big.Rat).SetInt64(p), big.NewRat(tolerance.Num, tolerance.Den), big.NewRat(1, 1)
		low := new(big.Rat).Quo(price, new(big.Rat).Add(one, t))
		var high *big.Rat
		if t.Cmp(one) < 0 {
			high = new(big.Rat).Quo(price, new(big.Rat).Sub(one, t))
		}
		half := big.NewRat(1, 2)
		least := new(big.Rat).Sub(ref, half)
		if least.Cmp(low) < 0 {
			least = low
		}
		ok = least.Cmp(new(big.Rat).Add(ref, half)) < 0 && (high == nil || least.Cmp(high) <= 0)
	}
	if !ok {
		return fmt.Errorf("fill %s at %s is counted, but its price is more than %s away from the %s reference %s",
			key, f.Price, tolerance, a.Basis, a.Reference)
	}
	return nil
}

// decimals is the number of fractional digits of a decimal string, the
// asset's scale as the exchange writes every amount.
func decimals(s string) int {
	if _, frac, ok := strings.Cut(s, "."); ok {
		return len(frac)
	}
	return 0
}
