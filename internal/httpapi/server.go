// Package httpapi is Satu's HTTP edge: health and readiness, Prometheus
// metrics, the operator and regulator REST API, and the mount point of the
// websocket gateway. It translates between JSON and the domain; every error
// leaves as {"code", "message"} with a stable code (docs/errors.md).
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/mod/sumdb/note"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/settlement/postgres"
)

// Engine submits a command to the sequencer and returns its events.
type Engine interface {
	Do(ctx context.Context, cmd matching.Command) ([]matching.Event, error)
}

// Ledger is what the API needs of settlement's store.
type Ledger interface {
	Balances(ctx context.Context, account string) ([]postgres.Balance, error)
	Fills(ctx context.Context, account string, page postgres.PageRequest) (postgres.FillPage, error)
	Postings(ctx context.Context, account string, page postgres.PageRequest) (postgres.PostingPage, error)
	Statement(ctx context.Context, account string, from, to time.Time) (postgres.Statement, error)
}

// Book is what the API needs of the Redis order book (redisbus.Book).
type Book interface {
	Depth(ctx context.Context, symbol string, limit int) (seq uint64, bids, asks []matching.Level, err error)
	OpenOrders(ctx context.Context, account string) (seq uint64, orders []matching.OrderView, err error)
}

// Server holds the handlers' dependencies.
type Server struct {
	Engine   Engine
	Registry Registry
	Keys     Keys
	Proofs   Proofs
	// LogSigner signs the transparency log's checkpoints; nil: checkpoints
	// that do not exist yet cannot be made (UNAVAILABLE).
	LogSigner note.Signer
	Ledger    Ledger
	Book      Book
	Symbols   []matching.Symbol
	// Markets returns each symbol's trading state (redisbus.Book.Markets);
	// nil: the configured initial phases.
	Markets   func(ctx context.Context) (map[string]matching.MarketState, error)
	WebSocket http.Handler
	// Streams serves /ws/stream (market data); nil: not served.
	Streams http.Handler
	// Ready reports whether the dependencies are reachable and migrated.
	Ready func(ctx context.Context) error
	// SettlementStatus returns the engine's last written sequence and the
	// last settled one.
	SettlementStatus func(ctx context.Context) (engine, settled uint64, err error)
	Now              func() time.Time
	Log              *zap.Logger
	Audit            *zap.Logger // never sampled
	Metrics          *prometheus.Registry
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	return s.authenticate(s.mux())
}

// mux mounts every route (Routes lists them).
func (s *Server) mux() *routes {
	mux := newRoutes()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics, promhttp.HandlerOpts{}))
	mux.Handle("GET /ws/api", s.WebSocket)
	mux.Handle("GET /ws", s.WebSocket)
	if s.Streams != nil {
		mux.Handle("GET /ws/stream", s.Streams)
	}
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	mux.HandleFunc("GET /v1/exchangeInfo", func(w http.ResponseWriter, r *http.Request) {
		var markets map[string]matching.MarketState
		if s.Markets != nil {
			m, err := s.Markets(r.Context())
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			markets = m
		}
		writeJSON(w, http.StatusOK, map[string]any{"symbols": wsapi.ExchangeInfo(s.Symbols, markets)})
	})
	mux.HandleFunc("GET /v1/depth", s.handle(s.depth))
	mux.HandleFunc("GET /v1/accounts/{account}/openOrders", s.handle(ownAccount(s.openOrders)))
	mux.HandleFunc("POST /v1/operator/accounts", s.handle(operator(s.openAccount)))
	mux.HandleFunc("POST /v1/operator/deposits", s.handle(operator(s.deposit)))
	mux.HandleFunc("POST /v1/operator/withdrawals", s.handle(operator(s.withdraw)))
	mux.HandleFunc("POST /v1/operator/symbols/{symbol}/phase", s.handle(operator(s.setPhase)))
	mux.HandleFunc("POST /v1/operator/symbols/{symbol}/halt", s.handle(operator(s.halt)))
	mux.HandleFunc("POST /v1/operator/symbols/{symbol}/resume", s.handle(operator(s.resume)))
	mux.HandleFunc("POST /v1/operator/keys", s.handle(s.createKey))
	mux.HandleFunc("GET /v1/operator/keys", s.listHandler("keys", s.listKeys))
	mux.HandleFunc("DELETE /v1/operator/keys/{id}", s.handle(s.revokeKey))
	s.complianceRoutes(mux)
	s.proofRoutes(mux)
	mux.HandleFunc("GET /v1/accounts/{account}/balances", s.handle(ownAccount(s.balances)))
	mux.HandleFunc("GET /v1/accounts/{account}/fills", s.handle(ownAccount(s.fills)))
	mux.HandleFunc("GET /v1/accounts/{account}/postings", s.handle(ownAccount(s.postings)))
	mux.HandleFunc("GET /v1/accounts/{account}/statement", func(w http.ResponseWriter, r *http.Request) {
		if err := accountScope(r, r.PathValue("account")); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.statement(w, r)
	})
	mux.HandleFunc("GET /v1/settlement/status", s.handle(s.settlementStatus))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, apperr.New(apperr.UnknownMethod, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// handler answers with a status and a JSON body, or an error.
type handler func(r *http.Request) (int, any, error)

func (s *Server) handle(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, body, err := h(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, status, body)
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		s.Log.Warn("not ready", zap.Error(err))
		// Which dependency, not the error: an anonymous caller need not
		// learn hosts, users and database names (the log has them).
		reason, _, _ := strings.Cut(err.Error(), ":")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason + " not ready (see the server's log)"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := apperr.CodeOf(err)
	if code == apperr.Internal {
		s.Log.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	}
	writeJSON(w, apperr.HTTPStatus(code), &apperr.Error{Code: code, Message: apperr.MessageOf(err)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decode reads a JSON body strictly: unknown fields, trailing data and
// bodies over 64 KiB are MALFORMED_JSON.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apperr.New(apperr.MalformedJSON, "request body: %v", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return apperr.New(apperr.MalformedJSON, "request body: trailing data after the JSON object")
	}
	return nil
}
