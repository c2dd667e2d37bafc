package main

import (
	"crypto/rand"
	"path/filepath"
	"reflect"

	"context"
	"encoding/json"
	"fmt"
	"golang.org/x/mod/sumdb/note"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/demo"
	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsclient"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// startApp starts the real program on port 0 against a fresh database and
// Redis namespace, and stops it at cleanup.
// logon signs a websocket session on with a new Ed25519 key issued for req
// through the operator's client c.
func logon(ctx context.Context, t *testing.T, c *demo.Client, ws *wsclient.Client, req demo.KeyRequest) {
	t.Helper()
	signer, err := c.NewSigner(ctx, req)
	must(t, err)
	_, err = ws.Logon(ctx, signer, "")
	must(t, err)
}

// trader is the key request of a trader key for account.
func trader(account string) demo.KeyRequest {
	return demo.KeyRequest{Role: "trader", Account: account, Label: "test " + account}
}

func startApp(tb testing.TB) (*App, *demo.Client) {
	tb.Helper()
	_, ns := testenv.Redis(tb)
	return startAppWith(tb, func(c *Config) { c.Shard = ns })
}

// startAppWith is startApp with the configuration changed by set (which
// must name the shard: a fresh one per test).
func startAppWith(tb testing.TB, set func(*Config)) (*App, *demo.Client) {
	tb.Helper()
	cfg, err := parseConfig("test", nil, func(string) string { return "" })
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Addr, cfg.PGURL, cfg.RedisAddr = "127.0.0.1:0", testenv.PGURL(tb), testenv.RedisAddr(tb)
	set(&cfg)
	// The app's ".satu": its bootstrap API keys and the log's key pair.
	satuDir := tb.TempDir()
	cfg.KeysDir = filepath.Join(satuDir, "keys")
	skey, vkey, err := note.GenerateKey(rand.Reader, logOrigin)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.LogKey = skey
	if err := os.WriteFile(filepath.Join(satuDir, "log.pub"), []byte(vkey+"\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	app := &App{Config: cfg, Log: zap.NewNop(), Audit: zap.NewNop()}
	if err := app.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Close(ctx); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return app, demo.NewClient(app.Addr(), app.Token(access.RoleOperator))
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

type obligations struct {
	Obligations []compliance.ObligationView `json:"obligations"`
}

// regulator is a client with the app's bootstrap regulator key.
func regulator(app *App) *demo.Client {
	return demo.NewClient(app.Addr(), app.Token(access.RoleRegulator))
}

// lastMonth is the first day of last month (Kazakhstan time) and its
// obligation's deadline under the default rule set, 30 days after it ends.
func lastMonth() (period, deadline time.Time) {
	today := compliance.DayOf(time.Now())
	period = time.Date(today.Year(), today.Month()-1, 1, 0, 0, 0, 0, time.UTC)
	return period, period.AddDate(0, 1, 29)
}

// TestMandatorySaleEndToEnd is the spine: a licensed miner's report, a
// buyer's bid and the miner's mandatory sell over a real websocket, through
// the Redis inbox and events, settled into PostgreSQL, and the regulator's
// view of the obligation — every number checked.
func TestMandatorySaleEndToEnd(t *testing.T) {
	app, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	must(t, c.Call(ctx, "POST", "/v1/operator/miners", compliance.Miner{ID: "qaz-miner", Name: "Qaz Miner LLP",
		BIN: "230140000001", EntityKind: compliance.LegalEntity, Accounts: []string{"qaz-miner-1"}}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/licences", map[string]string{"miner": "qaz-miner", "number": "KZ-DM-1",
		"subtype": "I", "issuedOn": "2025-01-01", "status": "active"}, nil))
	var ob compliance.ObligationView
	// 1.23456789 BTC mined last month (the sale below is now, inside the
	// obligation's window), 75 % due, rounded up to whole satoshi:
	period, deadline := lastMonth()
	must(t, c.Call(ctx, "POST", "/v1/reports", map[string]any{"miner": "qaz-miner", "asset": "BTC",
		"period": period.Format("2006-01"), "mined": "1.23456789", "wallets": []string{"bc1qqazminer"}}, &ob))
	// 123456789 sat × 3/4 = 92592591.75 → 92592592 sat.
	if ob.Required != "0.92592592" || ob.Share != "0.75" || ob.Status != compliance.StatusOpen || ob.Deadline != deadline.Format(time.DateOnly) {
		t.Fatalf("obligation = %+v", ob)
	}
	must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "qaz-miner-1", "asset": "BTC",
		"amount": "1.23456789", "extRef": "coinbase-1"}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": "buyer-1", "owner": "buyer-co", "kind": "trader"}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "buyer-1", "asset": "KZT",
		"amount": "60000000.00", "extRef": "wire-1"}, nil))

	buyer, err := wsclient.Dial(ctx, c.WSURL)
	must(t, err)
	defer buyer.Close()
	logon(ctx, t, c, buyer, trader("buyer-1"))
	bid, err := buyer.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: "BUY", Type: "LIMIT", Price: "45000000.00",
		Quantity: "1.00000000", NewClientOrderID: "bid-1"})
	must(t, err)
	if bid.Status != "NEW" || bid.ExecutedQty != "0.00000000" {
		t.Fatalf("bid = %+v", bid)
	}

	miner, err := wsclient.Dial(ctx, c.WSURL)
	must(t, err)
	defer miner.Close()
	logon(ctx, t, c, miner, demo.KeyRequest{Role: "miner", Miner: "qaz-miner", Label: "qaz treasury bot"})
	sell, err := miner.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: "SELL", Type: "LIMIT", Price: "44000000.00",
		Quantity: "0.92592592", NewClientOrderID: "mandatory-2025-03", Mandatory: true})
	must(t, err)
	// It trades at the resting bid's price: 0.92592592 × 45,000,000 = 41,666,666.40 ₸.
	if sell.Status != "FILLED" || sell.ExecutedQty != "0.92592592" || sell.QuoteQty != "41666666.40" || !sell.Mandatory ||
		len(sell.Fills) != 1 || sell.Fills[0].Price != "45000000.00" || sell.Fills[0].Quantity != "0.92592592" ||
		sell.Fills[0].Commission != "83333.33" || sell.Fills[0].CommissionAsset != "KZT" {
		t.Fatalf("sell = %+v", sell)
	}
	// The Redis order book shows what is left of the bid, at the sequence it reflects.
	var depth wsapi.DepthResult
	must(t, c.Call(ctx, "GET", "/v1/depth?symbol=BTCKZT&limit=5", nil, &depth))
	if len(depth.Asks) != 0 || len(depth.Bids) != 1 || depth.Bids[0] != [2]string{"45000000.00", "0.07407408"} || depth.LastUpdateID == 0 {
		t.Fatalf("depth = %+v", depth)
	}
	var open struct {
		LastUpdateID uint64              `json:"lastUpdateId"`
		Orders       []wsapi.OrderResult `json:"orders"`
	}
	must(t, c.Call(ctx, "GET", "/v1/accounts/buyer-1/openOrders", nil, &open))
	if len(open.Orders) != 1 || open.Orders[0].OrderID != bid.OrderID || open.Orders[0].Status != "PARTIALLY_FILLED" ||
		open.Orders[0].ExecutedQty != "0.92592592" || open.Orders[0].QuoteQty != "41666666.40" || open.Orders[0].OrigQty != "1.00000000" ||
		open.LastUpdateID < depth.LastUpdateID {
		t.Fatalf("open orders = %+v", open)
	}
	must(t, c.Call(ctx, "GET", "/v1/accounts/qaz-miner-1/openOrders", nil, &open))
	if len(open.Orders) != 0 {
		t.Fatalf("the miner's filled order is still open: %+v", open)
	}
	for path, code := range map[string]string{"/v1/depth?symbol=XYZ": "UNKNOWN_SYMBOL", "/v1/depth?symbol=BTCKZT&limit=0": "INVALID_PARAMETER",
		"/v1/accounts/Bad!/openOrders": "INVALID_PARAMETER"} {
		if err := c.Call(ctx, "GET", path, nil, nil); !strings.Contains(fmt.Sprint(err), code) {
			t.Errorf("GET %s: %v; want %s", path, err, code)
		}
	}

	// Retrying the same client order ID changes nothing.
	again, err := miner.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: "SELL", Type: "LIMIT", Price: "44000000.00",
		Quantity: "0.92592592", NewClientOrderID: "mandatory-2025-03", Mandatory: true})
	must(t, err)
	if !again.Duplicate || again.OrderID != sell.OrderID {
		t.Fatalf("retry = %+v", again)
	}
	must(t, c.WaitSettled(ctx))

	var got obligations
	must(t, regulator(app).Call(ctx, "GET", "/v1/compliance/obligations?miner=qaz-miner", nil, &got))
	if len(got.Obligations) != 1 {
		t.Fatalf("obligations = %+v", got)
	}
	o := got.Obligations[0]
	if o.Mined != "1.23456789" || o.Required != "0.92592592" || o.Sold != "0.92592592" || o.Remaining != "0.00000000" ||
		o.Status != compliance.StatusMet || o.RuleSet != "kz-law-193" || o.RuleSetVersion != 2 {
		t.Fatalf("obligation after sale = %+v", o)
	}
	// Fees, in KZT, rounded down to the tiyn: the miner took liquidity and
	// pays the taker fee, 20 bps of 41,666,666.40 = 83,333.33; the buyer's
	// resting bid pays the maker fee, 10 bps = 41,666.66.
	checkBalances(t, c, "qaz-miner-1", map[string]string{"BTC": "0.30864197", "KZT": "41583333.07"})
	checkBalances(t, c, "buyer-1", map[string]string{"BTC": "0.92592592", "KZT": "18291666.94"})
	checkBalances(t, c, "exchange-fees", map[string]string{"KZT": "124999.99"})
	checkBalances(t, c, "custody-external", map[string]string{"BTC": "-1.23456789", "KZT": "-60000000.00"})

	// The fill is in PostgreSQL once, with balanced postings: BTC seller →
	// buyer, KZT from the buyer, to the seller and to the fee account.
	db := app.db
	var fills, postings int
	var sum string
	must(t, db.QueryRow(ctx, `SELECT count(*) FROM fills WHERE mandatory`).Scan(&fills))
	must(t, db.QueryRow(ctx, `SELECT count(*), SUM(amount)::text FROM postings WHERE event_id = (SELECT id FROM fills)`).Scan(&postings, &sum))
	if fills != 1 || postings != 5 || sum != "0.00000000" && sum != "0" {
		t.Fatalf("fills %d, postings %d summing to %s", fills, postings, sum)
	}

	// A withdrawal debits the free balance once per external reference;
	// more than the free balance is refused and changes nothing.
	var wd map[string]any
	must(t, c.Call(ctx, "POST", "/v1/operator/withdrawals", map[string]string{"account": "buyer-1", "asset": "BTC",
		"amount": "0.50000000", "extRef": "chain-tx-1"}, &wd))
	must(t, c.Call(ctx, "POST", "/v1/operator/withdrawals", map[string]string{"account": "buyer-1", "asset": "BTC",
		"amount": "0.50000000", "extRef": "chain-tx-1"}, &wd))
	if wd["duplicate"] != true || wd["amount"] != "0.50000000" {
		t.Fatalf("repeated withdrawal = %v", wd)
	}
	err = c.Call(ctx, "POST", "/v1/operator/withdrawals", map[string]string{"account": "buyer-1", "asset": "BTC",
		"amount": "0.50000000", "extRef": "chain-tx-2"}, nil)
	if !strings.Contains(fmt.Sprint(err), "INSUFFICIENT_FUNDS") {
		t.Fatalf("withdrawing more than the free balance: %v", err)
	}
	must(t, c.WaitSettled(ctx))
	checkBalances(t, c, "buyer-1", map[string]string{"BTC": "0.42592592", "KZT": "18291666.94"})
	checkBalances(t, c, "custody-external", map[string]string{"BTC": "-0.73456789", "KZT": "-60000000.00"})
	var ref string
	must(t, db.QueryRow(ctx, `SELECT direction || ' ' || amount::text || ' ' || ext_ref FROM custody_movements
		WHERE account = 'buyer-1' AND asset = 'BTC'`).Scan(&ref))
	if ref != "withdrawal 0.50000000 chain-tx-1" {
		t.Fatalf("custody movement = %q", ref)
	}

	// Engine and ledger reconcile: `satu reconcile` exits 0; after the
	// engine's recorded view of one balance is altered, it exits 1 and names it.
	reconcile := func(extra ...string) (int, string) {
		var out, errOut strings.Builder
		args := append([]string{"reconcile", "-pg-url", app.Config.PGURL, "-redis-addr", app.Config.RedisAddr,
			"-shard", app.Config.Shard}, extra...)
		code := run(ctx, args, &out, &errOut, func(string) string { return "" })
		return code, out.String() + errOut.String()
	}
	if code, out := reconcile("-replay"); code != 0 || !strings.Contains(out, "engine_vs_ledger       ok") ||
		!strings.Contains(out, "replay_vs_ledger       ok") || !strings.HasSuffix(out, "clean\n") {
		t.Fatalf("satu reconcile -replay: exit %d\n%s", code, out)
	}
	_, err = db.Exec(ctx, `UPDATE engine_balances SET held = held + 1 WHERE account = 'buyer-1' AND asset = 'KZT'`)
	must(t, err)
	if code, out := reconcile(); code != 1 || !strings.Contains(out, "engine_vs_ledger       1 difference(s)") ||
		!strings.Contains(out, "account=buyer-1 asset=KZT") {
		t.Fatalf("satu reconcile after tampering: exit %d\n%s", code, out)
	}
	// A ledger balance altered: the engine replayed from the inbox disagrees.
	_, err = db.Exec(ctx, `UPDATE balances SET amount = amount + 0.01 WHERE account = 'qaz-miner-1' AND asset = 'KZT'`)
	must(t, err)
	if code, out := reconcile("-replay"); code != 1 || !strings.Contains(out, "replay_vs_ledger       1 difference(s)") ||
		!strings.Contains(out, "account=qaz-miner-1 asset=KZT ledger=4158333308 expected=4158333307") {
		t.Fatalf("satu reconcile -replay after tampering: exit %d\n%s", code, out)
	}

	// Cancelling the rest of the bid reports all it filled before, and the
	// quote amount of those fills, as Binance does.
	cancelled, err := buyer.Cancel(ctx, wsapi.CancelParams{Symbol: "BTCKZT", OrderID: bid.OrderID})
	must(t, err)
	if cancelled.Status != "CANCELED" || cancelled.ExecutedQty != "0.92592592" || cancelled.QuoteQty != "41666666.40" {
		t.Fatalf("cancel of the partly filled bid = %+v", cancelled)
	}
}

func checkBalances(t *testing.T, c *demo.Client, account string, want map[string]string) {
	t.Helper()
	var res struct {
		Balances []struct{ Asset, Amount string } `json:"balances"`
	}
	must(t, c.Call(context.Background(), "GET", "/v1/accounts/"+account+"/balances", nil, &res))
	got := map[string]string{}
	for _, b := range res.Balances {
		got[b.Asset] = b.Amount
	}
	for asset, amount := range want {
		if got[asset] != amount {
			t.Errorf("%s %s = %q; want %q", account, asset, got[asset], amount)
		}
	}
}

// TestBadInputChangesNothing sends malformed and invalid requests over the
// websocket and REST; each gets its stable code, and the engine's sequence
// and the database do not move.
func TestBadInputChangesNothing(t *testing.T) {
	app, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, c.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": "trader-1", "owner": "t", "kind": "trader"}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "trader-1", "asset": "BTC", "amount": "1", "extRef": "d1"}, nil))
	must(t, c.WaitSettled(ctx))
	// ETHKZT goes into its pre-close call: market orders are refused there.
	must(t, c.Call(ctx, "POST", "/v1/operator/symbols/ETHKZT/phase", map[string]string{"phase": "pre_close"}, nil))
	signer, err := c.NewSigner(ctx, trader("trader-1"))
	must(t, err)
	must(t, c.WaitSettled(ctx))
	before := stateOf(t, app)

	ws, _, err := websocket.DefaultDialer.DialContext(ctx, c.WSURL, nil)
	must(t, err)
	defer ws.Close()
	send := func(raw string) wsapi.Response {
		t.Helper()
		must(t, ws.WriteMessage(websocket.TextMessage, []byte(raw)))
		var r wsapi.Response
		must(t, ws.ReadJSON(&r))
		return r
	}
	if r := send(`{"id":1,"method":"order.place","params":{}}`); r.Error == nil || r.Error.Code != apperr.NotLoggedOn || r.Status != 401 {
		t.Fatalf("before logon: %+v", r)
	}
	logonReq := func(params any, at time.Time) string {
		p, err := signer.Sign("session.logon", params, at)
		must(t, err)
		b, _ := json.Marshal(map[string]any{"id": 2, "method": "session.logon", "params": p})
		return string(b)
	}
	signedLogon := logonReq(nil, time.Now())
	forged := strings.Replace(logonReq(map[string]string{"account": "trader-1"}, time.Now()), `"trader-1"`, `"trader-2"`, 1)
	for _, tc := range []struct {
		name, raw string
		code      apperr.Code
	}{
		{"UnsignedLogon", `{"id":2,"method":"session.logon","params":{"account":"trader-1"}}`, apperr.Unauthenticated},
		{"BadSignature", forged, apperr.BadSignature},
		{"StaleTimestamp", logonReq(nil, time.Now().Add(-time.Minute)), apperr.StaleRequest},
		{"AnotherAccount", logonReq(map[string]string{"account": "trader-2"}, time.Now()), apperr.NotPermitted},
	} {
		if r := send(tc.raw); r.Error == nil || r.Error.Code != tc.code || r.Status != apperr.HTTPStatus(tc.code) {
			t.Fatalf("%s: %+v; want %s", tc.name, r, tc.code)
		}
	}
	if r := send(signedLogon); r.Error != nil {
		t.Fatalf("signed logon: %+v", r.Error)
	}
	if r := send(signedLogon); r.Error == nil || r.Error.Code != apperr.Replayed {
		t.Fatalf("replayed logon: %+v", r)
	}
	order := func(field, value string) string {
		p := map[string]string{"symbol": "BTCKZT", "side": "SELL", "type": "LIMIT", "price": "45000000", "quantity": "0.5", "newClientOrderId": "x"}
		p[field] = value
		b, _ := json.Marshal(map[string]any{"id": 3, "method": "order.place", "params": p})
		return string(b)
	}
	without := func(field string) string {
		p := map[string]string{"symbol": "BTCKZT", "side": "SELL", "type": "LIMIT", "price": "45000000", "quantity": "0.5", "newClientOrderId": "x"}
		delete(p, field)
		b, _ := json.Marshal(map[string]any{"id": 3, "method": "order.place", "params": p})
		return string(b)
	}
	engineSeq := func() uint64 {
		t.Helper()
		var st struct{ EngineSeq uint64 }
		must(t, c.Call(ctx, "GET", "/v1/settlement/status", nil, &st))
		return st.EngineSeq
	}
	seqBefore := engineSeq()
	// Every case but those marked engine is refused by the gateway and
	// never reaches the inbox; the engine's refusals (they depend on its
	// state: funds, the phase) are journalled and change nothing.
	wsCases := []struct {
		name, raw string
		code      apperr.Code
		engine    bool
	}{
		{"MalformedJSON", `{"id":1,"method":`, apperr.MalformedJSON, false},
		{"MalformedParams", `{"id":1,"method":"order.place","params":{"quantity":5}}`, apperr.MalformedJSON, false},
		{"UnknownMethod", `{"id":1,"method":"order.teleport"}`, apperr.UnknownMethod, false},
		{"ExtraField", order("colour", "red"), apperr.MalformedJSON, false},
		{"NonNumericQuantity", order("quantity", "ten"), apperr.InvalidQuantity, false},
		{"NegativeQuantity", order("quantity", "-0.5"), apperr.InvalidQuantity, false},
		{"ZeroQuantity", order("quantity", "0"), apperr.InvalidQuantity, false},
		{"TooPreciseQuantity", order("quantity", "0.123456789"), apperr.TooPrecise, false},
		{"TooPrecisePrice", order("price", "45000000.001"), apperr.TooPrecise, false},
		{"OffTickPrice", order("price", "45000000.50"), apperr.InvalidPrice, false},
		{"NegativePrice", order("price", "-1"), apperr.InvalidPrice, false},
		{"UnknownSymbol", order("symbol", "DOGEKZT"), apperr.UnknownSymbol, false},
		{"BadSide", order("side", "HOLD"), apperr.InvalidParameter, false},
		{"MissingSymbol", without("symbol"), apperr.InvalidParameter, false},
		{"MissingQuantity", without("quantity"), apperr.InvalidQuantity, false},
		{"MissingClientOrderID", without("newClientOrderId"), apperr.InvalidParameter, false},
		{"WrongTypeSide", strings.Replace(order("side", "SELL"), `"side":"SELL"`, `"side":1`, 1), apperr.MalformedJSON, false},
		{"OffLot", `{"id":3,"method":"order.place","params":{"symbol":"ETHKZT","side":"SELL","type":"LIMIT","price":"1500000","quantity":"0.0000015","newClientOrderId":"x"}}`, apperr.InvalidQuantity, false},
		{"BelowMinNotional", order("quantity", "0.000001"), apperr.InvalidQuantity, false},
		{"NotionalOverflow", strings.Replace(order("quantity", "1000"), `"45000000"`, `"92233720368547758"`, 1), apperr.InvalidQuantity, false},
		{"MandatoryFromTraderKey", strings.Replace(order("side", "SELL"), `"params":{`, `"params":{"mandatory":true,`, 1), apperr.NotPermitted, false},
		{"TooLarge", order("quantity", "2"), apperr.InsufficientFunds, true},
		{"MarketInPreClose", `{"id":4,"method":"order.place","params":{"symbol":"ETHKZT","side":"SELL","type":"MARKET","quantity":"0.1","newClientOrderId":"m"}}`, apperr.PhaseRefused, true},
	}
	engineCases := 0
	for _, tc := range wsCases {
		t.Run("WS/"+tc.name, func(t *testing.T) {
			r := send(tc.raw)
			if r.Error == nil || r.Error.Code != tc.code || r.Error.Message == "" || r.Status != apperr.HTTPStatus(tc.code) {
				t.Fatalf("response = %+v; want code %s", r, tc.code)
			}
		})
		if tc.engine {
			engineCases++
		}
	}
	// The signed logons above reached no engine either.
	if got := engineSeq() - seqBefore; got != uint64(engineCases) {
		t.Errorf("the engine sequenced %d commands for the bad input; want %d (only the engine's own refusals)", got, engineCases)
	}

	// A flood beyond the address's 1,000 requests a second is refused,
	// request by request, and the connection stays usable.
	flood, _, err := websocket.DefaultDialer.DialContext(ctx, c.WSURL, nil)
	must(t, err)
	defer flood.Close()
	const floodN = 4000
	go func() {
		for i := range floodN {
			if flood.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"id":%d,"method":"ping"}`, i))) != nil {
				return
			}
		}
	}()
	limited := 0
	for range floodN {
		var r wsapi.Response
		_ = flood.SetReadDeadline(time.Now().Add(30 * time.Second))
		must(t, flood.ReadJSON(&r))
		if r.Error != nil {
			if r.Error.Code != apperr.RateLimited || r.Status != 429 || !strings.Contains(r.Error.Message, "wait") {
				t.Fatalf("flood answer %+v %+v", r, r.Error)
			}
			limited++
		}
	}
	if limited == 0 {
		t.Errorf("%d pings as fast as they go were never rate limited", floodN)
	}
	time.Sleep(time.Second) // the next window
	if r := func() wsapi.Response {
		must(t, flood.WriteMessage(websocket.TextMessage, []byte(`{"id":"after","method":"ping"}`)))
		var r wsapi.Response
		must(t, flood.ReadJSON(&r))
		return r
	}(); r.Error != nil {
		t.Errorf("after the flood: %+v", r.Error)
	}

	// An oversized frame closes the connection with 1009.
	must(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"method":"ping","params":{"pad":"`+strings.Repeat("x", 17<<10)+`"}}`)))
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
				t.Errorf("oversized frame: %v; want close 1009", err)
			}
			break
		}
	}

	restCases := []struct {
		name, method, path, body string
		status                   int
		code                     apperr.Code
	}{
		{"MalformedJSON", "POST", "/v1/reports", `{"miner":`, 400, apperr.MalformedJSON},
		{"UnknownField", "POST", "/v1/reports", `{"miner":"m","colour":"red"}`, 400, apperr.MalformedJSON},
		{"UnknownEndpoint", "GET", "/v1/teleport", ``, 400, apperr.UnknownMethod},
		{"UnknownMiner", "GET", "/v1/compliance/obligations?miner=nobody", ``, 404, apperr.UnknownMiner},
		{"BadStatus", "GET", "/v1/compliance/obligations?status=late", ``, 400, apperr.InvalidParameter},
		{"BadFormat", "GET", "/v1/compliance/obligations?format=xml", ``, 400, apperr.InvalidParameter},
		{"ReportUnknownMiner", "POST", "/v1/reports", `{"miner":"nobody","asset":"BTC","period":"2025-01","mined":"1","wallets":["w"]}`, 404, apperr.UnknownMiner},
		{"ReportNoWallets", "POST", "/v1/reports", `{"miner":"nobody","asset":"BTC","period":"2025-01","mined":"1"}`, 400, apperr.InvalidParameter},
		{"ReportFuture", "POST", "/v1/reports", `{"miner":"nobody","asset":"BTC","period":"2099-01","mined":"1","wallets":["w"]}`, 400, apperr.InvalidParameter},
		{"LicenceChangeUnknown", "POST", "/v1/operator/licences/NOPE/changes", `{"kind":"revoke","from":"2025-01-01","reason":"r"}`, 400, apperr.InvalidParameter},
		{"QuotaNegative", "POST", "/v1/operator/quotas", `{"miner":"nobody","month":"2025-01","kwh":-1}`, 400, apperr.InvalidQuantity},
		{"ConsumptionBadSource", "POST", "/v1/operator/consumption", `{"miner":"nobody","month":"2025-01","source":"coal","kwh":1,"metered":true,"avgPrice":"7.5"}`, 400, apperr.InvalidParameter},
		{"FeeBadQuarter", "POST", "/v1/operator/fees", `{"miner":"nobody","quarter":"2025-Q5"}`, 400, apperr.InvalidParameter},
		{"PoolBadDate", "POST", "/v1/operator/pools", `{"id":"p","name":"P","accreditation":"A","accreditedOn":"2025-13-01","location":"Astana"}`, 400, apperr.InvalidParameter},
		{"EquipmentNoMiner", "POST", "/v1/operator/equipment", `{"serial":"S1","model":"M","hashRateThs":"100","ratedPowerW":3000,"location":"X","miner":"nobody"}`, 400, apperr.InvalidParameter},
		{"KeyBadRole", "POST", "/v1/operator/keys", `{"role":"king","label":"x"}`, 400, apperr.InvalidParameter},
		{"KeyPublicKeyNotBase64", "POST", "/v1/operator/keys", `{"role":"trader","account":"t-9","label":"x","signing":"ed25519","publicKey":"!!"}`, 400, apperr.InvalidParameter},
		{"KeyPublicKeyShort", "POST", "/v1/operator/keys", `{"role":"trader","account":"t-9","label":"x","signing":"ed25519","publicKey":"AAAA"}`, 400, apperr.InvalidParameter},
		{"KeyUnknownSigning", "POST", "/v1/operator/keys", `{"role":"trader","account":"t-9","label":"x","signing":"rsa"}`, 400, apperr.InvalidParameter},
		{"ReportNegative", "POST", "/v1/reports", `{"miner":"nobody","asset":"BTC","period":"2025-01","mined":"-1"}`, 400, apperr.InvalidQuantity},
		{"ReportTooPrecise", "POST", "/v1/reports", `{"miner":"nobody","asset":"BTC","period":"2025-01","mined":"0.000000001"}`, 400, apperr.TooPrecise},
		{"ReportBadPeriod", "POST", "/v1/reports", `{"miner":"nobody","asset":"BTC","period":"March","mined":"1"}`, 400, apperr.InvalidParameter},
		{"DepositUnknownAsset", "POST", "/v1/operator/deposits", `{"account":"trader-1","asset":"DOGE","amount":"1","extRef":"z"}`, 400, apperr.UnknownAsset},
		{"DepositNonNumeric", "POST", "/v1/operator/deposits", `{"account":"trader-1","asset":"BTC","amount":"lots","extRef":"z"}`, 400, apperr.InvalidQuantity},
		{"DepositUnknownAccount", "POST", "/v1/operator/deposits", `{"account":"ghost","asset":"BTC","amount":"1","extRef":"z"}`, 404, apperr.UnknownAccount},
		{"MinerBadBIN", "POST", "/v1/operator/miners", `{"id":"m","name":"M","bin":"12","entityKind":"legal_entity","accounts":["m-1"]}`, 400, apperr.InvalidParameter},
		{"PhaseNotAllowed", "POST", "/v1/operator/symbols/BTCKZT/phase", `{"phase":"trading_at_last"}`, 409, apperr.InvalidTransition},
		{"PhaseUnknown", "POST", "/v1/operator/symbols/BTCKZT/phase", `{"phase":"siesta"}`, 400, apperr.MalformedJSON},
		{"ResumeNotHalted", "POST", "/v1/operator/symbols/BTCKZT/resume", ``, 409, apperr.InvalidTransition},
		{"HaltUnknownSymbol", "POST", "/v1/operator/symbols/DOGEKZT/halt", ``, 400, apperr.UnknownSymbol},
		{"LicenceUnknownMiner", "POST", "/v1/operator/licences", `{"miner":"nobody","number":"L","subtype":"I","issuedOn":"2025-01-01","status":"active"}`, 404, apperr.UnknownMiner},
	}
	for _, tc := range restCases {
		t.Run("REST/"+tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, c.BaseURL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+c.APIKey)
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var e struct {
				Code    apperr.Code `json:"code"`
				Message string      `json:"message"`
			}
			if err := json.Unmarshal(b, &e); err != nil || resp.StatusCode != tc.status || e.Code != tc.code || e.Message == "" {
				t.Fatalf("HTTP %d %s; want %d %s", resp.StatusCode, b, tc.status, tc.code)
			}
		})
	}
	must(t, c.WaitSettled(ctx))
	if after := stateOf(t, app); after != before {
		t.Fatalf("bad input changed state:\n before %+v\n after  %+v", before, after)
	}
}

type state struct {
	ledger, miners, reports, obligations, registry int
	balances                                       string
}

// stateOf counts what bad input must not change. Rejected engine commands
// do advance the sequence (they are journalled, with their rejection), so
// state is the ledger and registry, not the sequence.
func stateOf(t *testing.T, app *App) state {
	t.Helper()
	var s state
	ctx := context.Background()
	must(t, app.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM postings), (SELECT count(*) FROM miners),
		(SELECT count(*) FROM mining_reports), (SELECT count(*) FROM obligations),
		(SELECT COALESCE(string_agg(account || asset || amount::text, ',' ORDER BY account, asset), '') FROM balances),
		(SELECT (SELECT count(*) FROM registry_audit) + (SELECT count(*) FROM licence_changes) + (SELECT count(*) FROM mining_pools)
			+ (SELECT count(*) FROM equipment) + (SELECT count(*) FROM energy_quotas) + (SELECT count(*) FROM energy_consumption)
			+ (SELECT count(*) FROM fee_assessments) + (SELECT count(*) FROM api_keys))`).
		Scan(&s.ledger, &s.miners, &s.reports, &s.obligations, &s.balances, &s.registry))
	return s
}

func TestHealthReadyMetrics(t *testing.T) {
	_, c := startApp(t)
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`, "/metrics": "satu_engine_commands_applied_total"} {
		resp, err := http.Get(c.BaseURL + path)
		must(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: HTTP %d %s", path, resp.StatusCode, b)
		}
	}
}

// TestShutdownClosesWebsocketsGoingAway checks graceful shutdown: open
// websockets receive close code 1001.
func TestShutdownClosesWebsocketsGoingAway(t *testing.T) {
	app, c := startApp(t)
	ws, _, err := websocket.DefaultDialer.Dial(c.WSURL, nil)
	must(t, err)
	defer ws.Close()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		app.Close(ctx)
	}()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err = ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("read after shutdown: %v; want close 1001", err)
	}
}

// TestOperatorHaltAndResume: an operator halts a symbol over REST; orders
// are then refused with MARKET_HALTED, cancels still work; after the resume
// orders are accepted again.
func TestOperatorHaltAndResume(t *testing.T) {
	_, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, c.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": "trader-1", "owner": "t", "kind": "trader"}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "trader-1", "asset": "BTC", "amount": "1", "extRef": "d1"}, nil))
	ws, err := wsclient.Dial(ctx, c.WSURL)
	must(t, err)
	defer ws.Close()
	logon(ctx, t, c, ws, trader("trader-1"))
	sell := func(cid string) (wsapi.OrderResult, error) {
		return ws.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: "SELL", Type: "LIMIT", Price: "45000000",
			Quantity: "0.1", NewClientOrderID: cid})
	}
	resting, err := sell("before-halt")
	must(t, err)

	var st struct {
		Symbol, Phase string
		Halted        bool
	}
	must(t, c.Call(ctx, "POST", "/v1/operator/symbols/BTCKZT/halt", nil, &st))
	if st.Symbol != "BTCKZT" || st.Phase != "continuous" || !st.Halted {
		t.Fatalf("after halt: %+v", st)
	}
	if _, err := sell("during-halt"); apperr.CodeOf(err) != apperr.MarketHalted {
		t.Fatalf("order during a halt: %v; want MARKET_HALTED", err)
	}
	// exchangeInfo, over REST and the websocket, shows each symbol's state.
	state := func() map[string]wsapi.SymbolInfo {
		t.Helper()
		var rest, wsInfo struct{ Symbols []wsapi.SymbolInfo }
		must(t, c.Call(ctx, "GET", "/v1/exchangeInfo", nil, &rest))
		must(t, ws.Call(ctx, wsapi.MethodExchangeInfo, nil, &wsInfo))
		if !reflect.DeepEqual(rest, wsInfo) {
			t.Fatalf("REST exchangeInfo %+v; websocket %+v", rest, wsInfo)
		}
		out := map[string]wsapi.SymbolInfo{}
		for _, s := range rest.Symbols {
			out[s.Symbol] = s
		}
		return out
	}
	if m := state(); !m["BTCKZT"].Halted || m["BTCKZT"].Phase != "continuous" || m["ETHKZT"].Halted || m["ETHKZT"].Phase != "continuous" {
		t.Fatalf("exchangeInfo during the halt: %+v", m)
	}
	if _, err := ws.Cancel(ctx, wsapi.CancelParams{Symbol: "BTCKZT", OrderID: resting.OrderID}); err != nil {
		t.Fatalf("cancel during a halt: %v", err)
	}
	must(t, c.Call(ctx, "POST", "/v1/operator/symbols/BTCKZT/resume", nil, &st))
	if st.Halted || st.Phase != "continuous" {
		t.Fatalf("after resume: %+v", st)
	}
	if r, err := sell("after-resume"); err != nil || r.Status != "NEW" {
		t.Fatalf("order after resume: %+v, %v", r, err)
	}
	must(t, c.Call(ctx, "POST", "/v1/operator/symbols/ETHKZT/phase", map[string]string{"phase": "pre_close"}, nil))
	if m := state(); m["BTCKZT"].Halted || m["BTCKZT"].Phase != "continuous" || m["ETHKZT"].Phase != "pre_close" {
		t.Fatalf("exchangeInfo after resume and a phase change: %+v", m)
	}
}

// TestOrderTypesOverWebsocket: the engine's order types reach it over the
// wire with Binance-style parameters.
func TestOrderTypesOverWebsocket(t *testing.T) {
	_, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, a := range []string{"mm-1", "tr-1"} {
		must(t, c.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": a, "owner": a, "kind": "trader"}, nil))
		must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": a, "asset": "BTC", "amount": "1", "extRef": a + "-btc"}, nil))
		must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": a, "asset": "KZT", "amount": "100000000", "extRef": a + "-kzt"}, nil))
	}
	conn := func(acct string) *wsclient.Client {
		ws, err := wsclient.Dial(ctx, c.WSURL)
		must(t, err)
		t.Cleanup(func() { ws.Close() })
		logon(ctx, t, c, ws, trader(acct))
		return ws
	}
	mm, tr := conn("mm-1"), conn("tr-1")
	// A post-only offer rests; the same offer crossing the book is refused.
	offer, err := mm.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: "SELL", Type: "LIMIT_MAKER", Price: "40000000",
		Quantity: "0.5", IcebergQty: "0.1", NewClientOrderID: "offer-1"})
	if err != nil || offer.Status != "NEW" {
		t.Fatalf("post-only iceberg offer: %+v, %v", offer, err)
	}
	if _, err := mm.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: "BUY", Type: "LIMIT_MAKER", Price: "40000000",
		Quantity: "0.1", NewClientOrderID: "bid-1"}); apperr.CodeOf(err) != apperr.WouldTake {
		t.Fatalf("crossing post-only bid: %v; want WOULD_TAKE", err)
	}
	// FOK for more than the book holds: expired, nothing traded.
	fok, err := tr.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: "BUY", Type: "LIMIT", TimeInForce: "FOK",
		Price: "40000000", Quantity: "0.6", NewClientOrderID: "fok-1"})
	if err != nil || fok.Status != "EXPIRED" || fok.ExecutedQty != "0.00000000" {
		t.Fatalf("FOK: %+v, %v", fok, err)
	}
	// A market buy spending 4,008,000.00 ₸ fees included: 0.1 BTC at
	// 40,000,000 is 4,000,000.00 plus the 0.20 % taker fee 8,000.00.
	mkt, err := tr.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: "BUY", Type: "MARKET", QuoteOrderQty: "4008000",
		NewClientOrderID: "mkt-1"})
	if err != nil || mkt.Status != "FILLED" || mkt.ExecutedQty != "0.10000000" || mkt.QuoteQty != "4000000.00" ||
		len(mkt.Fills) != 1 || mkt.Fills[0].Commission != "8000.00" {
		t.Fatalf("market buy by amount: %+v, %v", mkt, err)
	}
}
