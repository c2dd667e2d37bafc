package compliance

import (
	"regexp"
	"strings"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching"
)

// EntityKind is a miner's legal form.
type EntityKind string

// The legal forms; the values match the miners.entity_kind column.
const (
	LegalEntity            EntityKind = "legal_entity"
	IndividualEntrepreneur EntityKind = "individual_entrepreneur"
)

// Miner is a digital miner in the registry, with the exchange accounts it
// trades through: one owner for self-trade prevention and attribution.
type Miner struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	BIN        string     `json:"bin"` // BIN for a legal entity, IIN for an individual entrepreneur: 12 digits
	EntityKind EntityKind `json:"entityKind"`
	Accounts   []string   `json:"accounts"`
	Email      string     `json:"email,omitempty"`
	Phone      string     `json:"phone,omitempty"`
	Address    string     `json:"address,omitempty"`
}

var (
	minerID   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	twelveDig = regexp.MustCompile(`^[0-9]{12}$`)
)

// Validate checks a miner's registry record.
func (m Miner) Validate() error {
	switch {
	case !minerID.MatchString(m.ID):
		return apperr.New(apperr.InvalidParameter, "miner id %q must be 1-64 lower-case letters, digits or dashes", m.ID)
	case strings.TrimSpace(m.Name) == "":
		return apperr.New(apperr.InvalidParameter, "miner name is required")
	case !twelveDig.MatchString(m.BIN):
		return apperr.New(apperr.InvalidParameter, "BIN/IIN %q must be 12 digits", m.BIN)
	case m.EntityKind != LegalEntity && m.EntityKind != IndividualEntrepreneur:
		return apperr.New(apperr.InvalidParameter, "entity kind must be %q or %q", LegalEntity, IndividualEntrepreneur)
	case len(m.Email) > 200 || len(m.Phone) > 50 || len(m.Address) > 500:
		return apperr.New(apperr.InvalidParameter, "contacts too long (email ≤ 200, phone ≤ 50, address ≤ 500 characters)")
	case m.Email != "" && !strings.Contains(m.Email, "@"):
		return apperr.New(apperr.InvalidParameter, "email %q is not an address", m.Email)
	case len(m.Accounts) == 0:
		return apperr.New(apperr.InvalidParameter, "a miner needs at least one exchange account")
	}
	seen := map[string]bool{}
	for _, a := range m.Accounts {
		if !matching.ValidAccountID(a) {
			return apperr.New(apperr.InvalidParameter, "account id %q must be 1-64 lower-case letters, digits or dashes", a)
		}
		if seen[a] {
			return apperr.New(apperr.InvalidParameter, "account %q listed twice", a)
		}
		seen[a] = true
	}
	return nil
}
