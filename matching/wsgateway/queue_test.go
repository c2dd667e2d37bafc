package wsgateway_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsgateway"
)

// deepBook answers every depth request with as many levels as asked.
type deepBook struct{}

func (deepBook) Depth(_ context.Context, _ string, limit int) (uint64, []matching.Level, []matching.Level, error) {
	bids, asks := make([]matching.Level, limit), make([]matching.Level, limit)
	for i := range limit {
		bids[i] = matching.Level{Price: 4_000_000_000 - int64(i)*100, Quantity: 123_456_789, Orders: 7}
		asks[i] = matching.Level{Price: 4_100_000_000 + int64(i)*100, Quantity: 123_456_789, Orders: 7}
	}
	return 1, bids, asks, nil
}

func (deepBook) OpenOrders(context.Context, string) (uint64, []matching.OrderView, error) {
	return 1, nil, nil
}

// TestLargeAnswersUnreadCloseTheConnection: a client that asks for deep
// depth snapshots and does not read them is closed as a slow consumer once
// the bytes queued for it pass the bound — long before the queue's 256
// messages, which a hundred such answers (tens of MB) never reach.
func TestLargeAnswersUnreadCloseTheConnection(t *testing.T) {
	defer wsgateway.SetMaxQueuedBytes(1 << 20)()
	gw := wsgateway.New(newEngine(t), wsgateway.Auth{}, wsgateway.Reads{Book: deepBook{}}, matching.DefaultSymbols(), nil, zap.NewNop(), nil)
	gw.SetLimits(wsgateway.Limits{MaxConnections: 10})
	srv := httptest.NewServer(gw)
	defer srv.Close()
	defer gw.Shutdown()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for i := range 100 { // about 400 KB each
		send(t, ws, i, wsapi.MethodDepth, wsapi.DepthParams{Symbol: "BTCKZT", Limit: 5000})
	}
	time.Sleep(500 * time.Millisecond) // the answers pile up unread
	wantClose(t, readClose(t, ws), websocket.ClosePolicyViolation)
}
