package httpapi

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
)

const engineTimeout = 10 * time.Second

// do submits a command and turns a rejection into its application error.
func (s *Server) do(ctx context.Context, cmd matching.Command) ([]matching.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	evs, err := s.Engine.Do(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if err := matching.Rejection(evs); err != nil {
		return nil, err
	}
	return evs, nil
}

type accountRequest struct {
	Account string               `json:"account"`
	Owner   string               `json:"owner"`
	Kind    matching.AccountKind `json:"kind"`
}

func (s *Server) openAccount(r *http.Request) (int, any, error) {
	var req accountRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Kind == matching.KindMiner {
		return 0, nil, apperr.New(apperr.InvalidParameter, "miner accounts are opened by registering the miner (POST /v1/operator/miners)")
	}
	if _, err := s.do(r.Context(), matching.Command{Kind: matching.CmdOpenAccount, Account: req.Account,
		Owner: req.Owner, AccountKind: req.Kind}); err != nil {
		return 0, nil, err
	}
	s.Audit.Info("account opened", zap.String("account", req.Account), zap.String("owner", req.Owner), zap.String("kind", req.Kind.String()))
	return http.StatusCreated, req, nil
}

type depositRequest struct {
	Account string `json:"account"`
	Asset   string `json:"asset"`
	Amount  string `json:"amount"`
	ExtRef  string `json:"extRef"`
}

func (s *Server) deposit(r *http.Request) (int, any, error) {
	return s.custody(r, matching.CmdDeposit, "deposit credited")
}

func (s *Server) withdraw(r *http.Request) (int, any, error) {
	return s.custody(r, matching.CmdWithdraw, "withdrawal debited")
}

// custody credits a deposit or debits a withdrawal, idempotent by the
// external reference: a repeat answers duplicate and changes nothing.
func (s *Server) custody(r *http.Request, kind matching.CommandKind, audit string) (int, any, error) {
	var req depositRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	scale, err := s.Registry.Scale(req.Asset)
	if err != nil {
		return 0, nil, err
	}
	amount, err := money.Parse(req.Amount, scale)
	if err != nil {
		return 0, nil, err
	}
	evs, err := s.do(r.Context(), matching.Command{Kind: kind, Account: req.Account, Asset: req.Asset,
		Amount: amount, ExtRef: req.ExtRef})
	if err != nil {
		return 0, nil, err
	}
	duplicate := evs[0].Kind == matching.EvDuplicate
	s.Audit.Info(audit, zap.String("account", req.Account), zap.String("asset", req.Asset),
		zap.String("amount", req.Amount), zap.String("extRef", req.ExtRef), zap.Bool("duplicate", duplicate))
	return http.StatusOK, map[string]any{"account": req.Account, "asset": req.Asset,
		"amount": money.Format(amount, scale), "extRef": req.ExtRef, "duplicate": duplicate}, nil
}

func (s *Server) balances(r *http.Request) (int, any, error) {
	account := r.PathValue("account")
	if !matching.ValidAccountID(account) {
		return 0, nil, apperr.New(apperr.InvalidParameter, "account %q is not a valid account ID", account)
	}
	bs, err := s.Ledger.Balances(r.Context(), account)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"account": account, "balances": bs}, nil
}

func parseDay(field, v string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, apperr.New(apperr.InvalidParameter, "%s %q must be a date, YYYY-MM-DD", field, v)
	}
	return t, nil
}

func (s *Server) settlementStatus(r *http.Request) (int, any, error) {
	engine, settled, err := s.SettlementStatus(r.Context())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]uint64{"engineSeq": engine, "settledSeq": settled}, nil
}

type phaseRequest struct {
	Phase matching.Phase `json:"phase"`
}

// setPhase moves a symbol to another trading phase (operators): the engine
// checks the transition and uncrosses the book where the phase model says.
func (s *Server) setPhase(r *http.Request) (int, any, error) {
	var req phaseRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	return s.marketCommand(r, matching.Command{Kind: matching.CmdSetPhase, Symbol: r.PathValue("symbol"), Phase: req.Phase})
}

func (s *Server) halt(r *http.Request) (int, any, error) {
	return s.marketCommand(r, matching.Command{Kind: matching.CmdHalt, Symbol: r.PathValue("symbol")})
}

func (s *Server) resume(r *http.Request) (int, any, error) {
	return s.marketCommand(r, matching.Command{Kind: matching.CmdResume, Symbol: r.PathValue("symbol")})
}

// marketState is a symbol's phase as the engine reported it.
type marketState struct {
	Symbol string         `json:"symbol"`
	Phase  matching.Phase `json:"phase"`
	Halted bool           `json:"halted"`
	Until  int64          `json:"until,omitempty"`
	Trades int            `json:"auctionTrades"`
}

func (s *Server) marketCommand(r *http.Request, cmd matching.Command) (int, any, error) {
	evs, err := s.do(r.Context(), cmd)
	if err != nil {
		return 0, nil, err
	}
	st := marketState{Symbol: cmd.Symbol}
	for _, ev := range evs {
		switch {
		case ev.Timer:
		case ev.Kind == matching.EvPhase && ev.Symbol == cmd.Symbol:
			st.Phase, st.Halted, st.Until = ev.Phase, ev.Halted, ev.Until
		case ev.Kind == matching.EvTrade && ev.Symbol == cmd.Symbol:
			st.Trades++
		}
	}
	s.Audit.Info("market state changed", zap.String("symbol", cmd.Symbol), zap.String("command", cmd.Kind.String()),
		zap.String("phase", st.Phase.String()), zap.Bool("halted", st.Halted), zap.Int("auctionTrades", st.Trades))
	return http.StatusOK, st, nil
}
