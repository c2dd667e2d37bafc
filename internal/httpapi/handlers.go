package httpapi

import (
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/compliance"
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

// createMiner registers a miner and opens its exchange accounts in the engine.
func (s *Server) createMiner(r *http.Request) (int, any, error) {
	var m compliance.Miner
	if err := decode(r, &m); err != nil {
		return 0, nil, err
	}
	if err := s.Registry.CreateMiner(r.Context(), m); err != nil {
		return 0, nil, err
	}
	for _, a := range m.Accounts {
		if _, err := s.do(r.Context(), matching.Command{Kind: matching.CmdOpenAccount, Account: a, Owner: m.ID,
			AccountKind: matching.KindMiner}); err != nil {
			return 0, nil, err
		}
	}
	s.Audit.Info("miner registered", zap.String("miner", m.ID), zap.String("bin", m.BIN), zap.Strings("accounts", m.Accounts))
	return http.StatusCreated, m, nil
}

type licenceRequest struct {
	Miner     string `json:"miner"`
	Number    string `json:"number"`
	Subtype   string `json:"subtype"`
	IssuedOn  string `json:"issuedOn"`
	ExpiresOn string `json:"expiresOn,omitempty"` // default: the 3-year term
	Status    string `json:"status"`
}

// addLicence records a licence and, while it is active, lets the miner's
// accounts place mandatory orders.
func (s *Server) addLicence(r *http.Request) (int, any, error) {
	var req licenceRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	issued, err := parseDay("issuedOn", req.IssuedOn)
	if err != nil {
		return 0, nil, err
	}
	expires := compliance.LicenceExpiresOn(issued)
	if req.ExpiresOn != "" {
		if expires, err = parseDay("expiresOn", req.ExpiresOn); err != nil {
			return 0, nil, err
		}
	}
	l := compliance.Licence{Number: req.Number, Subtype: compliance.LicenceSubtype(req.Subtype), IssuedOn: issued,
		ExpiresOn: expires, Status: compliance.LicenceStatus(req.Status)}
	if err := s.Registry.AddLicence(r.Context(), req.Miner, l); err != nil {
		return 0, nil, err
	}
	accounts, err := s.Registry.MinerAccounts(r.Context(), req.Miner)
	if err != nil {
		return 0, nil, err
	}
	active := l.ActiveOn(today(s.Now()))
	if active {
		for _, a := range accounts {
			if _, err := s.do(r.Context(), matching.Command{Kind: matching.CmdSetPermission, Account: a,
				Permission: matching.PermMandatorySell, Granted: true}); err != nil {
				return 0, nil, err
			}
		}
	}
	s.Audit.Info("licence recorded", zap.String("miner", req.Miner), zap.String("number", l.Number),
		zap.String("status", string(l.Status)), zap.Bool("mandatorySellGranted", active))
	req.ExpiresOn = expires.Format(time.DateOnly)
	return http.StatusCreated, map[string]any{"licence": req, "activeToday": active, "accounts": accounts}, nil
}

type reportRequest struct {
	Miner  string `json:"miner"`
	Asset  string `json:"asset"`
	Period string `json:"period"` // "2025-01"
	Mined  string `json:"mined"`
}

func (s *Server) submitReport(r *http.Request) (int, any, error) {
	var req reportRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	period, err := time.Parse("2006-01", req.Period)
	if err != nil {
		return 0, nil, apperr.New(apperr.InvalidParameter, "period %q must be a month, YYYY-MM", req.Period)
	}
	scale, err := s.Registry.Scale(req.Asset)
	if err != nil {
		return 0, nil, err
	}
	mined, err := money.Parse(req.Mined, scale)
	if err != nil {
		return 0, nil, err
	}
	ob, err := s.Registry.SubmitReport(r.Context(), req.Miner, req.Asset, period, mined)
	if err != nil {
		return 0, nil, err
	}
	s.Audit.Info("report submitted", zap.String("miner", req.Miner), zap.String("asset", req.Asset),
		zap.String("period", req.Period), zap.String("mined", req.Mined), zap.String("required", ob.Required))
	return http.StatusCreated, ob, nil
}

func (s *Server) obligations(r *http.Request) (int, any, error) {
	miner := r.URL.Query().Get("miner")
	if miner == "" {
		return 0, nil, apperr.New(apperr.InvalidParameter, "query parameter miner is required")
	}
	obs, err := s.Registry.Obligations(r.Context(), miner)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"miner": miner, "obligations": obs}, nil
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

// today is the calendar day in Astana (UTC+5) as a UTC-midnight date, the
// form compliance compares.
func today(now time.Time) time.Time {
	y, m, d := now.In(time.FixedZone("Asia/Almaty", 5*3600)).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
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
