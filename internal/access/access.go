// Package access is the identity layer of Satu's REST API: who a caller is
// (a Principal, established from an API key) and what that identity may see
// and change. It is pure — no I/O, no clock — so the rules can be tested
// exhaustively and the storage of keys (access/postgres) stays a detail.
//
// Permissions are methods on Principal rather than checks scattered over the
// handlers, so that one table test covers every role against every rule.
package access

import (
	"context"
	"slices"
	"strings"

	"github.com/satu-exchange/satu/internal/apperr"
)

// Role is what an API key is for. The values are stored in api_keys.role and
// must match its CHECK constraint.
type Role string

// The roles.
const (
	// RoleMiner acts for one registered miner and its exchange accounts.
	RoleMiner Role = "miner"
	// RoleTrader acts for one exchange account.
	RoleTrader Role = "trader"
	// RoleMarketMaker acts for one exchange account that quotes both sides.
	RoleMarketMaker Role = "market_maker"
	// RoleOperator runs the exchange: it may change the registry and read everything.
	RoleOperator Role = "operator"
	// RoleRegulator supervises: it may read everything and change nothing.
	RoleRegulator Role = "regulator"
)

// roles lists every role in a fixed order, for validation and messages.
func roles() []Role {
	return []Role{RoleMiner, RoleTrader, RoleMarketMaker, RoleOperator, RoleRegulator}
}

// ParseRole returns the role named s, or INVALID_PARAMETER naming the roles
// there are, so a mistyped role on the command line explains itself.
func ParseRole(s string) (Role, error) {
	if r := Role(s); slices.Contains(roles(), r) {
		return r, nil
	}
	names := make([]string, 0, len(roles()))
	for _, r := range roles() {
		names = append(names, string(r))
	}
	return "", apperr.New(apperr.InvalidParameter, "unknown role %q: want one of %s", s, strings.Join(names, ", "))
}

// Principal is an authenticated caller: the key it presented and what that
// key acts for. The zero Principal has no role and is permitted nothing.
type Principal struct {
	// KeyID is the public half of the API key, for audit logs; never the secret.
	KeyID string
	Role  Role
	// Miner is the miner a miner key acts for; empty for other roles.
	Miner string
	// Accounts are the exchange accounts the key acts for: a miner's
	// accounts, or a trader's or market maker's one account. Empty for
	// operators and regulators, who act for no account of their own.
	Accounts []string
}

// CanWriteRegistry reports whether p may change the registry (miners,
// licences, accounts): only the operator does.
func (p Principal) CanWriteRegistry() bool { return p.Role == RoleOperator }

// CanReadAll reports whether p may read every miner's and account's data:
// the operator to run the exchange, the regulator to supervise it.
func (p Principal) CanReadAll() bool { return p.Role == RoleOperator || p.Role == RoleRegulator }

// ActsForMiner reports whether p is the miner id itself, as opposed to
// someone permitted to read about it.
func (p Principal) ActsForMiner(id string) bool {
	return p.Role == RoleMiner && id != "" && p.Miner == id
}

// CanReadMiner reports whether p may read miner id's data.
func (p Principal) CanReadMiner(id string) bool { return p.CanReadAll() || p.ActsForMiner(id) }

// ActsForAccount reports whether p may act (trade, cancel) for account a:
// only for the accounts its key was issued for.
func (p Principal) ActsForAccount(a string) bool { return a != "" && slices.Contains(p.Accounts, a) }

// CanReadAccount reports whether p may read account a's orders and balances.
func (p Principal) CanReadAccount(a string) bool { return p.CanReadAll() || p.ActsForAccount(a) }

// ctxKey is the context key of the Principal; a private type so that no
// other package can read or forge it except through this package.
type ctxKey struct{}

// WithPrincipal returns ctx carrying p, as the authentication middleware
// hands the caller to the handlers. Accounts is copied so that the caller
// cannot change what the context says after the fact.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	p.Accounts = slices.Clone(p.Accounts)
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the Principal WithPrincipal put in ctx, and false if
// there is none (the request was not authenticated). Accounts is a copy, so
// a handler may not change it for the handlers after it.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	p.Accounts = slices.Clone(p.Accounts)
	return p, ok
}
