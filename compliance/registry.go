package compliance

import (
	"regexp"
	"strings"
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
)

// Actor says who makes a change and why; every registry write goes into the
// audit log with it.
type Actor struct {
	// ID is the API key (or "system", "demo", a CLI user) that made it.
	ID string
	// Reason is the free-text why, required for status changes.
	Reason string
}

// registryID is the form of every registry identifier: data centres, pools.
var registryID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// DataCentre is a digital-mining data-processing centre. A sub-type I
// licence means the miner owns or legally holds one (MinerID set).
type DataCentre struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Operator   string `json:"operator"`        // the legal entity running it
	MinerID    string `json:"miner,omitempty"` // the miner holding it, if a licensed miner does
	Location   string `json:"location"`        // region and settlement
	CapacityKW int64  `json:"capacityKw"`      // connected capacity
}

// Validate checks a data centre's record.
func (d DataCentre) Validate() error {
	switch {
	case !registryID.MatchString(d.ID):
		return apperr.New(apperr.InvalidParameter, "data centre id %q must be 1-64 lower-case letters, digits or dashes", d.ID)
	case strings.TrimSpace(d.Name) == "" || strings.TrimSpace(d.Operator) == "" || strings.TrimSpace(d.Location) == "":
		return apperr.New(apperr.InvalidParameter, "data centre %q needs a name, an operator and a location", d.ID)
	case d.CapacityKW <= 0:
		return apperr.New(apperr.InvalidQuantity, "data centre %q: capacity %d kW is not positive", d.ID, d.CapacityKW)
	}
	return nil
}

// Pool is an accredited digital-mining pool (Order No. 142/НҚ: hardware and
// software in Kazakhstan, an information-security test passed).
type Pool struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Accreditation string    `json:"accreditation"` // the accreditation certificate's number
	AccreditedOn  time.Time `json:"accreditedOn"`
	Location      string    `json:"location"`
}

// Validate checks a pool's record.
func (p Pool) Validate() error {
	switch {
	case !registryID.MatchString(p.ID):
		return apperr.New(apperr.InvalidParameter, "pool id %q must be 1-64 lower-case letters, digits or dashes", p.ID)
	case strings.TrimSpace(p.Name) == "" || strings.TrimSpace(p.Accreditation) == "" || strings.TrimSpace(p.Location) == "":
		return apperr.New(apperr.InvalidParameter, "pool %q needs a name, an accreditation number and a location", p.ID)
	case !isDate(p.AccreditedOn):
		return apperr.New(apperr.InvalidParameter, "pool %q: accreditation date is not a calendar day", p.ID)
	}
	return nil
}

// Equipment is one machine in the register of mining hardware (Art. 4 §11).
type Equipment struct {
	Serial     string `json:"serial"`
	Model      string `json:"model"`
	HashRate   string `json:"hashRateThs"` // TH/s, a decimal
	RatedPower int64  `json:"ratedPowerW"`
	Location   string `json:"location"`
	DataCentre string `json:"dataCentre,omitempty"`
	Pool       string `json:"pool,omitempty"`
	MinerID    string `json:"miner"`
}

var (
	serialForm  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$`)
	decimalForm = regexp.MustCompile(`^(0|[1-9][0-9]{0,9})(\.[0-9]{1,6})?$`)
)

// Validate checks a machine's record: a serial, a model, a positive hash
// rate in TH/s with at most 6 decimals, a positive rated power and a place.
func (e Equipment) Validate() error {
	switch {
	case !serialForm.MatchString(e.Serial):
		return apperr.New(apperr.InvalidParameter, "serial %q must be 1-64 letters, digits or . _ / -", e.Serial)
	case strings.TrimSpace(e.Model) == "" || strings.TrimSpace(e.Location) == "":
		return apperr.New(apperr.InvalidParameter, "equipment %q needs a model and a location", e.Serial)
	case !decimalForm.MatchString(e.HashRate) || strings.Trim(e.HashRate, "0.") == "":
		return apperr.New(apperr.InvalidQuantity, "equipment %q: hash rate %q TH/s is not a positive decimal with at most 6 places", e.Serial, e.HashRate)
	case e.RatedPower <= 0:
		return apperr.New(apperr.InvalidQuantity, "equipment %q: rated power %d W is not positive", e.Serial, e.RatedPower)
	case !minerID.MatchString(e.MinerID):
		return apperr.New(apperr.InvalidParameter, "equipment %q: miner id %q is not valid", e.Serial, e.MinerID)
	}
	return nil
}

// ReportSource says where a report's figure comes from.
type ReportSource string

// The sources; the values match the report_versions.source column.
const (
	FromMiner ReportSource = "miner" // the miner's own report
	FromPool  ReportSource = "pool"  // a pool's distribution statement
)

// Report is one version of a miner's mined-volume report for an asset and a
// month: the first submission or an amendment.
type Report struct {
	MinerID     string
	Asset       string
	PeriodStart time.Time
	Mined       int64 // minor units of Asset
	// Wallets identify the addresses the mined coins were paid to.
	Wallets []string
	Source  ReportSource
	// Pool names the pool whose statement the figure comes from (Source
	// FromPool only).
	Pool string
}

var walletForm = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:._-]{0,127}$`)

// MaxWallets bounds the wallet identifiers of one report.
const MaxWallets = 100

// Validate checks a report version against today: a month that has ended
// (a report for the current or a future month is refused), a non-negative
// volume, 1 to 100 distinct wallet identifiers, and a pool exactly when the
// source is a pool.
func (r Report) Validate(today time.Time) error {
	start, err := monthStart(r.PeriodStart)
	if err != nil {
		return err
	}
	switch {
	case !minerID.MatchString(r.MinerID):
		return apperr.New(apperr.InvalidParameter, "miner id %q is not valid", r.MinerID)
	case strings.TrimSpace(r.Asset) == "":
		return apperr.New(apperr.InvalidParameter, "asset is empty")
	case r.Mined < 0:
		return apperr.New(apperr.InvalidQuantity, "mined volume %d is negative", r.Mined)
	case nextMonth(start).After(today):
		return apperr.New(apperr.InvalidParameter, "period %s has not ended yet (today is %s): a month is reported after it ends",
			start.Format("2006-01"), today.Format(dateLayout))
	case r.Source != FromMiner && r.Source != FromPool:
		return apperr.New(apperr.InvalidParameter, "report source %q is neither %q nor %q", r.Source, FromMiner, FromPool)
	case (r.Source == FromPool) != (r.Pool != ""):
		return apperr.New(apperr.InvalidParameter, "a report names a pool exactly when its source is %q", FromPool)
	case len(r.Wallets) == 0 || len(r.Wallets) > MaxWallets:
		return apperr.New(apperr.InvalidParameter, "a report lists 1 to %d wallet identifiers, not %d", MaxWallets, len(r.Wallets))
	}
	seen := map[string]bool{}
	for _, w := range r.Wallets {
		if !walletForm.MatchString(w) {
			return apperr.New(apperr.InvalidParameter, "wallet identifier %q must be 1-128 letters, digits or : . _ -", w)
		}
		if seen[w] {
			return apperr.New(apperr.InvalidParameter, "wallet identifier %q listed twice", w)
		}
		seen[w] = true
	}
	return nil
}

// PoolMismatch compares what the pools' statements paid a miner for a month
// with what the miner's report says it mined. All mining goes through
// accredited pools (RULES.md), so with at least one statement the two must
// be equal; a difference is flagged for the regulator, not corrected.
func PoolMismatch(reported, poolTotal int64, statements int) (diff int64, flagged bool) {
	if statements == 0 || reported == poolTotal {
		return 0, false
	}
	return reported - poolTotal, true
}
