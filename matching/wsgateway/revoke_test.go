package wsgateway_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/satu-exchange/satu/internal/access"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsgateway"
)

// TestRevokedKeyEndsItsSession: revoking a key ends the sessions logged on
// with it — a request on one is refused (UNAUTHENTICATED) once the session
// is older than the recheck interval, and the session is gone after it —
// and the gateway's sweep closes an idle one (1008), whose user-data
// stream would otherwise go on.
func TestRevokedKeyEndsItsSession(t *testing.T) {
	s, eng, clock, now := revokeRig(t, wsgateway.Reads{})
	logon := func(acct string) (*websocket.Conn, access.Signer) {
		ws := s.dial(t, http.Header{})
		signer := s.signer(t, accesspg.CreateRequest{Role: access.RoleTrader, Account: acct})
		ok[wsapi.LogonResult](t, call(t, ws, "logon", wsapi.MethodLogon, signed(t, signer, wsapi.MethodLogon, nil, now())))
		return ws, signer
	}

	// A request on a revoked key's session, the sweep not running yet.
	active, activeKey := logon("acct-1")
	ok[wsapi.OrderResult](t, call(t, active, 1, wsapi.MethodPlace, sell("s-1", "43000000", "0.1")))
	if err := s.keys.Revoke(context.Background(), activeKey.APIKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Add((2 * time.Second).Milliseconds()) // past the recheck interval
	fails(t, call(t, active, 2, wsapi.MethodPlace, sell("s-2", "43000000", "0.1")), http.StatusUnauthorized, apperr.Unauthenticated)
	fails(t, call(t, active, 3, wsapi.MethodPlace, sell("s-3", "43000000", "0.1")), http.StatusUnauthorized, apperr.NotLoggedOn)
	if n := eng.e.Seq(); n != 7 { // two accounts opened and funded (6 commands) and the first order
		t.Fatalf("the engine is at %d; want 7: an order of the revoked key reached it", n)
	}

	// An idle session, revoked: the sweep closes its connection.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.gw.Run(ctx) }()
	idle, idleKey := logon("acct-2")
	if err := s.keys.Revoke(context.Background(), idleKey.APIKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	wantClose(t, readClose(t, idle), websocket.ClosePolicyViolation)
	if got := s.metric(t, "satu_ws_sessions_ended_total"); got != 1 {
		t.Fatalf("sessions ended: %v; want 1", got)
	}
}

// quietEvents is an events stream nothing happens on; emptyBook a book
// with nothing in it: enough for a gateway to serve user-data streams.
type quietEvents struct{}

func (quietEvents) ReadEvents(ctx context.Context, _ string, _ int64, block time.Duration) ([]matching.Envelope, error) {
	select {
	case <-ctx.Done():
	case <-time.After(block):
	}
	return nil, ctx.Err()
}

type emptyBook struct{}

func (emptyBook) Depth(context.Context, string, int) (uint64, []matching.Level, []matching.Level, error) {
	return 0, nil, nil, nil
}
func (emptyBook) OpenOrders(context.Context, string) (uint64, []matching.OrderView, error) {
	return 0, nil, nil
}

// TestRevokedKeyEndsItsUserData: a user-data stream ends with the key it
// was subscribed with — one subscribed by a signed request, without a
// logon, is closed by the sweep (1008), also after the connection logged on
// with another key and followed that one's account too; one subscribed on
// a session ends with the session when a request finds the key revoked,
// before any sweep.
func TestRevokedKeyEndsItsUserData(t *testing.T) {
	s, _, clock, now := revokeRig(t, wsgateway.Reads{Book: emptyBook{}, Events: quietEvents{}})

	// On a session: a request after the recheck interval finds the key
	// revoked, and the stream is gone with the session.
	ws := s.dial(t, http.Header{})
	signer := s.signer(t, accesspg.CreateRequest{Role: access.RoleTrader, Account: "acct-1"})
	ok[wsapi.LogonResult](t, call(t, ws, "logon", wsapi.MethodLogon, signed(t, signer, wsapi.MethodLogon, nil, now())))
	ok[map[string]any](t, call(t, ws, "sub", wsapi.MethodUserSubscribe, nil))
	if n := wsgateway.UserSubscribers(s.gw); n != 1 {
		t.Fatalf("%d user-data subscribers; want 1", n)
	}
	if err := s.keys.Revoke(context.Background(), signer.APIKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Add((2 * time.Second).Milliseconds())
	fails(t, call(t, ws, "place", wsapi.MethodPlace, sell("u-1", "43000000", "0.1")), http.StatusUnauthorized, apperr.Unauthenticated)
	if n := wsgateway.UserSubscribers(s.gw); n != 0 {
		t.Fatalf("%d user-data subscribers after the session ended; want 0", n)
	}

	// Signed, without a logon: the sweep closes the connection.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.gw.Run(ctx) }()
	bare := s.dial(t, http.Header{})
	other := s.signer(t, accesspg.CreateRequest{Role: access.RoleTrader, Account: "acct-2"})
	ok[map[string]any](t, call(t, bare, "sub", wsapi.MethodUserSubscribe, signed(t, other, wsapi.MethodUserSubscribe, nil, now())))
	// Then a logon with another key, and its account's user data too: the
	// first key still counts.
	third := s.signer(t, accesspg.CreateRequest{Role: access.RoleTrader, Account: "acct-1"})
	ok[wsapi.LogonResult](t, call(t, bare, "logon", wsapi.MethodLogon, signed(t, third, wsapi.MethodLogon, nil, now())))
	ok[map[string]any](t, call(t, bare, "sub2", wsapi.MethodUserSubscribe, nil))
	if err := s.keys.Revoke(context.Background(), other.APIKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	wantClose(t, readClose(t, bare), websocket.ClosePolicyViolation)
	eventually(t, "the stream to end", func() bool { return wsgateway.UserSubscribers(s.gw) == 0 })
}

// revokeRig starts a gateway with reads, a settable clock and a session
// sweep every 50 ms (for the test), and two funded traders, acct-1 and
// acct-2.
func revokeRig(t *testing.T, reads wsgateway.Reads) (*server, *engine, *atomic.Int64, func() time.Time) {
	t.Helper()
	t.Cleanup(wsgateway.SetSessionSweep(50 * time.Millisecond))
	clock := new(atomic.Int64)
	clock.Store(time.Now().UnixMilli())
	now := func() time.Time { return time.UnixMilli(clock.Load()) }
	eng := newEngine(t)
	eng.trader(t, "acct-1")
	eng.trader(t, "acct-2")
	return startReads(t, eng, reads, wsgateway.DefaultLimits, now), eng, clock, now
}
