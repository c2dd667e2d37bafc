package httpapi

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/access"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
)

// Keys authenticates and manages API keys (access/postgres.KeyStore).
type Keys interface {
	Authenticate(ctx context.Context, token string) (access.Principal, error)
	Create(ctx context.Context, req accesspg.CreateRequest, now time.Time) (access.Token, error)
	List(ctx context.Context) ([]accesspg.KeyInfo, error)
	Revoke(ctx context.Context, id string, now time.Time) error
}

type keyRequest struct {
	Role    string `json:"role"`
	Miner   string `json:"miner,omitempty"`
	Account string `json:"account,omitempty"`
	Label   string `json:"label"`
	// Signing: "none" (default), "ed25519" with PublicKey (base64 of the
	// holder's 32-byte public key), or "hmac" (the answer carries the secret).
	Signing   string `json:"signing,omitempty"`
	PublicKey string `json:"publicKey,omitempty"`
}

// createKey creates an API key; the answer is the only time its secret is
// shown.
func (s *Server) createKey(r *http.Request) (int, any, error) {
	p, err := requireOperator(r)
	if err != nil {
		return 0, nil, err
	}
	var req keyRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	role, err := access.ParseRole(req.Role)
	if err != nil {
		return 0, nil, err
	}
	create := accesspg.CreateRequest{Role: role, Miner: req.Miner, Account: req.Account, Label: req.Label,
		Signing: access.SigningKind(req.Signing)}
	if req.PublicKey != "" {
		if create.Ed25519PublicKey, err = base64.StdEncoding.DecodeString(req.PublicKey); err != nil {
			return 0, nil, apperr.New(apperr.InvalidParameter, "publicKey: want the Ed25519 public key in base64")
		}
	}
	tok, err := s.Keys.Create(r.Context(), create, s.Now())
	if err != nil {
		return 0, nil, err
	}
	if create.Signing == "" {
		create.Signing = access.SigningNone
	}
	s.Audit.Info("api key created", zap.String("by", p.KeyID), zap.String("key", tok.ID), zap.String("role", req.Role),
		zap.String("miner", req.Miner), zap.String("account", req.Account), zap.String("signing", string(create.Signing)))
	out := map[string]string{"id": tok.ID, "role": req.Role, "miner": req.Miner, "account": req.Account,
		"label": req.Label, "signing": string(create.Signing), "apiKey": tok.String()}
	if tok.HMACSecret != "" {
		out["hmacSecret"] = tok.HMACSecret
	}
	return http.StatusCreated, out, nil
}

func (s *Server) listKeys(r *http.Request) (any, error) {
	if _, err := requireOperator(r); err != nil {
		return nil, err
	}
	return s.Keys.List(r.Context())
}

func (s *Server) revokeKey(r *http.Request) (int, any, error) {
	p, err := requireOperator(r)
	if err != nil {
		return 0, nil, err
	}
	id := r.PathValue("id")
	if err := s.Keys.Revoke(r.Context(), id, s.Now()); err != nil {
		return 0, nil, err
	}
	s.Audit.Info("api key revoked", zap.String("by", p.KeyID), zap.String("key", id))
	return http.StatusOK, map[string]string{"id": id, "status": "revoked"}, nil
}

// authenticate puts the principal of a request's bearer API key into its
// context. A request without a key passes on without one (public
// endpoints); a request with a bad key is refused here with UNAUTHENTICATED,
// whatever endpoint it is for.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			next.ServeHTTP(w, r)
			return
		}
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			s.writeError(w, r, apperr.New(apperr.Unauthenticated, "the Authorization header must be \"Bearer <API key>\""))
			return
		}
		p, err := s.Keys.Authenticate(r.Context(), strings.TrimSpace(token))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(access.WithPrincipal(r.Context(), p)))
	})
}

// principal returns the request's principal, or UNAUTHENTICATED.
func principal(r *http.Request) (access.Principal, error) {
	p, ok := access.FromContext(r.Context())
	if !ok {
		return access.Principal{}, apperr.New(apperr.Unauthenticated, "this endpoint needs an API key: Authorization: Bearer <key>")
	}
	return p, nil
}

// requireOperator returns the principal if it is an operator.
func requireOperator(r *http.Request) (access.Principal, error) {
	p, err := principal(r)
	if err == nil && !p.CanWriteRegistry() {
		err = apperr.New(apperr.NotPermitted, "only an operator may do this (this key is a %s's)", p.Role)
	}
	return p, err
}

// requireReader returns the principal if it may read everything (an
// operator or a regulator).
func requireReader(r *http.Request) (access.Principal, error) {
	p, err := principal(r)
	if err == nil && !p.CanReadAll() {
		err = apperr.New(apperr.NotPermitted, "only an operator or a regulator may read this (this key is a %s's)", p.Role)
	}
	return p, err
}

// minerScope decides which miner a compliance read covers: operators and
// regulators read whatever they ask for ("" = every miner); a miner reads
// only itself, whether or not it names itself; anyone else is refused.
func minerScope(r *http.Request, asked string) (string, error) {
	p, err := principal(r)
	switch {
	case err != nil:
		return "", err
	case p.CanReadAll():
		return asked, nil
	case p.Role == access.RoleMiner && (asked == "" || p.ActsForMiner(asked)):
		return p.Miner, nil
	case p.Role == access.RoleMiner:
		return "", apperr.New(apperr.NotPermitted, "a miner sees only its own records, not %q's", asked)
	}
	return "", apperr.New(apperr.NotPermitted, "compliance records are for operators, regulators and the miner itself")
}

// accountScope refuses a read of an account the principal may not see.
func accountScope(r *http.Request, account string) error {
	p, err := principal(r)
	if err == nil && !p.CanReadAccount(account) {
		err = apperr.New(apperr.NotPermitted, "this key may not read account %q", account)
	}
	return err
}

// actorOf names the principal in the audit log: role and key ID.
func actorOf(p access.Principal, reason string) compliance.Actor {
	return compliance.Actor{ID: string(p.Role) + ":" + p.KeyID, Reason: reason}
}

// operator wraps a handler that only operators may call.
func operator(h handler) handler {
	return func(r *http.Request) (int, any, error) {
		if _, err := requireOperator(r); err != nil {
			return 0, nil, err
		}
		return h(r)
	}
}

// ownAccount wraps a handler of /v1/accounts/{account}/…: operators and
// regulators read any account, a miner its own accounts, a trader or market
// maker its one account.
func ownAccount(h handler) handler {
	return func(r *http.Request) (int, any, error) {
		if err := accountScope(r, r.PathValue("account")); err != nil {
			return 0, nil, err
		}
		return h(r)
	}
}
