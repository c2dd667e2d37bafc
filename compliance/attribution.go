package compliance

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// Zone is the time zone compliance days are counted in: Kazakhstan's single
// zone, UTC+5 since 1 March 2024. A period, a deadline and "today" are
// calendar days there.
var Zone = time.FixedZone("Asia/Almaty", 5*3600)

// DayOf returns the calendar day in Zone that contains t, as a date (UTC
// midnight), the form every date in this package takes.
func DayOf(t time.Time) time.Time {
	y, m, d := t.In(Zone).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// StartOf returns the instant day (a date) begins in Zone.
func StartOf(day time.Time) time.Time {
	y, m, d := day.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, Zone)
}

// Reference-price bases an attribution can record.
const (
	// BasisVWAP: the volume-weighted average price of the symbol's trades
	// in the reference window before the fill.
	BasisVWAP = "vwap"
	// BasisLastAuction: no trade in the window; the last auction price.
	BasisLastAuction = "last_auction"
	// BasisNone: neither exists (a new market); the price is not checked.
	BasisNone = "none"
)

// ReferenceVWAPElseAuction is the only reference-price method Satu knows:
// the VWAP over the window, else the last auction price.
const ReferenceVWAPElseAuction = "vwap_else_last_auction"

// Attribution is a rule set's settings for which settled fills count
// towards an obligation.
type Attribution struct {
	// Venue is where a counted sale must execute; every fill Satu settles
	// executed on Satu, an AIFC-licensed exchange, so it is recorded, not
	// checked.
	Venue string
	// Purpose is the order tag a counted sale must carry ("mandatory").
	Purpose string
	// ProceedsCurrency is the asset a counted sale must be paid in (the
	// rule set's proceeds currency, "KZT"): a sale on a market quoted in
	// another asset counts towards nothing. Empty: not checked.
	ProceedsCurrency string
	// PriceTolerance: a fill counts only if |price − reference| ≤
	// tolerance × reference.
	PriceTolerance Share
	// ReferencePrice names the method (ReferenceVWAPElseAuction).
	ReferencePrice string
	// ReferenceWindow is how far back the VWAP looks.
	ReferenceWindow time.Duration
}

// Exclusion reasons: why a sell by a miner's account does not count.
const (
	ExcludedNotMandatory  = "not_mandatory"          // the order was not tagged mandatory
	ExcludedProceeds      = "proceeds_currency"      // paid in another asset than the rule set's proceeds currency
	ExcludedSelfDealing   = "buyer_same_owner"       // the buyer is owned by the selling miner
	ExcludedPrice         = "price_out_of_tolerance" // too far from the reference price
	ExcludedNoObligation  = "no_open_obligation"     // the miner owes nothing in this asset
	ExcludedOutsideWindow = "outside_window"         // open obligations exist, none whose window holds the fill
	ExcludedExcess        = "excess"                 // more than the open obligations still require
)

// Sale is a settled fill sold by an account of a miner, with what
// attribution needs to know about it.
type Sale struct {
	FillID     string
	Asset      string
	Proceeds   string // the quote asset the sale was paid in
	Quantity   int64  // base minor units
	Price      int64  // quote minor units per whole base unit
	ExecutedAt time.Time
	Mandatory  bool
	// Miner owns the seller's account; BuyerOwner is the owner of the
	// buyer's account (the engine's owner, which for a miner's account is
	// the miner's ID).
	Miner, BuyerOwner string
	// Reference is the reference price in quote minor units per whole base
	// unit (nil with BasisNone).
	Reference *big.Rat
	Basis     string
}

// OpenObligation is an obligation a sale may count towards.
type OpenObligation struct {
	ID                    int64
	PeriodStart, Deadline time.Time // dates
	Remaining             int64
}

// Window is the span of instants in which sales count towards an obligation:
// from the start of its period's first day to the end of its deadline day,
// both in Zone. Mined coins can be sold as they are mined.
func (o OpenObligation) Window() (from, to time.Time) {
	return StartOf(o.PeriodStart), StartOf(o.Deadline.AddDate(0, 0, 1))
}

// Allocation is the part of a sale counted towards one obligation.
type Allocation struct {
	ObligationID int64
	Quantity     int64
}

// Exclusion is the part of a sale that counts towards nothing, and why.
type Exclusion struct {
	Quantity int64
	Reason   string
	Detail   string
}

// Attribute decides how much of a sale counts and towards which
// obligations. The checks run in this order and the first that fails
// excludes the whole sale: tagged with the rule set's purpose, buyer not
// owned by the selling miner, price within tolerance of the reference. The
// quantity is then given to the open obligations whose window holds the
// sale, earliest deadline first (then lowest ID), each up to what it still
// requires; what is left is excluded as excess. open may be in any order and
// is not modified. Allocations and exclusions together always add up to the
// sale's quantity.
func (a Attribution) Attribute(s Sale, open []OpenObligation) ([]Allocation, []Exclusion) {
	all := func(reason, format string, args ...any) ([]Allocation, []Exclusion) {
		return nil, []Exclusion{{Quantity: s.Quantity, Reason: reason, Detail: fmt.Sprintf(format, args...)}}
	}
	switch {
	case !s.Mandatory:
		return all(ExcludedNotMandatory, "the order was not tagged %q", a.Purpose)
	case a.ProceedsCurrency != "" && s.Proceeds != a.ProceedsCurrency:
		return all(ExcludedProceeds, "sold for %s; the rule set counts sales for %s", s.Proceeds, a.ProceedsCurrency)
	case s.BuyerOwner == s.Miner:
		return all(ExcludedSelfDealing, "the buyer's account is owned by %s, the seller", s.Miner)
	}
	if s.Reference != nil && !WithinTolerance(s.Price, s.Reference, a.PriceTolerance) {
		return all(ExcludedPrice, "price %d is more than %s away from the %s reference %s",
			s.Price, a.PriceTolerance, s.Basis, s.Reference.FloatString(2))
	}
	if len(open) == 0 {
		return all(ExcludedNoObligation, "%s owes no open %s obligation", s.Miner, s.Asset)
	}
	fifo := slices.Clone(open)
	slices.SortFunc(fifo, func(x, y OpenObligation) int {
		if c := x.Deadline.Compare(y.Deadline); c != 0 {
			return c
		}
		return cmp.Compare(x.ID, y.ID)
	})
	var allocs []Allocation
	left, inWindow := s.Quantity, false
	for _, o := range fifo {
		from, to := o.Window()
		if s.ExecutedAt.Before(from) || !s.ExecutedAt.Before(to) {
			continue
		}
		inWindow = true
		if take := min(left, o.Remaining); take > 0 {
			allocs = append(allocs, Allocation{ObligationID: o.ID, Quantity: take})
			left -= take
		}
		if left == 0 {
			return allocs, nil
		}
	}
	if !inWindow {
		return all(ExcludedOutsideWindow, "executed %s, outside the window (period start to deadline) of every unmet %s obligation of %s (%d)",
			s.ExecutedAt.UTC().Format(time.RFC3339), s.Asset, s.Miner, len(open))
	}
	return allocs, []Exclusion{{Quantity: left, Reason: ExcludedExcess,
		Detail: fmt.Sprintf("%d more than the open obligations required", left)}}
}

// WithinTolerance reports |price − ref| ≤ tolerance × ref exactly: the
// price rule of attribution, which the proof verifier applies too.
func WithinTolerance(price int64, ref *big.Rat, tolerance Share) bool {
	diff := new(big.Rat).Sub(new(big.Rat).SetInt64(price), ref)
	diff.Abs(diff)
	limit := new(big.Rat).Mul(ref, big.NewRat(tolerance.Num, tolerance.Den))
	return diff.Cmp(limit) <= 0
}
