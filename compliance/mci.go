package compliance

import (
	"github.com/satu-exchange/satu/internal/apperr"
)

// MCIValue is the monthly calculation index of one year in tenge, set each
// year by the budget law. Fines and licence fees are expressed in MCI.
type MCIValue struct {
	Year  int
	Tenge int64
	Mark  Mark
}

// LicenceFee is the state fee for a licence sub-type, in MCI.
type LicenceFee struct {
	Subtype LicenceSubtype
	MCI     int64
	Mark    Mark
}

// MCI returns the confirmed MCI in tenge for year. A year missing from the
// rule set, or not confirmed, gets apperr.RuleNotConfirmed: Satu keeps an
// amount in MCI rather than convert it with a guessed index.
func (r *RuleSet) MCI(year int) (int64, error) {
	for _, m := range r.MCIValues {
		if m.Year == year {
			if !m.Mark.Confirmed {
				return 0, apperr.New(apperr.RuleNotConfirmed, "rule set %s v%d: the MCI for %d (%d ₸) is not confirmed (%s)",
					r.ID, r.Version, year, m.Tenge, m.Mark.Source)
			}
			return m.Tenge, nil
		}
	}
	return 0, apperr.New(apperr.RuleNotConfirmed, "rule set %s v%d has no MCI for %d", r.ID, r.Version, year)
}

// LicenceFeeMCI returns the licence fee for a sub-type in MCI.
func (r *RuleSet) LicenceFeeMCI(subtype LicenceSubtype) (int64, error) {
	for _, f := range r.LicenceFees {
		if f.Subtype == subtype {
			return f.MCI, nil
		}
	}
	return 0, apperr.New(apperr.RuleNotConfirmed, "rule set %s v%d has no licence fee for sub-type %q", r.ID, r.Version, subtype)
}

// InTenge converts an amount in MCI into tenge at year's MCI, refusing an
// unconfirmed index (MCI) and an overflow.
func (r *RuleSet) InTenge(mci int64, year int) (int64, error) {
	v, err := r.MCI(year)
	if err != nil {
		return 0, err
	}
	if mci < 0 || (mci > 0 && v > (1<<63-1)/mci) {
		return 0, apperr.New(apperr.InvalidQuantity, "%d MCI at %d ₸ is out of range", mci, v)
	}
	return mci * v, nil
}

func validateMCI(values []MCIValue) *fieldError {
	if len(values) == 0 {
		return fieldErr("mci", "has no years")
	}
	for i, m := range values {
		at := "mci[" + itoa(i) + "]"
		switch {
		case m.Year < 1992 || m.Year > 2100:
			return fieldErr(at+".year", "%d is not a plausible year", m.Year)
		case m.Tenge <= 0:
			return fieldErr(at+".tenge", "%d is not positive", m.Tenge)
		case i > 0 && m.Year <= values[i-1].Year:
			return fieldErr(at+".year", "%d does not come after %d", m.Year, values[i-1].Year)
		}
		if e := m.Mark.validate(at + "."); e != nil {
			return e
		}
	}
	return nil
}

func validateLicenceFees(fees []LicenceFee) *fieldError {
	seen := map[LicenceSubtype]bool{}
	for i, f := range fees {
		at := "licence_fees[" + itoa(i) + "]"
		switch {
		case f.Subtype != SubtypeOwnDataCentre && f.Subtype != SubtypeHosted:
			return fieldErr(at+".subtype", "%q is neither I nor II", f.Subtype)
		case seen[f.Subtype]:
			return fieldErr(at+".subtype", "%q is listed twice", f.Subtype)
		case f.MCI <= 0:
			return fieldErr(at+".mci", "%d is not positive", f.MCI)
		}
		if e := f.Mark.validate(at + "."); e != nil {
			return e
		}
		seen[f.Subtype] = true
	}
	if !seen[SubtypeOwnDataCentre] || !seen[SubtypeHosted] {
		return fieldErr("licence_fees", "needs a fee for both sub-types I and II")
	}
	return nil
}
