package wsgateway_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/satu-exchange/satu/internal/access"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/matching/wsgateway"
)

// BenchmarkGatewayPlace measures the gateway alone: order.place requests
// from 16 logged-on connections, each keeping 16 in flight, answered by an
// engine that accepts at once — the request's decoding, checks, rate
// limits, the engine call and the response's encoding and write, with the
// clients' side of the websocket on the same machine. One op is one order
// answered.
func BenchmarkGatewayPlace(b *testing.B) {
	t := b
	s := startWith(t, &instant{}, wsgateway.Limits{MaxConnections: 1000}, nil)
	const conns, inflight = 16, 16
	wss := make([]*websocket.Conn, conns)
	for i := range wss {
		ws, _, err := websocket.DefaultDialer.DialContext(context.Background(), s.url, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		signer := s.signer(t, accesspg.CreateRequest{Role: access.RoleTrader, Account: fmt.Sprintf("b-%d", i)})
		send(t, ws, "logon", "session.logon", signed(t, signer, "session.logon", nil, time.Now()))
		if r := read(t, ws); r.Error != nil {
			b.Fatal(r.Error)
		}
		wss[i] = ws
	}
	req := func(i int) []byte {
		return fmt.Appendf(nil, `{"id":%d,"method":"order.place","params":{"symbol":"BTCKZT","side":"BUY","type":"LIMIT","price":"30000000","quantity":"0.001","newClientOrderId":"c%d"}}`, i, i)
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/conns + 1
	for _, ws := range wss {
		wg.Add(2)
		slots := make(chan struct{}, inflight)
		go func() {
			defer wg.Done()
			for i := range per {
				slots <- struct{}{}
				if err := ws.WriteMessage(websocket.TextMessage, req(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range per {
				if _, _, err := ws.ReadMessage(); err != nil {
					b.Error(err)
					return
				}
				<-slots
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*conns)/b.Elapsed().Seconds(), "orders/s")
}
