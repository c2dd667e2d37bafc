package wsgateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/satu-exchange/satu/internal/access"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsgateway"
)

// batchItems checks a batch's answer has one item per order, each with
// exactly one of result and error and a status that agrees.
func batchItems(t *testing.T, r response, n int) []wsapi.BatchItem {
	t.Helper()
	got := ok[wsapi.BatchResult](t, r)
	if len(got.Orders) != n {
		t.Fatalf("%d items; want %d: %s", len(got.Orders), n, r.Result)
	}
	for i, it := range got.Orders {
		if (it.Result == nil) == (it.Error == nil) || (it.Status == http.StatusOK) != (it.Result != nil) {
			t.Fatalf("item %d: %+v", i, it)
		}
	}
	return got.Orders
}

func itemFails(t *testing.T, it wsapi.BatchItem, status int, code apperr.Code) {
	t.Helper()
	if it.Status != status || it.Error == nil || it.Error.Code != code || it.Error.Message == "" {
		t.Fatalf("item %+v (error %+v); want %d %s", it, it.Error, status, code)
	}
}

// TestBatchOrders: a batch's orders are checked one by one — a refused
// order is answered with its error and never reaches the engine — and the
// others are applied in the batch's order, each answered with its own
// outcome; a batch that is malformed as a whole changes nothing.
func TestBatchOrders(t *testing.T) {
	eng := newEngine(t)
	eng.trader(t, "seller")
	eng.trader(t, "buyer")
	counted := &counting{Engine: eng}
	s := start(t, counted)
	sws, bws := s.dial(t, nil), s.dial(t, nil)
	s.logon(t, sws, "seller")
	s.logon(t, bws, "buyer")

	mand := sell("s-5", "44000000", "0.1")
	mand.Mandatory = true
	offTick := sell("s-3", "44000000.50", "0.1")
	unknown := sell("s-4", "44000000", "0.1")
	unknown.Symbol = "NOPE"
	before := counted.n.Load()
	items := batchItems(t, call(t, sws, 1, wsapi.MethodBatchPlace, wsapi.BatchPlaceParams{Orders: []wsapi.PlaceParams{
		sell("s-1", "43000000", "0.2"), offTick, sell("s-2", "44000000", "0.3"), unknown, mand}}), 5)
	itemFails(t, items[1], http.StatusBadRequest, apperr.InvalidPrice)
	itemFails(t, items[3], http.StatusBadRequest, apperr.UnknownSymbol)
	itemFails(t, items[4], http.StatusForbidden, apperr.NotPermitted)
	first, second := items[0].Result, items[2].Result
	if first.Status != "NEW" || first.ClientOrderID != "s-1" || first.Price != "43000000.00" ||
		second.Status != "NEW" || second.ClientOrderID != "s-2" || second.OrigQty != "0.30000000" ||
		second.OrderID <= first.OrderID {
		t.Fatalf("placed %+v and %+v: want both resting, in the batch's order", first, second)
	}
	if n := counted.n.Load() - before; n != 2 {
		t.Fatalf("%d commands reached the engine; want the 2 accepted orders", n)
	}

	// The buyer's batch: one order takes s-1, one is refused by the engine.
	items = batchItems(t, call(t, bws, 1, wsapi.MethodBatchPlace, wsapi.BatchPlaceParams{Orders: []wsapi.PlaceParams{
		buy("b-1", "43000000", "0.2"), buy("b-2", "43000000", "999")}}), 2)
	if r := items[0].Result; r.Status != "FILLED" || len(r.Fills) != 1 || r.Fills[0].Quantity != "0.20000000" {
		t.Fatalf("taker %+v", r)
	}
	itemFails(t, items[1], http.StatusBadRequest, apperr.InsufficientFunds)

	// A repeated client order ID inside a batch answers the original order.
	items = batchItems(t, call(t, bws, 2, wsapi.MethodBatchPlace, wsapi.BatchPlaceParams{Orders: []wsapi.PlaceParams{
		buy("b-1", "43000000", "0.2")}}), 1)
	if r := items[0].Result; !r.Duplicate || r.ClientOrderID != "b-1" {
		t.Fatalf("retry %+v", r)
	}

	// Cancels: the resting order, the filled one, and one naming no order.
	items = batchItems(t, call(t, sws, 2, wsapi.MethodBatchCancel, wsapi.BatchCancelParams{Orders: []wsapi.CancelParams{
		{Symbol: "BTCKZT", OrigClientOrderID: "s-2"}, {Symbol: "BTCKZT", OrderID: first.OrderID}, {Symbol: "BTCKZT"}}}), 3)
	if r := items[0].Result; r.Status != "CANCELED" || r.OrderID != second.OrderID {
		t.Fatalf("cancel %+v", r)
	}
	itemFails(t, items[1], http.StatusNotFound, apperr.UnknownOrder)
	itemFails(t, items[2], http.StatusBadRequest, apperr.InvalidParameter)

	// Refused as a whole: nothing reaches the engine.
	twentyOne := make([]wsapi.PlaceParams, wsapi.MaxBatchOrders+1)
	for i := range twentyOne {
		twentyOne[i] = sell(fmt.Sprintf("x-%d", i), "45000000", "0.01")
	}
	before = counted.n.Load()
	for i, bad := range []struct {
		method string
		params any
		status int
		code   apperr.Code
	}{
		{wsapi.MethodBatchPlace, wsapi.BatchPlaceParams{}, http.StatusBadRequest, apperr.InvalidParameter},
		{wsapi.MethodBatchPlace, wsapi.BatchPlaceParams{Orders: twentyOne}, http.StatusBadRequest, apperr.InvalidParameter},
		{wsapi.MethodBatchCancel, wsapi.BatchCancelParams{Orders: []wsapi.CancelParams{}}, http.StatusBadRequest, apperr.InvalidParameter},
		{wsapi.MethodBatchPlace, map[string]any{"orders": []any{sell("y-1", "45000000", "0.1"), map[string]any{"symbol": "BTCKZT", "quantity": 1}}},
			http.StatusBadRequest, apperr.MalformedJSON},
		{wsapi.MethodBatchPlace, map[string]any{"orders": []any{map[string]any{"symbol": "BTCKZT", "colour": "red"}}}, http.StatusBadRequest, apperr.MalformedJSON},
		{wsapi.MethodBatchPlace, map[string]any{"orders": sell("y-2", "45000000", "0.1")}, http.StatusBadRequest, apperr.MalformedJSON},
		{wsapi.MethodBatchCancel, map[string]any{"orders": []any{}, "extra": 1}, http.StatusBadRequest, apperr.MalformedJSON},
	} {
		r := call(t, sws, 10+i, bad.method, bad.params)
		fails(t, r, bad.status, bad.code)
	}
	// A batch is not signed (a signature covers flat parameters only):
	// refused before any key is looked up.
	sendRaw(t, sws, []byte(`{"id":30,"method":"batchOrders.place","params":{"orders":[{"symbol":"BTCKZT","side":"SELL","type":"LIMIT","price":"45000000","quantity":"0.1","newClientOrderId":"w-1"}],"apiKey":"00000000000000ff","timestamp":1,"signature":"c2ln"}}`))
	r := read(t, sws)
	fails(t, r, http.StatusBadRequest, apperr.InvalidParameter)
	if !strings.Contains(r.Error.Message, "cannot be signed") {
		t.Fatalf("signed batch: %+v", r.Error)
	}
	// Without a session, a batch acts for nobody.
	anon := s.dial(t, nil)
	fails(t, call(t, anon, 1, wsapi.MethodBatchPlace, wsapi.BatchPlaceParams{Orders: []wsapi.PlaceParams{sell("z-1", "45000000", "0.1")}}),
		http.StatusUnauthorized, apperr.NotLoggedOn)
	if n := counted.n.Load() - before; n != 0 {
		t.Fatalf("%d commands of refused batches reached the engine", n)
	}
}

// TestBatchRateLimit: a batch counts as many orders as it carries against
// the key's order rate, all or none.
func TestBatchRateLimit(t *testing.T) {
	clk := newClock()
	eng := &instant{}
	s := startWith(t, eng, wsgateway.Limits{KeyOrders: 5}, clk.now)
	ws := s.dial(t, nil)
	signer := s.signer(t, accesspg.CreateRequest{Role: access.RoleTrader, Account: "t-1"})
	ok[wsapi.LogonResult](t, call(t, ws, "logon", wsapi.MethodLogon, signed(t, signer, wsapi.MethodLogon, nil, time.Now())))
	batch := func(id int, n int) response {
		orders := make([]wsapi.PlaceParams, n)
		for i := range orders {
			orders[i] = buy(fmt.Sprintf("c-%d-%d", id, i), "30000000", "0.01")
		}
		return call(t, ws, id, wsapi.MethodBatchPlace, wsapi.BatchPlaceParams{Orders: orders})
	}
	r := batch(1, 3)
	batchItems(t, r, 3)
	if l := allowance(t, r, "ORDERS"); l.Count != 3 || l.Limit != 5 {
		t.Fatalf("after 3 orders: %+v", l)
	}
	r = batch(2, 3)
	fails(t, r, http.StatusTooManyRequests, apperr.RateLimited)
	if l := allowance(t, r, "ORDERS"); l.Count != 3 {
		t.Fatalf("a refused batch counted: %+v", l)
	}
	if n := eng.n.Load(); n != 3 {
		t.Fatalf("the engine received %d commands; want 3", n)
	}
	// More than the allowance can ever hold is not a matter of waiting.
	r = batch(3, 6)
	fails(t, r, http.StatusBadRequest, apperr.InvalidParameter)
	if !strings.Contains(r.Error.Message, "allowance of 5") || eng.n.Load() != 3 {
		t.Fatalf("a batch of 6 against 5 a second: %+v; engine received %d", r.Error, eng.n.Load())
	}
	r = batch(4, 2)
	batchItems(t, r, 2)
	if l := allowance(t, r, "ORDERS"); l.Count != 5 {
		t.Fatalf("after 5 orders: %+v", l)
	}
	clk.add(time.Second)
	batchItems(t, batch(5, 5), 5)
}
