package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/compliance/proof"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/demo"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsclient"
)

// TestComplianceAPIRoles: regulators read everything and change nothing,
// operators write the registry, a miner sees and submits only its own, a
// trader sees no compliance records, and a request without a key (or with a
// bad one) is refused — each with its stable code.
func TestComplianceAPIRoles(t *testing.T) {
	app, op := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := regulator(app)
	for _, m := range []string{"alpha", "beta"} {
		must(t, op.Call(ctx, "POST", "/v1/operator/miners", compliance.Miner{ID: m, Name: m + " LLP", BIN: map[string]string{"alpha": "111111111111", "beta": "222222222222"}[m],
			EntityKind: compliance.LegalEntity, Accounts: []string{m + "-1"}}, nil))
		must(t, op.Call(ctx, "POST", "/v1/operator/licences", map[string]string{"miner": m, "number": "KZ-" + m, "subtype": "II",
			"issuedOn": "2025-01-01", "status": "active"}, nil))
	}
	must(t, op.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": "trader-1", "owner": "t", "kind": "trader"}, nil))
	// A miner the registry refuses (alpha's BIN) opens no account in the
	// engine: a deposit to it finds none.
	if err := op.Call(ctx, "POST", "/v1/operator/miners", compliance.Miner{ID: "gamma", Name: "gamma LLP", BIN: "111111111111",
		EntityKind: compliance.LegalEntity, Accounts: []string{"gamma-1"}}, nil); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("a miner with alpha's BIN: %v; want CONFLICT", err)
	}
	if err := op.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "gamma-1", "asset": "BTC", "amount": "1",
		"extRef": "gamma-dep"}, nil); apperr.CodeOf(err) != apperr.UnknownAccount {
		t.Fatalf("a deposit to the refused miner's account: %v; want UNKNOWN_ACCOUNT (the account must not exist)", err)
	}
	err := op.Call(ctx, "POST", "/v1/operator/miners", compliance.Miner{ID: "delta", Name: "delta LLP", BIN: "444444444444",
		EntityKind: compliance.LegalEntity, Accounts: []string{"delta-1", "alpha-1"}}, nil)
	if apperr.CodeOf(err) != apperr.Conflict || !strings.Contains(err.Error(), `account "alpha-1" already belongs to a miner`) {
		t.Fatalf("a miner with alpha's account: %v; want CONFLICT naming alpha-1", err)
	}
	key := func(body map[string]string) *demo.Client {
		var res struct{ APIKey string }
		must(t, op.Call(ctx, "POST", "/v1/operator/keys", body, &res))
		return demo.NewClient(app.Addr(), res.APIKey)
	}
	alpha := key(map[string]string{"role": "miner", "miner": "alpha", "label": "alpha's back office"})
	trader := key(map[string]string{"role": "trader", "account": "trader-1", "label": "trader desk"})
	period, _ := lastMonth()
	report := map[string]any{"miner": "alpha", "asset": "BTC", "period": period.Format("2006-01"), "mined": "1", "wallets": []string{"bc1qalpha"}}

	var ob compliance.ObligationView
	must(t, alpha.Call(ctx, "POST", "/v1/reports", report, &ob))
	if ob.Miner != "alpha" || ob.Required != "0.75000000" {
		t.Fatalf("alpha's own report: %+v", ob)
	}
	var list obligations
	must(t, alpha.Call(ctx, "GET", "/v1/compliance/obligations", nil, &list))
	if len(list.Obligations) != 1 || list.Obligations[0].Miner != "alpha" {
		t.Fatalf("alpha sees %+v", list)
	}
	anon := demo.NewClient(app.Addr(), "")
	forged := demo.NewClient(app.Addr(), "satu_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	betaReport := map[string]any{"miner": "beta", "asset": "BTC", "period": period.Format("2006-01"), "mined": "1", "wallets": []string{"bc1qbeta"}}
	before := stateOf(t, app)
	for _, tc := range []struct {
		name   string
		c      *demo.Client
		method string
		path   string
		body   any
		code   apperr.Code
	}{
		{"NoKey", anon, "GET", "/v1/compliance/obligations", nil, apperr.Unauthenticated},
		{"ForgedKey", forged, "GET", "/v1/compliance/obligations", nil, apperr.Unauthenticated},
		{"ForgedKeyOnPublic", forged, "GET", "/v1/exchangeInfo", nil, apperr.Unauthenticated},
		{"MinerReadsAnother", alpha, "GET", "/v1/compliance/obligations?miner=beta", nil, apperr.NotPermitted},
		{"MinerSummaryOfAnother", alpha, "GET", "/v1/compliance/miners/beta/summary", nil, apperr.NotPermitted},
		{"MinerReportsForAnother", alpha, "POST", "/v1/reports", betaReport, apperr.NotPermitted},
		{"MinerWritesRegistry", alpha, "POST", "/v1/operator/quotas", map[string]any{"miner": "alpha", "month": "2025-01", "kwh": 1}, apperr.NotPermitted},
		{"MinerReadsAudit", alpha, "GET", "/v1/compliance/audit", nil, apperr.NotPermitted},
		{"MinerReadsAnotherAccount", alpha, "GET", "/v1/accounts/beta-1/balances", nil, apperr.NotPermitted},
		{"TraderReadsCompliance", trader, "GET", "/v1/compliance/obligations", nil, apperr.NotPermitted},
		{"TraderReadsAnotherAccount", trader, "GET", "/v1/accounts/alpha-1/fills", nil, apperr.NotPermitted},
		{"RegulatorReports", reg, "POST", "/v1/reports", betaReport, apperr.NotPermitted},
		{"RegulatorSuspends", reg, "POST", "/v1/operator/licences/KZ-beta/changes", map[string]string{"kind": "revoke", "from": "2025-06-01", "reason": "r"}, apperr.NotPermitted},
		{"RegulatorCreatesKey", reg, "POST", "/v1/operator/keys", map[string]string{"role": "operator", "label": "x"}, apperr.NotPermitted},
		{"RegulatorDeposits", reg, "POST", "/v1/operator/deposits", map[string]string{"account": "alpha-1", "asset": "BTC", "amount": "1", "extRef": "x"}, apperr.NotPermitted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Call(ctx, tc.method, tc.path, tc.body, nil)
			if got := apperr.CodeOf(err); got != tc.code || apperr.MessageOf(err) == "" {
				t.Fatalf("%s %s: %v; want %s", tc.method, tc.path, err, tc.code)
			}
		})
	}
	if after := stateOf(t, app); after != before {
		t.Fatalf("refused requests changed state:\n before %+v\n after  %+v", before, after)
	}
	// What each may do: the trader its own account, the regulator everything.
	must(t, trader.Call(ctx, "GET", "/v1/accounts/trader-1/balances", nil, nil))
	must(t, reg.Call(ctx, "GET", "/v1/compliance/obligations?miner=beta", nil, nil))
	must(t, reg.Call(ctx, "GET", "/v1/compliance/audit?subject=alpha", nil, nil))
	must(t, alpha.Call(ctx, "GET", "/v1/accounts/alpha-1/balances", nil, nil))
	// A revoked key stops working at once.
	var keys struct {
		Keys []struct{ ID, Label string } `json:"keys"`
	}
	must(t, op.Call(ctx, "GET", "/v1/operator/keys", nil, &keys))
	for _, k := range keys.Keys {
		if k.Label == "trader desk" {
			must(t, op.Call(ctx, "DELETE", "/v1/operator/keys/"+k.ID, nil, nil))
		}
	}
	if err := trader.Call(ctx, "GET", "/v1/accounts/trader-1/balances", nil, nil); apperr.CodeOf(err) != apperr.Unauthenticated {
		t.Fatalf("revoked key: %v", err)
	}
}

// TestComplianceLifecycleOverAPI walks the regulator's whole story through
// the REST API: registry, late and timely reports, a mandatory sale that
// counts and one that does not, the sweep turning an overdue obligation into
// a violation and a repeat into a suspension recommendation, the licence
// suspended while selling stays allowed, and every list as CSV.
func TestComplianceLifecycleOverAPI(t *testing.T) {
	app, op := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := regulator(app)
	today := compliance.DayOf(time.Now())
	month := func(ago int) string {
		return time.Date(today.Year(), today.Month()-time.Month(ago), 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	}

	must(t, op.Call(ctx, "POST", "/v1/operator/pools", map[string]string{"id": "kazpool", "name": "KazPool", "accreditation": "KZ-POOL-1",
		"accreditedOn": "2023-09-01", "location": "Astana"}, nil))
	must(t, op.Call(ctx, "POST", "/v1/operator/miners", compliance.Miner{ID: "eki", Name: "Eki LLP", BIN: "333333333333",
		EntityKind: compliance.LegalEntity, Accounts: []string{"eki-1"}, Email: "x@eki.kz"}, nil))
	issued := time.Date(today.Year()-2, today.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	must(t, op.Call(ctx, "POST", "/v1/operator/licences", map[string]string{"miner": "eki", "number": "KZ-EKI", "subtype": "I",
		"issuedOn": issued, "status": "active"}, nil))
	// Two late reports: overdue at once, the second a repeat.
	for _, ago := range []int{4, 3} {
		var ob compliance.ObligationView
		must(t, op.Call(ctx, "POST", "/v1/reports", map[string]any{"miner": "eki", "asset": "BTC", "period": month(ago), "mined": "0.4",
			"wallets": []string{"bc1qeki"}}, &ob))
		if ob.Status != compliance.StatusOverdue || ob.Required != "0.30000000" {
			t.Fatalf("late report for %s: %+v", month(ago), ob)
		}
	}
	// Last month's: open; the pool says 0.39, the miner 0.40.
	var open compliance.ObligationView
	must(t, op.Call(ctx, "POST", "/v1/reports", map[string]any{"miner": "eki", "asset": "BTC", "period": month(1), "mined": "0.4",
		"wallets": []string{"bc1qeki"}}, &open))
	must(t, op.Call(ctx, "POST", "/v1/operator/poolStatements", map[string]string{"pool": "kazpool", "miner": "eki", "asset": "BTC",
		"period": month(1), "quantity": "0.39"}, nil))
	var sweep struct {
		Violations  []struct{ Number, FineMci, SuspensionRecommendedMonths int }
		Permissions []struct{ Miner string }
	}
	must(t, op.Call(ctx, "POST", "/v1/operator/compliance/sweep", nil, &sweep))
	if len(sweep.Violations) != 0 {
		t.Fatalf("the sweep found new violations: %+v (the late reports made theirs at once)", sweep)
	}
	var sum struct {
		FinesMci              int64
		SuspensionRecommended bool
		PoolMismatches        int
		Obligations           map[string]int
		Violations            []struct{ Number, FineMci, SuspensionRecommendedMonths int }
		MandatorySell         *bool
	}
	must(t, reg.Call(ctx, "GET", "/v1/compliance/miners/eki/summary", nil, &sum))
	if sum.FinesMci != 15+150 || !sum.SuspensionRecommended || sum.PoolMismatches != 1 || sum.Obligations["overdue"] != 2 ||
		sum.Obligations["open"] != 1 || len(sum.Violations) != 2 || sum.Violations[1].Number != 2 || sum.Violations[1].SuspensionRecommendedMonths != 3 ||
		sum.MandatorySell == nil || !*sum.MandatorySell {
		t.Fatalf("summary = %+v", sum)
	}
	// The regulator follows the recommendation; the operator records it.
	var lic struct{ StatusToday string }
	must(t, op.Call(ctx, "POST", "/v1/operator/licences/KZ-EKI/changes", map[string]string{"kind": "suspend",
		"from": today.Format(time.DateOnly), "until": today.AddDate(0, 3, 0).Format(time.DateOnly), "reason": "repeat violation"}, &lic))
	if lic.StatusToday != "suspended" {
		t.Fatalf("licence after suspension: %+v", lic)
	}
	// Suspended, but owing: the mandatory sale is still allowed and counts.
	must(t, op.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "eki-1", "asset": "BTC", "amount": "0.4", "extRef": "mined"}, nil))
	must(t, op.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": "fund-1", "owner": "fund", "kind": "trader"}, nil))
	must(t, op.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "fund-1", "asset": "KZT", "amount": "100000000", "extRef": "wire"}, nil))
	place := func(account string, p wsapi.PlaceParams) {
		ws, err := wsclient.Dial(ctx, op.WSURL)
		must(t, err)
		defer ws.Close()
		key := trader(account)
		if account == "eki-1" { // a miner's account trades with the miner's key
			key = demo.KeyRequest{Role: "miner", Miner: "eki", Label: "eki desk"}
		}
		logon(ctx, t, op, ws, key)
		_, err = ws.Place(ctx, p)
		must(t, err)
	}
	place("fund-1", wsapi.PlaceParams{Symbol: "BTCKZT", Side: "BUY", Type: "LIMIT", Price: "43000000", Quantity: "1", NewClientOrderID: "b1"})
	place("eki-1", wsapi.PlaceParams{Symbol: "BTCKZT", Side: "SELL", Type: "LIMIT", Price: "43000000", Quantity: "0.1", NewClientOrderID: "s1", Mandatory: true})
	place("eki-1", wsapi.PlaceParams{Symbol: "BTCKZT", Side: "SELL", Type: "LIMIT", Price: "43000000", Quantity: "0.05", NewClientOrderID: "s2"})
	must(t, op.WaitSettled(ctx))
	var detail struct {
		Sold     string
		Counted  []struct{ Quantity, Basis string }
		Excluded []struct{ Quantity, Reason string }
	}
	must(t, reg.Call(ctx, "GET", fmt.Sprintf("/v1/compliance/obligations/%d", open.ID), nil, &detail))
	// The first sale has no earlier trade to compare with (basis none); the
	// untagged one is excluded as not mandatory.
	if detail.Sold != "0.10000000" || len(detail.Counted) != 1 || detail.Counted[0].Basis != "none" ||
		len(detail.Excluded) != 1 || detail.Excluded[0].Reason != "not_mandatory" || detail.Excluded[0].Quantity != "0.05000000" {
		t.Fatalf("obligation detail = %+v", detail)
	}
	// Every list comes as CSV with the JSON names as its header.
	for _, tc := range []struct{ path, header string }{
		{"/v1/compliance/obligations?format=csv", "id,miner,asset,period,periodStart,periodEnd,deadline,mined,share,ruleSet,ruleSetVersion,reportVersion,required,sold,remaining,status"},
		{"/v1/compliance/violations?format=csv", "id,obligation,miner,aroseOn,number,fineMci,fineTenge,fineNote,suspensionRecommendedMonths,ruleSet,ruleSetVersion,source,revised"},
		{"/v1/compliance/reports?format=csv", "id,miner,asset,period,mined,version,poolTotal,poolMismatch,poolDifference,versions"},
		{"/v1/compliance/licences?format=csv", "miner,number,subtype,issuedOn,expiresOn,statusToday,changes,feeMci,feeTenge"},
		{"/v1/compliance/excludedFills?format=csv", "shard,fillId,miner,asset,quantity,price,executedAt,reason,detail,reference,basis"},
		{"/v1/compliance/miners?format=csv", "id,name,bin,entityKind,accounts,email,phone,address"},
		{"/v1/compliance/pools?format=csv", "id,name,accreditation,accreditedOn,location"},
		{"/v1/compliance/audit?format=csv", "id,at,actor,action,subject,reason,detail"},
	} {
		rows := getCSV(t, app, tc.path)
		if strings.Join(rows[0], ",") != tc.header || len(rows) < 2 {
			t.Errorf("%s: %d rows, header %q; want %q", tc.path, len(rows), strings.Join(rows[0], ","), tc.header)
		}
	}
	if rows := getCSV(t, app, "/v1/compliance/violations?format=csv"); len(rows) != 3 || rows[2][4] != "2" || rows[2][8] != "3" {
		t.Errorf("violations CSV = %q", rows)
	}

	// Every obligation — two overdue, one open with a counted and an
	// excluded sale — has a certificate that verifies offline, over the API
	// and from `satu certificate`.
	var all obligations
	must(t, reg.Call(ctx, "GET", "/v1/compliance/obligations?miner=eki", nil, &all))
	book, err := compliance.LoadRuleBook()
	must(t, err)
	vkey, err := os.ReadFile(filepath.Join(filepath.Dir(app.Config.KeysDir), "log.pub"))
	must(t, err)
	for _, o := range all.Obligations {
		var cert proof.Certificate
		must(t, reg.Call(ctx, "GET", fmt.Sprintf("/v1/regulator/obligations/%d/certificate", o.ID), nil, &cert))
		v, err := proof.Verify(cert, string(vkey), book)
		if err != nil || v.Obligation.Status != string(o.Status) {
			t.Fatalf("certificate of obligation %d (%s): %v", o.ID, o.Status, err)
		}
		if o.ID == open.ID && (v.Counted != 1 || len(v.Excluded) != 1) {
			t.Errorf("open obligation's verdict: %d counted, excluded %q; want 1 and the untagged sale", v.Counted, v.Excluded)
		}
	}
	var out, errOut strings.Builder
	args := []string{"certificate", "-obligation", fmt.Sprint(open.ID), "-pg-url", app.Config.PGURL, "-log-key", app.Config.LogKey}
	if code := run(ctx, args, &out, &errOut, func(string) string { return "" }); code != 0 {
		t.Fatalf("satu certificate: exit %d: %s", code, errOut.String())
	}
	var cert proof.Certificate
	must(t, json.Unmarshal([]byte(out.String()), &cert))
	if _, err := proof.Verify(cert, string(vkey), book); err != nil {
		t.Fatalf("satu certificate's output: %v", err)
	}
	// Not without a key — and without one, an obligation that does not
	// exist is refused the same way, so the answer tells nothing.
	for _, id := range []int64{open.ID, 999_999} {
		if err := demo.NewClient(app.Addr(), "").Call(ctx, "GET", fmt.Sprintf("/v1/regulator/obligations/%d/certificate", id), nil, nil); apperr.CodeOf(err) != apperr.Unauthenticated {
			t.Fatalf("certificate %d without a key: %v", id, err)
		}
	}
}

func getCSV(t *testing.T, app *App, path string) [][]string {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+app.Addr()+path, nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+app.Token("regulator"))
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/csv") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s %s", path, resp.StatusCode, ct, b)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	must(t, err)
	return rows
}

// TestMinerCannotTakeAnAccount: registering a miner with an account that
// exists with another owner is refused (CONFLICT) and registers nothing —
// the registry used to link the account to the miner before the engine
// refused it, so the miner's keys would have acted for a trader's account.
func TestMinerCannotTakeAnAccount(t *testing.T) {
	app, op := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, op.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": "tr-1", "owner": "fund", "kind": "trader"}, nil))
	err := op.Call(ctx, "POST", "/v1/operator/miners", compliance.Miner{ID: "grab", Name: "Grab LLP", BIN: "444444444444",
		EntityKind: compliance.LegalEntity, Accounts: []string{"tr-1"}, Email: "x@grab.kz"}, nil)
	if apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("a miner with another owner's account: %v; want CONFLICT", err)
	}
	if err := regulator(app).Call(ctx, "GET", "/v1/compliance/miners/grab/summary", nil, nil); apperr.CodeOf(err) != apperr.UnknownMiner {
		t.Fatalf("the refused miner: %v; want UNKNOWN_MINER (not registered)", err)
	}
	// The operator fixes the account list: registered.
	must(t, op.Call(ctx, "POST", "/v1/operator/miners", compliance.Miner{ID: "grab", Name: "Grab LLP", BIN: "444444444444",
		EntityKind: compliance.LegalEntity, Accounts: []string{"grab-1"}, Email: "x@grab.kz"}, nil))
}
