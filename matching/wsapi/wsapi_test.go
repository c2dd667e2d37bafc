package wsapi_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/wsapi"
)

func symbols() map[string]matching.Symbol {
	m := map[string]matching.Symbol{}
	for _, s := range matching.DefaultSymbols() {
		m[s.Name] = s
	}
	return m
}

// place returns valid BTCKZT order parameters; edit modifies them.
func place(edit func(p *wsapi.PlaceParams)) wsapi.PlaceParams {
	p := wsapi.PlaceParams{Symbol: "BTCKZT", Side: "SELL", Type: "LIMIT", Price: "43000000", Quantity: "0.3",
		NewClientOrderID: "c-1"}
	if edit != nil {
		edit(&p)
	}
	return p
}

func TestPlaceCommandOK(t *testing.T) {
	base := matching.Command{Kind: matching.CmdPlaceOrder, Account: "miner-1", Symbol: "BTCKZT", ClientID: "c-1",
		Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 4_300_000_000, Quantity: 30_000_000}
	cases := []struct {
		name string
		p    wsapi.PlaceParams
		want func(c *matching.Command)
	}{
		{"sell GTC by default", place(nil), func(*matching.Command) {}},
		{"explicit GTC", place(func(p *wsapi.PlaceParams) { p.TimeInForce = "GTC" }), func(*matching.Command) {}},
		{"buy", place(func(p *wsapi.PlaceParams) { p.Side = "BUY" }), func(c *matching.Command) { c.Side = matching.Buy }},
		{"IOC", place(func(p *wsapi.PlaceParams) { p.TimeInForce = "IOC" }), func(c *matching.Command) { c.TIF = matching.IOC }},
		{"mandatory", place(func(p *wsapi.PlaceParams) { p.Mandatory = true }), func(c *matching.Command) { c.Purpose = matching.PurposeMandatory }},
		{"price with scale digits", place(func(p *wsapi.PlaceParams) { p.Price = "43000000.00"; p.Quantity = "0.30000000" }),
			func(*matching.Command) {}},
		{"trailing zeros beyond scale", place(func(p *wsapi.PlaceParams) { p.Price = "43000000.000"; p.Quantity = "0.3000000000" }),
			func(*matching.Command) {}},
		{"36-char client id", place(func(p *wsapi.PlaceParams) { p.NewClientOrderID = strings.Repeat("x", 36) }),
			func(c *matching.Command) { c.ClientID = strings.Repeat("x", 36) }},
		{"FOK", place(func(p *wsapi.PlaceParams) { p.TimeInForce = "FOK" }), func(c *matching.Command) { c.TIF = matching.FOK }},
		{"GTD", place(func(p *wsapi.PlaceParams) { p.TimeInForce, p.GoodTillDate = "GTD", 1_800_000_000_000 }),
			func(c *matching.Command) { c.TIF, c.ExpireAt = matching.GTD, 1_800_000_000_000 }},
		{"post-only", place(func(p *wsapi.PlaceParams) { p.Type = "LIMIT_MAKER" }), func(c *matching.Command) { c.PostOnly = true }},
		{"iceberg", place(func(p *wsapi.PlaceParams) { p.IcebergQty = "0.1" }), func(c *matching.Command) { c.DisplayQty = 10_000_000 }},
		{"STP mode", place(func(p *wsapi.PlaceParams) { p.SelfTradePreventionMode = "EXPIRE_BOTH" }),
			func(c *matching.Command) { c.STP = matching.STPExpireBoth }},
		{"market sell", place(func(p *wsapi.PlaceParams) { p.Type, p.Price = "MARKET", "" }),
			func(c *matching.Command) { c.Type, c.TIF, c.Price = matching.Market, 0, 0 }},
		{"market buy by amount", place(func(p *wsapi.PlaceParams) {
			p.Type, p.Side, p.Price, p.Quantity, p.QuoteOrderQty = "MARKET", "BUY", "", "", "1000000.50"
		}), func(c *matching.Command) {
			c.Type, c.Side, c.TIF, c.Price, c.Quantity, c.QuoteQty = matching.Market, matching.Buy, 0, 0, 0, 100_000_050
		}},
		{"mandatory with obligation", place(func(p *wsapi.PlaceParams) { p.Mandatory, p.Obligation = true, "obl-7" }),
			func(c *matching.Command) { c.Purpose, c.Obligation = matching.PurposeMandatory, "obl-7" }},
		{"other symbol's scales", place(func(p *wsapi.PlaceParams) { p.Symbol = "ETHKZT"; p.Price = "1500001"; p.Quantity = "0.0001" }),
			func(c *matching.Command) { c.Symbol = "ETHKZT"; c.Price = 150_000_100; c.Quantity = 100_000 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wsapi.PlaceCommand("miner-1", tc.p, symbols())
			if err != nil {
				t.Fatalf("PlaceCommand: %v", err)
			}
			want := base
			tc.want(&want)
			if got != want {
				t.Fatalf("command\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestPlaceCommandErrors(t *testing.T) {
	cases := []struct {
		name string
		p    wsapi.PlaceParams
		code apperr.Code
	}{
		{"unknown symbol", place(func(p *wsapi.PlaceParams) { p.Symbol = "DOGEKZT" }), apperr.UnknownSymbol},
		{"empty symbol", place(func(p *wsapi.PlaceParams) { p.Symbol = "" }), apperr.InvalidParameter},
		{"lower-case symbol", place(func(p *wsapi.PlaceParams) { p.Symbol = "btckzt" }), apperr.UnknownSymbol},
		{"side HOLD", place(func(p *wsapi.PlaceParams) { p.Side = "HOLD" }), apperr.InvalidParameter},
		{"lower-case side", place(func(p *wsapi.PlaceParams) { p.Side = "buy" }), apperr.InvalidParameter},
		{"type STOP_LOSS", place(func(p *wsapi.PlaceParams) { p.Type = "STOP_LOSS" }), apperr.InvalidParameter},
		{"STP NONE", place(func(p *wsapi.PlaceParams) { p.SelfTradePreventionMode = "NONE" }), apperr.InvalidParameter},
		{"bad iceberg", place(func(p *wsapi.PlaceParams) { p.IcebergQty = "lots" }), apperr.InvalidQuantity},
		{"bad quote amount", place(func(p *wsapi.PlaceParams) { p.Type, p.QuoteOrderQty = "MARKET", "0.001" }), apperr.TooPrecise},
		{"type missing", place(func(p *wsapi.PlaceParams) { p.Type = "" }), apperr.InvalidParameter},
		{"tif GTX", place(func(p *wsapi.PlaceParams) { p.TimeInForce = "GTX" }), apperr.InvalidParameter},
		{"empty client id", place(func(p *wsapi.PlaceParams) { p.NewClientOrderID = "" }), apperr.InvalidParameter},
		{"37-char client id", place(func(p *wsapi.PlaceParams) { p.NewClientOrderID = strings.Repeat("x", 37) }), apperr.InvalidParameter},
		{"quantity ten", place(func(p *wsapi.PlaceParams) { p.Quantity = "ten" }), apperr.InvalidQuantity},
		{"quantity -1", place(func(p *wsapi.PlaceParams) { p.Quantity = "-1" }), apperr.InvalidQuantity},
		{"quantity empty", place(func(p *wsapi.PlaceParams) { p.Quantity = "" }), apperr.InvalidQuantity},
		{"quantity exponent", place(func(p *wsapi.PlaceParams) { p.Quantity = "1e3" }), apperr.InvalidQuantity},
		{"quantity overflow", place(func(p *wsapi.PlaceParams) { p.Quantity = "100000000000" }), apperr.InvalidQuantity},
		{"quantity too precise", place(func(p *wsapi.PlaceParams) { p.Quantity = "0.000000001" }), apperr.TooPrecise},
		{"price abc", place(func(p *wsapi.PlaceParams) { p.Price = "abc" }), apperr.InvalidPrice},
		{"price -5", place(func(p *wsapi.PlaceParams) { p.Price = "-5" }), apperr.InvalidPrice},
		{"price empty", place(func(p *wsapi.PlaceParams) { p.Price = "" }), apperr.InvalidPrice},
		{"price overflow", place(func(p *wsapi.PlaceParams) { p.Price = "100000000000000000" }), apperr.InvalidPrice},
		{"price too precise", place(func(p *wsapi.PlaceParams) { p.Price = "1.001" }), apperr.TooPrecise},
		// The checks run in a fixed order: the first failing one answers.
		{"symbol before side", place(func(p *wsapi.PlaceParams) { p.Symbol = "X"; p.Side = "HOLD" }), apperr.UnknownSymbol},
		{"price before quantity", place(func(p *wsapi.PlaceParams) { p.Price = "abc"; p.Quantity = "ten" }), apperr.InvalidPrice},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := wsapi.PlaceCommand("miner-1", tc.p, symbols())
			if err == nil {
				t.Fatalf("PlaceCommand accepted %+v: %+v", tc.p, cmd)
			}
			var ae *apperr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is not an *apperr.Error", err, err)
			}
			if ae.Code != tc.code {
				t.Fatalf("code = %s (%s); want %s", ae.Code, ae.Message, tc.code)
			}
			if ae.Message == "" {
				t.Fatal("empty message")
			}
			if !reflect.DeepEqual(cmd, matching.Command{}) {
				t.Fatalf("a refused command is not zero: %+v", cmd)
			}
		})
	}
}

func TestPriceErrorMentionsPrice(t *testing.T) {
	_, err := wsapi.PlaceCommand("a", place(func(p *wsapi.PlaceParams) { p.Price = "abc" }), symbols())
	if msg := apperr.MessageOf(err); !strings.HasPrefix(msg, "price: ") || !strings.Contains(msg, `"abc"`) {
		t.Fatalf("message %q", msg)
	}
}

// Events as the engine writes them for BTCKZT (price in tiyn, quantity in satoshi).
const (
	btc = 100_000_000
	kzt = 100
)

func accepted(seq uint64, id uint64, cid string, side matching.Side, price, qty int64) matching.Event {
	return matching.Event{Seq: seq, Kind: matching.EvOrderAccepted, Account: "acct-" + cid, Symbol: "BTCKZT", OrderID: id,
		ClientID: cid, Side: side, Price: price, Quantity: qty, Remaining: qty, Status: matching.StatusNew}
}

func done(seq uint64, idx uint32, id uint64, cid string, side matching.Side, price, qty, filled int64, st matching.OrderStatus) matching.Event {
	return matching.Event{Seq: seq, Index: idx, Kind: matching.EvOrderDone, Account: "acct-" + cid, Symbol: "BTCKZT", OrderID: id,
		ClientID: cid, Side: side, Price: price, Quantity: qty, Remaining: qty - filled, Filled: filled, Status: st}
}

func trade(seq uint64, idx uint32, buyID, sellID uint64, taker matching.Side, price, qty int64) matching.Event {
	s := symbols()["BTCKZT"]
	quote, ok := s.Notional(price, qty)
	if !ok {
		panic("notional overflow")
	}
	return matching.Event{Seq: seq, Index: idx, Kind: matching.EvTrade, Symbol: "BTCKZT", BaseAsset: "BTC", QuoteAsset: "KZT",
		Price: price, Quantity: qty, QuoteAmount: quote, TakerSide: taker, BuyOrderID: buyID, SellOrderID: sellID}
}

func TestOrderFromEventsResting(t *testing.T) {
	evs := []matching.Event{accepted(5, 3, "s-1", matching.Sell, 43_000_000*kzt, 3*btc/10)}
	got, err := wsapi.OrderFromEvents(evs, symbols())
	if err != nil {
		t.Fatal(err)
	}
	want := wsapi.OrderResult{Symbol: "BTCKZT", OrderID: 3, ClientOrderID: "s-1", Side: "SELL", Price: "43000000.00",
		OrigQty: "0.30000000", ExecutedQty: "0.00000000", QuoteQty: "0.00", Status: "NEW"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("\n got %+v\nwant %+v", got, want)
	}
}

func TestOrderFromEventsFilledAgainstTwoMakers(t *testing.T) {
	// Taker BUY 0.5 @ 43,500,000 takes maker 1 (SELL 0.2 @ 43,000,000, fully)
	// and maker 2 (SELL 0.5 @ 43,400,000, partly); maker 1's order_done is in
	// the same command and must not be mistaken for the taker's.
	const seq = 29
	evs := []matching.Event{
		accepted(seq, 7, "b-1", matching.Buy, 43_500_000*kzt, 5*btc/10),
		trade(seq, 1, 7, 1, matching.Buy, 43_000_000*kzt, 2*btc/10),
		done(seq, 2, 1, "s-1", matching.Sell, 43_000_000*kzt, 2*btc/10, 2*btc/10, matching.StatusFilled),
		trade(seq, 3, 7, 2, matching.Buy, 43_400_000*kzt, 3*btc/10),
		done(seq, 4, 7, "b-1", matching.Buy, 43_500_000*kzt, 5*btc/10, 5*btc/10, matching.StatusFilled),
	}
	got, err := wsapi.OrderFromEvents(evs, symbols())
	if err != nil {
		t.Fatal(err)
	}
	want := wsapi.OrderResult{Symbol: "BTCKZT", OrderID: 7, ClientOrderID: "b-1", Side: "BUY", Price: "43500000.00",
		OrigQty: "0.50000000", ExecutedQty: "0.50000000",
		QuoteQty: "21620000.00", // 0.2 × 43,000,000 + 0.3 × 43,400,000
		Status:   "FILLED",
		Fills: []wsapi.Fill{{TradeID: "29-1", Price: "43000000.00", Quantity: "0.20000000", Commission: "0.00", CommissionAsset: "KZT"},
			{TradeID: "29-3", Price: "43400000.00", Quantity: "0.30000000", Commission: "0.00", CommissionAsset: "KZT"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("\n got %+v\nwant %+v", got, want)
	}
}

func TestOrderFromEventsPartialRests(t *testing.T) {
	// SELL 0.5 meets a BUY 0.2 maker (which finishes) and rests with 0.3.
	evs := []matching.Event{
		accepted(9, 4, "s-2", matching.Sell, 43_000_000*kzt, 5*btc/10),
		trade(9, 1, 2, 4, matching.Sell, 43_100_000*kzt, 2*btc/10),
		done(9, 2, 2, "b-2", matching.Buy, 43_100_000*kzt, 2*btc/10, 2*btc/10, matching.StatusFilled),
	}
	got, err := wsapi.OrderFromEvents(evs, symbols())
	if err != nil {
		t.Fatal(err)
	}
	if got.OrderID != 4 || got.Status != "PARTIALLY_FILLED" || got.ExecutedQty != "0.20000000" ||
		got.QuoteQty != "8620000.00" || len(got.Fills) != 1 || got.Fills[0].Price != "43100000.00" {
		t.Fatalf("got %+v", got)
	}
}

func TestOrderFromEventsIOCExpires(t *testing.T) {
	evs := []matching.Event{
		accepted(3, 5, "i-1", matching.Buy, 43_000_000*kzt, 1*btc),
		trade(3, 1, 5, 1, matching.Buy, 43_000_000*kzt, 1*btc/10),
		done(3, 2, 1, "s-9", matching.Sell, 43_000_000*kzt, 1*btc/10, 1*btc/10, matching.StatusFilled),
		done(3, 3, 5, "i-1", matching.Buy, 43_000_000*kzt, 1*btc, 1*btc/10, matching.StatusExpired),
	}
	got, err := wsapi.OrderFromEvents(evs, symbols())
	if err != nil {
		t.Fatal(err)
	}
	if got.OrderID != 5 || got.Status != "EXPIRED" || got.ExecutedQty != "0.10000000" || got.QuoteQty != "4300000.00" ||
		len(got.Fills) != 1 {
		t.Fatalf("got %+v", got)
	}
}

func TestOrderFromEventsCancel(t *testing.T) {
	// A cancel yields only the order's order_done; its fills were made by
	// earlier commands and are reported as executedQty.
	evs := []matching.Event{done(40, 0, 4, "s-2", matching.Sell, 43_000_000*kzt, 5*btc/10, 2*btc/10, matching.StatusCanceled)}
	got, err := wsapi.OrderFromEvents(evs, symbols())
	if err != nil {
		t.Fatal(err)
	}
	want := wsapi.OrderResult{Symbol: "BTCKZT", OrderID: 4, ClientOrderID: "s-2", Side: "SELL", Price: "43000000.00",
		OrigQty: "0.50000000", ExecutedQty: "0.20000000", QuoteQty: "0.00", Status: "CANCELED"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("\n got %+v\nwant %+v", got, want)
	}
}

func TestOrderFromEventsMandatory(t *testing.T) {
	ev := accepted(2, 1, "m-1", matching.Sell, 43_000_000*kzt, 3*btc/10)
	ev.Purpose = matching.PurposeMandatory
	got, err := wsapi.OrderFromEvents([]matching.Event{ev}, symbols())
	if err != nil || !got.Mandatory {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestOrderFromEventsRejected(t *testing.T) {
	for _, code := range []apperr.Code{apperr.InsufficientFunds, apperr.NotPermitted, apperr.UnknownOrder, apperr.InvalidQuantity} {
		evs := []matching.Event{{Seq: 8, Kind: matching.EvRejected, Account: "a", Symbol: "BTCKZT", ClientID: "c",
			Code: string(code), Message: "because " + string(code)}}
		got, err := wsapi.OrderFromEvents(evs, symbols())
		var ae *apperr.Error
		if !errors.As(err, &ae) {
			t.Fatalf("%s: error %v (%T) is not an *apperr.Error", code, err, err)
		}
		if ae.Code != code || ae.Message != "because "+string(code) {
			t.Fatalf("%s: got %s / %q", code, ae.Code, ae.Message)
		}
		if !reflect.DeepEqual(got, wsapi.OrderResult{}) {
			t.Fatalf("%s: a rejection returned a result %+v", code, got)
		}
		// On the wire: the code's status and the engine's message.
		resp := wsapi.ErrorResponse(json.RawMessage("7"), err)
		if resp.Status != apperr.HTTPStatus(code) || resp.Error.Code != code || resp.Result != nil {
			t.Fatalf("%s: response %+v", code, resp)
		}
	}
}

func TestOrderFromEventsDuplicate(t *testing.T) {
	evs := []matching.Event{{Seq: 12, Kind: matching.EvDuplicate, Account: "a", Symbol: "BTCKZT", ClientID: "s-1", OrderID: 3}}
	got, err := wsapi.OrderFromEvents(evs, symbols())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Duplicate || got.OrderID != 3 || got.ClientOrderID != "s-1" || got.Symbol != "BTCKZT" || len(got.Fills) != 0 {
		t.Fatalf("got %+v", got)
	}
}

// TestOrderFromRealEngine runs the translation over what the engine really
// emits, so the hand-built events above cannot drift from it unnoticed.
func TestOrderFromRealEngine(t *testing.T) {
	e, err := matching.New(matching.DefaultSymbols())
	if err != nil {
		t.Fatal(err)
	}
	apply := func(c matching.Command) []matching.Event {
		t.Helper()
		c.Seq = e.Seq() + 1
		c.Time = 1_700_000_000_000
		evs, err := e.Apply(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	apply(matching.Command{Kind: matching.CmdOpenAccount, Account: "seller", Owner: "s", AccountKind: matching.KindTrader})
	apply(matching.Command{Kind: matching.CmdOpenAccount, Account: "buyer", Owner: "b", AccountKind: matching.KindTrader})
	apply(matching.Command{Kind: matching.CmdDeposit, Account: "seller", Asset: "BTC", Amount: 10 * btc, ExtRef: "d1"})
	apply(matching.Command{Kind: matching.CmdDeposit, Account: "buyer", Asset: "KZT", Amount: 1_000_000_000 * kzt, ExtRef: "d2"})

	order := func(acct string, p wsapi.PlaceParams) (wsapi.OrderResult, error) {
		t.Helper()
		cmd, err := wsapi.PlaceCommand(acct, p, symbols())
		if err != nil {
			t.Fatal(err)
		}
		return wsapi.OrderFromEvents(apply(cmd), symbols())
	}
	s1, err := order("seller", place(nil))
	if err != nil || s1.Status != "NEW" || s1.ExecutedQty != "0.00000000" {
		t.Fatalf("maker: %+v, %v", s1, err)
	}
	s2, err := order("seller", place(func(p *wsapi.PlaceParams) { p.Price = "43400000"; p.NewClientOrderID = "c-2" }))
	if err != nil || s2.Status != "NEW" {
		t.Fatalf("maker 2: %+v, %v", s2, err)
	}
	b, err := order("buyer", place(func(p *wsapi.PlaceParams) {
		p.Side, p.Price, p.Quantity, p.NewClientOrderID = "BUY", "43500000", "0.5", "b-1"
	}))
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != "FILLED" || b.ExecutedQty != "0.50000000" || b.QuoteQty != "21580000.00" || len(b.Fills) != 2 ||
		b.Fills[0].Price != "43000000.00" || b.Fills[1].Quantity != "0.20000000" || b.ClientOrderID != "b-1" {
		t.Fatalf("taker: %+v", b)
	}
	// The second maker is left with 0.1 of 0.3; cancelling reports its 0.2.
	cmd := matching.Command{Kind: matching.CmdCancelOrder, Account: "seller", Symbol: "BTCKZT", ClientID: "c-2"}
	c, err := wsapi.OrderFromEvents(apply(cmd), symbols())
	if err != nil || c.Status != "CANCELED" || c.ExecutedQty != "0.20000000" || c.OrderID != s2.OrderID {
		t.Fatalf("cancel: %+v, %v", c, err)
	}
	dup, err := order("buyer", place(func(p *wsapi.PlaceParams) { p.Side, p.NewClientOrderID = "BUY", "b-1" }))
	if err != nil || !dup.Duplicate || dup.OrderID != b.OrderID {
		t.Fatalf("duplicate: %+v, %v", dup, err)
	}
	_, err = order("buyer", place(func(p *wsapi.PlaceParams) { p.Side, p.Quantity, p.NewClientOrderID = "BUY", "100", "b-2" }))
	if apperr.CodeOf(err) != apperr.InsufficientFunds {
		t.Fatalf("too large: %v", err)
	}
}

// TestSizesRefusedBeforeTheEngine: what the symbol's configuration alone
// rules out never becomes a command, with the engine's codes.
func TestSizesRefusedBeforeTheEngine(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    func(*wsapi.PlaceParams)
		code apperr.Code
		msg  string
	}{
		{"off tick", func(p *wsapi.PlaceParams) { p.Price = "43000000.5" }, apperr.InvalidPrice, "multiple of the tick size 1.00"},
		{"off lot", func(p *wsapi.PlaceParams) { p.Symbol, p.Price, p.Quantity = "ETHKZT", "1500000", "0.0000015" }, apperr.InvalidQuantity, "multiple of the lot size 0.000001000"},
		{"below minimum", func(p *wsapi.PlaceParams) { p.Symbol, p.Price, p.Quantity = "USDTKZT", "500", "0.001" }, apperr.InvalidQuantity, "between 0.010000 and"},
		{"above maximum", func(p *wsapi.PlaceParams) { p.Quantity = "1000.00000001" }, apperr.InvalidQuantity, "and 1000.00000000"},
		{"notional overflow", func(p *wsapi.PlaceParams) { p.Price, p.Quantity = "92233720368547758", "1000" }, apperr.InvalidQuantity, "too large"},
		{"below minimum notional", func(p *wsapi.PlaceParams) { p.Quantity = "0.000001" }, apperr.InvalidQuantity, "minimum notional 100.00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wsapi.PlaceCommand("miner-1", place(tc.p), symbols())
			if apperr.CodeOf(err) != tc.code || !strings.Contains(apperr.MessageOf(err), tc.msg) {
				t.Fatalf("got %v; want %s containing %q", err, tc.code, tc.msg)
			}
		})
	}
	_, err := wsapi.AmendCommand("miner-1", wsapi.AmendParams{Symbol: "BTCKZT", OrderID: 1, NewPrice: "43000000.01"}, symbols())
	if apperr.CodeOf(err) != apperr.InvalidPrice {
		t.Fatalf("amend off tick: %v", err)
	}
	if _, err := wsapi.AmendCommand("miner-1", wsapi.AmendParams{Symbol: "BTCKZT", OrderID: 1, NewQty: "0.00000001"}, symbols()); err != nil {
		t.Fatalf("amend down to one lot: %v", err) // no notional check on an amend: the engine knows the price
	}
}

func TestExchangeInfo(t *testing.T) {
	got := wsapi.ExchangeInfo(matching.DefaultSymbols(), map[string]matching.MarketState{"ETHKZT": {Phase: matching.PhasePreClose, Halted: true}})
	if len(got) != len(matching.DefaultSymbols()) {
		t.Fatalf("%d symbols", len(got))
	}
	want := wsapi.SymbolInfo{Symbol: "BTCKZT", Base: "BTC", Quote: "KZT", TickSize: "1.00", LotSize: "0.00000001",
		MinQty: "0.00000001", MaxQty: "1000.00000000", MinNotional: "100.00", MakerFeeBps: 10, TakerFeeBps: 20, PriceBandBps: 1000, Phase: "continuous"}
	if got[0] != want {
		t.Fatalf("\n got %+v\nwant %+v", got[0], want)
	}
	if got[1].Symbol != "ETHKZT" || got[1].LotSize != "0.000001000" || got[1].TickSize != "1.00" || got[1].Phase != "pre_close" || !got[1].Halted {
		t.Fatalf("ETHKZT: %+v", got[1])
	}
	if got[2].Symbol != "USDTKZT" || got[2].TickSize != "0.01" || got[2].LotSize != "0.010000" || got[2].MaxQty != "10000000.000000" {
		t.Fatalf("USDTKZT: %+v", got[2])
	}
	b, err := json.Marshal(got[0])
	if err != nil {
		t.Fatal(err)
	}
	const wire = `{"symbol":"BTCKZT","baseAsset":"BTC","quoteAsset":"KZT","tickSize":"1.00","stepSize":"0.00000001","minQty":"0.00000001","maxQty":"1000.00000000","minNotional":"100.00","makerFeeBps":10,"takerFeeBps":20,"priceBandBps":1000,"phase":"continuous","halted":false}`
	if string(b) != wire {
		t.Fatalf("wire form %s", b)
	}
}

func TestDecode(t *testing.T) {
	var p wsapi.PlaceParams
	if err := wsapi.Decode(nil, &p); err != nil {
		t.Fatalf("absent params: %v", err)
	}
	if err := wsapi.Decode(json.RawMessage(`{"symbol":"BTCKZT","mandatory":true}`), &p); err != nil || p.Symbol != "BTCKZT" || !p.Mandatory {
		t.Fatalf("%+v, %v", p, err)
	}
	for _, bad := range []string{`[1]`, `{"symbol":1}`, `{"price":43000000}`, `"x"`, `{`} {
		if err := wsapi.Decode(json.RawMessage(bad), &wsapi.PlaceParams{}); apperr.CodeOf(err) != apperr.MalformedJSON {
			t.Errorf("Decode(%s) = %v; want MALFORMED_JSON", bad, err)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"method":"order.place","params":{"symbol":"BTCKZT","side":"SELL","type":"LIMIT","price":"43000000","quantity":"0.3","newClientOrderId":"tour-1","mandatory":true}}`,
		`{"id":"x","method":"order.place","params":{"symbol":"ETHKZT","side":"BUY","type":"LIMIT","timeInForce":"IOC","price":"1.5","quantity":"0.000001","newClientOrderId":"a"}}`,
		`{"id":2,"method":"order.place","params":{"symbol":"BTCKZT","side":"BUY","type":"LIMIT","price":"-1","quantity":"1e9","newClientOrderId":""}}`,
		`{"id":3,"method":"order.place","params":{"price":99999999999999999999999,"quantity":"0.000000001"}}`,
		`{"id":null,"method":"ping"}`,
		`{"id":4,"params":null}`,
		`{"params":[]}`,
		`not json`,
		``,
	} {
		f.Add([]byte(s))
	}
	syms := symbols()
	f.Fuzz(func(t *testing.T, b []byte) {
		var req wsapi.Request
		if err := json.Unmarshal(b, &req); err != nil {
			return // the gateway answers MALFORMED_JSON itself
		}
		var p wsapi.PlaceParams
		if err := wsapi.Decode(req.Params, &p); err != nil {
			if apperr.CodeOf(err) != apperr.MalformedJSON {
				t.Fatalf("Decode(%q) = %v; want MALFORMED_JSON", req.Params, err)
			}
			return
		}
		cmd, err := wsapi.PlaceCommand("acct", p, syms)
		if err != nil {
			if c := apperr.CodeOf(err); c == apperr.Internal || apperr.HTTPStatus(c) != 400 {
				t.Fatalf("PlaceCommand(%+v) = %v; want a client error", p, err)
			}
			return
		}
		s, ok := syms[cmd.Symbol]
		if !ok || cmd.Kind != matching.CmdPlaceOrder || cmd.Account != "acct" || cmd.Type != matching.Limit ||
			cmd.ClientID != p.NewClientOrderID || len(cmd.ClientID) < 1 || len(cmd.ClientID) > 36 ||
			(cmd.Side != matching.Buy && cmd.Side != matching.Sell) || (cmd.TIF != matching.GTC && cmd.TIF != matching.IOC) ||
			cmd.Price < 0 || cmd.Quantity < 0 || (cmd.Purpose == matching.PurposeMandatory) != p.Mandatory {
			t.Fatalf("PlaceCommand(%+v) = %+v", p, cmd)
		}
		// The minor units are exactly the decimal that was sent.
		if back, err := money.Parse(money.Format(cmd.Price, s.QuoteScale), s.QuoteScale); err != nil || back != cmd.Price {
			t.Fatalf("price %q → %d → %d, %v", p.Price, cmd.Price, back, err)
		}
		if back, err := money.Parse(money.Format(cmd.Quantity, s.BaseScale), s.BaseScale); err != nil || back != cmd.Quantity {
			t.Fatalf("quantity %q → %d → %d, %v", p.Quantity, cmd.Quantity, back, err)
		}
	})
}
