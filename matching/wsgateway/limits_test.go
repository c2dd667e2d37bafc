package wsgateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/satu-exchange/satu/internal/access"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsgateway"
)

// clock is a settable gateway clock, so that a test's requests fall in one
// rate-limit window whatever the real second.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().Truncate(time.Second).Add(100 * time.Millisecond).UnixNano())
	return c
}
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

func callLimited(t *testing.T, ws *websocket.Conn, raw string) response {
	t.Helper()
	sendRaw(t, ws, []byte(raw))
	return read(t, ws)
}

// allowance returns the response's limit of kind.
func allowance(t *testing.T, r response, kind string) wsapi.RateLimit {
	t.Helper()
	for _, l := range r.RateLimits {
		if l.Type == kind {
			return l
		}
	}
	t.Fatalf("no %s limit in %+v", kind, r)
	return wsapi.RateLimit{}
}

// TestRateLimitPerAddress: the requests of all connections from one address
// count together; beyond the limit each is refused with RATE_LIMITED, the
// connection stays usable, and the next second allows again.
func TestRateLimitPerAddress(t *testing.T) {
	clk := newClock()
	s := startWith(t, &instant{}, wsgateway.Limits{IPRequests: 5}, clk.now)
	a, b := s.dial(t, nil), s.dial(t, nil)
	ping := `{"id":1,"method":"ping"}`
	for i, ws := range []*websocket.Conn{a, b, a, b} {
		r := callLimited(t, ws, ping)
		if l := allowance(t, r, "REQUESTS"); r.Status != 200 || l.Count != i+1 || l.Limit != 5 || l.Interval != "SECOND" || l.IntervalNum != 1 {
			t.Fatalf("request %d: %+v", i+1, r)
		}
	}
	// A malformed message counts too: the fifth.
	if r := callLimited(t, a, `{"id":`); r.Error == nil || r.Error.Code != apperr.MalformedJSON || allowance(t, r, "REQUESTS").Count != 5 {
		t.Fatalf("malformed: %+v", r)
	}
	// Refused unread, each is answered with the id off its front, so the
	// client can tell which call was refused (null when there is none).
	for _, tc := range []struct {
		ws      *websocket.Conn
		msg, id string
	}{
		{a, `{"id":7,"method":"ping"}`, "7"},
		{b, ` { "id" : "x-2" ,"method":"ping"}`, `"x-2"`},
		{a, `{"method":"ping","id":9}`, "null"},
		{b, `{"id":`, "null"},
	} {
		r := callLimited(t, tc.ws, tc.msg)
		if r.Status != http.StatusTooManyRequests || r.Error == nil || r.Error.Code != apperr.RateLimited ||
			!strings.Contains(r.Error.Message, "more than 5 requests from this address per second: wait") || allowance(t, r, "REQUESTS").Count != 5 {
			t.Fatalf("over the limit: %+v %+v", r, r.Error)
		}
		if string(r.ID) != tc.id {
			t.Fatalf("%s refused with id %s; want %s", tc.msg, r.ID, tc.id)
		}
	}
	if got := s.metric(t, "satu_ws_rate_limited_total"); got != 4 {
		t.Fatalf("satu_ws_rate_limited_total = %v; want 4", got)
	}
	clk.add(time.Second)
	if r := callLimited(t, a, ping); r.Status != 200 || allowance(t, r, "REQUESTS").Count != 1 {
		t.Fatalf("next second: %+v", r)
	}
}

// TestRateLimitPerKey: order requests count against the API key, whichever
// connection they come from; an order refused for its rate never reaches
// the engine, and other requests and other keys are not held back.
func TestRateLimitPerKey(t *testing.T) {
	clk := newClock()
	eng := &instant{}
	s := startWith(t, eng, wsgateway.Limits{KeyOrders: 2}, clk.now)
	signer := s.signer(t, accesspg.CreateRequest{Role: access.RoleTrader, Account: "t-1"})
	logon := func(ws *websocket.Conn, signer access.Signer) {
		b, _ := json.Marshal(map[string]any{"id": "logon", "method": wsapi.MethodLogon, "params": signed(t, signer, wsapi.MethodLogon, nil, time.Now())})
		if r := callLimited(t, ws, string(b)); r.Status != 200 {
			t.Fatalf("logon: %+v %+v", r, r.Error)
		}
	}
	a, b := s.dial(t, nil), s.dial(t, nil)
	logon(a, signer)
	logon(b, signer)
	n := 0
	order := func() string {
		n++
		return fmt.Sprintf(`{"id":%d,"method":"order.place","params":{"symbol":"BTCKZT","side":"BUY","type":"LIMIT","price":"30000000","quantity":"0.01","newClientOrderId":"c%d"}}`, n, n)
	}
	for i, ws := range []*websocket.Conn{a, b} {
		r := callLimited(t, ws, order())
		if l := allowance(t, r, "ORDERS"); r.Status != 200 || l.Count != i+1 || l.Limit != 2 {
			t.Fatalf("order %d: %+v %+v", i+1, r, r.Error)
		}
	}
	r := callLimited(t, a, order())
	if r.Status != http.StatusTooManyRequests || r.Error == nil || r.Error.Code != apperr.RateLimited ||
		!strings.Contains(r.Error.Message, "orders for this API key") {
		t.Fatalf("third order: %+v %+v", r, r.Error)
	}
	if n := eng.n.Load(); n != 2 {
		t.Fatalf("the engine received %d commands; want 2 (the refused order must not reach it)", n)
	}
	if r := callLimited(t, a, `{"id":8,"method":"ping"}`); r.Status != 200 {
		t.Fatalf("ping after the order limit: %+v", r)
	}
	other := s.signer(t, accesspg.CreateRequest{Role: access.RoleTrader, Account: "t-2"})
	c := s.dial(t, nil)
	logon(c, other)
	if r := callLimited(t, c, order()); r.Status != 200 || allowance(t, r, "ORDERS").Count != 1 {
		t.Fatalf("another key: %+v %+v", r, r.Error)
	}
	clk.add(time.Second)
	if r := callLimited(t, a, order()); r.Status != 200 {
		t.Fatalf("next second: %+v %+v", r, r.Error)
	}
}

// TestConnectionLimit: beyond MaxConnections an upgrade is refused with 503
// and an error body before any websocket exists; a closed connection frees
// its place.
func TestConnectionLimit(t *testing.T) {
	s := startWith(t, &instant{}, wsgateway.Limits{MaxConnections: 2}, nil)
	a := s.dial(t, nil)
	_ = s.dial(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), ioWait)
	defer cancel()
	_, resp, err := websocket.DefaultDialer.DialContext(ctx, s.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: err %v, response %+v; want HTTP 503", err, resp)
	}
	var e apperr.Error
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Code != apperr.Unavailable || !strings.Contains(e.Message, "maximum of 2 connections") {
		t.Fatalf("refusal body: %+v (%v)", e, err)
	}
	_ = resp.Body.Close()
	if got := s.metric(t, "satu_ws_connections_refused_total"); got != 1 {
		t.Fatalf("refused = %v; want 1", got)
	}
	_ = a.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(ioWait))
	_ = readClose(t, a)
	eventually(t, "the closed connection to be released", func() bool { return s.metric(t, "satu_ws_connections") == 1 })
	_ = s.dial(t, nil)
}
