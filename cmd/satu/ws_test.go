package main

import (
	"context"
	"testing"
	"time"

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
}
