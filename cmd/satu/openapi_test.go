package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/demo"
	"github.com/satu-exchange/satu/internal/httpapi"
)

// openAPICheck is an http.RoundTripper that holds every REST exchange
// against openapi.json: the route must be documented; the answer's status,
// content type, headers and body must be as documented (an error's code
// among those its status lists); a request that succeeded must itself be
// valid by the document. It records which operations answered 2xx.
type openAPICheck struct {
	doc    *openapi3.T
	router routers.Router
	base   http.RoundTripper

	mu       sync.Mutex
	ok       map[string]bool // "METHOD /path/{param}" answered 2xx
	problems []string
}

func newOpenAPICheck(t *testing.T, baseURL string) *openAPICheck {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI)
	must(t, err)
	must(t, doc.Validate(context.Background()))
	doc.Servers = openapi3.Servers{{URL: baseURL}}
	router, err := legacy.NewRouter(doc)
	must(t, err)
	return &openAPICheck{doc: doc, router: router, base: http.DefaultTransport, ok: map[string]bool{}}
}

func (v *openAPICheck) problem(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *openAPICheck) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	v.check(req, reqBody, resp, body)
	return resp, nil
}

func (v *openAPICheck) check(req *http.Request, reqBody []byte, resp *http.Response, body []byte) {
	name := req.Method + " " + req.URL.RequestURI()
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	if len(reqBody) > 0 && r.Header.Get("Content-Type") == "" {
		// demo.Client sends JSON without saying so; the server reads every
		// body as JSON whatever the header says.
		r.Header.Set("Content-Type", "application/json")
	}
	route, params, err := v.router.FindRoute(r)
	if err != nil {
		v.problem("%s (HTTP %d): not in openapi.json: %v", name, resp.StatusCode, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	success := resp.StatusCode >= 200 && resp.StatusCode < 300
	if success && reqErr != nil {
		v.problem("%s succeeded (HTTP %d), but openapi.json calls the request invalid: %v", name, resp.StatusCode, reqErr)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		v.problem("%s: the answer (HTTP %d %s) is not as documented: %v", name, resp.StatusCode, trim(body), err)
		return
	}
	if resp.StatusCode >= 400 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && route.Path != "/readyz" {
		var e apperr.Error
		_ = json.Unmarshal(body, &e)
		if doc := route.Operation.Responses.Status(resp.StatusCode); doc == nil || !strings.Contains(*doc.Value.Description, string(e.Code)) {
			v.problem("%s: HTTP %d %s is not among the codes documented for that status", name, resp.StatusCode, e.Code)
		}
	}
	if success {
		v.mu.Lock()
		v.ok[route.Method+" "+route.Path] = true
		v.mu.Unlock()
	}
}

func trim(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// TestOpenAPIResponses runs the real service through the demo market's seed
// and then every REST operation, as each role, with the openAPICheck
// transport: every answer the service gives must be the documented one, and
// every documented operation must have answered successfully at least once.
func TestOpenAPIResponses(t *testing.T) {
	app, op := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	check := newOpenAPICheck(t, op.BaseURL)
	client := func(key string) *demo.Client {
		c := demo.NewClient(app.Addr(), key)
		c.HTTP.Transport = check
		return c
	}
	op = client(app.Token(access.RoleOperator))
	reg := client(app.Token(access.RoleRegulator))
	public := client("")

	today := time.Now().UTC()
	must(t, op.Seed(ctx, today))
	must(t, op.WaitSettled(ctx))

	// Keys for a miner and a trader, read back, and one revoked.
	newKey := func(req map[string]string) map[string]string {
		var k map[string]string
		must(t, op.Call(ctx, "POST", "/v1/operator/keys", req, &k))
		return k
	}
	minerKey := newKey(map[string]string{"role": "miner", "miner": demo.Miners[0].ID, "label": "openapi test miner"})
	traderKey := newKey(map[string]string{"role": "trader", "account": "kaspi-fund", "label": "openapi test trader", "signing": "hmac"})
	spare := newKey(map[string]string{"role": "regulator", "label": "openapi test, revoked"})
	must(t, op.Call(ctx, "DELETE", "/v1/operator/keys/"+spare["id"], nil, nil))
	miner, trader := client(minerKey["apiKey"]), client(traderKey["apiKey"])

	// Public.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json", "/v1/exchangeInfo", "/v1/depth?symbol=BTCKZT&limit=5"} {
		must(t, public.Call(ctx, "GET", p, nil, nil))
	}
	// Operator writes the seed did not make.
	period := time.Date(today.Year(), today.Month()-1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	m0 := demo.Miners[0].ID
	must(t, op.Call(ctx, "POST", "/v1/reports/amend", map[string]any{"miner": m0, "asset": "BTC", "period": period,
		"mined": "1.20000000", "wallets": []string{"bc1qopenapi"}, "reason": "the pool's corrected statement"}, nil))
	must(t, op.Call(ctx, "POST", "/v1/operator/withdrawals", map[string]string{"account": "kaspi-fund", "asset": "KZT",
		"amount": "10.00", "extRef": "openapi-w1"}, nil))
	must(t, op.Call(ctx, "POST", "/v1/operator/proof/checkpoint", nil, nil))

	// Reads, as the regulator and, for the miner-scoped ones, the miner.
	lists := []string{"miners", "licences", "equipment", "energy", "fees", "violations", "excludedFills", "reports", "obligations"}
	for _, l := range lists {
		must(t, reg.Call(ctx, "GET", "/v1/compliance/"+l, nil, nil))
		must(t, reg.Call(ctx, "GET", "/v1/compliance/"+l+"?format=csv&miner="+m0, nil, nil))
		must(t, miner.Call(ctx, "GET", "/v1/compliance/"+l, nil, nil))
	}
	must(t, reg.Call(ctx, "GET", "/v1/compliance/obligations?status=open&period="+period+"&asset=BTC", nil, nil))
	must(t, reg.Call(ctx, "GET", "/v1/compliance/reports?period="+period, nil, nil))
	for _, p := range []string{"/v1/compliance/datacentres", "/v1/compliance/pools", "/v1/compliance/ruleSet", "/v1/settlement/status"} {
		must(t, trader.Call(ctx, "GET", p, nil, nil))
	}
	must(t, reg.Call(ctx, "GET", "/v1/compliance/audit?subject="+m0, nil, nil))
	must(t, op.Call(ctx, "GET", "/v1/operator/keys", nil, nil))
	must(t, op.Call(ctx, "GET", "/v1/operator/keys?format=csv", nil, nil))
	for _, m := range demo.Miners {
		must(t, reg.Call(ctx, "GET", "/v1/compliance/miners/"+m.ID+"/summary", nil, nil))
	}
	var obs obligations
	must(t, reg.Call(ctx, "GET", "/v1/compliance/obligations", nil, &obs))
	if len(obs.Obligations) == 0 {
		t.Fatal("the seed made no obligations")
	}
	for _, o := range obs.Obligations {
		must(t, reg.Call(ctx, "GET", fmt.Sprintf("/v1/compliance/obligations/%d", o.ID), nil, nil))
		must(t, reg.Call(ctx, "GET", fmt.Sprintf("/v1/regulator/obligations/%d/certificate", o.ID), nil, nil))
	}
	var cp struct{ Size int64 }
	must(t, public.Call(ctx, "GET", "/v1/proof/checkpoint", nil, &cp))
	must(t, public.Call(ctx, "GET", fmt.Sprintf("/v1/proof/checkpoint?size=%d", cp.Size), nil, nil))
	must(t, public.Call(ctx, "GET", fmt.Sprintf("/v1/proof/inclusion?index=0&size=%d", cp.Size), nil, nil))
	must(t, public.Call(ctx, "GET", fmt.Sprintf("/v1/proof/consistency?from=1&to=%d", cp.Size), nil, nil))

	// Accounts: the regulator any, the trader its own, the miner its own.
	for _, c := range []struct {
		c       *demo.Client
		account string
	}{{reg, "aix-mm"}, {trader, "kaspi-fund"}, {miner, demo.Miners[0].Accounts[0]}} {
		for _, p := range []string{"balances", "openOrders", "fills?limit=1", "postings?limit=2"} {
			must(t, c.c.Call(ctx, "GET", "/v1/accounts/"+c.account+"/"+p, nil, nil))
		}
		var page struct{ NextCursor string }
		must(t, c.c.Call(ctx, "GET", "/v1/accounts/"+c.account+"/postings?limit=1", nil, &page))
		if page.NextCursor != "" {
			must(t, c.c.Call(ctx, "GET", "/v1/accounts/"+c.account+"/postings?limit=1&cursor="+url.QueryEscape(page.NextCursor), nil, nil))
		}
		from, to := today.AddDate(0, -6, 0).Format(time.DateOnly), today.AddDate(0, 0, 1).Format(time.DateOnly)
		must(t, c.c.Call(ctx, "GET", "/v1/accounts/"+c.account+"/statement?from="+from+"&to="+to, nil, nil))
		must(t, c.c.Call(ctx, "GET", "/v1/accounts/"+c.account+"/statement?from="+from+"&to="+to+"&format=csv", nil, nil))
	}

	// Phases: halt and resume, closed and continuous again.
	for _, p := range []string{"halt", "resume"} {
		must(t, op.Call(ctx, "POST", "/v1/operator/symbols/BTCKZT/"+p, nil, nil))
	}
	for _, phase := range []string{"closed", "continuous"} {
		must(t, op.Call(ctx, "POST", "/v1/operator/symbols/BTCKZT/phase", map[string]string{"phase": phase}, nil))
	}

	// Refusals: each is answered with a documented status and code.
	refusals := []struct {
		c            *demo.Client
		method, path string
		body         any
		code         apperr.Code
	}{
		{public, "GET", "/v1/compliance/miners", nil, apperr.Unauthenticated},
		{client("satu_nope_nope"), "GET", "/healthz", nil, apperr.Unauthenticated},
		{trader, "GET", "/v1/compliance/obligations", nil, apperr.NotPermitted},
		{miner, "GET", "/v1/compliance/obligations?miner=" + demo.Miners[1].ID, nil, apperr.NotPermitted},
		{reg, "POST", "/v1/operator/deposits", map[string]string{"account": "aix-mm", "asset": "KZT", "amount": "1.00", "extRef": "x"}, apperr.NotPermitted},
		{trader, "GET", "/v1/accounts/aix-mm/balances", nil, apperr.NotPermitted},
		{reg, "GET", "/v1/compliance/miners?format=xml", nil, apperr.InvalidParameter},
		{reg, "GET", "/v1/compliance/miners/nobody/summary", nil, apperr.UnknownMiner},
		{reg, "GET", "/v1/compliance/obligations/999999", nil, apperr.InvalidParameter},
		{reg, "GET", "/v1/accounts/nobody/fills", nil, apperr.UnknownAccount},
		{reg, "GET", "/v1/accounts/aix-mm/statement?from=2025-01-01", nil, apperr.InvalidParameter},
		{public, "GET", "/v1/depth?symbol=XYZ", nil, apperr.UnknownSymbol},
		{public, "GET", "/v1/proof/inclusion?index=x&size=1", nil, apperr.InvalidParameter},
		{op, "POST", "/v1/operator/deposits", map[string]string{"account": "aix-mm", "asset": "KZT", "amount": "1.001", "extRef": "x"}, apperr.TooPrecise},
		{op, "POST", "/v1/operator/withdrawals", map[string]string{"account": "aix-mm", "asset": "KZT", "amount": "99999999999.00", "extRef": "x"}, apperr.InsufficientFunds},
		{op, "POST", "/v1/operator/accounts", map[string]string{"account": "m", "owner": "m", "kind": "miner"}, apperr.InvalidParameter},
		{op, "POST", "/v1/operator/miners", demo.Miners[0].Miner, apperr.Conflict},
		{op, "POST", "/v1/operator/symbols/BTCKZT/phase", map[string]string{"phase": "continuous"}, apperr.InvalidTransition},
		{op, "POST", "/v1/operator/keys", map[string]string{"role": "miner", "miner": "nobody", "label": "x"}, apperr.UnknownMiner},
		{op, "DELETE", "/v1/operator/keys/" + spare["id"], nil, apperr.Conflict},
		{op, "POST", "/v1/reports", map[string]any{"miner": m0, "asset": "BTC", "period": period, "mined": "1", "wallets": []string{"w"}}, apperr.Conflict},
		{miner, "POST", "/v1/reports", map[string]any{"miner": demo.Miners[1].ID, "asset": "BTC", "period": period, "mined": "1", "wallets": []string{"w"}}, apperr.NotPermitted},
		{op, "POST", "/v1/operator/licences/KZ-DM-ALT-1/changes", map[string]string{"kind": "reinstate", "from": "2025-01-01", "reason": "x"}, apperr.InvalidTransition},
		{op, "POST", "/v1/operator/quotas", map[string]any{"miner": m0, "month": "2025-13", "kwh": 1}, apperr.InvalidParameter},
		{op, "POST", "/v1/operator/pools", map[string]any{"id": "p", "unknown": 1}, apperr.MalformedJSON},
	}
	for _, r := range refusals {
		if err := r.c.Call(ctx, r.method, r.path, r.body, nil); apperr.CodeOf(err) != r.code {
			t.Errorf("%s %s: %v; want %s", r.method, r.path, err, r.code)
		}
	}

	// The websocket endpoints' refusals before an upgrade.
	for path, want := range map[string]int{"/ws/api": http.StatusBadRequest, "/ws": http.StatusBadRequest,
		"/ws/stream?streams=nosuch@depth": http.StatusBadRequest} {
		resp, err := public.HTTP.Get(public.BaseURL + path)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without a handshake: HTTP %d; want %d", path, resp.StatusCode, want)
		}
	}

	check.mu.Lock()
	defer check.mu.Unlock()
	for _, p := range check.problems {
		t.Error(p)
	}
	// Every documented operation answered successfully at least once —
	// except the websocket upgrades: openapi3filter cannot follow a switch
	// of protocols, and the websocket tests (TestAPIDocExamples and the
	// stream tests) drive those endpoints.
	var missed []string
	for path, item := range check.doc.Paths.Map() {
		for method := range item.Operations() {
			op := method + " " + path
			if !check.ok[op] && !strings.HasPrefix(path, "/ws") {
				missed = append(missed, op)
			}
		}
	}
	sort.Strings(missed)
	if len(missed) > 0 {
		t.Errorf("documented operations never answered 2xx here: %v", missed)
	}
}
