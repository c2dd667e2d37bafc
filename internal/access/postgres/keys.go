// Package postgres stores Satu's API keys in PostgreSQL (table api_keys) and
// turns a presented key into an access.Principal. Only the SHA-256 of a
// key's secret is stored: a copy of the database does not let anyone call
// the API, and a lost key cannot be recovered, only revoked and replaced.
package postgres

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/apperr"
)

// maxLabel is the longest label, in characters: enough to say whose key it
// is and what for, short enough for one line of `satu keys list`.
const maxLabel = 100

// KeyStore issues, lists, revokes and authenticates API keys.
type KeyStore struct {
	db *pgxpool.Pool
}

// NewKeyStore returns the key store on db (migrated: api_keys must exist).
func NewKeyStore(db *pgxpool.Pool) *KeyStore { return &KeyStore{db: db} }

// CreateRequest is a key to issue. Miner is required for (and only for) the
// miner role; Account for (and only for) traders and market makers.
type CreateRequest struct {
	Role    access.Role
	Miner   string
	Account string
	Label   string // who holds the key and what for
	// Signing makes the key able to sign websocket requests: SigningEd25519
	// with Ed25519PublicKey (the holder keeps the private key), or
	// SigningHMAC (the exchange issues the secret, returned in
	// Token.HMACSecret). Empty or SigningNone: a bearer key for REST only.
	Signing          access.SigningKind
	Ed25519PublicKey []byte
}

// KeyInfo describes a stored key. It has no secret and no hash: what is
// listed can be shown to anyone allowed to manage keys.
type KeyInfo struct {
	ID      string             `json:"id"`
	Role    access.Role        `json:"role"`
	Miner   string             `json:"miner,omitempty"`
	Account string             `json:"account,omitempty"`
	Label   string             `json:"label"`
	Signing access.SigningKind `json:"signing"`
	Created time.Time          `json:"created"`
	Revoked *time.Time         `json:"revoked,omitempty"` // nil while the key is valid
}

// Create issues a key and returns it. The returned token is the only time
// the secret exists outside its holder: only its hash is stored.
func (s *KeyStore) Create(ctx context.Context, req CreateRequest, now time.Time) (access.Token, error) {
	if err := validate(req); err != nil {
		return access.Token{}, fmt.Errorf("create API key: %w", err)
	}
	tok, err := access.NewToken(rand.Reader)
	if err != nil {
		return access.Token{}, fmt.Errorf("create API key: %w", err)
	}
	signing, verifyKey := access.SigningNone, []byte(nil)
	switch req.Signing {
	case access.SigningEd25519:
		signing, verifyKey = req.Signing, req.Ed25519PublicKey
	case access.SigningHMAC:
		if tok.HMACSecret, err = access.NewHMACSecret(rand.Reader); err != nil {
			return access.Token{}, fmt.Errorf("create API key: %w", err)
		}
		signing, verifyKey = req.Signing, []byte(tok.HMACSecret)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO api_keys (id, secret_hash, role, miner_id, account, label, created_at, signing, verify_key)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6, $7, $8, $9)`,
		tok.ID, access.HashSecret(tok.Secret), string(req.Role), req.Miner, req.Account, req.Label, now, string(signing), verifyKey)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "23503": // miner_id references no miner
		return access.Token{}, fmt.Errorf("create API key: %w", apperr.New(apperr.UnknownMiner, "unknown miner %q", req.Miner))
	case err != nil:
		// A duplicate id (23505) would mean a broken random source: an
		// internal error, not the caller's.
		return access.Token{}, fmt.Errorf("create API key: %w", err)
	}
	return tok, nil
}

// validate checks a request against its role before it reaches the
// database, so each mistake gets its own message rather than a CHECK
// violation.
func validate(req CreateRequest) error {
	if _, err := access.ParseRole(string(req.Role)); err != nil {
		return err
	}
	switch req.Role {
	case access.RoleMiner:
		if req.Miner == "" {
			return apperr.New(apperr.InvalidParameter, "a miner key needs the miner it acts for")
		}
		if req.Account != "" {
			return apperr.New(apperr.InvalidParameter, "a miner key acts for its miner's accounts: give no account")
		}
	case access.RoleTrader, access.RoleMarketMaker:
		if req.Account == "" {
			return apperr.New(apperr.InvalidParameter, "a %s key needs the account it acts for", req.Role)
		}
		if !validAccount(req.Account) {
			return apperr.New(apperr.InvalidParameter,
				"account %q: want 1-64 lower-case letters, digits and hyphens, not starting with a hyphen", req.Account)
		}
		if req.Miner != "" {
			return apperr.New(apperr.InvalidParameter, "a %s key acts for an account, not a miner: give no miner", req.Role)
		}
	default: // operator, regulator: they act for the exchange, not for a party
		if req.Miner != "" || req.Account != "" {
			return apperr.New(apperr.InvalidParameter, "%s keys act for no miner or account: give neither", req.Role)
		}
	}
	switch req.Signing {
	case "", access.SigningNone, access.SigningHMAC:
		if req.Ed25519PublicKey != nil {
			return apperr.New(apperr.InvalidParameter, "a public key is only for an ed25519 signing key")
		}
	case access.SigningEd25519:
		if len(req.Ed25519PublicKey) != ed25519.PublicKeySize {
			return apperr.New(apperr.InvalidParameter, "an ed25519 signing key needs its %d-byte public key (base64), not %d bytes",
				ed25519.PublicKeySize, len(req.Ed25519PublicKey))
		}
		if err := access.CheckEd25519PublicKey(req.Ed25519PublicKey); err != nil {
			return err
		}
	default:
		return apperr.New(apperr.InvalidParameter, "signing %q: want none, ed25519 or hmac", req.Signing)
	}
	if req.Signing != "" && req.Signing != access.SigningNone && (req.Role == access.RoleOperator || req.Role == access.RoleRegulator) {
		return apperr.New(apperr.InvalidParameter, "%s keys act for no account and trade nothing: they cannot sign websocket requests", req.Role)
	}
	if strings.TrimSpace(req.Label) == "" {
		return apperr.New(apperr.InvalidParameter, "a key needs a label saying whose it is")
	}
	if n := utf8.RuneCountInString(req.Label); n > maxLabel || !utf8.ValidString(req.Label) {
		return apperr.New(apperr.InvalidParameter, "label: want valid UTF-8 of at most %d characters", maxLabel)
	}
	if strings.ContainsFunc(req.Label, unicode.IsControl) {
		return apperr.New(apperr.InvalidParameter, "label: control characters are not allowed")
	}
	return nil
}

// validAccount reports whether a matches ^[a-z0-9][a-z0-9-]{0,63}$, the
// form of exchange account ids.
func validAccount(a string) bool {
	if len(a) == 0 || len(a) > 64 || a[0] == '-' {
		return false
	}
	for i := range len(a) {
		if c := a[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Revoke makes key id unusable from now on. Keys are never deleted, so that
// audit records naming a key keep their meaning.
func (s *KeyStore) Revoke(ctx context.Context, id string, now time.Time) error {
	tag, err := s.db.Exec(ctx, `UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, now)
	if err != nil {
		return fmt.Errorf("revoke API key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// Nothing updated: the key is unknown or (rows are never deleted)
	// revoked already.
	var exists bool
	if err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1)`, id).Scan(&exists); err != nil {
		return fmt.Errorf("revoke API key: %w", err)
	}
	if !exists {
		return fmt.Errorf("revoke API key: %w", apperr.New(apperr.InvalidParameter, "unknown API key %q", id))
	}
	return fmt.Errorf("revoke API key: %w", apperr.New(apperr.Conflict, "API key %q is revoked already", id))
}

// List returns every key, revoked ones included, oldest first.
func (s *KeyStore) List(ctx context.Context) ([]KeyInfo, error) {
	rows, err := s.db.Query(ctx, `SELECT id, role, coalesce(miner_id, ''), coalesce(account, ''), label, signing, created_at, revoked_at
		FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (KeyInfo, error) {
		var k KeyInfo
		err := row.Scan(&k.ID, &k.Role, &k.Miner, &k.Account, &k.Label, &k.Signing, &k.Created, &k.Revoked)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return keys, nil
}

// Authenticate returns the principal a presented key stands for. An
// unknown id, a wrong secret and a revoked key get the same answer, so the
// answer tells a guesser nothing about which keys exist.
func (s *KeyStore) Authenticate(ctx context.Context, token string) (access.Principal, error) {
	tok, err := access.ParseToken(token)
	if err != nil {
		return access.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	k, err := s.lookup(ctx, tok.ID)
	if err != nil {
		return access.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if !tok.Matches(k.secretHash) {
		return access.Principal{}, fmt.Errorf("authenticate: %w", errInvalidKey())
	}
	return k.Principal, nil
}

// SigningKey returns the key id signs websocket requests with, and the
// principal it stands for. An unknown or revoked id is UNAUTHENTICATED
// with the same message; a bearer-only key's Kind is SigningNone, which
// SigningKey.Check refuses.
func (s *KeyStore) SigningKey(ctx context.Context, id string) (access.SigningKey, error) {
	k, err := s.lookup(ctx, id)
	if err != nil {
		return access.SigningKey{}, fmt.Errorf("signing key: %w", err)
	}
	return k.SigningKey, nil
}

func errInvalidKey() error { return apperr.New(apperr.Unauthenticated, "invalid API key") }

type storedKey struct {
	access.SigningKey
	secretHash []byte
}

// lookup reads key id and, for a miner, its accounts in one round trip;
// unknown and revoked keys are the same UNAUTHENTICATED.
func (s *KeyStore) lookup(ctx context.Context, id string) (storedKey, error) {
	var (
		k             storedKey
		role, miner   string
		account       string
		revoked       bool
		minerAccounts []string
	)
	err := s.db.QueryRow(ctx, `SELECT k.secret_hash, k.role, coalesce(k.miner_id, ''), coalesce(k.account, ''),
			k.revoked_at IS NOT NULL, k.signing, k.verify_key,
			ARRAY(SELECT a.account FROM miner_accounts a WHERE a.miner_id = k.miner_id ORDER BY a.account)
		FROM api_keys k WHERE k.id = $1`, id).Scan(&k.secretHash, &role, &miner, &account, &revoked, &k.Kind, &k.Key, &minerAccounts)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && revoked {
		return storedKey{}, errInvalidKey()
	}
	if err != nil {
		return storedKey{}, err
	}
	r, err := access.ParseRole(role)
	if err != nil {
		// The table's CHECK and this package disagree: an internal error,
		// so the role's INVALID_PARAMETER must not reach the caller.
		return storedKey{}, fmt.Errorf("key %s has the unknown stored role %q", id, role)
	}
	k.Principal = access.Principal{KeyID: id, Role: r, Miner: miner}
	switch r {
	case access.RoleMiner:
		k.Principal.Accounts = minerAccounts
	case access.RoleTrader, access.RoleMarketMaker:
		k.Principal.Accounts = []string{account}
	}
	return k, nil
}
