package miningfee

import (
	"fmt"
	"strings"
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
)

// Source is where a miner's electricity comes from. It decides the rate:
// purchased power is rated by its price, own generation has rates of its own.
type Source string

// The sources a consumption record may name.
const (
	// Grid is power bought from the national grid.
	Grid Source = "grid"
	// Imported is power bought abroad; it is rated like grid power.
	Imported Source = "imported"
	// Own is power from the miner's own generation.
	Own Source = "own"
	// OwnRenewable is power from the miner's own renewable generation.
	OwnRenewable Source = "own_renewable"
)

// Valid reports whether s is one of the four sources.
func (s Source) Valid() bool {
	switch s {
	case Grid, Imported, Own, OwnRenewable:
		return true
	}
	return false
}

// purchased reports whether the power was bought, and so has a price that
// counts towards the quarter's average.
func (s Source) purchased() bool { return s == Grid || s == Imported }

// Consumption is one metering record of a miner: the electricity of one
// source used in one month. A miner may have several records per month (one
// per source or meter); all records of a quarter are assessed together
// because the fee is quarterly and the 2023 scale rates the quarter's
// average price.
type Consumption struct {
	// Month is the first day of the month at 00:00 UTC.
	Month time.Time
	// KWh is the energy consumed, ≥ 0.
	KWh int64
	// Source is where the power came from.
	Source Source
	// Metered says the energy was measured by a metering device. Unmetered
	// power has its own, highest rate in 2023.
	Metered bool
	// PriceTiyn is the average price paid per kWh in tiyn, ≥ 0; 0 for own
	// generation. Only metered grid and imported records use it.
	PriceTiyn int64
}

// Category is a group of consumption that gets one rate.
type Category string

// The categories, in the order an Assessment lists them.
const (
	// CategoryPurchased is metered grid and imported power.
	CategoryPurchased Category = "purchased"
	// CategoryOwn is metered power from own generation.
	CategoryOwn Category = "own"
	// CategoryOwnRenewable is metered power from own renewable generation.
	CategoryOwnRenewable Category = "own_renewable"
	// CategoryUnmetered is unmetered power of any source.
	CategoryUnmetered Category = "unmetered"
)

// Line is the fee on one category of a quarter's consumption.
type Line struct {
	// Category is the group of consumption the line rates.
	Category Category
	// KWh is the category's energy in the quarter.
	KWh int64
	// RateTiyn is the rate applied, in tiyn per kWh.
	RateTiyn int64
	// AmountTiyn is KWh × RateTiyn.
	AmountTiyn int64
	// AvgPriceTiyn is, for purchased power under a price scale, the quarter's
	// kWh-weighted average price truncated to whole tiyn — for display only:
	// the bracket was decided from the exact average. 0 otherwise.
	AvgPriceTiyn int64
	// Rule says in words what decided the rate, e.g.
	// "avg price 7.50 ₸ in [5, 10] → 10 ₸".
	Rule string
}

// Assessment is the fee of one miner for one quarter, with everything needed
// to trace it back to the table and the source it rests on.
type Assessment struct {
	// Quarter is the tax period assessed.
	Quarter Quarter
	// TableID and TableVersion identify the schedule file used.
	TableID      string
	TableVersion int
	// From is the From of the table used.
	From time.Time
	// Lines are the fee per category with consumption, in the order
	// purchased, own, own renewable, unmetered. A category with no kWh has
	// no line.
	Lines []Line
	// TotalKWh is the quarter's energy over all records.
	TotalKWh int64
	// TotalTiyn is the fee: the sum of the lines' amounts.
	TotalTiyn int64
	// ReturnDue is the day the return is due, at UTC midnight; the zero time
	// when the table gives no separate return date (2022).
	ReturnDue time.Time
	// PaymentDue is the day the fee must be paid, at UTC midnight.
	PaymentDue time.Time
	// DueSatuDefault says the due dates are Satu's assumption, not the law's.
	DueSatuDefault bool
	// SecondarySource says the table rests on secondary sources only (news).
	SecondarySource bool
	// Grade is the table's RULES.md grade.
	Grade string
	// Source cites the table's figures.
	Source string
}

// candidate is a rate that applies to a category, with its name for the
// rule text.
type candidate struct {
	name string
	rate Rate
}

// Assess computes the fee of one miner for quarter q from the miner's
// consumption records in that quarter.
//
// Every record must be in q (Month the first day of one of its months at
// 00:00 UTC) and name a known source, with KWh ≥ 0 and PriceTiyn ≥ 0;
// otherwise apperr.InvalidParameter, or apperr.InvalidQuantity for negative
// kWh. The table is the one in force on q's first day (TableFor): before the
// first table Satu refuses with apperr.RuleNotConfirmed.
//
// Records are grouped into categories, and each category gets the highest of
// the candidate rates that apply to it, capped at the table's maximum — the
// 2023 law's "where several rates apply the highest wins", applied per
// category (Satu's reading):
//
//   - purchased: metered grid and imported power. Under a flat table its rate
//     is the flat purchased rate. Under a price scale (2023) it is the rate of
//     the bracket holding the quarter's kWh-weighted average price
//     Σ(kWh × price) / Σ kWh over those records. The average is never rounded:
//     it is compared with each bound exactly by cross-multiplication in 128
//     bits, so 23.995 ₸ is below 24 and 10.005 ₸ above 10. An average in a
//     bracket whose rate is not confirmed is refused with
//     apperr.RuleNotConfirmed naming the price and the bracket.
//   - own: metered own generation, at the table's own-generation rate; its
//     price is not used.
//   - own renewable: metered own renewable generation, at the renewable rate
//     whatever the price.
//   - unmetered: every unmetered kWh, whatever its source. Candidates are the
//     no-metering rate — or, in a table without one (2022, 2024 on), the flat
//     purchased rate, because without a meter the power cannot be shown to be
//     own or renewable — plus the own and renewable rates when such records
//     are among them. An unmetered record's price is not used: its kWh are not
//     measured, so neither is its price per kWh.
//
// Any candidate that is not confirmed is refused with apperr.RuleNotConfirmed.
// A line's amount is kWh × rate in tiyn; an amount, total or kWh sum that
// does not fit an int64 is refused with apperr.InvalidQuantity. An empty
// quarter has no lines and a zero fee but still its due dates.
func (ts *Tables) Assess(q Quarter, records []Consumption) (Assessment, error) {
	t, err := ts.TableFor(q)
	if err != nil {
		return Assessment{}, err
	}
	var (
		kwh        = map[Category]int64{}
		total      int64
		priceNum   u128 // Σ kWh × price over metered purchased records
		unmetered  = map[Source]bool{}
		recordErrf = func(code apperr.Code, i int, format string, args ...any) error {
			return apperr.New(code, "consumption record %d: "+format, append([]any{i + 1}, args...)...)
		}
	)
	for i, r := range records {
		if _, err := q.monthIn(r.Month); err != nil {
			return Assessment{}, recordErrf(apperr.InvalidParameter, i, "%s", apperr.MessageOf(err))
		}
		switch {
		case r.KWh < 0:
			return Assessment{}, recordErrf(apperr.InvalidQuantity, i, "%d kWh is negative", r.KWh)
		case r.PriceTiyn < 0:
			return Assessment{}, recordErrf(apperr.InvalidParameter, i, "price %d tiyn/kWh is negative", r.PriceTiyn)
		case !r.Source.Valid():
			return Assessment{}, recordErrf(apperr.InvalidParameter, i,
				"source %q is not one of %q, %q, %q, %q", r.Source, Grid, Imported, Own, OwnRenewable)
		}
		var ok bool
		if total, ok = addChecked(total, r.KWh); !ok {
			return Assessment{}, recordErrf(apperr.InvalidQuantity, i, "the quarter's total kWh overflows")
		}
		// Each category's sum is at most total, so it cannot overflow either.
		switch {
		case !r.Metered:
			kwh[CategoryUnmetered] += r.KWh
			unmetered[r.Source] = true
		case r.Source.purchased():
			kwh[CategoryPurchased] += r.KWh
			priceNum = priceNum.add(mul128(uint64(r.KWh), uint64(r.PriceTiyn)))
		case r.Source == Own:
			kwh[CategoryOwn] += r.KWh
		default:
			kwh[CategoryOwnRenewable] += r.KWh
		}
	}

	a := Assessment{
		Quarter:         q,
		TableID:         ts.ID,
		TableVersion:    ts.Version,
		From:            t.From.UTC(),
		TotalKWh:        total,
		DueSatuDefault:  t.Due.SatuDefault,
		SecondarySource: t.SecondarySource,
		Grade:           t.Grade,
		Source:          t.Source,
	}
	a.ReturnDue, a.PaymentDue = t.Due.Dates(q)
	for _, c := range []Category{CategoryPurchased, CategoryOwn, CategoryOwnRenewable, CategoryUnmetered} {
		if kwh[c] == 0 {
			continue
		}
		line := Line{Category: c, KWh: kwh[c]}
		var cands []candidate
		switch c {
		case CategoryPurchased:
			if t.Purchased != nil {
				cands = []candidate{{"purchased power (grid, imported)", *t.Purchased}}
				break
			}
			avg := avgPrice{num: priceNum, den: kwh[c]}
			line.AvgPriceTiyn, _ = avg.floor()
			b, err := t.bracketOf(avg)
			if err != nil {
				return Assessment{}, apperr.New(apperr.RuleNotConfirmed, "%s: %s", q, apperr.MessageOf(err))
			}
			if !b.Rate.Confirmed {
				return Assessment{}, apperr.New(apperr.RuleNotConfirmed,
					"%s: the average price %s ₸/kWh of purchased power falls in the bracket %s, whose rate is not confirmed (%s); Satu does not guess it",
					q, avg, b, b.Rate.Source)
			}
			cands = []candidate{{fmt.Sprintf("avg price %s ₸ in %s", avg, b), b.Rate}}
		case CategoryOwn:
			cands = []candidate{{"own generation", t.Own}}
		case CategoryOwnRenewable:
			cands = []candidate{{"own renewable generation", t.OwnRenewable}}
		case CategoryUnmetered:
			if t.NoMetering != nil {
				cands = []candidate{{"no metering", *t.NoMetering}}
			} else {
				cands = []candidate{{"unmetered at the purchased rate", *t.Purchased}}
			}
			if unmetered[Own] {
				cands = append(cands, candidate{"own generation", t.Own})
			}
			if unmetered[OwnRenewable] {
				cands = append(cands, candidate{"own renewable generation", t.OwnRenewable})
			}
		}
		rate, rule, err := t.highest(q, cands)
		if err != nil {
			return Assessment{}, err
		}
		line.RateTiyn, line.Rule = rate, rule
		if line.AmountTiyn, err = mulTiyn(line.KWh, rate); err != nil {
			return Assessment{}, apperr.New(apperr.InvalidQuantity, "%s, %s: %s", q, c, apperr.MessageOf(err))
		}
		var ok bool
		if a.TotalTiyn, ok = addChecked(a.TotalTiyn, line.AmountTiyn); !ok {
			return Assessment{}, apperr.New(apperr.InvalidQuantity, "%s: the total fee overflows an int64 of tiyn", q)
		}
		a.Lines = append(a.Lines, line)
	}
	return a, nil
}

// bracketOf returns the bracket holding the exact average price. A validated
// table's brackets cover [0, ∞), so none missing means the table was edited
// after validation; that too is refused rather than guessed.
func (t Table) bracketOf(avg avgPrice) (Bracket, error) {
	for _, b := range t.PurchasedByPrice {
		if b.contains(avg) {
			return b, nil
		}
	}
	return Bracket{}, apperr.New(apperr.RuleNotConfirmed,
		"no price bracket of the table from %s holds the average price %s ₸/kWh", t.From.UTC().Format(dateLayout), avg)
}

// highest picks the highest of the candidate rates, capped at the table's
// maximum, and says why in words. Every candidate must be confirmed: an
// unknown rate might be the highest, so Satu refuses (RuleNotConfirmed)
// rather than pick among the known ones.
func (t Table) highest(q Quarter, cands []candidate) (int64, string, error) {
	best := -1
	for i, c := range cands {
		if !c.rate.Confirmed {
			return 0, "", apperr.New(apperr.RuleNotConfirmed,
				"%s: the %s rate of the table from %s is not confirmed (%s); Satu does not guess it",
				q, c.name, t.From.UTC().Format(dateLayout), c.rate.Source)
		}
		if best < 0 || c.rate.Tiyn > cands[best].rate.Tiyn {
			best = i
		}
	}
	rate := cands[best].rate.Tiyn
	var rule string
	if len(cands) == 1 {
		rule = fmt.Sprintf("%s → %s", cands[0].name, formatRate(rate))
	} else {
		names := make([]string, len(cands))
		for i, c := range cands {
			names[i] = fmt.Sprintf("%s %s", c.name, formatRate(c.rate.Tiyn))
		}
		rule = fmt.Sprintf("%s → %s (highest of: %s)", cands[best].name, formatRate(rate), strings.Join(names, "; "))
	}
	if t.Maximum != nil && rate > t.Maximum.Tiyn {
		rate = t.Maximum.Tiyn
		rule += fmt.Sprintf("; capped at the maximum %s", formatRate(rate))
	}
	return rate, rule, nil
}

// QuotaOverrun compares a miner's consumption with its allocated quota (both
// in kWh for the same period) and returns the excess; flagged is true when
// consumption is above the quota. Consumption equal to the quota is not an
// overrun. Negative figures are meaningless and are read as 0 — a negative
// quota allows nothing, so all consumption is then an overrun — which also
// keeps the subtraction from overflowing.
func QuotaOverrun(allocatedKWh, consumedKWh int64) (overrun int64, flagged bool) {
	allocatedKWh = max(allocatedKWh, 0)
	consumedKWh = max(consumedKWh, 0)
	if consumedKWh <= allocatedKWh {
		return 0, false
	}
	return consumedKWh - allocatedKWh, true
}
