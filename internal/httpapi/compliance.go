package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/miningfee"
	compliancepg "github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
)

// Registry is what the API needs of compliance's store.
type Registry interface {
	CreateMinerThen(ctx context.Context, m compliance.Miner, a compliance.Actor, then func(context.Context) error) error
	Miner(ctx context.Context, id string) (compliance.Miner, error)
	Miners(ctx context.Context) ([]compliance.Miner, error)
	MinerAccounts(ctx context.Context, minerID string) ([]string, error)
	AddLicence(ctx context.Context, minerID string, l compliance.Licence, a compliance.Actor) error
	ChangeLicence(ctx context.Context, number string, c compliance.StatusChange, a compliance.Actor) (string, error)
	LicenceViews(ctx context.Context, minerID string) ([]compliancepg.LicenceView, error)
	CreateDataCentre(ctx context.Context, d compliance.DataCentre, a compliance.Actor) error
	DataCentres(ctx context.Context) ([]compliance.DataCentre, error)
	CreatePool(ctx context.Context, p compliance.Pool, a compliance.Actor) error
	Pools(ctx context.Context) ([]compliance.Pool, error)
	RegisterEquipment(ctx context.Context, e compliance.Equipment, a compliance.Actor) error
	Equipment(ctx context.Context, minerID string) ([]compliance.Equipment, error)
	SetQuota(ctx context.Context, minerID string, month time.Time, kwh int64, a compliance.Actor) error
	RecordConsumption(ctx context.Context, c compliancepg.Consumption, a compliance.Actor) error
	Energy(ctx context.Context, minerID string) ([]compliancepg.EnergyMonth, error)
	AssessFee(ctx context.Context, minerID string, q miningfee.Quarter, a compliance.Actor) (compliancepg.FeeAssessment, error)
	FeeAssessments(ctx context.Context, minerID string) ([]compliancepg.FeeAssessment, error)
	SubmitReport(ctx context.Context, r compliance.Report, a compliance.Actor) (compliance.ObligationView, error)
	AmendReport(ctx context.Context, r compliance.Report, a compliance.Actor) (compliance.ObligationView, error)
	Reports(ctx context.Context, f compliancepg.ReportFilter) ([]compliancepg.ReportView, error)
	SubmitPoolStatement(ctx context.Context, p compliancepg.PoolStatement, a compliance.Actor) error
	Obligations(ctx context.Context, f compliancepg.ObligationFilter) ([]compliance.ObligationView, error)
	Obligation(ctx context.Context, id int64) (compliancepg.ObligationDetail, error)
	ExcludedFills(ctx context.Context, minerID string) ([]compliancepg.ExcludedFill, error)
	Violations(ctx context.Context, minerID string) ([]compliancepg.Violation, error)
	Summary(ctx context.Context, minerID string) (compliancepg.Summary, error)
	Audit(ctx context.Context, subject string, limit int) ([]compliancepg.AuditEntry, error)
	Sweep(ctx context.Context) ([]compliancepg.Violation, error)
	LockPermissions(ctx context.Context) (unlock func(), err error)
	PermissionChanges(ctx context.Context) ([]compliancepg.PermissionChange, error)
	MarkPermission(ctx context.Context, c compliancepg.PermissionChange) error
	RuleSet() *compliance.RuleSet
	Today() time.Time
	Scale(asset string) (int, error)
}

// complianceRoutes mounts the registry, reports, obligations and their
// reads. Writes to the registry are an operator's; a miner submits and
// amends its own reports; reads are the regulator's and operator's for
// everyone and a miner's for itself. Every list also comes as CSV
// (?format=csv).
func (s *Server) complianceRoutes(mux *routes) {
	mux.HandleFunc("POST /v1/operator/miners", s.handle(s.createMiner))
	mux.HandleFunc("POST /v1/operator/licences", s.handle(s.addLicence))
	mux.HandleFunc("POST /v1/operator/licences/{number}/changes", s.handle(s.changeLicence))
	mux.HandleFunc("POST /v1/operator/datacentres", s.handle(operatorWrite(s, "datacentre", func(ctx context.Context, d compliance.DataCentre, a compliance.Actor) error {
		return s.Registry.CreateDataCentre(ctx, d, a)
	})))
	mux.HandleFunc("POST /v1/operator/pools", s.handle(s.createPool))
	mux.HandleFunc("POST /v1/operator/equipment", s.handle(operatorWrite(s, "equipment", func(ctx context.Context, e compliance.Equipment, a compliance.Actor) error {
		return s.Registry.RegisterEquipment(ctx, e, a)
	})))
	mux.HandleFunc("POST /v1/operator/quotas", s.handle(s.setQuota))
	mux.HandleFunc("POST /v1/operator/consumption", s.handle(s.recordConsumption))
	mux.HandleFunc("POST /v1/operator/poolStatements", s.handle(s.poolStatement))
	mux.HandleFunc("POST /v1/operator/fees", s.handle(s.assessFee))
	mux.HandleFunc("POST /v1/operator/compliance/sweep", s.handle(s.sweep))
	mux.HandleFunc("POST /v1/reports", s.handle(s.reportHandler(false)))
	mux.HandleFunc("POST /v1/reports/amend", s.handle(s.reportHandler(true)))

	s.list(mux, "miners", func(r *http.Request, miner string) (any, error) {
		if miner != "" {
			m, err := s.Registry.Miner(r.Context(), miner)
			return []compliance.Miner{m}, err
		}
		return s.Registry.Miners(r.Context())
	})
	s.list(mux, "licences", func(r *http.Request, miner string) (any, error) { return s.Registry.LicenceViews(r.Context(), miner) })
	s.list(mux, "equipment", func(r *http.Request, miner string) (any, error) { return s.Registry.Equipment(r.Context(), miner) })
	s.list(mux, "energy", func(r *http.Request, miner string) (any, error) { return s.Registry.Energy(r.Context(), miner) })
	s.list(mux, "fees", func(r *http.Request, miner string) (any, error) { return s.Registry.FeeAssessments(r.Context(), miner) })
	s.list(mux, "violations", func(r *http.Request, miner string) (any, error) { return s.Registry.Violations(r.Context(), miner) })
	s.list(mux, "excludedFills", func(r *http.Request, miner string) (any, error) { return s.Registry.ExcludedFills(r.Context(), miner) })
	s.list(mux, "reports", func(r *http.Request, miner string) (any, error) {
		return s.Registry.Reports(r.Context(), compliancepg.ReportFilter{Miner: miner, Period: r.URL.Query().Get("period")})
	})
	s.list(mux, "obligations", func(r *http.Request, miner string) (any, error) {
		q := r.URL.Query()
		return s.Registry.Obligations(r.Context(), compliancepg.ObligationFilter{Miner: miner,
			Status: compliance.Status(q.Get("status")), Period: q.Get("period"), Asset: q.Get("asset")})
	})
	// The registry's public parts: every key may read them.
	mux.HandleFunc("GET /v1/compliance/datacentres", s.listHandler("datacentres", func(r *http.Request) (any, error) {
		if _, err := principal(r); err != nil {
			return nil, err
		}
		return s.Registry.DataCentres(r.Context())
	}))
	mux.HandleFunc("GET /v1/compliance/pools", s.listHandler("pools", func(r *http.Request) (any, error) {
		if _, err := principal(r); err != nil {
			return nil, err
		}
		return s.Registry.Pools(r.Context())
	}))
	mux.HandleFunc("GET /v1/compliance/audit", s.listHandler("audit", func(r *http.Request) (any, error) {
		if _, err := requireReader(r); err != nil {
			return nil, err
		}
		return s.Registry.Audit(r.Context(), r.URL.Query().Get("subject"), 1000)
	}))
	mux.HandleFunc("GET /v1/compliance/obligations/{id}", s.handle(s.obligation))
	mux.HandleFunc("GET /v1/compliance/miners/{miner}/summary", s.handle(s.summary))
	mux.HandleFunc("GET /v1/compliance/ruleSet", s.handle(s.ruleSet))
}

// list mounts GET /v1/compliance/<name>?miner=… for a miner-scoped list.
func (s *Server) list(mux *routes, name string, get func(r *http.Request, miner string) (any, error)) {
	mux.HandleFunc("GET /v1/compliance/"+name, s.listHandler(name, func(r *http.Request) (any, error) {
		miner, err := minerScope(r, r.URL.Query().Get("miner"))
		if err != nil {
			return nil, err
		}
		return get(r, miner)
	}))
}

// listHandler answers {"<name>": [...]} or, with ?format=csv, a CSV file
// with one row per element.
func (s *Server) listHandler(name string, get func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		format := r.URL.Query().Get("format")
		if format != "" && format != "json" && format != "csv" {
			s.writeError(w, r, apperr.New(apperr.InvalidParameter, "format %q is neither json nor csv", format))
			return
		}
		v, err := get(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if format == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
			if err := writeCSV(w, v); err != nil {
				s.Log.Error("csv", zap.String("list", name), zap.Error(err))
			}
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{name: v})
	}
}

// operatorWrite is the handler of a plain registry insert by an operator.
func operatorWrite[T any](s *Server, what string, write func(context.Context, T, compliance.Actor) error) handler {
	return func(r *http.Request) (int, any, error) {
		p, err := requireOperator(r)
		if err != nil {
			return 0, nil, err
		}
		var v T
		if err := decode(r, &v); err != nil {
			return 0, nil, err
		}
		if err := write(r.Context(), v, actorOf(p, "")); err != nil {
			return 0, nil, err
		}
		s.Audit.Info(what+" registered", zap.String("by", p.KeyID), zap.Any(what, v))
		return http.StatusCreated, v, nil
	}
}

// createMiner registers a miner and opens its exchange accounts in the engine.
func (s *Server) createMiner(r *http.Request) (int, any, error) {
	p, err := requireOperator(r)
	if err != nil {
		return 0, nil, err
	}
	var m compliance.Miner
	if err := decode(r, &m); err != nil {
		return 0, nil, err
	}
	if err := m.Validate(); err != nil {
		return 0, nil, err
	}
	// The engine opens the accounts inside the registration's transaction,
	// once the registry has taken the miner and before it commits: a miner
	// the registry refuses (ID or BIN registered, an account a miner's)
	// opens no account, and one the engine refuses — an account that
	// exists with another owner or kind (CONFLICT), whose linking would let
	// the miner's keys act for it and count its sales as the miner's — is
	// not registered. Opening is idempotent, so a retry after a failed
	// commit opens nothing twice.
	open := func(ctx context.Context) error {
		for _, a := range m.Accounts {
			if _, err := s.do(ctx, matching.Command{Kind: matching.CmdOpenAccount, Account: a, Owner: m.ID,
				AccountKind: matching.KindMiner}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.Registry.CreateMinerThen(r.Context(), m, actorOf(p, ""), open); err != nil {
		return 0, nil, err
	}
	s.Audit.Info("miner registered", zap.String("by", p.KeyID), zap.String("miner", m.ID), zap.String("bin", m.BIN), zap.Strings("accounts", m.Accounts))
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

// addLicence records a licence and brings the engine's permissions up to
// date: an active licence lets the miner's accounts place mandatory orders.
func (s *Server) addLicence(r *http.Request) (int, any, error) {
	p, err := requireOperator(r)
	if err != nil {
		return 0, nil, err
	}
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
	if err := s.Registry.AddLicence(r.Context(), req.Miner, l, actorOf(p, "")); err != nil {
		return 0, nil, err
	}
	if _, err := s.SyncPermissions(r.Context()); err != nil {
		return 0, nil, err
	}
	s.Audit.Info("licence recorded", zap.String("by", p.KeyID), zap.String("miner", req.Miner), zap.String("number", l.Number),
		zap.String("status", string(l.Status)))
	req.ExpiresOn = expires.Format(time.DateOnly)
	return s.licenceView(r.Context(), req.Miner, l.Number)
}

func (s *Server) licenceView(ctx context.Context, miner, number string) (int, any, error) {
	views, err := s.Registry.LicenceViews(ctx, miner)
	if err != nil {
		return 0, nil, err
	}
	for _, v := range views {
		if v.Number == number {
			return http.StatusCreated, v, nil
		}
	}
	return 0, nil, apperr.New(apperr.Internal, "licence %s vanished", number)
}

type licenceChangeRequest struct {
	Kind   string `json:"kind"`
	From   string `json:"from"`
	Until  string `json:"until,omitempty"`
	Reason string `json:"reason"`
}

// changeLicence suspends, reinstates or revokes a licence and updates the
// engine's permissions.
func (s *Server) changeLicence(r *http.Request) (int, any, error) {
	p, err := requireOperator(r)
	if err != nil {
		return 0, nil, err
	}
	var req licenceChangeRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	c := compliance.StatusChange{Kind: compliance.ChangeKind(req.Kind), Reason: req.Reason}
	if c.From, err = parseDay("from", req.From); err != nil {
		return 0, nil, err
	}
	if req.Until != "" {
		if c.Until, err = parseDay("until", req.Until); err != nil {
			return 0, nil, err
		}
	}
	number := r.PathValue("number")
	miner, err := s.Registry.ChangeLicence(r.Context(), number, c, actorOf(p, req.Reason))
	if err != nil {
		return 0, nil, err
	}
	if _, err := s.SyncPermissions(r.Context()); err != nil {
		return 0, nil, err
	}
	s.Audit.Info("licence changed", zap.String("by", p.KeyID), zap.String("number", number), zap.String("kind", req.Kind),
		zap.String("from", req.From), zap.String("reason", req.Reason))
	return s.licenceView(r.Context(), miner, number)
}

type poolRequest struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Accreditation string `json:"accreditation"`
	AccreditedOn  string `json:"accreditedOn"`
	Location      string `json:"location"`
}

func (s *Server) createPool(r *http.Request) (int, any, error) {
	p, err := requireOperator(r)
	if err != nil {
		return 0, nil, err
	}
	var req poolRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	on, err := parseDay("accreditedOn", req.AccreditedOn)
	if err != nil {
		return 0, nil, err
	}
	pool := compliance.Pool{ID: req.ID, Name: req.Name, Accreditation: req.Accreditation, AccreditedOn: on, Location: req.Location}
	if err := s.Registry.CreatePool(r.Context(), pool, actorOf(p, "")); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, pool, nil
}

type quotaRequest struct {
	Miner string `json:"miner"`
	Month string `json:"month"` // "2025-01"
	KWh   int64  `json:"kwh"`
}

func (s *Server) setQuota(r *http.Request) (int, any, error) {
	p, err := requireOperator(r)
	if err != nil {
		return 0, nil, err
	}
	var req quotaRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	month, err := parseMonth("month", req.Month)
	if err != nil {
		return 0, nil, err
	}
	if err := s.Registry.SetQuota(r.Context(), req.Miner, month, req.KWh, actorOf(p, "")); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, req, nil
}

type consumptionRequest struct {
	Miner    string `json:"miner"`
	Month    string `json:"month"`
	Source   string `json:"source"`
	KWh      int64  `json:"kwh"`
	Metered  bool   `json:"metered"`
	AvgPrice string `json:"avgPrice"` // tenge per kWh, up to 2 decimals
}

func (s *Server) recordConsumption(r *http.Request) (int, any, error) {
	p, err := requireOperator(r)
	if err != nil {
		return 0, nil, err
	}
	var req consumptionRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	month, err := parseMonth("month", req.Month)
	if err != nil {
		return 0, nil, err
	}
	price, err := money.Parse(req.AvgPrice, 2)
	if err != nil {
		return 0, nil, err
	}
	c := compliancepg.Consumption{Miner: req.Miner, Consumption: miningfee.Consumption{Month: month, KWh: req.KWh,
		Source: miningfee.Source(req.Source), Metered: req.Metered, PriceTiyn: price}}
	if err := s.Registry.RecordConsumption(r.Context(), c, actorOf(p, "")); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, req, nil
}

type poolStatementRequest struct {
	Pool     string `json:"pool"`
	Miner    string `json:"miner"`
	Asset    string `json:"asset"`
	Period   string `json:"period"`
	Quantity string `json:"quantity"`
}

func (s *Server) poolStatement(r *http.Request) (int, any, error) {
	p, err := requireOperator(r)
	if err != nil {
		return 0, nil, err
	}
	var req poolStatementRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	period, err := parseMonth("period", req.Period)
	if err != nil {
		return 0, nil, err
	}
	qty, err := s.amount(req.Asset, req.Quantity)
	if err != nil {
		return 0, nil, err
	}
	if err := s.Registry.SubmitPoolStatement(r.Context(), compliancepg.PoolStatement{Pool: req.Pool, Miner: req.Miner,
		Asset: req.Asset, PeriodStart: period, Quantity: qty}, actorOf(p, "")); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, req, nil
}

func (s *Server) amount(asset, v string) (int64, error) {
	scale, err := s.Registry.Scale(asset)
	if err != nil {
		return 0, err
	}
	return money.Parse(v, scale)
}

type feeRequest struct {
	Miner   string `json:"miner"`
	Quarter string `json:"quarter"` // "2023-Q2"
}

func (s *Server) assessFee(r *http.Request) (int, any, error) {
	p, err := requireOperator(r)
	if err != nil {
		return 0, nil, err
	}
	var req feeRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	q, err := miningfee.ParseQuarter(req.Quarter)
	if err != nil {
		return 0, nil, err
	}
	fa, err := s.Registry.AssessFee(r.Context(), req.Miner, q, actorOf(p, ""))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, fa, nil
}

type reportRequest struct {
	Miner   string   `json:"miner"`
	Asset   string   `json:"asset"`
	Period  string   `json:"period"` // "2025-01"
	Mined   string   `json:"mined"`
	Wallets []string `json:"wallets"`
	Source  string   `json:"source,omitempty"` // miner (default) or pool
	Pool    string   `json:"pool,omitempty"`
	Reason  string   `json:"reason,omitempty"` // required for an amendment
}

// reportHandler submits or amends a report: a miner for itself, or an
// operator for any miner.
func (s *Server) reportHandler(amend bool) handler {
	return func(r *http.Request) (int, any, error) {
		p, err := principal(r)
		if err != nil {
			return 0, nil, err
		}
		var req reportRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		if !p.CanWriteRegistry() && !p.ActsForMiner(req.Miner) {
			return 0, nil, apperr.New(apperr.NotPermitted, "a report is submitted by the miner itself or an operator")
		}
		period, err := parseMonth("period", req.Period)
		if err != nil {
			return 0, nil, err
		}
		mined, err := s.amount(req.Asset, req.Mined)
		if err != nil {
			return 0, nil, err
		}
		if req.Source == "" {
			req.Source = string(compliance.FromMiner)
		}
		rep := compliance.Report{MinerID: req.Miner, Asset: req.Asset, PeriodStart: period, Mined: mined, Wallets: req.Wallets,
			Source: compliance.ReportSource(req.Source), Pool: req.Pool}
		write, what := s.Registry.SubmitReport, "report submitted"
		if amend {
			write, what = s.Registry.AmendReport, "report amended"
		}
		ob, err := write(r.Context(), rep, actorOf(p, req.Reason))
		if err != nil {
			return 0, nil, err
		}
		if _, err := s.SyncPermissions(r.Context()); err != nil {
			return 0, nil, err
		}
		s.Audit.Info(what, zap.String("by", p.KeyID), zap.String("miner", req.Miner), zap.String("asset", req.Asset),
			zap.String("period", req.Period), zap.String("mined", req.Mined), zap.String("required", ob.Required))
		return http.StatusCreated, ob, nil
	}
}

func (s *Server) obligation(r *http.Request) (int, any, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, nil, apperr.New(apperr.InvalidParameter, "obligation id %q is not a number", r.PathValue("id"))
	}
	if _, err := principal(r); err != nil {
		return 0, nil, err
	}
	d, err := s.Registry.Obligation(r.Context(), id)
	if err != nil {
		return 0, nil, err
	}
	if _, err := minerScope(r, d.Miner); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d, nil
}

func (s *Server) summary(r *http.Request) (int, any, error) {
	miner, err := minerScope(r, r.PathValue("miner"))
	if err != nil {
		return 0, nil, err
	}
	sum, err := s.Registry.Summary(r.Context(), miner)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, sum, nil
}

// ruleSet shows the rule set new obligations are computed under: the
// schedule, every setting with its source, the sanctions and the fees.
func (s *Server) ruleSet(r *http.Request) (int, any, error) {
	if _, err := principal(r); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, s.Registry.RuleSet(), nil
}

func (s *Server) sweep(r *http.Request) (int, any, error) {
	if _, err := requireOperator(r); err != nil {
		return 0, nil, err
	}
	res, err := s.SweepCompliance(r.Context())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, res, nil
}

// SweepResult is what one compliance sweep did.
type SweepResult struct {
	Today       string                          `json:"today"`
	Violations  []compliancepg.Violation        `json:"violations"`
	Permissions []compliancepg.PermissionChange `json:"permissions"`
}

// SweepCompliance moves overdue obligations to violations and brings the
// engine's mandatory-sale permissions in line with licences and open
// obligations. The server runs it periodically; operators on demand.
func (s *Server) SweepCompliance(ctx context.Context) (SweepResult, error) {
	vs, err := s.Registry.Sweep(ctx)
	if err != nil {
		return SweepResult{}, err
	}
	for _, v := range vs {
		s.Audit.Warn("obligation overdue", zap.Int64("obligation", v.ObligationID), zap.String("miner", v.Miner),
			zap.Int("violation", v.Number), zap.Int64("fineMci", v.FineMCI), zap.Int("suspensionRecommendedMonths", v.SuspensionMonths))
	}
	perms, err := s.SyncPermissions(ctx)
	if err != nil {
		return SweepResult{}, err
	}
	return SweepResult{Today: s.Registry.Today().Format(time.DateOnly), Violations: vs, Permissions: perms}, nil
}

// SyncPermissions sends the engine every change of a miner's permission to
// place mandatory orders (compliance decides: an active licence or an unmet
// obligation) and records each once the engine accepted it. Sending the
// same permission twice is harmless, so a crash between the two steps only
// repeats a command.
func (s *Server) SyncPermissions(ctx context.Context) ([]compliancepg.PermissionChange, error) {
	unlock, err := s.Registry.LockPermissions(ctx) // one sync at a time, from reading to recording
	if err != nil {
		return nil, err
	}
	defer unlock()
	changes, err := s.Registry.PermissionChanges(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range changes {
		for _, a := range c.Accounts {
			if _, err := s.do(ctx, matching.Command{Kind: matching.CmdSetPermission, Account: a,
				Permission: matching.PermMandatorySell, Granted: c.Granted}); err != nil {
				return nil, err
			}
		}
		if err := s.Registry.MarkPermission(ctx, c); err != nil {
			return nil, err
		}
		s.Audit.Info("mandatory-sell permission", zap.String("miner", c.Miner), zap.Bool("granted", c.Granted))
	}
	if changes == nil {
		changes = []compliancepg.PermissionChange{}
	}
	return changes, nil
}

func parseMonth(field, v string) (time.Time, error) {
	t, err := time.Parse("2006-01", v)
	if err != nil {
		return time.Time{}, apperr.New(apperr.InvalidParameter, "%s %q must be a month, YYYY-MM", field, v)
	}
	return t, nil
}
