package wsgateway_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/satu-exchange/satu/internal/access"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsgateway"
)

const (
	btc = 100_000_000 // satoshi per BTC
	kzt = 100         // tiyn per tenge

	// ioWait bounds every single read or write of a test; generous for a
	// loaded machine under -race, and still far below the test timeout.
	ioWait = 15 * time.Second
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// engine is the real matching engine without Redis: commands are numbered
// under a mutex as the inbox would number them.
type engine struct {
	mu sync.Mutex
	e  *matching.Engine
}

func newEngine(t *testing.T) *engine {
	t.Helper()
	e, err := matching.New(matching.DefaultSymbols())
	if err != nil {
		t.Fatal(err)
	}
	return &engine{e: e}
}

func (f *engine) Do(ctx context.Context, cmd matching.Command) ([]matching.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmd.Seq = f.e.Seq() + 1
	cmd.Time = 1_700_000_000_000 + int64(cmd.Seq)
	return f.e.Apply(cmd, nil)
}

// must applies an operator command directly (as REST would) and checks it took.
func (f *engine) must(t *testing.T, cmd matching.Command) {
	t.Helper()
	evs, err := f.Do(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || matching.Rejection(evs) != nil {
		t.Fatalf("%s: %+v", cmd.Kind, evs)
	}
}

// trader opens an account with its own owner and funds it.
func (f *engine) trader(t *testing.T, acct string) {
	t.Helper()
	f.must(t, matching.Command{Kind: matching.CmdOpenAccount, Account: acct, Owner: "owner-" + acct, AccountKind: matching.KindTrader})
	f.must(t, matching.Command{Kind: matching.CmdDeposit, Account: acct, Asset: "BTC", Amount: 100 * btc, ExtRef: acct + "-btc"})
	f.must(t, matching.Command{Kind: matching.CmdDeposit, Account: acct, Asset: "KZT", Amount: 10_000_000_000 * kzt, ExtRef: acct + "-kzt"})
}

// instant answers every command at once with an accepted order and never
// touches shared state: the gateway is then the only thing being measured.
type instant struct{ n atomic.Uint64 }

func (f *instant) Do(_ context.Context, cmd matching.Command) ([]matching.Event, error) {
	n := f.n.Add(1)
	return []matching.Event{{Seq: n, Kind: matching.EvOrderAccepted, Account: cmd.Account, Symbol: cmd.Symbol, OrderID: n,
		ClientID: cmd.ClientID, Side: cmd.Side, Price: cmd.Price, Quantity: cmd.Quantity, Remaining: cmd.Quantity,
		Status: matching.StatusNew}}, nil
}

type server struct {
	db   *pgxpool.Pool
	keys *accesspg.KeyStore
	gw   *wsgateway.Gateway
	srv  *httptest.Server
	url  string
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
}

func start(t *testing.T, eng wsgateway.Engine, origins ...string) *server {
	t.Helper()
	return startWith(t, eng, wsgateway.DefaultLimits, nil, origins...)
}

// startWith starts a gateway with limits and a clock (nil: time.Now).
func startWith(t testing.TB, eng wsgateway.Engine, limits wsgateway.Limits, now func() time.Time, origins ...string) *server {
	t.Helper()
	return startReads(t, eng, wsgateway.Reads{}, limits, now, origins...)
}

// startReads is startWith with the gateway's reads.
func startReads(t testing.TB, eng wsgateway.Engine, reads wsgateway.Reads, limits wsgateway.Limits, now func() time.Time, origins ...string) *server {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reg := prometheus.NewRegistry()
	db := testenv.PG(t)
	keys := accesspg.NewKeyStore(db)
	rdb, _ := testenv.Redis(t)
	gw := wsgateway.New(eng, wsgateway.Auth{Keys: keys, Replays: redisbus.NewReplays(rdb), Now: now}, reads, matching.DefaultSymbols(), origins, zap.New(core), reg)
	gw.SetLimits(limits)
	srv := httptest.NewServer(gw)
	t.Cleanup(func() {
		gw.Shutdown()
		srv.Close()
		// Every request the gateway failed internally is logged at error level.
		for _, e := range logs.FilterLevelExact(zapcore.ErrorLevel).All() {
			t.Errorf("gateway logged an error: %s %v", e.Message, e.ContextMap())
		}
	})
	return &server{db: db, keys: keys, gw: gw, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http"), reg: reg, logs: logs}
}

func (s *server) dial(t *testing.T, header http.Header) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, s.url, header)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// metric returns the value of a counter or gauge in the gateway's registry.
func (s *server) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// eventually polls cond until it holds or ioWait passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// response is a wsapi.Response as a client decodes it.
type response struct {
	ID     json.RawMessage `json:"id"`
	Status int             `json:"status"`
	Result json.RawMessage `json:"result"`
	Error  *apperr.Error   `json:"error"`
	// RateLimits are the allowances the request counted against.
	RateLimits []wsapi.RateLimit `json:"rateLimits"`
}

func send(t testing.TB, ws *websocket.Conn, id any, method string, params any) {
	t.Helper()
	req := map[string]any{"id": id, "method": method}
	if params != nil {
		req["params"] = params
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	sendRaw(t, ws, b)
}

func sendRaw(t testing.TB, ws *websocket.Conn, b []byte) {
	t.Helper()
	_ = ws.SetWriteDeadline(time.Now().Add(ioWait))
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func read(t testing.TB, ws *websocket.Conn) response {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(ioWait))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var r response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("response %s: %v", b, err)
	}
	if (r.Error == nil) == (r.Result == nil) {
		t.Fatalf("response %s has both or neither of result and error", b)
	}
	return r
}

// call sends one request and reads its response (the connection has nothing else in flight).
func call(t *testing.T, ws *websocket.Conn, id any, method string, params any) response {
	t.Helper()
	send(t, ws, id, method, params)
	r := read(t, ws)
	want, _ := json.Marshal(id)
	if string(r.ID) != string(want) {
		t.Fatalf("%s: response id %s; want %s", method, r.ID, want)
	}
	return r
}

func ok[T any](t *testing.T, r response) T {
	t.Helper()
	if r.Status != http.StatusOK || r.Error != nil {
		t.Fatalf("status %d, error %+v", r.Status, r.Error)
	}
	var v T
	if err := json.Unmarshal(r.Result, &v); err != nil {
		t.Fatalf("result %s: %v", r.Result, err)
	}
	return v
}

func fails(t *testing.T, r response, status int, code apperr.Code) {
	t.Helper()
	if r.Status != status || r.Error == nil || r.Error.Code != code || r.Error.Message == "" {
		t.Fatalf("got status %d, error %+v, result %s; want %d %s", r.Status, r.Error, r.Result, status, code)
	}
}

// signer issues an Ed25519 signing key for req in the gateway's key store.
func (s *server) signer(t testing.TB, req accesspg.CreateRequest) access.Signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Signing, req.Ed25519PublicKey = access.SigningEd25519, pub
	if req.Label == "" {
		req.Label = "test"
	}
	tok, err := s.keys.Create(context.Background(), req, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return access.Signer{APIKey: tok.ID, Kind: access.SigningEd25519, Ed25519: priv}
}

// signed signs the params of a request of method with signer at now.
func signed(t testing.TB, signer access.Signer, method string, params any, now time.Time) json.RawMessage {
	t.Helper()
	b, err := signer.Sign(method, params, now)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logon signs the connection on with a new trader key for acct.
func (s *server) logon(t *testing.T, ws *websocket.Conn, acct string) {
	t.Helper()
	signer := s.signer(t, accesspg.CreateRequest{Role: access.RoleTrader, Account: acct})
	got := ok[wsapi.LogonResult](t, call(t, ws, "logon", wsapi.MethodLogon, signed(t, signer, wsapi.MethodLogon, nil, time.Now())))
	if got.Account != acct || got.APIKey != signer.APIKey || got.Role != "trader" {
		t.Fatalf("logon answered %+v", got)
	}
}

// readClose reads until the connection ends and returns the close error.
// Responses still queued before the close frame are skipped.
func readClose(t *testing.T, ws *websocket.Conn) error {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(ioWait))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return err
		}
	}
}

func wantClose(t *testing.T, err error, code int) {
	t.Helper()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("connection ended with %v; want close code %d", err, code)
	}
}

func sell(cid, price, qty string) wsapi.PlaceParams {
	return wsapi.PlaceParams{Symbol: "BTCKZT", Side: "SELL", Type: "LIMIT", Price: price, Quantity: qty, NewClientOrderID: cid}
}

func buy(cid, price, qty string) wsapi.PlaceParams {
	p := sell(cid, price, qty)
	p.Side = "BUY"
	return p
}

func TestExchangeInfoAndPing(t *testing.T) {
	s := start(t, newEngine(t))
	ws := s.dial(t, nil)

	info := ok[struct {
		Symbols []wsapi.SymbolInfo `json:"symbols"`
	}](t, call(t, ws, 1, wsapi.MethodExchangeInfo, nil))
	want := wsapi.ExchangeInfo(matching.DefaultSymbols(), nil)
	if len(info.Symbols) != len(want) {
		t.Fatalf("symbols %+v", info.Symbols)
	}
	for i := range want {
		if info.Symbols[i] != want[i] {
			t.Fatalf("symbol %d: %+v; want %+v", i, info.Symbols[i], want[i])
		}
	}
	if info.Symbols[0].Symbol != "BTCKZT" || info.Symbols[0].TickSize != "1.00" || info.Symbols[0].LotSize != "0.00000001" {
		t.Fatalf("BTCKZT %+v", info.Symbols[0])
	}

	// Any JSON id comes back as sent.
	for _, id := range []any{"p-1", 2, 3.5, map[string]int{"n": 4}} {
		r := call(t, ws, id, wsapi.MethodPing, nil)
		if ok[map[string]any](t, r) == nil || string(r.Result) != "{}" {
			t.Fatalf("ping result %s", r.Result)
		}
	}
	if n := s.metric(t, "satu_ws_connections"); n != 1 {
		t.Fatalf("satu_ws_connections = %v", n)
	}
}

func TestUnknownMethod(t *testing.T) {
	s := start(t, newEngine(t))
	ws := s.dial(t, nil)
	r := call(t, ws, 42, "order.teleport", nil)
	fails(t, r, http.StatusBadRequest, apperr.UnknownMethod)
	if string(r.ID) != "42" || !strings.Contains(r.Error.Message, "order.teleport") {
		t.Fatalf("id %s, message %q", r.ID, r.Error.Message)
	}
	fails(t, call(t, ws, "x", "", nil), http.StatusBadRequest, apperr.UnknownMethod)
}

func TestMalformedJSON(t *testing.T) {
	s := start(t, newEngine(t))
	ws := s.dial(t, nil)
	for _, bad := range []string{`{"id":1,"method":"ping"`, `not json`, `[1,2]`, `{"id":1,"method":7}`, ``} {
		sendRaw(t, ws, []byte(bad))
		_ = ws.SetReadDeadline(time.Now().Add(ioWait))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		// The id could not be read, so it is answered as null (present, not omitted).
		if id, present := raw["id"]; !present || string(id) != "null" {
			t.Fatalf("%q: answer %s; want a null id", bad, b)
		}
		var r response
		_ = json.Unmarshal(b, &r)
		fails(t, r, http.StatusBadRequest, apperr.MalformedJSON)
	}
	// Malformed params keep the request's id.
	s.logon(t, ws, "miner-1")
	r := call(t, ws, 5, wsapi.MethodPlace, "miner-1")
	fails(t, r, http.StatusBadRequest, apperr.MalformedJSON)
	// The connection is still usable.
	ok[map[string]any](t, call(t, ws, 6, wsapi.MethodPing, nil))
}

type order = wsapi.OrderResult

func TestPlaceFillsAcrossConnections(t *testing.T) {
	eng := newEngine(t)
	eng.trader(t, "seller")
	eng.trader(t, "buyer")
	s := start(t, eng)
	sws, bws := s.dial(t, nil), s.dial(t, nil)
	s.logon(t, sws, "seller")
	s.logon(t, bws, "buyer")

	maker := ok[order](t, call(t, sws, 1, wsapi.MethodPlace, sell("s-1", "43000000", "0.3")))
	if maker.Status != "NEW" || maker.OrderID == 0 || maker.ClientOrderID != "s-1" || maker.Side != "SELL" ||
		maker.Price != "43000000.00" || maker.OrigQty != "0.30000000" || maker.ExecutedQty != "0.00000000" || len(maker.Fills) != 0 {
		t.Fatalf("maker %+v", maker)
	}

	// The buyer's better limit trades at the maker's price.
	r := call(t, bws, 1, wsapi.MethodPlace, buy("b-1", "43400000.00", "0.30000000"))
	taker := ok[order](t, r)
	if taker.Status != "FILLED" || taker.OrderID == maker.OrderID || taker.ClientOrderID != "b-1" || taker.Side != "BUY" ||
		taker.Price != "43400000.00" || taker.ExecutedQty != "0.30000000" || taker.QuoteQty != "12900000.00" ||
		len(taker.Fills) != 1 || taker.Fills[0].Price != "43000000.00" || taker.Fills[0].Quantity != "0.30000000" ||
		taker.Fills[0].TradeID == "" {
		t.Fatalf("taker %+v", taker)
	}
	// Amounts are strings on the wire, never numbers.
	var wire map[string]any
	_ = json.Unmarshal(r.Result, &wire)
	for _, k := range []string{"price", "origQty", "executedQty", "cummulativeQuoteQty"} {
		if _, isString := wire[k].(string); !isString {
			t.Fatalf("%s is %T in %s", k, wire[k], r.Result)
		}
	}

	// The maker's order is gone: cancelling it is refused by the engine.
	fails(t, call(t, sws, 2, wsapi.MethodCancel, wsapi.CancelParams{Symbol: "BTCKZT", OrderID: maker.OrderID}),
		http.StatusNotFound, apperr.UnknownOrder)

	// A retry with the same client order ID answers the original order and changes nothing.
	dup := ok[order](t, call(t, bws, 2, wsapi.MethodPlace, buy("b-1", "43400000", "0.3")))
	if !dup.Duplicate || dup.OrderID != taker.OrderID || dup.ClientOrderID != "b-1" {
		t.Fatalf("retry %+v", dup)
	}

	// Engine rejections keep their codes.
	fails(t, call(t, bws, 3, wsapi.MethodPlace, buy("b-2", "43000000", "999")), http.StatusBadRequest, apperr.InsufficientFunds)
	mand := sell("s-2", "43000000", "0.1")
	mand.Mandatory = true
	// A trader's key never sends a mandatory order: refused by the gateway.
	seq := eng.e.Seq()
	r = call(t, sws, 3, wsapi.MethodPlace, mand)
	fails(t, r, http.StatusForbidden, apperr.NotPermitted)
	if !strings.Contains(r.Error.Message, "only a miner's key") || eng.e.Seq() != seq {
		t.Fatalf("a trader's mandatory order: %+v, engine at %d (was %d)", r.Error, eng.e.Seq(), seq)
	}
	// A miner's key does, once the engine grants its account the permission.
	_, err := s.db.Exec(context.Background(), `INSERT INTO miners (id, name, bin, entity_kind) VALUES ('m', 'M LLP', '123456789012', 'legal_entity');
		INSERT INTO miner_accounts (account, miner_id) VALUES ('seller', 'm')`)
	if err != nil {
		t.Fatal(err)
	}
	mws := s.dial(t, nil)
	miner := s.signer(t, accesspg.CreateRequest{Role: access.RoleMiner, Miner: "m"})
	ok[wsapi.LogonResult](t, call(t, mws, "logon", wsapi.MethodLogon, signed(t, miner, wsapi.MethodLogon, nil, time.Now())))
	fails(t, call(t, mws, 3, wsapi.MethodPlace, mand), http.StatusForbidden, apperr.NotPermitted)
	eng.must(t, matching.Command{Kind: matching.CmdSetPermission, Account: "seller", Permission: matching.PermMandatorySell, Granted: true})
	if got := ok[order](t, call(t, mws, 4, wsapi.MethodPlace, mand)); !got.Mandatory || got.Status != "NEW" {
		t.Fatalf("mandatory %+v", got)
	}
	// And the gateway's own checks come first.
	fails(t, call(t, bws, 4, wsapi.MethodPlace, buy("b-3", "43000000", "0.000000001")), http.StatusBadRequest, apperr.TooPrecise)
	fails(t, call(t, bws, 5, wsapi.MethodPlace, buy("b-3", "abc", "1")), http.StatusBadRequest, apperr.InvalidPrice)
	fails(t, call(t, bws, 6, wsapi.MethodPlace, map[string]any{"symbol": "BTCKZT", "quantity": 1}), http.StatusBadRequest, apperr.MalformedJSON)
}

func TestCancelByClientOrderID(t *testing.T) {
	eng := newEngine(t)
	eng.trader(t, "maker-1")
	eng.trader(t, "other")
	s := start(t, eng)
	ws := s.dial(t, nil)
	s.logon(t, ws, "maker-1")
	placed := ok[order](t, call(t, ws, 1, wsapi.MethodPlace, sell("rest-1", "45000000", "0.25")))
	if placed.Status != "NEW" {
		t.Fatalf("placed %+v", placed)
	}

	// Another account cannot cancel it, even knowing the client order ID.
	ows := s.dial(t, nil)
	s.logon(t, ows, "other")
	fails(t, call(t, ows, 1, wsapi.MethodCancel, wsapi.CancelParams{Symbol: "BTCKZT", OrigClientOrderID: "rest-1"}),
		http.StatusNotFound, apperr.UnknownOrder)

	got := ok[order](t, call(t, ws, 2, wsapi.MethodCancel, wsapi.CancelParams{Symbol: "BTCKZT", OrigClientOrderID: "rest-1"}))
	if got.Status != "CANCELED" || got.OrderID != placed.OrderID || got.ClientOrderID != "rest-1" ||
		got.OrigQty != "0.25000000" || got.ExecutedQty != "0.00000000" {
		t.Fatalf("cancel %+v", got)
	}
	fails(t, call(t, ws, 3, wsapi.MethodCancel, wsapi.CancelParams{Symbol: "BTCKZT", OrigClientOrderID: "rest-1"}),
		http.StatusNotFound, apperr.UnknownOrder)
	fails(t, call(t, ws, 4, wsapi.MethodCancel, wsapi.CancelParams{Symbol: "BTCKZT"}), http.StatusBadRequest, apperr.InvalidParameter)
	fails(t, call(t, ws, 5, wsapi.MethodCancel, wsapi.CancelParams{Symbol: "NOPE", OrderID: 1}), http.StatusBadRequest, apperr.UnknownSymbol)
}

func TestConcurrentRequestsOneConnection(t *testing.T) {
	eng := newEngine(t)
	eng.trader(t, "busy")
	s := start(t, eng)
	ws := s.dial(t, nil)
	s.logon(t, ws, "busy")

	const writers, each = 8, 25 // 200 requests, far more than MaxInFlight
	type sent struct{ method, cid string }
	var (
		wmu  sync.Mutex // one writer at a time, as gorilla requires
		reqs sync.Map   // id (as JSON) → sent
		wg   sync.WaitGroup
	)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := w*each + i
				var id any = n
				if n%2 == 1 {
					id = fmt.Sprintf("req-%d", n)
				}
				idJSON, _ := json.Marshal(id)
				var req map[string]any
				switch n % 4 {
				case 0, 1: // orders that never cross: bids low, asks high
					p := buy(fmt.Sprintf("o-%d", n), "40000000", "0.001")
					if n%4 == 1 {
						p = sell(fmt.Sprintf("o-%d", n), "50000000", "0.001")
					}
					req = map[string]any{"id": id, "method": wsapi.MethodPlace, "params": p}
					reqs.Store(string(idJSON), sent{wsapi.MethodPlace, p.NewClientOrderID})
				case 2:
					req = map[string]any{"id": id, "method": wsapi.MethodPing}
					reqs.Store(string(idJSON), sent{method: wsapi.MethodPing})
				case 3:
					req = map[string]any{"id": id, "method": wsapi.MethodExchangeInfo}
					reqs.Store(string(idJSON), sent{method: wsapi.MethodExchangeInfo})
				}
				b, _ := json.Marshal(req)
				wmu.Lock()
				_ = ws.SetWriteDeadline(time.Now().Add(ioWait))
				err := ws.WriteMessage(websocket.TextMessage, b)
				wmu.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}

	seen := map[string]bool{}
	var placed []uint64
	for range writers * each {
		r := read(t, ws)
		id := string(r.ID)
		v, known := reqs.Load(id)
		if !known || seen[id] {
			t.Fatalf("response with unknown or repeated id %s", id)
		}
		seen[id] = true
		switch req := v.(sent); req.method {
		case wsapi.MethodPlace:
			o := ok[order](t, r)
			if o.ClientOrderID != req.cid || o.Status != "NEW" {
				t.Fatalf("id %s answered %+v; want client order %s", id, o, req.cid)
			}
			placed = append(placed, o.OrderID)
		case wsapi.MethodPing:
			if string(r.Result) != "{}" {
				t.Fatalf("id %s: ping answered %s", id, r.Result)
			}
		case wsapi.MethodExchangeInfo:
			if !strings.Contains(string(r.Result), `"BTCKZT"`) {
				t.Fatalf("id %s: exchangeInfo answered %s", id, r.Result)
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every order reached the engine exactly once.
	ids := map[uint64]bool{}
	for _, id := range placed {
		ids[id] = true
	}
	if len(placed) != writers*each/2 || len(ids) != len(placed) {
		t.Fatalf("%d orders, %d distinct IDs", len(placed), len(ids))
	}
}

func TestMessageTooBig(t *testing.T) {
	s := start(t, newEngine(t))
	ws := s.dial(t, nil)

	// Exactly at the limit is allowed: a ping padded with spaces.
	msg := []byte(`{"id":1,"method":"ping"}`)
	atLimit := append(msg, []byte(strings.Repeat(" ", wsgateway.MaxMessageBytes-len(msg)))...)
	sendRaw(t, ws, atLimit)
	if r := read(t, ws); string(r.ID) != "1" || r.Status != http.StatusOK {
		t.Fatalf("at the limit: %+v", r)
	}

	sendRaw(t, ws, append(atLimit, ' '))
	wantClose(t, readClose(t, ws), websocket.CloseMessageTooBig)
	eventually(t, "the connection to be dropped", func() bool { return s.metric(t, "satu_ws_connections") == 0 })
}

func TestSlowConsumer(t *testing.T) {
	s := start(t, &instant{})
	ws := s.dial(t, nil)
	s.logon(t, ws, "slow")

	// Send without reading. The gateway writes responses until the socket
	// buffers are full, then queues OutboundQueue more, and then gives up on
	// the connection: the counter says when.
	req, _ := json.Marshal(map[string]any{"id": 1, "method": wsapi.MethodPlace,
		"params": buy("slow-order-client-id-0123456789abcd", "43000000", "0.3")})
	type result struct {
		n   int
		err error // why writing stopped; nil when told to
	}
	stop := make(chan struct{})
	writerDone := make(chan result)
	go func() {
		var r result
		defer func() { writerDone <- r }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = ws.SetWriteDeadline(time.Now().Add(ioWait))
			if r.err = ws.WriteMessage(websocket.TextMessage, req); r.err != nil {
				return // the gateway closed the connection
			}
			r.n++
		}
	}()
	eventually(t, "the slow consumer to be detected", func() bool { return s.metric(t, "satu_ws_slow_consumers_total") > 0 })
	close(stop)

	// Now read: the responses written before the close, then the close frame.
	got := 0
	var err error
	_ = ws.SetReadDeadline(time.Now().Add(ioWait))
	for {
		if _, _, err = ws.ReadMessage(); err != nil {
			break
		}
		got++
	}
	sent := <-writerDone
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
		t.Errorf("sent %d requests (writing ended with %v), read %d responses, then %v; want close code 1008",
			sent.n, sent.err, got, err)
	}
	if sent.n < wsgateway.OutboundQueue+wsgateway.MaxInFlight {
		t.Errorf("closed after only %d requests", sent.n)
	}
	eventually(t, "the connection to be dropped", func() bool { return s.metric(t, "satu_ws_connections") == 0 })
	if v := s.metric(t, "satu_ws_slow_consumers_total"); v != 1 {
		t.Errorf("satu_ws_slow_consumers_total = %v after one slow connection; want 1", v)
	}
}

// TestPipeliningClientIsNotSlow: a client that sends requests as fast as it
// can and reads every response is not a slow consumer, however far its
// requests run ahead of the gateway's writer.
func TestPipeliningClientIsNotSlow(t *testing.T) {
	s := start(t, &instant{})
	ws := s.dial(t, nil)
	req, _ := json.Marshal(map[string]any{"id": 1, "method": wsapi.MethodPing})
	const n = 20_000
	sent := make(chan error, 1)
	go func() {
		for range n {
			_ = ws.SetWriteDeadline(time.Now().Add(ioWait))
			if err := ws.WriteMessage(websocket.TextMessage, req); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	_ = ws.SetReadDeadline(time.Now().Add(ioWait))
	for i := range n {
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatalf("after %d of %d responses: %v (satu_ws_slow_consumers_total %v)",
				i, n, err, s.metric(t, "satu_ws_slow_consumers_total"))
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if v := s.metric(t, "satu_ws_slow_consumers_total"); v != 0 {
		t.Fatalf("satu_ws_slow_consumers_total = %v", v)
	}
}

func TestPlainHTTPIsRefused(t *testing.T) {
	s := start(t, newEngine(t))
	resp, err := s.srv.Client().Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain GET: %s", resp.Status)
	}
	if n := s.metric(t, "satu_ws_connections"); n != 0 {
		t.Fatalf("satu_ws_connections = %v", n)
	}
}

func TestOrigin(t *testing.T) {
	s := start(t, newEngine(t), "https://satu.example")
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	for _, origin := range []string{"https://evil.example", "http://satu.example", "https://satu.example.evil", "null"} {
		ws, resp, err := websocket.DefaultDialer.DialContext(ctx, s.url, http.Header{"Origin": {origin}})
		if err == nil {
			_ = ws.Close()
			t.Fatalf("origin %s was allowed", origin)
		}
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %s: %v, response %v; want 403", origin, err, resp)
		}
		_ = resp.Body.Close()
	}
	for _, h := range []http.Header{{"Origin": {"https://satu.example"}}, nil} {
		ws := s.dial(t, h)
		ok[map[string]any](t, call(t, ws, 1, wsapi.MethodPing, nil))
	}

	// "*" allows any browser origin.
	anyOrigin := start(t, newEngine(t), "*")
	ws := anyOrigin.dial(t, http.Header{"Origin": {"https://anywhere.example"}})
	ok[map[string]any](t, call(t, ws, 1, wsapi.MethodPing, nil))

	// No list: only non-browser clients.
	none := start(t, newEngine(t))
	if ws, resp, err := websocket.DefaultDialer.DialContext(ctx, none.url, http.Header{"Origin": {"https://satu.example"}}); err == nil {
		_ = ws.Close()
		t.Fatal("an origin was allowed with no list")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("%v, %v", err, resp)
	}
	ok[map[string]any](t, call(t, none.dial(t, nil), 1, wsapi.MethodPing, nil))
}

func TestShutdown(t *testing.T) {
	eng := newEngine(t)
	eng.trader(t, "trader")
	s := start(t, eng)
	idle, busy := s.dial(t, nil), s.dial(t, nil)
	s.logon(t, busy, "trader")
	ok[order](t, call(t, busy, 1, wsapi.MethodPlace, sell("sd-1", "45000000", "0.1")))
	eventually(t, "two connections", func() bool { return s.metric(t, "satu_ws_connections") == 2 })

	s.gw.Shutdown()
	wantClose(t, readClose(t, idle), websocket.CloseGoingAway)
	wantClose(t, readClose(t, busy), websocket.CloseGoingAway)
	eventually(t, "the connections to be dropped", func() bool { return s.metric(t, "satu_ws_connections") == 0 })

	// A connection upgraded after Shutdown is closed at once.
	late := s.dial(t, nil)
	wantClose(t, readClose(t, late), websocket.CloseGoingAway)
	eventually(t, "the late connection to be dropped", func() bool { return s.metric(t, "satu_ws_connections") == 0 })
}

// counting counts the commands that reach the engine.
type counting struct {
	wsgateway.Engine
	n atomic.Int64
}

func (c *counting) Do(ctx context.Context, cmd matching.Command) ([]matching.Event, error) {
	c.n.Add(1)
	return c.Engine.Do(ctx, cmd)
}

// TestSignedRequests: session.logon and single requests are signed with a
// key that acts for the account; every way of getting that wrong is
// refused with its code, leaves the session as it was and sends nothing to
// the engine.
func TestSignedRequests(t *testing.T) {
	eng := newEngine(t)
	for _, a := range []string{"alice", "qaz-1", "qaz-2"} {
		eng.trader(t, a)
	}
	counted := &counting{Engine: eng}
	s := start(t, counted)
	if _, err := s.db.Exec(context.Background(), `
		INSERT INTO miners (id, name, bin, entity_kind) VALUES ('qaz', 'Qaz Miner LLP', '230140000001', 'legal_entity');
		INSERT INTO miner_accounts (account, miner_id) VALUES ('qaz-1', 'qaz'), ('qaz-2', 'qaz');`); err != nil {
		t.Fatal(err)
	}
	alice := s.signer(t, accesspg.CreateRequest{Role: access.RoleTrader, Account: "alice"})
	miner := s.signer(t, accesspg.CreateRequest{Role: access.RoleMiner, Miner: "qaz"})
	revoked := s.signer(t, accesspg.CreateRequest{Role: access.RoleTrader, Account: "alice"})
	if err := s.keys.Revoke(context.Background(), revoked.APIKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	bearer, err := s.keys.Create(context.Background(), accesspg.CreateRequest{Role: access.RoleTrader, Account: "alice", Label: "REST"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	unknown := alice
	unknown.APIKey = "00000000000000ff"
	asBearer := alice
	asBearer.APIKey = bearer.ID
	now := time.Now()
	edit := func(b json.RawMessage, name string, v any) json.RawMessage {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		m[name] = v
		out, _ := json.Marshal(m)
		return out
	}
	ws := s.dial(t, nil)
	before := counted.n.Load()
	for i, c := range []struct {
		name   string
		method string
		params any
		status int
		code   apperr.Code
	}{
		{"ErrUnsignedLogon", wsapi.MethodLogon, wsapi.LogonParams{Account: "alice"}, 401, apperr.Unauthenticated},
		{"ErrUnsignedPlace", wsapi.MethodPlace, sell("x-1", "43000000", "0.1"), 401, apperr.NotLoggedOn},
		{"ErrUnknownKey", wsapi.MethodLogon, signed(t, unknown, wsapi.MethodLogon, nil, now), 401, apperr.Unauthenticated},
		{"ErrRevokedKey", wsapi.MethodLogon, signed(t, revoked, wsapi.MethodLogon, nil, now), 401, apperr.Unauthenticated},
		{"ErrBearerKey", wsapi.MethodLogon, signed(t, asBearer, wsapi.MethodLogon, nil, now), 401, apperr.Unauthenticated},
		{"ErrEditedAfterSigning", wsapi.MethodLogon, edit(signed(t, miner, wsapi.MethodLogon, wsapi.LogonParams{Account: "qaz-1"}, now), "account", "qaz-2"), 401, apperr.BadSignature},
		{"ErrOtherKeysSignature", wsapi.MethodLogon, edit(signed(t, alice, wsapi.MethodLogon, nil, now), "apiKey", miner.APIKey), 401, apperr.BadSignature},
		{"ErrStale", wsapi.MethodLogon, signed(t, alice, wsapi.MethodLogon, nil, now.Add(-6*time.Second)), 400, apperr.StaleRequest},
		{"ErrFromTheFuture", wsapi.MethodLogon, signed(t, alice, wsapi.MethodLogon, nil, now.Add(3*time.Second)), 400, apperr.StaleRequest},
		{"ErrAnotherAccount", wsapi.MethodLogon, signed(t, alice, wsapi.MethodLogon, wsapi.LogonParams{Account: "qaz-1"}, now), 403, apperr.NotPermitted},
		{"ErrWhichAccount", wsapi.MethodLogon, signed(t, miner, wsapi.MethodLogon, nil, now), 400, apperr.InvalidParameter},
		{"ErrSignedPlaceWhichAccount", wsapi.MethodPlace, signed(t, miner, wsapi.MethodPlace, sell("x-2", "43000000", "0.1"), now), 400, apperr.InvalidParameter},
		{"ErrExtraField", wsapi.MethodLogon, signed(t, alice, wsapi.MethodLogon, map[string]string{"account": "alice", "role": "operator"}, now), 400, apperr.MalformedJSON},
		{"ErrNestedParam", wsapi.MethodLogon, edit(signed(t, alice, wsapi.MethodLogon, nil, now), "account", map[string]string{"a": "b"}), 400, apperr.InvalidParameter},
		{"ErrStillLoggedOff", wsapi.MethodCancel, wsapi.CancelParams{Symbol: "BTCKZT", OrderID: 1}, 401, apperr.NotLoggedOn},
	} {
		t.Run(c.name, func(t *testing.T) {
			fails(t, call(t, ws, i, c.method, c.params), c.status, c.code)
		})
	}
	if n := counted.n.Load() - before; n != 0 {
		t.Fatalf("%d refused requests reached the engine", n)
	}

	// A signed request acts for its key's one account, for itself alone.
	one := ok[order](t, call(t, ws, "signed-place", wsapi.MethodPlace, signed(t, alice, wsapi.MethodPlace, sell("a-1", "45000000", "0.1"), time.Now())))
	if one.Status != "NEW" || one.ClientOrderID != "a-1" {
		t.Fatalf("signed order %+v", one)
	}
	fails(t, call(t, ws, "after", wsapi.MethodPlace, sell("a-2", "45000000", "0.1")), 401, apperr.NotLoggedOn)

	// A signature covers the method: a signed account.status — whose
	// parameters are a logon's — sent as a logon is refused, and so is a
	// signed order.status sent as order.cancel.
	status := signed(t, alice, wsapi.MethodAccount, nil, time.Now())
	fails(t, call(t, ws, "swapped", wsapi.MethodLogon, status), 401, apperr.BadSignature)
	lookup := signed(t, alice, wsapi.MethodOrderStatus, wsapi.CancelParams{Symbol: "BTCKZT", OrderID: one.OrderID}, time.Now())
	fails(t, call(t, ws, "swapped", wsapi.MethodCancel, lookup), 401, apperr.BadSignature)

	// The same signed logon works once, on any connection.
	logonAs := signed(t, miner, wsapi.MethodLogon, wsapi.LogonParams{Account: "qaz-2"}, time.Now())
	got := ok[wsapi.LogonResult](t, call(t, ws, "logon", wsapi.MethodLogon, logonAs))
	if got.Account != "qaz-2" || got.Role != "miner" || got.APIKey != miner.APIKey || got.AuthorizedSince == 0 {
		t.Fatalf("logon %+v", got)
	}
	other := s.dial(t, nil)
	fails(t, call(t, other, "again", wsapi.MethodLogon, logonAs), 409, apperr.Replayed)
	fails(t, call(t, ws, "again", wsapi.MethodLogon, logonAs), 409, apperr.Replayed)
	// A failed logon keeps the session: the orders are qaz-2's.
	fails(t, call(t, ws, "bad", wsapi.MethodLogon, signed(t, alice, wsapi.MethodLogon, nil, time.Now().Add(-time.Minute))), 400, apperr.StaleRequest)
	placed := ok[order](t, call(t, ws, "miner-place", wsapi.MethodPlace, sell("q-1", "46000000", "0.1")))
	if placed.Status != "NEW" {
		t.Fatalf("miner's order %+v", placed)
	}
	// The order is qaz-2's: qaz-1 cannot cancel it; qaz-2 can.
	q1 := s.dial(t, nil)
	ok[wsapi.LogonResult](t, call(t, q1, "l", wsapi.MethodLogon, signed(t, miner, wsapi.MethodLogon, wsapi.LogonParams{Account: "qaz-1"}, time.Now())))
	fails(t, call(t, q1, "c", wsapi.MethodCancel, wsapi.CancelParams{Symbol: "BTCKZT", OrderID: placed.OrderID}), 404, apperr.UnknownOrder)
	if c := ok[order](t, call(t, ws, "c", wsapi.MethodCancel, wsapi.CancelParams{Symbol: "BTCKZT", OrderID: placed.OrderID})); c.Status != "CANCELED" {
		t.Fatalf("cancel %+v", c)
	}
}
