package matching_test

// orders_test.go: every order type and time in force, icebergs, self-trade
// prevention, cancel, cancel-all, amend and fees, on testSymbol (base scale
// 0: notional = price × qty tiyn; maker 10 bps, taker 20 bps, fees floored;
// a buy holds ceil(notional) + the 20 bps fee on it). Every rig command also
// checks conservation, non-negative balances and hold consistency.

import (
	"testing"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching"
)

// standardBook rests, in XYZKZT:
//
//	order 1: bob   sells 10 @ 1000   (holds 10 XYZ)
//	order 2: carol sells 10 @ 1010   (holds 10 XYZ)
//	order 3: bob   buys  10 @  990   (holds 9,900 + 19 = 9,919 tiyn)
//	order 4: carol buys  10 @  980   (holds 9,800 + 19 = 9,819 tiyn)
func standardBook(r *rig) {
	r.tb.Helper()
	r.limit("bob", matching.Sell, 1000, 10)
	r.limit("carol", matching.Sell, 1010, 10)
	r.limit("bob", matching.Buy, 990, 10)
	r.limit("carol", matching.Buy, 980, 10)
}

const (
	tBuy  = matching.Buy
	tSell = matching.Sell
)

func TestOrderTypes(t *testing.T) {
	type C = matching.Command
	type K = matching.EventKind
	acc, tr, dn := matching.EvOrderAccepted, matching.EvTrade, matching.EvOrderDone
	const alice = 5 // alice's order, after the standard book's four
	cases := []struct {
		name   string
		cmd    C
		kinds  []K
		trades []tradeOf
		status matching.OrderStatus // how alice's order ends; 0: it rests
		reason string
		kzt    [2]int64 // alice's KZT free, held afterwards (from 1,000,000)
		xyz    [2]int64 // alice's XYZ free, held afterwards (from 1,000)
		check  func(t *testing.T, r *rig, evs []matching.Event)
	}{{
		// Hold 15,075 + 30 = 15,105. 10 @ 1000 (the maker's price): 10,000,
		// taker fee 20, bob's maker fee 10. The rest, 5, rests at 1005 and
		// needs 5,025 + 10 = 5,035: 15,105 − 10,020 − 5,035 = 50 goes back.
		name:  "limit buy trades at the maker's price and rests the rest",
		cmd:   C{Side: tBuy, Price: 1005, Quantity: 15},
		kinds: []K{acc, tr, dn}, trades: []tradeOf{{1000, 10, 20, 10, alice, 1, tBuy}},
		kzt: [2]int64{1_000_000 - 15_105 + 50, 5_035}, xyz: [2]int64{1_010, 0},
		check: func(t *testing.T, r *rig, evs []matching.Event) {
			if o, _ := r.e.Order(alice); o.Remaining != 5 || o.Held != 5_035 || o.Quantity != 15 {
				t.Fatalf("rest = %+v", o)
			}
			if bids, _ := r.e.Depth("XYZKZT", 1); bids[0] != (matching.Level{Price: 1005, Quantity: 5, Orders: 1}) {
				t.Fatalf("best bid = %v", bids)
			}
		},
	}, {
		// 10 @ 990: 9,900; alice (taker) pays 19.8 → 19, bob (maker) 9.9 → 9.
		name: "limit sell", cmd: C{Side: tSell, Price: 985, Quantity: 15},
		kinds: []K{acc, tr, dn}, trades: []tradeOf{{990, 10, 9, 19, 3, alice, tSell}},
		kzt: [2]int64{1_000_000 + 9_900 - 19, 0}, xyz: [2]int64{985, 5},
	}, {
		// 10 @ 990 as above, then 5 @ 980: 4,900, fees 9.8 → 9 and 4.9 → 4.
		name: "market sell walks the bids", cmd: C{Side: tSell, Type: matching.Market, Quantity: 15},
		kinds:  []K{acc, tr, dn, tr, dn},
		trades: []tradeOf{{990, 10, 9, 19, 3, alice, tSell}, {980, 5, 4, 9, 4, alice, tSell}},
		status: matching.StatusFilled,
		kzt:    [2]int64{1_000_000 + 9_881 + 4_891, 0}, xyz: [2]int64{985, 0},
	}, {
		// 10 @ 990 and 10 @ 980 (9,800: fees 19 and 9); 5 left, released.
		name: "market sell beyond the book expires the rest", cmd: C{Side: tSell, Type: matching.Market, Quantity: 25},
		kinds:  []K{acc, tr, dn, tr, dn, dn},
		trades: []tradeOf{{990, 10, 9, 19, 3, alice, tSell}, {980, 10, 9, 19, 4, alice, tSell}},
		status: matching.StatusExpired, reason: matching.ReasonMarket,
		kzt: [2]int64{1_000_000 + 9_881 + 9_781, 0}, xyz: [2]int64{980, 0},
	}, {
		// Hold: the asks as they stand, 10 @ 1000 (10,000 + 20) and 5 @ 1010
		// (5,050 + 10.1 → 10) = 15,080, all of it spent: fees 20 and 10,
		// makers 10 and 5.05 → 5.
		name: "market buy by quantity", cmd: C{Side: tBuy, Type: matching.Market, Quantity: 15},
		kinds:  []K{acc, tr, dn, tr, dn},
		trades: []tradeOf{{1000, 10, 20, 10, alice, 1, tBuy}, {1010, 5, 10, 5, alice, 2, tBuy}},
		status: matching.StatusFilled,
		kzt:    [2]int64{1_000_000 - 15_080, 0}, xyz: [2]int64{1_015, 0},
		check: func(t *testing.T, r *rig, evs []matching.Event) {
			if a := evs[0]; a.Price != 0 || a.Quantity != 15 || a.TIF != matching.IOC || a.Type != matching.Market {
				t.Fatalf("accepted = %+v", a)
			}
		},
	}, {
		// Budget 15,000 (fees included). At 1000 it could afford 14
		// (14,000 + 28) but 10 are offered: 10,020 spent, 4,980 left. At 1010:
		// 4 cost 4,040 + 8.08 → 8 = 4,048 ≤ 4,980, 5 would cost 5,060. 932
		// left cannot buy one more (1,010 + 2): filled, 932 released.
		name: "market buy by quote amount", cmd: C{Side: tBuy, Type: matching.Market, QuoteQty: 15_000},
		kinds:  []K{acc, tr, dn, tr, dn},
		trades: []tradeOf{{1000, 10, 20, 10, alice, 1, tBuy}, {1010, 4, 8, 4, alice, 2, tBuy}},
		status: matching.StatusFilled,
		kzt:    [2]int64{1_000_000 - 10_020 - 4_048, 0}, xyz: [2]int64{1_014, 0},
		check: func(t *testing.T, r *rig, evs []matching.Event) {
			if a := evs[0]; a.Quantity != 0 || a.Amount != 15_000 {
				t.Fatalf("accepted = %+v", a)
			}
			if d := doneOf(t, evs, alice); d.Quantity != 14 || d.Filled != 14 || d.Amount != 932 || d.Remaining != 0 {
				t.Fatalf("done = %+v", d)
			}
		},
	}, {
		// Budget 12,044: 10 @ 1000 for 10,020 leaves 2,024. 2 @ 1010 cost
		// 2,020 + 4.04 → 4 = 2,024: the floored fee makes it affordable
		// (unfloored it would be 2,024.04). Nothing is left.
		name: "market buy by quote amount: the floored fee buys the last lot", cmd: C{Side: tBuy, Type: matching.Market, QuoteQty: 12_044},
		kinds:  []K{acc, tr, dn, tr, dn},
		trades: []tradeOf{{1000, 10, 20, 10, alice, 1, tBuy}, {1010, 2, 4, 2, alice, 2, tBuy}},
		status: matching.StatusFilled,
		kzt:    [2]int64{1_000_000 - 12_044, 0}, xyz: [2]int64{1_012, 0},
		check: func(t *testing.T, r *rig, evs []matching.Event) {
			if d := doneOf(t, evs, alice); d.Quantity != 12 || d.Amount != 0 {
				t.Fatalf("done = %+v", d)
			}
		},
	}, {
		// One lot at 1000 costs 1,000 + 2: a budget of 1,001 buys nothing.
		name: "market buy by quote amount that cannot afford one lot", cmd: C{Side: tBuy, Type: matching.Market, QuoteQty: 1_001},
		kinds:  []K{acc, dn},
		status: matching.StatusExpired, reason: matching.ReasonMarket,
		kzt: [2]int64{1_000_000, 0}, xyz: [2]int64{1_000, 0},
		check: func(t *testing.T, r *rig, evs []matching.Event) {
			if d := doneOf(t, evs, alice); d.Quantity != 0 || d.Amount != 1_001 {
				t.Fatalf("done = %+v", d)
			}
		},
	}, {
		name: "IOC fills what it can and expires the rest", cmd: C{Side: tBuy, TIF: matching.IOC, Price: 1005, Quantity: 15},
		kinds:  []K{acc, tr, dn, dn},
		trades: []tradeOf{{1000, 10, 20, 10, alice, 1, tBuy}},
		status: matching.StatusExpired, reason: matching.ReasonIOC,
		kzt: [2]int64{1_000_000 - 10_020, 0}, xyz: [2]int64{1_010, 0},
	}, {
		name: "IOC that cannot trade", cmd: C{Side: tBuy, TIF: matching.IOC, Price: 995, Quantity: 10},
		kinds:  []K{acc, dn},
		status: matching.StatusExpired, reason: matching.ReasonIOC,
		kzt: [2]int64{1_000_000, 0}, xyz: [2]int64{1_000, 0},
	}, {
		// 10 @ 1000 + 5 @ 1010 are there: it fills (as the market buy).
		name: "FOK fills completely", cmd: C{Side: tBuy, TIF: matching.FOK, Price: 1010, Quantity: 15},
		kinds:  []K{acc, tr, dn, tr, dn},
		trades: []tradeOf{{1000, 10, 20, 10, alice, 1, tBuy}, {1010, 5, 10, 5, alice, 2, tBuy}},
		status: matching.StatusFilled,
		kzt:    [2]int64{1_000_000 - 15_080, 0}, xyz: [2]int64{1_015, 0},
	}, {
		// Only 20 are offered at or below 1010: killed, nothing trades.
		name: "FOK buy is killed", cmd: C{Side: tBuy, TIF: matching.FOK, Price: 1010, Quantity: 25},
		kinds:  []K{acc, dn},
		status: matching.StatusExpired, reason: matching.ReasonFOK,
		kzt: [2]int64{1_000_000, 0}, xyz: [2]int64{1_000, 0},
		check: func(t *testing.T, r *rig, evs []matching.Event) {
			if _, asks := r.e.Depth("XYZKZT", 5); len(asks) != 2 || asks[0].Quantity != 10 {
				t.Fatalf("asks = %v", asks)
			}
		},
	}, {
		// Only 10 are bid at or above 990.
		name: "FOK sell is killed", cmd: C{Side: tSell, TIF: matching.FOK, Price: 990, Quantity: 15},
		kinds:  []K{acc, dn},
		status: matching.StatusExpired, reason: matching.ReasonFOK,
		kzt: [2]int64{1_000_000, 0}, xyz: [2]int64{1_000, 0},
	}, {
		// 9,950 + 19.9 → 19 = 9,969 held.
		name: "GTC rests", cmd: C{Side: tBuy, Price: 995, Quantity: 10},
		kinds: []K{acc}, kzt: [2]int64{1_000_000 - 9_969, 9_969}, xyz: [2]int64{1_000, 0},
	}, {
		name: "GTD rests", cmd: C{Side: tBuy, TIF: matching.GTD, ExpireAt: rigT0 + 60_000, Price: 995, Quantity: 10},
		kinds: []K{acc}, kzt: [2]int64{1_000_000 - 9_969, 9_969}, xyz: [2]int64{1_000, 0},
		check: func(t *testing.T, r *rig, evs []matching.Event) {
			if o, _ := r.e.Order(alice); o.TIF != matching.GTD || o.ExpireAt != rigT0+60_000 {
				t.Fatalf("order = %+v", o)
			}
		},
	}, {
		name: "post-only rests", cmd: C{Side: tSell, PostOnly: true, Price: 1005, Quantity: 10},
		kinds: []K{acc}, kzt: [2]int64{1_000_000, 0}, xyz: [2]int64{990, 10},
		check: func(t *testing.T, r *rig, evs []matching.Event) {
			if o, _ := r.e.Order(alice); !o.PostOnly || o.TIF != matching.GTC {
				t.Fatalf("order = %+v", o)
			}
		},
	}, {
		// An incoming iceberg trades its whole quantity, then shows 5 of
		// the 20 left. Hold 30,060; 10,020 spent; 20,040 = 20,000 + 40 kept.
		name: "iceberg taker trades beyond its display", cmd: C{Side: tBuy, Price: 1000, Quantity: 30, DisplayQty: 5},
		kinds:  []K{acc, tr, dn},
		trades: []tradeOf{{1000, 10, 20, 10, alice, 1, tBuy}},
		kzt:    [2]int64{1_000_000 - 30_060, 20_040}, xyz: [2]int64{1_010, 0},
		check: func(t *testing.T, r *rig, evs []matching.Event) {
			if bids, _ := r.e.Depth("XYZKZT", 1); bids[0] != (matching.Level{Price: 1000, Quantity: 5, Orders: 1}) {
				t.Fatalf("best bid = %v", bids)
			}
			if o, _ := r.e.Order(alice); o.Remaining != 20 || o.Visible != 5 || o.Display != 5 {
				t.Fatalf("order = %+v", o)
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTradersRig(t)
			standardBook(r)
			c.cmd.Account = "alice"
			evs := r.place(c.cmd)
			mustKind(t, evs, c.kinds...)
			wantTrades(t, evs, c.trades...)
			if evs[0].OrderID != alice {
				t.Fatalf("accepted = %+v", evs[0])
			}
			if c.status == 0 {
				if _, open := r.e.Order(alice); !open {
					t.Fatal("alice's order does not rest")
				}
			} else if d := doneOf(t, evs, alice); d.Status != c.status || d.Reason != c.reason {
				t.Fatalf("alice's order ended %s/%q; want %s/%q", d.Status, d.Reason, c.status, c.reason)
			}
			r.wantBal("alice", "KZT", c.kzt[0], c.kzt[1])
			r.wantBal("alice", "XYZ", c.xyz[0], c.xyz[1])
			var fees int64
			for _, tr := range c.trades {
				fees += tr.BuyerFee + tr.SellerFee
			}
			r.wantBal(matching.DefaultFeeAccount, "KZT", fees, 0)
			if c.check != nil {
				c.check(t, r, evs)
			}
		})
	}
}

func TestOrderRejections(t *testing.T) {
	type C = matching.Command
	cases := []struct {
		name string
		cmd  C // alice's; Account, Symbol and ClientID default
		code apperr.Code
	}{
		{"post-only buy would take", C{Side: tBuy, PostOnly: true, Price: 1000, Quantity: 10}, apperr.WouldTake},
		{"post-only sell would take", C{Side: tSell, PostOnly: true, Price: 990, Quantity: 10}, apperr.WouldTake},
		{"post-only IOC", C{Side: tBuy, PostOnly: true, TIF: matching.IOC, Price: 995, Quantity: 10}, apperr.InvalidParameter},
		{"post-only FOK", C{Side: tBuy, PostOnly: true, TIF: matching.FOK, Price: 995, Quantity: 10}, apperr.InvalidParameter},
		{"iceberg IOC", C{Side: tBuy, TIF: matching.IOC, Price: 995, Quantity: 10, DisplayQty: 5}, apperr.InvalidParameter},
		{"iceberg display equals quantity", C{Side: tBuy, Price: 995, Quantity: 10, DisplayQty: 10}, apperr.InvalidQuantity},
		{"negative display", C{Side: tBuy, Price: 995, Quantity: 10, DisplayQty: -1}, apperr.InvalidQuantity},
		{"GTD without expiry", C{Side: tBuy, TIF: matching.GTD, Price: 995, Quantity: 10}, apperr.InvalidParameter},
		{"GTD expiring now", C{Side: tBuy, TIF: matching.GTD, ExpireAt: rigT0, Price: 995, Quantity: 10}, apperr.InvalidParameter},
		{"expiry on GTC", C{Side: tBuy, ExpireAt: rigT0 + 1, Price: 995, Quantity: 10}, apperr.InvalidParameter},
		{"bad time in force", C{Side: tBuy, TIF: 5, Price: 995, Quantity: 10}, apperr.InvalidParameter},
		{"zero price", C{Side: tBuy, Quantity: 10}, apperr.InvalidPrice},
		{"below the minimum notional", C{Side: tBuy, Price: 999, Quantity: 1}, apperr.InvalidQuantity}, // 999 < 1,000
		{"above the maximum quantity", C{Side: tSell, Price: 1, Quantity: 1_000_001}, apperr.InvalidQuantity},
		{"limit with a quote amount", C{Side: tBuy, Price: 995, Quantity: 10, QuoteQty: 10_000}, apperr.InvalidParameter},
		// 1,005 @ 995: 999,975 + 1,999 = 1,001,974 > 1,000,000.
		{"insufficient KZT", C{Side: tBuy, Price: 995, Quantity: 1_005}, apperr.InsufficientFunds},
		{"insufficient XYZ", C{Side: tSell, Price: 1_100, Quantity: 1_001}, apperr.InsufficientFunds},
		{"market with a price", C{Side: tBuy, Type: matching.Market, Price: 995, Quantity: 10}, apperr.InvalidPrice},
		{"market GTC", C{Side: tBuy, Type: matching.Market, TIF: matching.GTC, Quantity: 10}, apperr.InvalidParameter},
		{"market FOK", C{Side: tBuy, Type: matching.Market, TIF: matching.FOK, Quantity: 10}, apperr.InvalidParameter},
		{"market post-only", C{Side: tBuy, Type: matching.Market, PostOnly: true, Quantity: 10}, apperr.InvalidParameter},
		{"market iceberg", C{Side: tSell, Type: matching.Market, Quantity: 10, DisplayQty: 5}, apperr.InvalidParameter},
		{"market with expiry", C{Side: tSell, Type: matching.Market, Quantity: 10, ExpireAt: rigT0 + 1}, apperr.InvalidParameter},
		{"market buy with quantity and quote amount", C{Side: tBuy, Type: matching.Market, Quantity: 10, QuoteQty: 10_000}, apperr.InvalidParameter},
		{"market buy with neither", C{Side: tBuy, Type: matching.Market}, apperr.InvalidParameter},
		{"market sell with a quote amount", C{Side: tSell, Type: matching.Market, QuoteQty: 10_000}, apperr.InvalidParameter},
		{"market sell of nothing", C{Side: tSell, Type: matching.Market}, apperr.InvalidQuantity},
		{"quote amount below the minimum notional", C{Side: tBuy, Type: matching.Market, QuoteQty: 999}, apperr.InvalidQuantity},
		{"negative quote amount", C{Side: tBuy, Type: matching.Market, QuoteQty: -1}, apperr.InvalidQuantity},
		{"quote amount beyond the balance", C{Side: tBuy, Type: matching.Market, QuoteQty: 1_000_001}, apperr.InsufficientFunds},
		{"market sell beyond the balance", C{Side: tSell, Type: matching.Market, Quantity: 1_001}, apperr.InsufficientFunds},
		{"unknown account", C{Account: "zed", Side: tBuy, Price: 995, Quantity: 10}, apperr.UnknownAccount},
		{"unknown symbol", C{Symbol: "NOPE", Side: tBuy, Price: 995, Quantity: 10}, apperr.UnknownSymbol},
		{"fee account", C{Account: matching.DefaultFeeAccount, Side: tBuy, Price: 995, Quantity: 10}, apperr.NotPermitted},
		{"bad STP mode", C{Side: tBuy, Price: 995, Quantity: 10, STP: 5}, apperr.InvalidParameter},
		{"bad purpose", C{Side: tSell, Price: 995, Quantity: 10, Purpose: 2}, apperr.InvalidParameter},
		{"mandatory without the permission", C{Side: tSell, Price: 995, Quantity: 10, Purpose: matching.PurposeMandatory}, apperr.NotPermitted},
		{"obligation without mandatory", C{Side: tSell, Price: 995, Quantity: 10, Obligation: "o-1"}, apperr.InvalidParameter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTradersRig(t)
			standardBook(r)
			c.cmd.Kind = matching.CmdPlaceOrder
			if c.cmd.Account == "" {
				c.cmd.Account = "alice"
			}
			if c.cmd.Symbol == "" {
				c.cmd.Symbol = "XYZKZT"
			}
			if c.cmd.Type == 0 {
				c.cmd.Type = matching.Limit
			}
			c.cmd.ClientID = "rejected"
			rej := r.refuse(c.cmd, c.code)
			if rej.Account != c.cmd.Account || rej.ClientID != "rejected" || rej.Message == "" {
				t.Fatalf("rejection = %+v", rej)
			}
			// A refused order's client ID stays free.
			mustKind(t, r.place(matching.Command{Account: "alice", ClientID: "rejected", Side: tBuy, Price: 995, Quantity: 10}), matching.EvOrderAccepted)
		})
	}
}

// TestMarketBuyHold: a market buy by quantity holds what the asks as they
// stand would cost with the larger fee, and needs that much free.
func TestMarketBuyHold(t *testing.T) {
	r := newTradersRig(t)
	standardBook(r)
	r.openAccount("erin", "erin-co")
	r.fund("erin", "KZT", 15_079) // 15 cost 10,020 + 5,060 = 15,080
	r.refuse(matching.Command{Kind: matching.CmdPlaceOrder, Account: "erin", Symbol: "XYZKZT", ClientID: "m",
		Side: tBuy, Type: matching.Market, Quantity: 15}, apperr.InsufficientFunds)
	r.fund("erin", "KZT", 1)
	evs := r.place(matching.Command{Account: "erin", Side: tBuy, Type: matching.Market, Quantity: 15})
	if d := doneOf(t, evs, 5); d.Status != matching.StatusFilled {
		t.Fatalf("done = %+v", d)
	}
	r.wantBal("erin", "KZT", 0, 0)
	r.wantBal("erin", "XYZ", 15, 0)
	// On an empty ask side a market buy holds nothing and expires.
	r.ok(matching.Command{Kind: matching.CmdCancelOrder, Account: "carol", OrderID: 2})
	evs = r.place(matching.Command{Account: "erin", Side: tBuy, Type: matching.Market, Quantity: 15})
	if d := doneOf(t, evs, 6); d.Status != matching.StatusExpired || d.Reason != matching.ReasonMarket || len(tradesOf(evs)) != 0 {
		t.Fatalf("events = %+v", evs)
	}
}

// TestMarketBuyByQuoteOnEmptyBook: nothing to buy: the whole budget comes back.
func TestMarketBuyByQuoteOnEmptyBook(t *testing.T) {
	r := newTradersRig(t)
	evs := r.place(matching.Command{Account: "alice", Side: tBuy, Type: matching.Market, QuoteQty: 50_000})
	mustKind(t, evs, matching.EvOrderAccepted, matching.EvOrderDone)
	if d := evs[1]; d.Status != matching.StatusExpired || d.Reason != matching.ReasonMarket || d.Amount != 50_000 {
		t.Fatalf("done = %+v", d)
	}
	r.wantBal("alice", "KZT", 1_000_000, 0)
}

func TestGTDExpiry(t *testing.T) {
	r := newTradersRig(t)
	// alice bids 10 @ 995 until rigT0 + 1000: holds 9,969.
	id := r.place(matching.Command{Account: "alice", Side: tBuy, TIF: matching.GTD, ExpireAt: rigT0 + 1_000, Price: 995, Quantity: 10})[0].OrderID
	r.wantBal("alice", "KZT", 1_000_000-9_969, 9_969)
	r.now = rigT0 + 999
	mustKind(t, r.tick(), matching.EvAck)
	if _, open := r.e.Order(id); !open {
		t.Fatal("expired early")
	}
	// A command at the expiry time expires the order before it is applied:
	// bob's sell at 995 does not trade with it.
	r.now = rigT0 + 1_000
	evs := r.place(matching.Command{Account: "bob", Side: tSell, Price: 995, Quantity: 10})
	mustKind(t, evs, matching.EvOrderDone, matching.EvOrderAccepted)
	if d := evs[0]; d.OrderID != id || d.Status != matching.StatusExpired || d.Reason != matching.ReasonExpired || !d.Timer {
		t.Fatalf("expiry = %+v", d)
	}
	if evs[1].Timer || evs[1].Index != 1 {
		t.Fatalf("the command's own event = %+v", evs[1])
	}
	r.wantBal("alice", "KZT", 1_000_000, 0)
	// Via ticks: expiries go in expiry order, then order ID.
	a := r.place(matching.Command{Account: "alice", Side: tBuy, TIF: matching.GTD, ExpireAt: rigT0 + 3_000, Price: 990, Quantity: 10})[0].OrderID
	b := r.place(matching.Command{Account: "carol", Side: tBuy, TIF: matching.GTD, ExpireAt: rigT0 + 2_500, Price: 990, Quantity: 10})[0].OrderID
	c := r.place(matching.Command{Account: "dave", Side: tBuy, TIF: matching.GTD, ExpireAt: rigT0 + 2_500, Price: 980, Quantity: 10})[0].OrderID
	r.now = rigT0 + 10_000
	evs = r.tick()
	mustKind(t, evs, matching.EvOrderDone, matching.EvOrderDone, matching.EvOrderDone)
	for i, want := range []uint64{b, c, a} {
		if evs[i].OrderID != want || !evs[i].Timer || evs[i].Reason != matching.ReasonExpired {
			t.Fatalf("expiry %d = %+v; want order %d", i, evs[i], want)
		}
	}
	if bids, _ := r.e.Depth("XYZKZT", 5); len(bids) != 0 {
		t.Fatalf("bids = %v", bids)
	}
	for _, acct := range []string{"alice", "carol", "dave"} {
		r.wantBal(acct, "KZT", 1_000_000, 0)
	}
}

func TestIceberg(t *testing.T) {
	r := newTradersRig(t)
	// alice: 30 @ 1000 showing 10; then bob: 10 @ 1000.
	evs := r.place(matching.Command{Account: "alice", Side: tSell, Price: 1000, Quantity: 30, DisplayQty: 10})
	if lv := ofKind(evs, matching.EvLevel); len(lv) != 1 || lv[0].Quantity != 10 || lv[0].Orders != 1 {
		t.Fatalf("level = %+v", lv)
	}
	r.wantBal("alice", "XYZ", 970, 30) // the whole quantity is held
	r.limit("bob", tSell, 1000, 10)
	if _, asks := r.e.Depth("XYZKZT", 5); len(asks) != 1 || asks[0] != (matching.Level{Price: 1000, Quantity: 20, Orders: 2}) {
		t.Fatalf("asks = %v", asks)
	}
	// carol buys 15: alice's visible 10 first (10,000: fees 20 and 10), then
	// her next slice goes behind bob, who sells 5 (5,000: fees 10 and 5).
	evs = r.place(matching.Command{Account: "carol", Side: tBuy, Price: 1000, Quantity: 15})
	wantTrades(t, evs, tradeOf{1000, 10, 20, 10, 3, 1, tBuy}, tradeOf{1000, 5, 10, 5, 3, 2, tBuy})
	if lv := ofKind(evs, matching.EvLevel); len(lv) != 1 || lv[0].Quantity != 15 || lv[0].Orders != 2 {
		t.Fatalf("level = %+v", lv) // bob's 5 + alice's new slice of 10
	}
	asks := r.e.BookOrders("XYZKZT", tSell)
	if len(asks) != 2 || asks[0].ID != 2 || asks[0].Remaining != 5 || asks[1].ID != 1 || asks[1].Visible != 10 || asks[1].Remaining != 20 {
		t.Fatalf("asks = %+v", asks)
	}
	// carol buys 10: bob's 5, then 5 of alice's slice.
	evs = r.place(matching.Command{Account: "carol", Side: tBuy, Price: 1000, Quantity: 10})
	wantTrades(t, evs, tradeOf{1000, 5, 10, 5, 4, 2, tBuy}, tradeOf{1000, 5, 10, 5, 4, 1, tBuy})
	if _, asks := r.e.Depth("XYZKZT", 5); asks[0] != (matching.Level{Price: 1000, Quantity: 5, Orders: 1}) {
		t.Fatalf("asks = %v", asks)
	}
	// carol buys 8: the last 5 of the slice, a fresh slice of 10, 3 of it.
	evs = r.place(matching.Command{Account: "carol", Side: tBuy, Price: 1000, Quantity: 8})
	wantTrades(t, evs, tradeOf{1000, 5, 10, 5, 5, 1, tBuy}, tradeOf{1000, 3, 6, 3, 5, 1, tBuy})
	if o, _ := r.e.Order(1); o.Remaining != 7 || o.Visible != 7 || o.Display != 10 {
		t.Fatalf("iceberg = %+v", o)
	}
	if _, asks := r.e.Depth("XYZKZT", 5); asks[0] != (matching.Level{Price: 1000, Quantity: 7, Orders: 1}) {
		t.Fatalf("asks = %v", asks)
	}
	// alice sold 23: 9,990 + 4,995 + 4,995 + 2,997.
	r.wantBal("alice", "XYZ", 970, 7)
	r.wantBal("alice", "KZT", 1_000_000+22_977, 0)
}

func TestSelfTradePrevention(t *testing.T) {
	acc, tr, dn := matching.EvOrderAccepted, matching.EvTrade, matching.EvOrderDone
	// The book: bob sells 5 @ 1000 (order 1), alice2 (alice's owner) 10 @
	// 1000 (2), carol 10 @ 1010 (3). The taker (order 4) buys 20 @ 1010.
	// 5 @ 1000 from bob: 5,000, taker fee 10, maker fee 5.
	bob := tradeOf{1000, 5, 10, 5, 4, 1, tBuy}
	cases := []struct {
		name   string
		taker  string
		stp    matching.STPMode
		prep   func(r *rig)
		kinds  []matching.EventKind
		trades []tradeOf
		done   map[uint64][2]string // order → status, reason
		kzt    [2]int64             // the taker's
		open   map[uint64]int64     // open orders → remaining
	}{{
		name: "expire_taker by default", taker: "alice",
		kinds: []matching.EventKind{acc, tr, dn, dn}, trades: []tradeOf{bob},
		done: map[uint64][2]string{1: {"filled", ""}, 4: {"expired", "self_trade"}},
		kzt:  [2]int64{1_000_000 - 5_010, 0}, open: map[uint64]int64{2: 10, 3: 10},
	}, {
		name: "expire_taker", taker: "alice", stp: matching.STPExpireTaker,
		kinds: []matching.EventKind{acc, tr, dn, dn}, trades: []tradeOf{bob},
		done: map[uint64][2]string{1: {"filled", ""}, 4: {"expired", "self_trade"}},
		kzt:  [2]int64{1_000_000 - 5_010, 0}, open: map[uint64]int64{2: 10, 3: 10},
	}, {
		// alice2's order expires; 10 @ 1010 from carol (10,100: fees 20.2 →
		// 20, 10.1 → 10); 5 rest @ 1010 holding 5,050 + 10 = 5,060.
		name: "expire_maker", taker: "alice", stp: matching.STPExpireMaker,
		kinds: []matching.EventKind{acc, tr, dn, dn, tr, dn}, trades: []tradeOf{bob, {1010, 10, 20, 10, 4, 3, tBuy}},
		done: map[uint64][2]string{1: {"filled", ""}, 2: {"expired", "self_trade"}, 3: {"filled", ""}},
		kzt:  [2]int64{1_000_000 - 5_010 - 10_120 - 5_060, 5_060}, open: map[uint64]int64{4: 5},
	}, {
		name: "expire_both", taker: "alice", stp: matching.STPExpireBoth,
		kinds: []matching.EventKind{acc, tr, dn, dn, dn}, trades: []tradeOf{bob},
		done: map[uint64][2]string{1: {"filled", ""}, 2: {"expired", "self_trade"}, 4: {"expired", "self_trade"}},
		kzt:  [2]int64{1_000_000 - 5_010, 0}, open: map[uint64]int64{3: 10},
	}, {
		// Both lose 10: alice2's order (10) expires, the taker goes on with 5
		// and buys them from carol (5,050: fees 10 and 5).
		name: "decrement", taker: "alice", stp: matching.STPDecrement,
		kinds: []matching.EventKind{acc, tr, dn, dn, tr, dn}, trades: []tradeOf{bob, {1010, 5, 10, 5, 4, 3, tBuy}},
		done: map[uint64][2]string{1: {"filled", ""}, 2: {"expired", "self_trade"}, 4: {"filled", ""}},
		kzt:  [2]int64{1_000_000 - 5_010 - 5_060, 0}, open: map[uint64]int64{3: 5},
	}, {
		name: "account default expire_maker (set_stp)", taker: "alice",
		prep: func(r *rig) {
			evs := r.ok(matching.Command{Kind: matching.CmdSetSTP, Account: "alice", STP: matching.STPExpireMaker})
			mustKind(r.tb, evs, matching.EvSTPSet)
			if evs[0].STP != matching.STPExpireMaker {
				r.tb.Fatalf("stp_set = %+v", evs[0])
			}
		},
		kinds: []matching.EventKind{acc, tr, dn, dn, tr, dn}, trades: []tradeOf{bob, {1010, 10, 20, 10, 4, 3, tBuy}},
		done: map[uint64][2]string{1: {"filled", ""}, 2: {"expired", "self_trade"}, 3: {"filled", ""}},
		kzt:  [2]int64{1_000_000 - 5_010 - 10_120 - 5_060, 5_060}, open: map[uint64]int64{4: 5},
	}, {
		name: "the order's mode overrides the account default", taker: "alice", stp: matching.STPExpireTaker,
		prep: func(r *rig) {
			r.ok(matching.Command{Kind: matching.CmdSetSTP, Account: "alice", STP: matching.STPExpireMaker})
		},
		kinds: []matching.EventKind{acc, tr, dn, dn}, trades: []tradeOf{bob},
		done: map[uint64][2]string{1: {"filled", ""}, 4: {"expired", "self_trade"}},
		kzt:  [2]int64{1_000_000 - 5_010, 0}, open: map[uint64]int64{2: 10, 3: 10},
	}, {
		name: "account default decrement (open_account)", taker: "alice3",
		prep: func(r *rig) {
			evs := r.ok(matching.Command{Kind: matching.CmdOpenAccount, Account: "alice3", Owner: "alice-co",
				AccountKind: matching.KindTrader, STP: matching.STPDecrement})
			if evs[0].STP != matching.STPDecrement {
				r.tb.Fatalf("opened = %+v", evs[0])
			}
			r.fund("alice3", "KZT", 1_000_000)
		},
		kinds: []matching.EventKind{acc, tr, dn, dn, tr, dn}, trades: []tradeOf{bob, {1010, 5, 10, 5, 4, 3, tBuy}},
		done: map[uint64][2]string{1: {"filled", ""}, 2: {"expired", "self_trade"}, 4: {"filled", ""}},
		kzt:  [2]int64{1_000_000 - 5_010 - 5_060, 0}, open: map[uint64]int64{3: 5},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newTradersRig(t)
			r.limit("bob", tSell, 1000, 5)
			r.limit("alice2", tSell, 1000, 10)
			r.limit("carol", tSell, 1010, 10)
			if c.prep != nil {
				c.prep(r)
			}
			evs := r.place(matching.Command{Account: c.taker, Side: tBuy, Price: 1010, Quantity: 20, STP: c.stp})
			mustKind(t, evs, c.kinds...)
			wantTrades(t, evs, c.trades...)
			for id, want := range c.done {
				if d := doneOf(t, evs, id); d.Status.String() != want[0] || d.Reason != want[1] {
					t.Errorf("order %d ended %s/%q; want %s/%q", id, d.Status, d.Reason, want[0], want[1])
				}
			}
			if o, ok := r.e.Order(4); ok && o.STP == matching.STPDefault {
				t.Errorf("resting order with an unresolved STP mode: %+v", o)
			}
			r.wantBal(c.taker, "KZT", c.kzt[0], c.kzt[1])
			for id := uint64(1); id <= 4; id++ {
				o, open := r.e.Order(id)
				want, wantOpen := c.open[id]
				if open != wantOpen || open && o.Remaining != want {
					t.Errorf("order %d open %v (%+v); want open %v remaining %d", id, open, o, wantOpen, want)
				}
			}
			// alice2's hold follows its order: 10 held while it rests, none after.
			if _, open := r.e.Order(2); open {
				r.wantBal("alice2", "XYZ", 990, 10)
			} else {
				r.wantBal("alice2", "XYZ", 1_000, 0)
			}
		})
	}
	t.Run("decrement: the smaller taker expires, the maker shrinks", func(t *testing.T) {
		r := newTradersRig(t)
		r.limit("bob", tSell, 1000, 5)
		r.limit("alice2", tSell, 1000, 30)
		evs := r.place(matching.Command{Account: "alice", Side: tBuy, Price: 1010, Quantity: 20, STP: matching.STPDecrement})
		mustKind(t, evs, acc, tr, dn, matching.EvOrderAmended, dn)
		wantTrades(t, evs, tradeOf{1000, 5, 10, 5, 3, 1, tBuy})
		// The maker's new size is said (its owner and the order book's
		// mirror learn it), keeping its place.
		if am := ofKind(evs, matching.EvOrderAmended)[0]; am.OrderID != 2 || am.Quantity != 15 || am.Remaining != 15 ||
			!am.KeepsPriority || am.Reason != matching.ReasonSelfTrade || am.Status != matching.StatusNew {
			t.Fatalf("maker amended = %+v", am)
		}
		// The taker's 15 left and alice2's 30 both lose 15: the taker is 0.
		if d := doneOf(t, evs, 3); d.Status != matching.StatusExpired || d.Reason != matching.ReasonSelfTrade || d.Quantity != 5 || d.Filled != 5 {
			t.Fatalf("taker done = %+v", d)
		}
		if o, _ := r.e.Order(2); o.Quantity != 15 || o.Remaining != 15 || o.Held != 15 {
			t.Fatalf("maker = %+v", o)
		}
		r.wantBal("alice2", "XYZ", 985, 15)
		r.wantBal("alice", "KZT", 1_000_000-5_010, 0)
		if _, asks := r.e.Depth("XYZKZT", 5); asks[0] != (matching.Level{Price: 1000, Quantity: 15, Orders: 1}) {
			t.Fatalf("asks = %v", asks)
		}
	})
	t.Run("set_stp refusals", func(t *testing.T) {
		r := newTradersRig(t)
		r.refuse(matching.Command{Kind: matching.CmdSetSTP, Account: "alice"}, apperr.InvalidParameter)
		r.refuse(matching.Command{Kind: matching.CmdSetSTP, Account: "alice", STP: 9}, apperr.InvalidParameter)
		r.refuse(matching.Command{Kind: matching.CmdSetSTP, Account: "zed", STP: matching.STPDecrement}, apperr.UnknownAccount)
		r.refuse(matching.Command{Kind: matching.CmdOpenAccount, Account: "x", Owner: "x", AccountKind: matching.KindTrader, STP: 9}, apperr.InvalidParameter)
	})
}

func TestCancel(t *testing.T) {
	r := newTradersRig(t)
	id := r.limit("alice", tBuy, 995, 10) // holds 9,969
	evs := r.ok(matching.Command{Kind: matching.CmdCancelOrder, Account: "alice", OrderID: id})
	mustKind(t, evs, matching.EvOrderDone)
	if d := evs[0]; d.Status != matching.StatusCanceled || d.Reason != matching.ReasonCanceled || d.Remaining != 10 {
		t.Fatalf("done = %+v", d)
	}
	if lv := ofKind(evs, matching.EvLevel); len(lv) != 1 || lv[0].Price != 995 || lv[0].Quantity != 0 || lv[0].Orders != 0 {
		t.Fatalf("level = %+v", lv)
	}
	r.wantBal("alice", "KZT", 1_000_000, 0)
	r.refuse(matching.Command{Kind: matching.CmdCancelOrder, Account: "alice", OrderID: id}, apperr.UnknownOrder)

	// By client ID; another account cannot cancel it.
	r.place(matching.Command{Account: "alice", ClientID: "s1", Side: tSell, Price: 1005, Quantity: 10})
	r.wantBal("alice", "XYZ", 990, 10)
	r.refuse(matching.Command{Kind: matching.CmdCancelOrder, Account: "bob", ClientID: "s1"}, apperr.UnknownOrder)
	r.refuse(matching.Command{Kind: matching.CmdCancelOrder, Account: "bob", OrderID: 2}, apperr.UnknownOrder)
	r.refuse(matching.Command{Kind: matching.CmdCancelOrder, Account: "alice", ClientID: "s1", Symbol: "ABCKZT"}, apperr.UnknownOrder)
	r.refuse(matching.Command{Kind: matching.CmdCancelOrder, Account: "alice"}, apperr.UnknownOrder)
	r.refuse(matching.Command{Kind: matching.CmdCancelOrder, Account: "zed", OrderID: 2}, apperr.UnknownAccount)
	evs = r.ok(matching.Command{Kind: matching.CmdCancelOrder, Account: "alice", ClientID: "s1", Symbol: "XYZKZT"})
	if d := evs[0]; d.OrderID != 2 || d.Status != matching.StatusCanceled {
		t.Fatalf("done = %+v", d)
	}
	r.wantBal("alice", "XYZ", 1_000, 0)

	// A partly filled order: the rest's hold comes back.
	id = r.limit("alice", tSell, 1000, 10)
	r.limit("bob", tBuy, 1000, 4)
	evs = r.ok(matching.Command{Kind: matching.CmdCancelOrder, Account: "alice", OrderID: id})
	if d := evs[0]; d.Filled != 4 || d.Remaining != 6 || d.Status != matching.StatusCanceled {
		t.Fatalf("done = %+v", d)
	}
	r.wantBal("alice", "XYZ", 996, 0)
}

func TestCancelAll(t *testing.T) {
	type C = matching.Command
	// alice: XYZ bid 990 (1), XYZ ask 1010 (2), ABC bid 500 (3); bob: XYZ
	// bid 995 (4), XYZ ask 1020 (5); alice: XYZ bid 992 (6).
	book := func(t *testing.T) *rig {
		r := newTradersRig(t)
		r.limit("alice", tBuy, 990, 10)
		r.limit("alice", tSell, 1010, 10)
		r.place(C{Account: "alice", Symbol: "ABCKZT", Side: tBuy, Price: 500, Quantity: 10})
		r.limit("bob", tBuy, 995, 10)
		r.limit("bob", tSell, 1020, 10)
		r.limit("alice", tBuy, 992, 10)
		return r
	}
	cancelled := func(t *testing.T, evs []matching.Event, ids ...uint64) {
		t.Helper()
		var got []uint64
		for _, ev := range ofKind(evs, matching.EvOrderDone) {
			if ev.Status != matching.StatusCanceled || ev.Reason != matching.ReasonCancelAll {
				t.Fatalf("done = %+v", ev)
			}
			got = append(got, ev.OrderID)
		}
		if len(got) != len(ids) {
			t.Fatalf("cancelled %v; want %v", got, ids)
		}
		for i := range ids {
			if got[i] != ids[i] {
				t.Fatalf("cancelled %v; want %v", got, ids)
			}
		}
	}
	t.Run("account in one symbol, oldest first", func(t *testing.T) {
		r := book(t)
		cancelled(t, r.ok(C{Kind: matching.CmdCancelAll, Account: "alice", Symbol: "XYZKZT"}), 1, 2, 6)
		if open := r.e.OpenOrders("alice"); len(open) != 1 || open[0].ID != 3 {
			t.Fatalf("open = %+v", open)
		}
		r.wantBal("alice", "XYZ", 1_000, 0)
		r.wantBal("alice", "KZT", 1_000_000-5_010, 5_010) // ABC: 5,000 + 10
	})
	t.Run("account in every symbol", func(t *testing.T) {
		r := book(t)
		cancelled(t, r.ok(C{Kind: matching.CmdCancelAll, Account: "alice"}), 1, 2, 3, 6)
		r.wantBal("alice", "KZT", 1_000_000, 0)
		r.wantBal("alice", "XYZ", 1_000, 0)
		if len(r.e.OpenOrders("bob")) != 2 {
			t.Fatal("bob's orders were touched")
		}
	})
	t.Run("symbol: bids then asks, best first", func(t *testing.T) {
		r := book(t)
		cancelled(t, r.ok(C{Kind: matching.CmdCancelAll, Symbol: "XYZKZT"}), 4, 6, 1, 2, 5)
		if bids, asks := r.e.Depth("XYZKZT", 5); len(bids)+len(asks) != 0 {
			t.Fatalf("book = %v / %v", bids, asks)
		}
		if bids, _ := r.e.Depth("ABCKZT", 5); len(bids) != 1 {
			t.Fatal("another symbol was touched")
		}
		r.wantBal("bob", "KZT", 1_000_000, 0)
	})
	t.Run("refusals", func(t *testing.T) {
		r := book(t)
		r.refuse(C{Kind: matching.CmdCancelAll}, apperr.InvalidParameter)
		r.refuse(C{Kind: matching.CmdCancelAll, Account: "carol"}, apperr.UnknownOrder)
		r.refuse(C{Kind: matching.CmdCancelAll, Account: "bob", Symbol: "ABCKZT"}, apperr.UnknownOrder)
		r.refuse(C{Kind: matching.CmdCancelAll, Account: "alice", Symbol: "NOPE"}, apperr.UnknownSymbol)
		r.refuse(C{Kind: matching.CmdCancelAll, Account: "zed"}, apperr.UnknownAccount)
		r.ok(C{Kind: matching.CmdCancelAll, Symbol: "ABCKZT"})
		r.refuse(C{Kind: matching.CmdCancelAll, Symbol: "ABCKZT"}, apperr.UnknownOrder)
	})
}

func TestAmend(t *testing.T) {
	type C = matching.Command
	amend := func(c C) C { c.Kind = matching.CmdAmendOrder; return c }
	t.Run("quantity down keeps priority", func(t *testing.T) {
		r := newTradersRig(t)
		r.limit("alice", tSell, 1000, 10) // 1
		r.limit("bob", tSell, 1000, 10)   // 2
		evs := r.ok(amend(C{Account: "alice", OrderID: 1, Quantity: 6}))
		mustKind(t, evs, matching.EvOrderAmended)
		if a := evs[0]; !a.KeepsPriority || a.Quantity != 6 || a.Remaining != 6 || a.Price != 1000 || a.Status != matching.StatusNew {
			t.Fatalf("amended = %+v", a)
		}
		if lv := ofKind(evs, matching.EvLevel); len(lv) != 1 || lv[0].Quantity != 16 || lv[0].Orders != 2 {
			t.Fatalf("level = %+v", lv)
		}
		r.wantBal("alice", "XYZ", 994, 6)
		// carol buys 8: alice's 6 first (6,000: fees 12 and 6), then bob's 2.
		evs = r.place(C{Account: "carol", Side: tBuy, Price: 1000, Quantity: 8})
		wantTrades(t, evs, tradeOf{1000, 6, 12, 6, 3, 1, tBuy}, tradeOf{1000, 2, 4, 2, 3, 2, tBuy})
	})
	t.Run("quantity up loses priority", func(t *testing.T) {
		r := newTradersRig(t)
		r.limit("alice", tSell, 1000, 10)
		r.limit("bob", tSell, 1000, 10)
		evs := r.ok(amend(C{Account: "alice", ClientID: r.log[len(r.log)-2].ClientID, Quantity: 15}))
		if a := evs[0]; a.KeepsPriority || a.Quantity != 15 || a.OrderID != 1 {
			t.Fatalf("amended = %+v", a)
		}
		r.wantBal("alice", "XYZ", 985, 15)
		if asks := r.e.BookOrders("XYZKZT", tSell); asks[0].ID != 2 || asks[1].ID != 1 {
			t.Fatalf("asks = %+v", asks)
		}
		evs = r.place(C{Account: "carol", Side: tBuy, Price: 1000, Quantity: 8})
		wantTrades(t, evs, tradeOf{1000, 8, 16, 8, 3, 2, tBuy})
	})
	t.Run("price change loses priority", func(t *testing.T) {
		r := newTradersRig(t)
		r.limit("alice", tSell, 1000, 10)
		r.limit("bob", tSell, 1001, 10)
		evs := r.ok(amend(C{Account: "alice", OrderID: 1, Price: 1001}))
		if a := evs[0]; a.KeepsPriority || a.Price != 1001 {
			t.Fatalf("amended = %+v", a)
		}
		// 10,010: fees 20.02 → 20 and 10.01 → 10, with bob.
		evs = r.place(C{Account: "carol", Side: tBuy, Price: 1001, Quantity: 10})
		wantTrades(t, evs, tradeOf{1001, 10, 20, 10, 3, 2, tBuy})
	})
	t.Run("an amend that crosses trades as a taker", func(t *testing.T) {
		r := newTradersRig(t)
		r.limit("bob", tSell, 1000, 10) // 1
		r.limit("alice", tBuy, 990, 10) // 2: holds 9,919
		r.wantBal("alice", "KZT", 990_081, 9_919)
		evs := r.ok(amend(C{Account: "alice", OrderID: 2, Price: 1000}))
		mustKind(t, evs, matching.EvOrderAmended, matching.EvTrade, matching.EvOrderDone, matching.EvOrderDone)
		wantTrades(t, evs, tradeOf{1000, 10, 20, 10, 2, 1, tBuy})
		r.wantBal("alice", "KZT", 1_000_000-10_020, 0)
	})
	t.Run("a post-only amend that would cross is refused", func(t *testing.T) {
		r := newTradersRig(t)
		r.limit("bob", tSell, 1000, 10)
		r.place(C{Account: "alice", Side: tBuy, Price: 990, Quantity: 10, PostOnly: true})
		r.refuse(amend(C{Account: "alice", OrderID: 2, Price: 1000}), apperr.WouldTake)
		r.refuse(amend(C{Account: "alice", OrderID: 2, Price: 1005, Quantity: 5}), apperr.WouldTake)
		evs := r.ok(amend(C{Account: "alice", OrderID: 2, Price: 999}))
		if o, _ := r.e.Order(2); o.Price != 999 || !o.PostOnly || len(tradesOf(evs)) != 0 {
			t.Fatalf("order = %+v", o)
		}
	})
	t.Run("below the filled quantity is refused", func(t *testing.T) {
		r := newTradersRig(t)
		r.limit("alice", tSell, 1000, 10)
		r.limit("bob", tBuy, 1000, 4)
		r.refuse(amend(C{Account: "alice", OrderID: 1, Quantity: 4}), apperr.InvalidQuantity)
		r.refuse(amend(C{Account: "alice", OrderID: 1, Quantity: 3}), apperr.InvalidQuantity)
		evs := r.ok(amend(C{Account: "alice", OrderID: 1, Quantity: 5}))
		if a := evs[0]; !a.KeepsPriority || a.Quantity != 5 || a.Remaining != 1 || a.Filled != 4 || a.Status != matching.StatusPartiallyFilled {
			t.Fatalf("amended = %+v", a)
		}
		r.wantBal("alice", "XYZ", 995, 1)
	})
	t.Run("a buy's hold follows the amend", func(t *testing.T) {
		r := newTradersRig(t)
		r.limit("alice", tBuy, 990, 10) // 9,900 + 19 = 9,919
		r.ok(amend(C{Account: "alice", OrderID: 1, Quantity: 5}))
		r.wantBal("alice", "KZT", 1_000_000-4_959, 4_959) // 4,950 + 9.9 → 9
		r.ok(amend(C{Account: "alice", OrderID: 1, Price: 1000, Quantity: 20}))
		r.wantBal("alice", "KZT", 1_000_000-20_040, 20_040) // 20,000 + 40
	})
	t.Run("refusals", func(t *testing.T) {
		r := newTradersRig(t)
		r.limit("alice", tBuy, 990, 10)                                                     // 1: holds 9,919
		r.place(C{Account: "alice", Side: tSell, Price: 1100, Quantity: 20, DisplayQty: 5}) // 2
		r.refuse(amend(C{Account: "alice", OrderID: 9}), apperr.UnknownOrder)
		r.refuse(amend(C{Account: "bob", OrderID: 1, Quantity: 5}), apperr.UnknownOrder)
		r.refuse(amend(C{Account: "alice", OrderID: 1, Symbol: "ABCKZT", Quantity: 5}), apperr.UnknownOrder)
		r.refuse(amend(C{Account: "alice", OrderID: 1}), apperr.InvalidParameter)
		r.refuse(amend(C{Account: "alice", OrderID: 1, Price: 990, Quantity: 10}), apperr.InvalidParameter)
		r.refuse(amend(C{Account: "alice", OrderID: 1, Price: -990}), apperr.InvalidPrice)
		r.refuse(amend(C{Account: "alice", OrderID: 1, Quantity: -1}), apperr.InvalidQuantity)
		r.refuse(amend(C{Account: "alice", OrderID: 1, Quantity: 1_000_001}), apperr.InvalidQuantity)
		r.refuse(amend(C{Account: "alice", OrderID: 1, Quantity: 1}), apperr.InvalidQuantity) // 990 < 1,000
		// 1,010 @ 990: 999,900 + 1,999 = 1,001,899; 991,980 more than held > 990,081 free.
		r.refuse(amend(C{Account: "alice", OrderID: 1, Quantity: 1_010}), apperr.InsufficientFunds)
		r.refuse(amend(C{Account: "alice", OrderID: 2, Quantity: 5}), apperr.InvalidQuantity) // iceberg: 5 left ≤ display 5
		r.ok(amend(C{Account: "alice", OrderID: 2, Quantity: 6}))
	})
}

func TestFees(t *testing.T) {
	// 7 @ 12,345 = 86,415 tiyn: 20 bps = 172.83 → 172; 10 bps = 86.415 → 86.
	if matching.Fee(86_415, 20) != 172 || matching.Fee(86_415, 10) != 86 || matching.Fee(99, 10) != 0 {
		t.Fatal("Fee does not floor")
	}
	t.Run("buyer takes", func(t *testing.T) {
		r := newTradersRig(t)
		r.limit("bob", tSell, 12_345, 7)
		evs := r.place(matching.Command{Account: "alice", Side: tBuy, Price: 12_345, Quantity: 7})
		wantTrades(t, evs, tradeOf{12_345, 7, 172, 86, 2, 1, tBuy})
		if tr := ofKind(evs, matching.EvTrade)[0]; tr.QuoteAmount != 86_415 || tr.BaseAsset != "XYZ" || tr.QuoteAsset != "KZT" {
			t.Fatalf("trade = %+v", tr)
		}
		// The hold, 86,415 + 172, is spent exactly.
		r.wantBal("alice", "KZT", 1_000_000-86_587, 0)
		r.wantBal("bob", "KZT", 1_000_000+86_415-86, 0)
		r.wantBal(matching.DefaultFeeAccount, "KZT", 258, 0)
	})
	t.Run("buyer makes", func(t *testing.T) {
		r := newTradersRig(t)
		r.limit("alice", tBuy, 12_345, 7) // holds 86,587
		evs := r.place(matching.Command{Account: "bob", Side: tSell, Price: 12_345, Quantity: 7})
		wantTrades(t, evs, tradeOf{12_345, 7, 86, 172, 1, 2, tSell})
		// alice pays 86,415 + 86; the other 86 of the hold goes back.
		r.wantBal("alice", "KZT", 1_000_000-86_501, 0)
		r.wantBal("bob", "KZT", 1_000_000+86_415-172, 0)
		r.wantBal(matching.DefaultFeeAccount, "KZT", 258, 0)
	})
	t.Run("a configured fee account", func(t *testing.T) {
		r := newRig(t, matching.Config{Symbols: []matching.Symbol{testSymbol("XYZKZT", "XYZ")}, FeeAccount: "fees-kz"})
		if r.e.FeeAccount() != "fees-kz" {
			t.Fatal(r.e.FeeAccount())
		}
		for _, a := range []string{"alice", "bob"} {
			r.openAccount(a, a+"-co")
			r.fund(a, "KZT", 1_000_000)
			r.fund(a, "XYZ", 1_000)
		}
		r.limit("bob", tSell, 12_345, 7)
		evs := r.place(matching.Command{Account: "alice", Side: tBuy, Price: 12_345, Quantity: 7})
		if tr := ofKind(evs, matching.EvTrade)[0]; tr.FeeAccount != "fees-kz" {
			t.Fatalf("trade = %+v", tr)
		}
		r.wantBal("fees-kz", "KZT", 258, 0)
		r.refuse(matching.Command{Kind: matching.CmdWithdraw, Account: "fees-kz", Asset: "KZT", Amount: 1, ExtRef: "w"}, apperr.NotPermitted)
		r.refuse(matching.Command{Kind: matching.CmdPlaceOrder, Account: "fees-kz", Symbol: "XYZKZT", ClientID: "f",
			Side: tSell, Type: matching.Limit, Price: 1000, Quantity: 1}, apperr.NotPermitted)
	})
}

func TestClientIDRetention(t *testing.T) {
	r := newRig(t, matching.Config{Symbols: []matching.Symbol{testSymbol("XYZKZT", "XYZ")}, ClientIDRetentionMs: 1_000})
	r.openAccount("alice", "alice-co")
	r.fund("alice", "KZT", 1_000_000)
	ioc := matching.Command{Account: "alice", ClientID: "once", Side: tBuy, TIF: matching.IOC, Price: 1000, Quantity: 10}
	mustKind(t, r.place(ioc), matching.EvOrderAccepted, matching.EvOrderDone) // order 1, done at rigT0
	r.place(matching.Command{Account: "alice", ClientID: "open", Side: tBuy, Price: 1000, Quantity: 10})
	r.now = rigT0 + 999
	if evs := r.place(ioc); evs[0].Kind != matching.EvDuplicate || evs[0].OrderID != 1 {
		t.Fatalf("within retention: %+v", evs)
	}
	r.now = rigT0 + 1_000
	if evs := r.place(ioc); evs[0].Kind != matching.EvOrderAccepted || evs[0].OrderID != 3 {
		t.Fatalf("after retention: %+v", evs)
	}
	// An open order's client ID is never forgotten.
	r.now = rigT0 + 100_000
	if evs := r.place(matching.Command{Account: "alice", ClientID: "open", Side: tBuy, Price: 1000, Quantity: 10}); evs[0].Kind != matching.EvDuplicate || evs[0].OrderID != 2 {
		t.Fatalf("open order's client ID: %+v", evs)
	}
}

// TestMarketBuyHoldsForIcebergSlices: a market buy's hold covers what it
// pays when an iceberg's slices interleave with the orders behind it. Held
// per resting order (10,499 from each seller: 2 × (10,499 + 20)), 21,038
// fell a tiyn short of the execution — a slice of 1,000 (fee 2), then
// 19,998 from the order behind (fee 39) — and the buyer's balance went to
// −1. Held per price level: 20,998 + 41.
func TestMarketBuyHoldsForIcebergSlices(t *testing.T) {
	for _, funds := range []int64{21_038, 21_039} {
		r := newRig(t, matching.Config{Symbols: []matching.Symbol{testSymbol("XYZKZT", "XYZ")}})
		for _, a := range []string{"ice", "plain", "buyer"} {
			r.openAccount(a, a+"-co")
		}
		r.fund("ice", "XYZ", 10_499)
		r.fund("plain", "XYZ", 30_000)
		r.fund("buyer", "KZT", funds)
		r.place(matching.Command{Account: "ice", Side: tSell, Price: 1, Quantity: 10_499, DisplayQty: 1_000})
		r.limit("plain", tSell, 1, 30_000)
		buy := matching.Command{Kind: matching.CmdPlaceOrder, Symbol: "XYZKZT", ClientID: "mkt", Account: "buyer", Side: tBuy, Type: matching.Market, Quantity: 20_998}
		r.now = matching.RuleChange20261204
		if funds < 21_039 {
			r.refuse(buy, apperr.InsufficientFunds)
			continue
		}
		evs := r.place(buy)
		if n := len(ofKind(evs, matching.EvTrade)); n != 2 {
			t.Fatalf("%d trades; want the iceberg's slice, then the order behind it", n)
		}
		r.wantBal("buyer", "KZT", 0, 0)
		r.wantBal("buyer", "XYZ", 20_998, 0)
	}
}

// TestIcebergAmendKeepsItsSlicesWorthTheMinimum: an amend may not price an
// iceberg's slices below the minimum notional.
func TestIcebergAmendKeepsItsSlicesWorthTheMinimum(t *testing.T) {
	r := newTradersRig(t)
	r.now = matching.RuleChange20261204
	evs := r.place(matching.Command{Account: "alice", Side: tBuy, Price: 500, Quantity: 100, DisplayQty: 2}) // slices of 1,000
	id := ofKind(evs, matching.EvOrderAccepted)[0].OrderID
	r.refuse(matching.Command{Kind: matching.CmdAmendOrder, Account: "alice", Symbol: "XYZKZT", OrderID: id, Price: 499}, apperr.InvalidQuantity)
	r.ok(matching.Command{Kind: matching.CmdAmendOrder, Account: "alice", Symbol: "XYZKZT", OrderID: id, Price: 501})
}

// TestRuleChange20261204: the rules of 2026-12-04 apply to commands from
// then on, and a command of before still gives what it gave then, as a
// replay of the inbox must — an iceberg of slices below the minimum
// notional, a market buy held per resting order — while such an iceberg
// may still shrink after the change, but not move to another price.
func TestRuleChange20261204(t *testing.T) {
	r := newTradersRig(t)
	ice := matching.Command{Account: "alice", Side: tBuy, Price: 100, Quantity: 100, DisplayQty: 5} // slices of 500 < 1,000
	r.now = matching.RuleChange20261204 - 1
	evs := r.place(ice)
	old := ofKind(evs, matching.EvOrderAccepted)
	if len(old) != 1 {
		t.Fatalf("an iceberg of small slices before the change: %+v", evs)
	}
	r.now = matching.RuleChange20261204
	ice.Kind, ice.Symbol, ice.ClientID, ice.Type = matching.CmdPlaceOrder, "XYZKZT", "after", matching.Limit
	r.refuse(ice, apperr.InvalidQuantity)
	amend := matching.Command{Kind: matching.CmdAmendOrder, Account: "alice", Symbol: "XYZKZT", OrderID: old[0].OrderID}
	amend.Price = 101
	r.refuse(amend, apperr.InvalidQuantity)
	amend.Price, amend.Quantity = 0, 90
	r.ok(amend)

	// Two asks of 250 @ 5 (1,250 each; the larger fee, 20 bps, 2.5 on
	// each, rounded down): per order 2 × 1,252 = 2,504, per level 2,500 +
	// 5 = 2,505.
	for _, at := range []int64{matching.RuleChange20261204 - 1, matching.RuleChange20261204} {
		r := newRig(t, matching.Config{Symbols: []matching.Symbol{testSymbol("XYZKZT", "XYZ")}})
		for _, a := range []string{"s1", "s2", "buyer"} {
			r.openAccount(a, a+"-co")
		}
		r.fund("s1", "XYZ", 250)
		r.fund("s2", "XYZ", 250)
		r.fund("buyer", "KZT", 2_504)
		r.limit("s1", tSell, 5, 250)
		r.limit("s2", tSell, 5, 250)
		r.now = at
		buy := matching.Command{Kind: matching.CmdPlaceOrder, Symbol: "XYZKZT", ClientID: "mkt", Account: "buyer", Side: tBuy, Type: matching.Market, Quantity: 500}
		if at >= matching.RuleChange20261204 {
			r.refuse(buy, apperr.InsufficientFunds)
			continue
		}
		r.place(buy)
		r.wantBal("buyer", "KZT", 0, 0) // 2 × (1,250 + 2)
		r.wantBal("buyer", "XYZ", 500, 0)
	}
}

func TestHoldsReleased(t *testing.T) {
	r := newTradersRig(t)
	// alice bids 20 @ 1005: 20,100 + 40 = 20,140 held.
	r.limit("alice", tBuy, 1005, 20)
	r.wantBal("alice", "KZT", 1_000_000-20_140, 20_140)
	// bob sells 5 @ 1000 into it: it trades at alice's 1005 (5,025; alice
	// the maker pays 5), and the rest, 15, needs 15,075 + 30 = 15,105.
	r.limit("bob", tSell, 1000, 5)
	r.wantBal("alice", "KZT", 1_000_000-5_030-15_105, 15_105)
	// Filled: nothing stays held.
	r.limit("carol", tSell, 1005, 15)
	r.wantBal("alice", "KZT", 1_000_000-5_030-15_090, 0) // 15,075 + 15
	r.wantBal("alice", "XYZ", 1_020, 0)
	r.wantBal("carol", "XYZ", 985, 0)
}

// TestMarketBuyByQuoteSpentStatus: a market buy by quote amount that spends
// its budget is filled whatever lies beyond what it bought.
//
// ENGINE BUG (reported, minor): with a budget of exactly 10,020 against
// bob's 10 @ 1000 (10,000 + 20 fee), the order buys 10 and has 0 left. With
// another offer behind it, match stops on the budget (stopBudget) and the
// order is filled; with none, match stops on the empty book first and
// execute reports it expired with reason "market" (the "unfilled rest"),
// though nothing is left unspent.
func TestMarketBuyByQuoteSpentStatus(t *testing.T) {
	for _, more := range []bool{true, false} {
		t.Run(map[bool]string{true: "more offers", false: "book emptied"}[more], func(t *testing.T) {
			r := newTradersRig(t)
			r.limit("bob", tSell, 1000, 10)
			if more {
				r.limit("carol", tSell, 1010, 10)
			}
			evs := r.place(matching.Command{Account: "alice", Side: tBuy, Type: matching.Market, QuoteQty: 10_020})
			id := ofKind(evs, matching.EvOrderAccepted)[0].OrderID
			wantTrades(t, evs, tradeOf{1000, 10, 20, 10, id, 1, tBuy})
			d := doneOf(t, evs, id)
			if d.Amount != 0 || d.Filled != 10 {
				t.Fatalf("done = %+v", d)
			}
			if d.Status != matching.StatusFilled || d.Reason != "" {
				t.Errorf("budget spent in full, yet the order ended %s/%q", d.Status, d.Reason)
			}
			r.wantBal("alice", "KZT", 1_000_000-10_020, 0)
		})
	}
}
