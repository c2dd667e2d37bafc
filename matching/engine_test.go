package matching_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/satu-exchange/satu/matching"
)

const (
	btc = 100_000_000 // satoshi per BTC
	kzt = 100         // tiyn per tenge
)

// harness drives an engine with sequenced commands, as the inbox would.
type harness struct {
	tb  testing.TB
	e   *matching.Engine
	log []matching.Command
}

func newHarness(tb testing.TB) *harness {
	e, err := matching.New(matching.DefaultSymbols())
	if err != nil {
		tb.Fatal(err)
	}
	return &harness{tb: tb, e: e}
}

func (h *harness) do(c matching.Command) []matching.Event {
	h.tb.Helper()
	c.Seq = h.e.Seq() + 1
	c.Time = 1_700_000_000_000 + int64(c.Seq)
	h.log = append(h.log, c)
	evs, err := h.e.Apply(c, nil)
	if err != nil {
		h.tb.Fatal(err)
	}
	return evs
}

func (h *harness) open(acct, owner string, kind matching.AccountKind) {
	h.tb.Helper()
	evs := h.do(matching.Command{Kind: matching.CmdOpenAccount, Account: acct, Owner: owner, AccountKind: kind})
	mustKind(h.tb, evs, matching.EvAccountOpened)
}

func (h *harness) deposit(acct, asset string, amount int64) {
	h.tb.Helper()
	evs := h.do(matching.Command{Kind: matching.CmdDeposit, Account: acct, Asset: asset, Amount: amount,
		ExtRef: acct + asset + string(rune('a'+h.e.Seq()%26)) + jsonInt(h.e.Seq())})
	mustKind(h.tb, evs, matching.EvDeposited)
}

func jsonInt(v uint64) string { b, _ := json.Marshal(v); return string(b) }

func (h *harness) limit(acct, cid string, side matching.Side, price, qty int64, mandatory bool) []matching.Event {
	return h.do(matching.Command{Kind: matching.CmdPlaceOrder, Account: acct, Symbol: "BTCKZT", ClientID: cid,
		Side: side, Type: matching.Limit, TIF: matching.GTC, Price: price, Quantity: qty, Purpose: purpose(mandatory)})
}

func purpose(mandatory bool) matching.Purpose {
	if mandatory {
		return matching.PurposeMandatory
	}
	return matching.PurposeNone
}

func (h *harness) balance(acct, asset string) [2]int64 {
	f, hd := h.e.Balance(acct, asset)
	return [2]int64{f, hd}
}

func mustKind(tb testing.TB, evs []matching.Event, kinds ...matching.EventKind) {
	tb.Helper()
	var got []matching.EventKind
	for _, ev := range evs {
		if ev.Kind != matching.EvLevel && ev.Kind != matching.EvBalance {
			got = append(got, ev.Kind)
		}
	}
	if !reflect.DeepEqual(got, kinds) {
		tb.Fatalf("events = %v; want %v (%+v)", got, kinds, evs)
	}
}

func setup(tb testing.TB) *harness {
	h := newHarness(tb)
	h.open("miner-1", "miner-co", matching.KindMiner)
	h.open("buyer-1", "buyer-co", matching.KindTrader)
	h.deposit("miner-1", "BTC", 2*btc)
	h.deposit("buyer-1", "KZT", 100_000_000*kzt)
	evs := h.do(matching.Command{Kind: matching.CmdSetPermission, Account: "miner-1",
		Permission: matching.PermMandatorySell, Granted: true})
	mustKind(tb, evs, matching.EvPermissionSet)
	return h
}

func TestMandatorySaleMatches(t *testing.T) {
	h := setup(t)
	evs := h.limit("buyer-1", "b1", matching.Buy, 30_000_000*kzt, btc, false)
	mustKind(t, evs, matching.EvOrderAccepted)
	if got := h.balance("buyer-1", "KZT"); got != [2]int64{70_000_000 * kzt, 30_000_000 * kzt} {
		t.Fatalf("buyer KZT after hold = %v", got)
	}
	// The miner sells 0.75 BTC mandatory at a lower limit: it trades at the
	// buyer's (maker's) price.
	evs = h.limit("miner-1", "m1", matching.Sell, 29_000_000*kzt, 75_000_000, true)
	mustKind(t, evs, matching.EvOrderAccepted, matching.EvTrade, matching.EvOrderDone)
	tr := evs[1]
	if tr.Price != 30_000_000*kzt || tr.Quantity != 75_000_000 || tr.QuoteAmount != 22_500_000*kzt ||
		tr.Purpose != matching.PurposeMandatory || tr.BuyerAccount != "buyer-1" || tr.SellerAccount != "miner-1" || tr.TakerSide != matching.Sell {
		t.Fatalf("trade = %+v", tr)
	}
	if tr.ID() != "7-1" {
		t.Fatalf("trade ID = %s", tr.ID())
	}
	if evs[2].Status != matching.StatusFilled || evs[2].OrderID != 2 {
		t.Fatalf("done = %+v", evs[2])
	}
	checks := map[string][2]int64{
		"miner-1/BTC": {btc + 25_000_000, 0},
		"miner-1/KZT": {22_500_000 * kzt, 0},
		"buyer-1/BTC": {75_000_000, 0},
		"buyer-1/KZT": {70_000_000 * kzt, 7_500_000 * kzt},
	}
	for k, want := range checks {
		acct, asset := split(k)
		if got := h.balance(acct, asset); got != want {
			t.Errorf("%s = %v; want %v", k, got, want)
		}
	}
	bids, asks := h.e.Depth("BTCKZT", 5)
	if len(asks) != 0 || len(bids) != 1 || bids[0].Quantity != 25_000_000 {
		t.Fatalf("depth = %v / %v", bids, asks)
	}
}

func split(k string) (string, string) {
	for i := range k {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

func TestPriceTimePriority(t *testing.T) {
	h := setup(t)
	h.open("buyer-2", "other-co", matching.KindTrader)
	h.deposit("buyer-2", "KZT", 100_000_000*kzt)
	h.limit("buyer-1", "a", matching.Buy, 30_000_000*kzt, 10, false)
	h.limit("buyer-2", "b", matching.Buy, 30_000_001*kzt, 10, false) // better price
	h.limit("buyer-1", "c", matching.Buy, 30_000_001*kzt, 10, false) // same price, later
	evs := h.limit("miner-1", "s", matching.Sell, 30_000_000*kzt, 25, false)
	var trades []matching.Event
	for _, ev := range evs {
		if ev.Kind == matching.EvTrade {
			trades = append(trades, ev)
		}
	}
	if len(trades) != 3 || trades[0].BuyOrderID != 2 || trades[1].BuyOrderID != 3 || trades[2].BuyOrderID != 1 ||
		trades[2].Quantity != 5 || trades[0].Price != 30_000_001*kzt {
		t.Fatalf("trades = %+v", trades)
	}
}

func TestRejectionsChangeNothing(t *testing.T) {
	type C = matching.Command
	cases := []struct {
		name string
		mod  func(*C)
		code string
	}{
		{"UnknownSymbol", func(c *C) { c.Symbol = "DOGEKZT" }, "UNKNOWN_SYMBOL"},
		{"UnknownAccount", func(c *C) { c.Account = "nobody" }, "UNKNOWN_ACCOUNT"},
		{"ZeroQuantity", func(c *C) { c.Quantity = 0 }, "INVALID_QUANTITY"},
		{"NegativeQuantity", func(c *C) { c.Quantity = -5 }, "INVALID_QUANTITY"},
		{"BadTick", func(c *C) { c.Price = 30_000_000*kzt + 1 }, "INVALID_PRICE"},
		{"NegativePrice", func(c *C) { c.Price = -100 }, "INVALID_PRICE"},
		{"TooMuch", func(c *C) { c.Quantity = 3 * btc }, "INSUFFICIENT_FUNDS"},
		{"MandatoryBuy", func(c *C) { c.Side, c.Account = matching.Buy, "buyer-1" }, "INVALID_PARAMETER"},
		{"BadSide", func(c *C) { c.Side = 99 }, "INVALID_PARAMETER"},
		{"BadTIF", func(c *C) { c.TIF = 99 }, "INVALID_PARAMETER"},
		{"NoClientID", func(c *C) { c.ClientID = "" }, "INVALID_PARAMETER"},
		{"UnknownKind", func(c *C) { c.Kind = 99 }, "UNKNOWN_METHOD"},
		{"Overflow", func(c *C) {
			c.Side, c.Account, c.Purpose = matching.Buy, "buyer-1", matching.PurposeNone
			c.Price, c.Quantity = 9_000_000_000_000_000_000, 1000*btc
		}, "INVALID_QUANTITY"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := setup(t)
			cmd := C{Kind: matching.CmdPlaceOrder, Account: "miner-1", Symbol: "BTCKZT", ClientID: "x",
				Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 30_000_000 * kzt, Quantity: btc, Purpose: matching.PurposeMandatory}
			c.mod(&cmd)
			before := snapshot(h)
			evs := h.do(cmd)
			mustKind(t, evs, matching.EvRejected)
			if evs[0].Code != c.code {
				t.Fatalf("code = %s (%s); want %s", evs[0].Code, evs[0].Message, c.code)
			}
			if after := snapshot(h); !reflect.DeepEqual(before, after) {
				t.Fatalf("state changed: %v -> %v", before, after)
			}
		})
	}
	t.Run("MandatoryWithoutPermission", func(t *testing.T) {
		h := setup(t)
		h.do(matching.Command{Kind: matching.CmdSetPermission, Account: "miner-1", Permission: matching.PermMandatorySell, Granted: false})
		evs := h.limit("miner-1", "m", matching.Sell, 30_000_000*kzt, btc, true)
		mustKind(t, evs, matching.EvRejected)
		if evs[0].Code != "NOT_PERMITTED" {
			t.Fatalf("code = %s", evs[0].Code)
		}
	})
}

func snapshot(h *harness) map[string][2]int64 {
	out := map[string][2]int64{}
	for _, a := range []string{"miner-1", "buyer-1"} {
		for _, s := range []string{"BTC", "KZT"} {
			out[a+"/"+s] = h.balance(a, s)
		}
	}
	bids, asks := h.e.Depth("BTCKZT", 100)
	out["levels"] = [2]int64{int64(len(bids)), int64(len(asks))}
	return out
}

func TestDuplicateClientIDChangesNothing(t *testing.T) {
	h := setup(t)
	h.limit("buyer-1", "b1", matching.Buy, 30_000_000*kzt, btc, false)
	before := snapshot(h)
	evs := h.limit("buyer-1", "b1", matching.Buy, 31_000_000*kzt, btc, false)
	mustKind(t, evs, matching.EvDuplicate)
	if evs[0].OrderID != 1 {
		t.Fatalf("duplicate answered order %d; want 1", evs[0].OrderID)
	}
	if after := snapshot(h); !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed: %v -> %v", before, after)
	}
	evs = h.do(matching.Command{Kind: matching.CmdDeposit, Account: "buyer-1", Asset: "KZT", Amount: 5, ExtRef: "tx-1"})
	mustKind(t, evs, matching.EvDeposited)
	evs = h.do(matching.Command{Kind: matching.CmdDeposit, Account: "buyer-1", Asset: "KZT", Amount: 5, ExtRef: "tx-1"})
	mustKind(t, evs, matching.EvDuplicate)
}

func TestIOCAndCancelReleaseHolds(t *testing.T) {
	h := setup(t)
	evs := h.do(matching.Command{Kind: matching.CmdPlaceOrder, Account: "buyer-1", Symbol: "BTCKZT", ClientID: "i",
		Side: matching.Buy, Type: matching.Limit, TIF: matching.IOC, Price: 30_000_000 * kzt, Quantity: btc})
	mustKind(t, evs, matching.EvOrderAccepted, matching.EvOrderDone)
	if evs[1].Status != matching.StatusExpired {
		t.Fatalf("IOC status = %s", evs[1].Status)
	}
	if got := h.balance("buyer-1", "KZT"); got != [2]int64{100_000_000 * kzt, 0} {
		t.Fatalf("after IOC: %v", got)
	}
	h.limit("miner-1", "s", matching.Sell, 30_000_000*kzt, btc, true)
	if got := h.balance("miner-1", "BTC"); got != [2]int64{btc, btc} {
		t.Fatalf("after sell: %v", got)
	}
	// A cancel naming another symbol does not touch the order.
	evs = h.do(matching.Command{Kind: matching.CmdCancelOrder, Account: "miner-1", Symbol: "ETHKZT", ClientID: "s"})
	mustKind(t, evs, matching.EvRejected)
	if evs[0].Code != "UNKNOWN_ORDER" || h.balance("miner-1", "BTC") != [2]int64{btc, btc} {
		t.Fatalf("cross-symbol cancel: %+v, balance %v", evs[0], h.balance("miner-1", "BTC"))
	}
	evs = h.do(matching.Command{Kind: matching.CmdCancelOrder, Account: "miner-1", Symbol: "BTCKZT", ClientID: "s"})
	mustKind(t, evs, matching.EvOrderDone)
	if got := h.balance("miner-1", "BTC"); got != [2]int64{2 * btc, 0} {
		t.Fatalf("after cancel: %v", got)
	}
	evs = h.do(matching.Command{Kind: matching.CmdCancelOrder, Account: "buyer-1", OrderID: 2})
	mustKind(t, evs, matching.EvRejected)
}

func TestSelfTradeExpiresTaker(t *testing.T) {
	h := setup(t)
	h.open("miner-2", "miner-co", matching.KindMiner) // same owner as miner-1
	h.deposit("miner-2", "KZT", 100_000_000*kzt)
	h.limit("miner-1", "s", matching.Sell, 30_000_000*kzt, btc, false)
	evs := h.limit("miner-2", "b", matching.Buy, 30_000_000*kzt, btc, false)
	mustKind(t, evs, matching.EvOrderAccepted, matching.EvOrderDone)
	if evs[1].Status != matching.StatusExpired {
		t.Fatalf("status = %s", evs[1].Status)
	}
	if got := h.balance("miner-2", "KZT"); got != [2]int64{100_000_000 * kzt, 0} {
		t.Fatalf("miner-2 KZT = %v", got)
	}
}

func TestNotional128(t *testing.T) {
	s := matching.DefaultSymbols()[0]
	// 50,000,000 ₸ × 100 BTC overflows int64 as tiyn × satoshi, but not the result.
	got, ok := s.Notional(50_000_000*kzt, 100*btc)
	if !ok || got != 5_000_000_000*kzt {
		t.Fatalf("notional = %d, %v", got, ok)
	}
	if got, _ := s.Notional(50_000_001*kzt, 1); got != 50 { // 50.000001 tiyn, rounded down
		t.Fatalf("floor = %d", got)
	}
	if got, _ := s.NotionalCeil(50_000_001*kzt, 1); got != 51 {
		t.Fatalf("ceil = %d", got)
	}
	if _, ok := s.Notional(1<<62, 1<<62); ok {
		t.Fatal("overflow not detected")
	}
}

// TestConservationAndReplay drives random orders and checks, after every
// command, that per asset free + held sums to what was deposited and no
// balance is negative; then replays the log into a new engine and requires
// identical events.
func TestConservationAndReplay(t *testing.T) {
	h := newHarness(t)
	accts := []string{"a", "b", "c", "d"}
	for i, a := range accts {
		h.open(a, "owner-"+a, matching.KindTrader)
		h.deposit(a, "BTC", int64(10+i)*btc)
		h.deposit(a, "KZT", int64(500_000_000+i)*kzt)
	}
	total := func(asset string) int64 {
		var sum int64
		for _, a := range accts {
			f, hd := h.e.Balance(a, asset)
			if f < 0 || hd < 0 {
				t.Fatalf("negative balance %s/%s: %d/%d", a, asset, f, hd)
			}
			sum += f + hd
		}
		return sum
	}
	wantBTC, wantKZT := total("BTC"), total("KZT")
	rng := rand.New(rand.NewPCG(1, 2))
	var all []matching.Event
	for i := 0; i < 3000; i++ {
		a := accts[rng.IntN(len(accts))]
		var evs []matching.Event
		if rng.IntN(5) == 0 {
			evs = h.do(matching.Command{Kind: matching.CmdCancelOrder, Account: a, OrderID: uint64(rng.IntN(i + 1))})
		} else {
			side := matching.Buy
			if rng.IntN(2) == 0 {
				side = matching.Sell
			}
			tif := matching.GTC
			if rng.IntN(4) == 0 {
				tif = matching.IOC
			}
			evs = h.do(matching.Command{Kind: matching.CmdPlaceOrder, Account: a, Symbol: "BTCKZT",
				ClientID: "c" + jsonInt(uint64(i)), Side: side, Type: matching.Limit, TIF: tif,
				Price: int64(29_990_000+rng.IntN(20_000)) * kzt, Quantity: int64(1 + rng.IntN(btc))})
		}
		all = append(all, evs...)
		if total("BTC") != wantBTC || total("KZT") != wantKZT {
			t.Fatalf("command %d broke conservation: BTC %d (want %d), KZT %d (want %d)", i, total("BTC"), wantBTC, total("KZT"), wantKZT)
		}
	}
	trades := 0
	for _, ev := range all {
		if ev.Kind == matching.EvTrade {
			trades++
		}
	}
	if trades < 100 {
		t.Fatalf("only %d trades: the scenario does not exercise matching", trades)
	}
	replay, _ := matching.New(matching.DefaultSymbols())
	var again []matching.Event
	for _, c := range h.log {
		var err error
		if again, err = replay.Apply(c, again); err != nil {
			t.Fatal(err)
		}
	}
	if len(again) < len(all) || !reflect.DeepEqual(again[len(again)-len(all):], all) {
		t.Fatal("replay produced different events")
	}
}

func TestSequenceGapIsRefused(t *testing.T) {
	e, _ := matching.New(matching.DefaultSymbols())
	if _, err := e.Apply(matching.Command{Seq: 2, Kind: matching.CmdOpenAccount}, nil); err == nil {
		t.Fatal("a gap in the sequence was accepted")
	}
	if e.Seq() != 0 {
		t.Fatal("engine advanced on a refused sequence")
	}
}
