package matching_test

// fuzz_test.go: command validation under go test -fuzz. Each target runs
// its seed corpus as an ordinary test.
//
//	go test ./matching/ -run '^$' -fuzz FuzzPlaceOrder -fuzztime 1m
//	go test ./matching/ -run '^$' -fuzz FuzzCommandJSON -fuzztime 1m

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching"
)

// fuzzT0 is the seeded engine's time.
const fuzzT0 = rigT0

// fuzzEngine is a seeded engine: the default symbols plus a banded
// XYZKZT; accounts alice and alice2 (one owner), bob, carol and a licensed
// miner, each funded in every asset; a trade in BTCKZT (30,000,000 ₸) and
// XYZKZT (10,000) so that there are reference and closing prices; resting
// orders on both sides (plain, iceberg, GTD expiring at fuzzT0 + 10 s);
// then the phase the selector names for BTCKZT and XYZKZT. It returns the
// engine and the custody totals.
func fuzzEngine(tb testing.TB, phase uint8) (*matching.Engine, map[string]int64) {
	xyz := testSymbol("XYZKZT", "XYZ")
	banded(&xyz)
	e, err := matching.New(append(matching.DefaultSymbols(), xyz))
	if err != nil {
		tb.Fatal(err)
	}
	custody := map[string]int64{}
	apply := func(c matching.Command) {
		c.Seq, c.Time = e.Seq()+1, fuzzT0
		evs, err := e.Apply(c, nil)
		if err != nil {
			tb.Fatal(err)
		}
		if err := matching.Rejection(evs); err != nil {
			tb.Fatalf("seed command %+v refused: %v", c, err)
		}
		for _, ev := range ofKind(evs, matching.EvDeposited) {
			custody[ev.Asset] += ev.Amount
		}
	}
	for _, a := range [][3]string{{"alice", "alice-co", "trader"}, {"alice2", "alice-co", "trader"},
		{"bob", "bob-co", "market_maker"}, {"carol", "carol-co", "trader"}, {"miner", "miner-co", "miner"}} {
		var kind matching.AccountKind
		if err := kind.UnmarshalText([]byte(a[2])); err != nil {
			tb.Fatal(err)
		}
		apply(matching.Command{Kind: matching.CmdOpenAccount, Account: a[0], Owner: a[1], AccountKind: kind})
		for asset, amount := range map[string]int64{"BTC": 10 * btc, "ETH": 100_000_000_000, "USDT": 1_000_000_000_000,
			"XYZ": 100_000, "KZT": 1_000_000_000 * kzt} {
			apply(matching.Command{Kind: matching.CmdDeposit, Account: a[0], Asset: asset, Amount: amount, ExtRef: a[0] + "-" + asset})
		}
	}
	apply(matching.Command{Kind: matching.CmdSetPermission, Account: "miner", Permission: matching.PermMandatorySell, Granted: true})
	n := 0
	order := func(acct, sym string, side matching.Side, price, qty int64, mod func(*matching.Command)) {
		n++
		c := matching.Command{Kind: matching.CmdPlaceOrder, Account: acct, Symbol: sym, ClientID: fmt.Sprintf("seed-%d", n),
			Side: side, Type: matching.Limit, Price: price, Quantity: qty}
		if mod != nil {
			mod(&c)
		}
		apply(c)
	}
	order("carol", "BTCKZT", matching.Sell, 30_000_000*kzt, btc/100, nil)
	order("alice2", "BTCKZT", matching.Buy, 30_000_000*kzt, btc/100, nil)
	order("carol", "XYZKZT", matching.Sell, 10_000, 5, nil)
	order("alice2", "XYZKZT", matching.Buy, 10_000, 5, nil)
	order("carol", "BTCKZT", matching.Sell, 30_100_000*kzt, btc/2, nil)
	order("carol", "BTCKZT", matching.Sell, 30_200_000*kzt, btc, func(c *matching.Command) { c.DisplayQty = btc / 10 })
	order("miner", "BTCKZT", matching.Sell, 30_300_000*kzt, btc, func(c *matching.Command) {
		c.Purpose, c.Obligation = matching.PurposeMandatory, "obl-1"
	})
	order("alice2", "BTCKZT", matching.Buy, 29_900_000*kzt, btc/2, nil)
	order("bob", "BTCKZT", matching.Buy, 29_800_000*kzt, btc, func(c *matching.Command) {
		c.TIF, c.ExpireAt = matching.GTD, fuzzT0+10_000
	})
	order("carol", "XYZKZT", matching.Sell, 10_100, 10, nil)
	order("bob", "XYZKZT", matching.Sell, 10_200, 20, func(c *matching.Command) { c.DisplayQty = 5 })
	order("alice2", "XYZKZT", matching.Buy, 9_900, 10, nil)
	order("bob", "XYZKZT", matching.Buy, 9_800, 10, func(c *matching.Command) { c.PostOnly = true })
	steps := map[uint8][]matching.Phase{
		1: {matching.PhasePreClose},
		2: {matching.PhaseClosed},
		4: {matching.PhasePreClose, matching.PhaseClosingAuction, matching.PhaseTradingAtLast},
		5: {matching.PhaseClosed, matching.PhasePreOpen},
	}[phase%6]
	for _, sym := range []string{"BTCKZT", "XYZKZT"} {
		for _, p := range steps {
			apply(matching.Command{Kind: matching.CmdSetPhase, Symbol: sym, Phase: p})
		}
		if phase%6 == 3 {
			apply(matching.Command{Kind: matching.CmdHalt, Symbol: sym})
		}
	}
	return e, custody
}

// checkUncrossed: a symbol that matches (continuous or trading at last, not
// halted) never rests a crossed book.
func checkUncrossed(tb testing.TB, e *matching.Engine) {
	tb.Helper()
	for _, s := range e.Symbols() {
		st, _ := e.Market(s.Name)
		if st.Halted || st.Phase != matching.PhaseContinuous && st.Phase != matching.PhaseTradingAtLast {
			continue
		}
		if bids, asks := e.Depth(s.Name, 1); len(bids) > 0 && len(asks) > 0 && bids[0].Price >= asks[0].Price {
			tb.Fatalf("%s in %s with a crossed book: %v / %v", s.Name, st.Phase, bids, asks)
		}
	}
}

// applyFuzzed applies c to one seeded engine and a tick at the same time to
// a twin, and checks: no error or panic; events numbered in order, the
// command's; a refusal carries a known code, comes after any timer events
// and is followed only by balance and level events, and leaves the engine
// exactly as the tick left its twin; and the invariants hold.
func applyFuzzed(t *testing.T, phase uint8, c matching.Command) ([]matching.Event, *matching.Engine) {
	e, custody := fuzzEngine(t, phase)
	twin, _ := fuzzEngine(t, phase)
	c.Seq = e.Seq() + 1
	evs, err := e.Apply(c, nil)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	for i, ev := range evs {
		if ev.Seq != c.Seq || ev.Index != uint32(i) || ev.Time != e.Now() {
			t.Fatalf("event %d = %+v", i, ev)
		}
		switch ev.Kind {
		case matching.EvDeposited:
			custody[ev.Asset] += ev.Amount
		case matching.EvWithdrawn:
			custody[ev.Asset] -= ev.Amount
		}
	}
	if rej := matching.Rejection(evs); rej != nil {
		code := apperr.CodeOf(rej)
		if !slices.Contains(apperr.All(), code) || code == apperr.Internal {
			t.Fatalf("rejected with unknown code %q", code)
		}
		i := slices.IndexFunc(evs, func(ev matching.Event) bool { return ev.Kind == matching.EvRejected })
		for _, ev := range evs[:i] {
			if !ev.Timer {
				t.Fatalf("a refused command emitted %+v before its rejection", ev)
			}
		}
		for _, ev := range evs[i+1:] {
			if ev.Kind != matching.EvLevel && ev.Kind != matching.EvBalance {
				t.Fatalf("event %+v after the rejection", ev)
			}
		}
		if _, err := twin.Apply(matching.Command{Seq: c.Seq, Time: c.Time, Kind: matching.CmdTick}, nil); err != nil {
			t.Fatal(err)
		}
		if a, b := stateKey(e), stateKey(twin); a != b {
			t.Fatalf("refused %+v (%v) changed the state:\n%s\n%s", c, rej, b, a)
		}
	}
	checkInvariants(t, e, custody)
	checkUncrossed(t, e)
	return evs, e
}

func FuzzPlaceOrder(f *testing.F) {
	// acct, sym, side, typ, tif, price, qty, quoteQty, display, expireIn,
	// postOnly, stp, purpose, clientID, obligation, phase, dt
	type seed struct {
		acct, sym, side, typ, tif     uint8
		price, qty, quote, display, x int64
		post                          bool
		stp, purpose                  uint8
		cid, obl                      string
		phase                         uint8
		dt                            int64
	}
	const B, X = 0, 4 // BTCKZT, XYZKZT
	seeds := []seed{
		{0, B, 1, 1, 1, 30_100_000 * kzt, btc / 4, 0, 0, 0, false, 0, 0, "a", "", 0, 0},      // buy crosses
		{0, B, 1, 1, 1, 30_300_000 * kzt, 2 * btc, 0, 0, 0, false, 0, 0, "a", "", 0, 0},      // buy sweeps
		{0, B, 2, 1, 1, 29_900_000 * kzt, btc, 0, 0, 0, false, 0, 0, "a", "", 0, 0},          // sell crosses
		{0, B, 1, 2, 0, 0, btc, 0, 0, 0, false, 0, 0, "a", "", 0, 0},                         // market buy
		{0, B, 1, 2, 0, 0, 0, 20_000_000 * kzt, 0, 0, false, 0, 0, "a", "", 0, 0},            // market buy by quote
		{0, B, 2, 2, 2, 0, btc / 3, 0, 0, 0, false, 0, 0, "a", "", 0, 0},                     // market sell
		{0, B, 1, 1, 3, 30_200_000 * kzt, btc, 0, 0, 0, false, 0, 0, "a", "", 0, 0},          // FOK
		{0, B, 1, 1, 2, 30_200_000 * kzt, btc, 0, 0, 0, false, 0, 0, "a", "", 0, 0},          // IOC
		{0, B, 1, 1, 4, 29_000_000 * kzt, btc, 0, 0, 5_000, false, 0, 0, "a", "", 0, 20_000}, // GTD, later time
		{0, B, 1, 1, 1, 29_000_000 * kzt, btc, 0, btc / 10, 0, true, 0, 0, "a", "", 0, 0},    // post-only iceberg
		{0, B, 1, 1, 1, 30_100_000 * kzt, btc, 0, 0, 0, true, 0, 0, "a", "", 0, 0},           // post-only takes
		{1, B, 1, 1, 1, 30_100_000 * kzt, btc, 0, 0, 0, false, 4, 0, "a", "", 0, 0},          // STP decrement
		{0, B, 1, 1, 1, 30_300_000 * kzt, 2 * btc, 0, 0, 0, false, 2, 0, "a", "", 0, 0},      // STP expire_maker
		{4, B, 2, 1, 1, 29_900_000 * kzt, btc, 0, 0, 0, false, 0, 1, "m", "obl-2", 0, 0},     // mandatory
		{0, B, 2, 1, 1, 29_900_000 * kzt, btc, 0, 0, 0, false, 0, 1, "m", "", 0, 0},          // mandatory, no licence
		{0, B, 1, 1, 1, 33_500_000 * kzt, btc, 0, 0, 0, false, 0, 0, "a", "", 0, 0},          // beyond the band
		{0, X, 1, 1, 1, 10_200, 30, 0, 0, 0, false, 0, 0, "a", "", 0, 0},                     // XYZ sweep
		{0, X, 1, 2, 0, 0, 0, 100_000, 0, 0, false, 0, 0, "a", "", 0, 0},                     // XYZ by quote
		{0, X, 2, 1, 1, 9_800, 15, 0, 0, 0, false, 0, 0, "a", "", 1, 0},                      // call phase
		{0, X, 2, 1, 2, 9_800, 15, 0, 0, 0, false, 0, 0, "a", "", 1, 0},                      // IOC in a call phase
		{0, X, 2, 1, 1, 9_800, 15, 0, 0, 0, false, 0, 0, "a", "", 2, 0},                      // closed
		{0, X, 2, 1, 1, 9_800, 15, 0, 0, 0, false, 0, 0, "a", "", 3, 0},                      // halted
		{0, X, 2, 1, 1, 10_000, 15, 0, 0, 0, false, 0, 0, "a", "", 4, 0},                     // trading at last
		{0, B, 2, 1, 1, 30_000_000 * kzt, btc, 0, 0, 0, false, 0, 0, "a", "", 4, 0},          // trading at last
		{0, X, 1, 1, 1, 10_000, 15, 0, 0, 0, false, 0, 0, "a", "", 5, 0},                     // pre-open
		{0, B, 1, 1, 1, 9_000_000_000_000_000_000, 1_000 * btc, 0, 0, 0, false, 0, 0, "a", "", 0, 0},
		{0, B, 1, 1, 1, -100, -1, -1, -1, -1, true, 200, 200, "", "", 0, -5},
		{7, 9, 9, 9, 9, 1, 1, 1, 1, 1, false, 9, 9, "a", "x", 9, 1 << 62},
		{3, B, 1, 1, 1, 100, 1, 0, 0, 0, false, 0, 0, "seed-1", "", 0, 0},     // carol's finished order: duplicate
		{3, X, 2, 1, 1, 10_000, 5, 0, 0, 0, false, 0, 0, "seed-10", "", 0, 0}, // carol's open order: duplicate
		{2, X, 2, 1, 1, 10_000, 5, 0, 0, 0, false, 0, 0, "seed-3", "", 0, 0},  // another account's client ID
	}
	for _, s := range seeds {
		f.Add(s.acct, s.sym, s.side, s.typ, s.tif, s.price, s.qty, s.quote, s.display, s.x, s.post, s.stp, s.purpose, s.cid, s.obl, s.phase, s.dt)
	}
	accounts := []string{"alice", "alice2", "bob", "carol", "miner", "", "nobody", matching.DefaultFeeAccount}
	symbols := []string{"BTCKZT", "ETHKZT", "USDTKZT", "NOPE", "XYZKZT"}
	f.Fuzz(func(t *testing.T, acct, sym, side, typ, tif uint8, price, qty, quoteQty, display, expireIn int64,
		postOnly bool, stp, purpose uint8, clientID, obligation string, phase uint8, dt int64) {
		now := fuzzT0 + max(0, min(dt, 1<<40))
		c := matching.Command{Kind: matching.CmdPlaceOrder, Time: now,
			Account: accounts[int(acct)%len(accounts)], Symbol: symbols[int(sym)%len(symbols)], ClientID: clientID,
			Side: matching.Side(side), Type: matching.OrderType(typ), TIF: matching.TimeInForce(tif),
			Price: price, Quantity: qty, QuoteQty: quoteQty, DisplayQty: display, PostOnly: postOnly,
			STP: matching.STPMode(stp), Purpose: matching.Purpose(purpose), Obligation: obligation}
		if expireIn != 0 {
			c.ExpireAt = now + expireIn
			if expireIn > 1<<50 || expireIn < -(1<<50) {
				c.ExpireAt = expireIn
			}
		}
		evs, e := applyFuzzed(t, phase, c)
		if matching.Rejection(evs) != nil {
			return
		}
		own := slices.IndexFunc(evs, func(ev matching.Event) bool { return !ev.Timer })
		switch k := evs[own].Kind; k {
		case matching.EvDuplicate:
			if evs[own].OrderID == 0 {
				t.Fatalf("duplicate without the original order: %+v", evs[own])
			}
		case matching.EvOrderAccepted:
			a := evs[own]
			if a.OrderID == 0 || a.Status != matching.StatusNew || a.Account != c.Account || a.ClientID != c.ClientID {
				t.Fatalf("accepted = %+v", a)
			}
			// The order either rests or is done, once.
			done := 0
			for _, ev := range ofKind(evs, matching.EvOrderDone) {
				if ev.OrderID == a.OrderID {
					done++
				}
			}
			if _, open := e.Order(a.OrderID); open == (done == 1) || done > 1 {
				t.Fatalf("order %d open %v, done %d times: %+v", a.OrderID, open, done, evs)
			}
		default:
			t.Fatalf("an accepted place_order begins with %s", k)
		}
	})
}

func FuzzCommandJSON(f *testing.F) {
	seeds := []string{
		`{"kind":"place_order","account":"alice","symbol":"BTCKZT","clientId":"j1","side":"buy","type":"limit","tif":"GTC","price":3010000000,"qty":25000000}`,
		`{"kind":"place_order","account":"alice","symbol":"BTCKZT","clientId":"j2","side":"buy","type":"market","quoteQty":2000000000}`,
		`{"kind":"place_order","account":"alice","symbol":"BTCKZT","clientId":"j3","side":"sell","type":"market","qty":30000000}`,
		`{"kind":"place_order","account":"alice","symbol":"XYZKZT","clientId":"j4","side":"buy","type":"limit","tif":"GTD","price":9950,"qty":10,"expireAt":1700006460000,"postOnly":true,"displayQty":5}`,
		`{"kind":"place_order","account":"miner","symbol":"BTCKZT","clientId":"j5","side":"sell","type":"limit","price":2990000000,"qty":100000000,"purpose":"mandatory","obligation":"o-1"}`,
		`{"kind":"place_order","account":"alice","symbol":"BTCKZT","clientId":"j6","side":"buy","type":"limit","tif":"FOK","price":3020000000,"qty":100000000,"stp":"decrement"}`,
		`{"kind":"cancel_order","account":"carol","orderId":5}`,
		`{"kind":"cancel_order","account":"carol","clientId":"seed-5","symbol":"BTCKZT"}`,
		`{"kind":"cancel_all","account":"carol"}`,
		`{"kind":"cancel_all","symbol":"XYZKZT"}`,
		`{"kind":"amend_order","account":"carol","orderId":5,"price":2990000000}`,
		`{"kind":"amend_order","account":"bob","orderId":11,"qty":10}`,
		`{"kind":"amend_order","account":"alice2","orderId":12,"price":10300,"qty":12}`,
		`{"kind":"open_account","account":"dan","owner":"dan-co","accountKind":"trader","stp":"expire_both"}`,
		`{"kind":"deposit","account":"alice","asset":"KZT","amount":500,"extRef":"tx-9"}`,
		`{"kind":"withdraw","account":"alice","asset":"BTC","amount":100000000,"extRef":"w-9"}`,
		`{"kind":"withdraw","account":"exchange-fees","asset":"KZT","amount":1,"extRef":"w-10"}`,
		`{"kind":"set_permission","account":"alice","permission":"mandatory_sell","granted":true}`,
		`{"kind":"set_stp","account":"alice","stp":"expire_maker"}`,
		`{"kind":"set_phase","symbol":"XYZKZT","phase":"pre_close"}`,
		`{"kind":"set_phase","symbol":"XYZKZT","phase":"volatility_auction"}`,
		`{"kind":"halt","symbol":"BTCKZT"}`,
		`{"kind":"resume","symbol":"BTCKZT"}`,
		`{"kind":"tick","ts":1700006420000}`,
		`{"kind":"tick","ts":1800000000000}`,
		`{"kind":"tick","ts":-1}`,
		`{"seq":99,"kind":"tick"}`,
		`{"kind":"place_order","account":"alice","symbol":"BTCKZT","clientId":"j7","side":"buy","type":"limit","price":-1,"qty":9223372036854775807}`,
		`{"kind":"place_order","account":"alice","symbol":"BTCKZT","side":"sideways"}`,
		`{"kind":"launch_missiles"}`,
		`{}`, `null`, `[]`, `"tick"`, `{"kind":0}`, `{"kind":"tick"`, ``,
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint8(0))
	}
	f.Add([]byte(seeds[0]), uint8(4))
	f.Add([]byte(seeds[10]), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, phase uint8) {
		var c matching.Command
		if err := json.Unmarshal(data, &c); err != nil {
			return // the edges answer MALFORMED_JSON; nothing reaches the engine
		}
		applyFuzzed(t, phase, c) // an earlier Time counts as the engine's own
	})
}
