package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/demo"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsclient"
)

// TestWebsocketMethods runs every websocket method against the real
// service — engine, Redis order book, settlement, compliance — with
// signed sessions.
func TestWebsocketMethods(t *testing.T) {
	_, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	must(t, c.Call(ctx, "POST", "/v1/operator/miners", compliance.Miner{ID: "ws-miner", Name: "WS Miner LLP",
		BIN: "230140000002", EntityKind: compliance.LegalEntity, Accounts: []string{"ws-miner-1"}}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/licences", map[string]string{"miner": "ws-miner", "number": "KZ-DM-WS",
		"subtype": "I", "issuedOn": "2025-01-01", "status": "active"}, nil))
	period, _ := lastMonth()
	must(t, c.Call(ctx, "POST", "/v1/reports", map[string]any{"miner": "ws-miner", "asset": "BTC",
		"period": period.Format("2006-01"), "mined": "1.00000000", "wallets": []string{"bc1qwsminer"}}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": "ws-trader", "owner": "ws-trader", "kind": "trader"}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "ws-trader", "asset": "BTC", "amount": "2", "extRef": "wt-btc"}, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "ws-trader", "asset": "KZT", "amount": "100000000", "extRef": "wt-kzt"}, nil))

	// Every stream of docs/api.md's examples, recorded for the check at the end.
	streamExamples := apiDocJSONLines(t, "### Stream examples")
	var names []string
	for _, ex := range streamExamples {
		var m struct{ Stream string }
		must(t, json.Unmarshal([]byte(ex), &m))
		names = append(names, m.Stream)
	}
	streams := record(t, strings.Replace(c.WSURL, "/ws/api", "/ws/stream", 1)+"?streams="+strings.Join(names, "/"))

	ws, err := wsclient.Dial(ctx, c.WSURL)
	must(t, err)
	defer ws.Close()
	// Market data needs no session.
	var depth wsapi.DepthResult
	must(t, ws.Call(ctx, wsapi.MethodDepth, wsapi.DepthParams{Symbol: "BTCKZT", Limit: 5}, &depth))
	if depth.Symbol != "BTCKZT" || len(depth.Bids) != 0 || len(depth.Asks) != 0 {
		t.Fatalf("empty book depth %+v", depth)
	}
	logon(ctx, t, c, ws, trader("ws-trader"))
	place := func(cid, side, price, qty string) wsapi.OrderResult {
		t.Helper()
		r, err := ws.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: side, Type: "LIMIT", Price: price, Quantity: qty, NewClientOrderID: cid})
		must(t, err)
		return r
	}
	a := place("a", "SELL", "45000000", "0.5")
	place("b", "SELL", "45000000", "0.3")
	place("c", "BUY", "40000000", "0.1")

	// Depth: the two offers at one level, the bid below.
	must(t, ws.Call(ctx, wsapi.MethodDepth, wsapi.DepthParams{Symbol: "BTCKZT"}, &depth))
	if len(depth.Asks) != 1 || depth.Asks[0] != [2]string{"45000000.00", "0.80000000"} || len(depth.Bids) != 1 || depth.LastUpdateID == 0 {
		t.Fatalf("depth %+v", depth)
	}
	// Amend: less quantity keeps priority; a new price loses it.
	var am wsapi.OrderResult
	must(t, ws.Call(ctx, wsapi.MethodAmend, wsapi.AmendParams{Symbol: "BTCKZT", OrderID: a.OrderID, NewQty: "0.4"}, &am))
	if !am.KeepsPriority || am.OrigQty != "0.40000000" || am.Status != "NEW" {
		t.Fatalf("amend down %+v", am)
	}
	am = wsapi.OrderResult{} // keepsPriority is left out when false
	must(t, ws.Call(ctx, wsapi.MethodAmend, wsapi.AmendParams{Symbol: "BTCKZT", OrigClientOrderID: "a", NewPrice: "46000000"}, &am))
	if am.KeepsPriority || am.Price != "46000000.00" {
		t.Fatalf("amend price %+v", am)
	}
	// order.status and openOrders.status from the Redis order book.
	var st wsapi.OrderResult
	must(t, ws.Call(ctx, wsapi.MethodOrderStatus, wsapi.CancelParams{Symbol: "BTCKZT", OrigClientOrderID: "a"}, &st))
	if st.OrderID != a.OrderID || st.Price != "46000000.00" || st.OrigQty != "0.40000000" {
		t.Fatalf("order.status %+v", st)
	}
	var open wsapi.OpenOrdersResult
	must(t, ws.Call(ctx, wsapi.MethodOpenOrders, wsapi.SymbolParams{Symbol: "BTCKZT"}, &open))
	if len(open.Orders) != 3 || open.LastUpdateID == 0 {
		t.Fatalf("openOrders.status %+v", open)
	}
	for _, bad := range []struct {
		method string
		params any
		code   apperr.Code
	}{
		{wsapi.MethodOrderStatus, wsapi.CancelParams{Symbol: "BTCKZT", OrderID: 999999}, apperr.UnknownOrder},
		{wsapi.MethodOrderStatus, wsapi.CancelParams{Symbol: "BTCKZT"}, apperr.InvalidParameter},
		{wsapi.MethodAmend, wsapi.AmendParams{Symbol: "BTCKZT", OrderID: a.OrderID}, apperr.InvalidParameter},
		{wsapi.MethodAmend, wsapi.AmendParams{Symbol: "BTCKZT", OrderID: a.OrderID, NewPrice: "46000000.5"}, apperr.InvalidPrice},
		{wsapi.MethodAmend, wsapi.AmendParams{Symbol: "BTCKZT", OrderID: 999999, NewQty: "0.1"}, apperr.UnknownOrder},
		{wsapi.MethodCancelAll, wsapi.SymbolParams{Symbol: "DOGEKZT"}, apperr.UnknownSymbol},
		{wsapi.MethodDepth, wsapi.DepthParams{Symbol: "BTCKZT", Limit: 5001}, apperr.InvalidParameter},
		{wsapi.MethodObligations, nil, apperr.NotPermitted}, // a trader has none
		{wsapi.MethodAccount, map[string]string{"account": "ws-miner-1"}, apperr.MalformedJSON},
	} {
		if err := ws.Call(ctx, bad.method, bad.params, nil); apperr.CodeOf(err) != bad.code {
			t.Errorf("%s %+v: %v; want %s", bad.method, bad.params, err, bad.code)
		}
	}
	// Cancel-all cancels the three and lists them.
	var cancelled []wsapi.OrderResult
	must(t, ws.Call(ctx, wsapi.MethodCancelAll, wsapi.SymbolParams{Symbol: "BTCKZT"}, &cancelled))
	if len(cancelled) != 3 || cancelled[0].Status != "CANCELED" {
		t.Fatalf("cancelAll %+v", cancelled)
	}
	must(t, ws.Call(ctx, wsapi.MethodOpenOrders, nil, &open))
	if len(open.Orders) != 0 {
		t.Fatalf("after cancelAll %+v", open)
	}
	// account.status: the engine's free and held as settled.
	place("d", "SELL", "45000000", "0.5")
	must(t, c.WaitSettled(ctx))
	var acct wsapi.AccountResult
	must(t, ws.Call(ctx, wsapi.MethodAccount, nil, &acct))
	want := []wsapi.Balance{{Asset: "BTC", Free: "1.50000000", Held: "0.50000000"}, {Asset: "KZT", Free: "100000000.00", Held: "0.00"}}
	if acct.Account != "ws-trader" || acct.UpdateID == 0 || len(acct.Balances) != 2 || acct.Balances[0] != want[0] || acct.Balances[1] != want[1] {
		t.Fatalf("account.status %+v; want %+v", acct, want)
	}

	// A miner reads its own obligations.
	mws, err := wsclient.Dial(ctx, c.WSURL)
	must(t, err)
	defer mws.Close()
	logon(ctx, t, c, mws, demo.KeyRequest{Role: "miner", Miner: "ws-miner", Label: "ws miner"})
	var obs struct {
		Miner       string                      `json:"miner"`
		Obligations []compliance.ObligationView `json:"obligations"`
	}
	must(t, mws.Call(ctx, wsapi.MethodObligations, nil, &obs))
	if obs.Miner != "ws-miner" || len(obs.Obligations) != 1 || obs.Obligations[0].Required != "0.75000000" ||
		obs.Obligations[0].Status != compliance.StatusOpen {
		t.Fatalf("obligations.status %+v", obs)
	}

	// Its user data carries its obligation's progress once its mandatory
	// sale is settled.
	must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "ws-miner-1", "asset": "BTC", "amount": "1", "extRef": "wm-btc"}, nil))
	must(t, mws.Call(ctx, wsapi.MethodUserSubscribe, nil, nil))
	_, err = mws.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: "SELL", Type: "LIMIT", Price: "44000000", Quantity: "0.3",
		NewClientOrderID: "mand-1", Mandatory: true})
	must(t, err)
	place("e", "BUY", "44000000", "0.3")
	deadline := time.After(15 * time.Second)
	var pushed []json.RawMessage
	for {
		var msg struct {
			Event struct {
				E          string                    `json:"e"`
				Time       int64                     `json:"E"` // else "E" would fill e
				Obligation compliance.ObligationView `json:"obligation"`
			} `json:"event"`
		}
		select {
		case b := <-mws.Pushed():
			must(t, json.Unmarshal(b, &msg))
			pushed = append(pushed, b)
		case <-deadline:
			t.Fatal("no obligationUpdate within 15 s of the mandatory sale")
		}
		if msg.Event.E != "obligationUpdate" {
			continue
		}
		o := msg.Event.Obligation
		if o.Miner != "ws-miner" || o.Sold != "0.30000000" || o.Remaining != "0.45000000" || o.Status != compliance.StatusOpen {
			t.Fatalf("obligationUpdate %+v", o)
		}
		break
	}

	// Every stream and user-data example in docs/api.md has the shape of a
	// message received here (a halt and resume make the phase messages).
	must(t, c.Call(ctx, "POST", "/v1/operator/symbols/BTCKZT/halt", nil, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/symbols/BTCKZT/resume", nil, nil))
	received := func(ex string, msgs []json.RawMessage) bool {
		var want any
		must(t, json.Unmarshal([]byte(ex), &want))
		for _, m := range msgs {
			var have any
			if json.Unmarshal(m, &have) == nil && sameShape(want, have) {
				return true
			}
		}
		return false
	}
	for _, ex := range streamExamples {
		deadline := time.Now().Add(15 * time.Second)
		for !received(ex, streams.messages()) {
			if time.Now().After(deadline) {
				t.Fatalf("docs/api.md stream example\n%s\nhas the shape of no message received:\n%s", ex, streams.messages())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, ex := range apiDocJSONLines(t, "### User data") {
		if !received(ex, pushed) {
			t.Errorf("docs/api.md user-data example\n%s\nhas the shape of no message pushed:\n%s", ex, pushed)
		}
	}
}

// recorder keeps every message of a stream connection.
type recorder struct {
	mu   sync.Mutex
	msgs []json.RawMessage
}

// record subscribes to url and records its messages until the test ends.
func record(t *testing.T, url string) *recorder {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	must(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	r := &recorder{}
	go func() {
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.msgs = append(r.msgs, b)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) messages() []json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]json.RawMessage(nil), r.msgs...)
}

// TestMarketDataStreams: a depth snapshot and the depth stream stitch
// (U ≤ lastUpdateId+1 ≤ u, then U = previous u + 1) and rebuild the book
// exactly; trades, best bid/offer and phase changes arrive; a signed
// session's user data carries its executions and balances.
func TestMarketDataStreams(t *testing.T) {
	_, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, a := range []string{"md-1", "md-2"} {
		must(t, c.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": a, "owner": a, "kind": "trader"}, nil))
		must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": a, "asset": "BTC", "amount": "5", "extRef": a + "-btc"}, nil))
		must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": a, "asset": "KZT", "amount": "500000000", "extRef": a + "-kzt"}, nil))
	}
	ws, err := wsclient.Dial(ctx, c.WSURL)
	must(t, err)
	defer ws.Close()
	logon(ctx, t, c, ws, trader("md-1"))
	other, err := wsclient.Dial(ctx, c.WSURL)
	must(t, err)
	defer other.Close()
	logon(ctx, t, c, other, trader("md-2"))
	place := func(w *wsclient.Client, cid, side, price, qty string) wsapi.OrderResult {
		t.Helper()
		r, err := w.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: side, Type: "LIMIT", Price: price, Quantity: qty, NewClientOrderID: cid})
		must(t, err)
		return r
	}
	place(ws, "r-1", "SELL", "45000000", "0.5") // in the snapshot

	var sub struct {
		SubscriptionID int    `json:"subscriptionId"`
		Account        string `json:"account"`
	}
	must(t, ws.Call(ctx, wsapi.MethodUserSubscribe, nil, &sub))
	if sub.Account != "md-1" {
		t.Fatalf("userDataStream.subscribe %+v", sub)
	}
	base := strings.Replace(c.WSURL, "/ws/api", "/ws/stream", 1)
	for _, bad := range []string{"", "?streams=", "?streams=dogekzt@depth", "?streams=BTCKZT@depth", "?streams=btckzt@candles",
		"?streams=btckzt" + strings.Repeat("/btckzt@trade", 64)} {
		_, resp, err := websocket.DefaultDialer.DialContext(ctx, base+bad, nil)
		if err == nil || resp == nil || resp.StatusCode != 400 {
			t.Fatalf("streams %q: %v %v; want 400", bad, resp, err)
		}
		var e apperr.Error
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Code != apperr.InvalidParameter {
			t.Fatalf("streams %q: error %+v", bad, e)
		}
		resp.Body.Close()
	}
	url := base + "?streams=btckzt@depth/btckzt@trade/btckzt@bookTicker/btckzt@phase"
	stream, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	must(t, err)
	defer stream.Close()
	// The stream delivers what happens after the subscription; a snapshot
	// taken after subscribing stitches to it.
	var snap wsapi.DepthResult
	must(t, ws.Call(ctx, wsapi.MethodDepth, wsapi.DepthParams{Symbol: "BTCKZT"}, &snap))

	place(ws, "r-2", "SELL", "45100000", "0.2")
	place(ws, "r-3", "BUY", "44000000", "0.3")
	place(other, "t-1", "BUY", "45000000", "0.1") // trades with r-1
	must(t, c.Call(ctx, "POST", "/v1/operator/symbols/BTCKZT/halt", nil, nil))
	must(t, c.Call(ctx, "POST", "/v1/operator/symbols/BTCKZT/resume", nil, nil))
	var final wsapi.DepthResult
	must(t, ws.Call(ctx, wsapi.MethodDepth, wsapi.DepthParams{Symbol: "BTCKZT"}, &final))

	book := map[string]map[string]string{"b": {}, "a": {}}
	for _, l := range snap.Bids {
		book["b"][l[0]] = l[1]
	}
	for _, l := range snap.Asks {
		book["a"][l[0]] = l[1]
	}
	var last uint64 // u of the last applied depth update
	seen := map[string]int{}
	var trade wsapi.Trade
	var ticker wsapi.BookTicker
	// The resume is the last command: once its phase change has arrived,
	// so has every depth update before it.
	for seen["btckzt@phase"] < 2 {
		_ = stream.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m struct {
			Stream string          `json:"stream"`
			Data   json.RawMessage `json:"data"`
		}
		if err := stream.ReadJSON(&m); err != nil {
			t.Fatalf("stream: %v (seen %v, depth at %d of %d)", err, seen, last, final.LastUpdateID)
		}
		seen[m.Stream]++
		switch m.Stream {
		case "btckzt@depth":
			var d wsapi.DepthUpdate
			must(t, json.Unmarshal(m.Data, &d))
			if d.Last <= snap.LastUpdateID {
				continue // in the snapshot already
			}
			if last == 0 && !(d.First <= snap.LastUpdateID+1 && snap.LastUpdateID+1 <= d.Last) ||
				last != 0 && d.First != last+1 {
				t.Fatalf("depth update U=%d u=%d does not continue %d (snapshot %d)", d.First, d.Last, last, snap.LastUpdateID)
			}
			last = d.Last
			for side, levels := range map[string][][2]string{"b": d.Bids, "a": d.Asks} {
				for _, l := range levels {
					if strings.Trim(l[1], "0.") == "" {
						delete(book[side], l[0])
					} else {
						book[side][l[0]] = l[1]
					}
				}
			}
		case "btckzt@trade":
			must(t, json.Unmarshal(m.Data, &trade))
		case "btckzt@bookTicker":
			must(t, json.Unmarshal(m.Data, &ticker))
		}
	}
	if last == 0 || last > final.LastUpdateID {
		t.Fatalf("depth stream ended at %d, the final snapshot is at %d", last, final.LastUpdateID)
	}
	want := map[string]map[string]string{"b": {}, "a": {}}
	for _, l := range final.Bids {
		want["b"][l[0]] = l[1]
	}
	for _, l := range final.Asks {
		want["a"][l[0]] = l[1]
	}
	if fmt.Sprint(book) != fmt.Sprint(want) {
		t.Fatalf("book rebuilt from the stream %v; the snapshot says %v", book, want)
	}
	if trade.Price != "45000000.00" || trade.Quantity != "0.10000000" || trade.BuyerMaker || trade.Seq == 0 {
		t.Fatalf("trade %+v", trade)
	}
	if ticker.Bid != "44000000.00" || ticker.Ask != "45000000.00" || ticker.AskQty != "0.40000000" {
		t.Fatalf("best bid and offer %+v", ticker)
	}

	// User data: md-1's orders and balances, nothing of md-2's.
	kinds := map[string]int{}
	deadline := time.After(10 * time.Second)
	for kinds["TRADE"] == 0 || kinds["balanceUpdate"] == 0 || kinds["NEW"] < 2 {
		select {
		case raw := <-ws.Pushed():
			// A map: encoding/json matches keys case-insensitively, and
			// these events have both "e" and "E", "x" and "X".
			var u struct {
				Event map[string]any `json:"event"`
			}
			must(t, json.Unmarshal(raw, &u))
			if u.Event["c"] == "t-1" {
				t.Fatalf("md-1 was sent md-2's order: %s", raw)
			}
			if u.Event["e"] == "executionReport" {
				kinds[u.Event["x"].(string)]++
			} else {
				kinds[u.Event["e"].(string)]++
			}
		case <-deadline:
			t.Fatalf("user data so far: %v", kinds)
		}
	}
}
