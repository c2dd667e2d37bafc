package matching_test

// example_test.go: the worked examples of docs/matching.md. Every number in
// the document's examples is printed by one of these functions, so `go test
// -run Example ./matching/` keeps the document honest. They run on the
// shipped symbols (DefaultSymbols) and print amounts as decimals in whole
// units: BTC with 8 decimals, USDT with 6, KZT (tenge) with 2.
//
// Everything here is prefixed "ex" so that it cannot clash with the helpers
// of the package's other test files.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching"
)

// exT0 is 2024-03-01T04:00:00Z (09:00 in Almaty), the examples' start time.
const exT0 int64 = 1_709_265_600_000

// exEngine drives an engine as the sequencer would: each command gets the
// next sequence number and the example's clock, now.
type exEngine struct {
	*matching.Engine
	now     int64
	sym     string          // the symbol orders go to unless they name one
	scale   map[string]int  // asset → decimals
	byQuote map[uint64]bool // market buys sized by quote amount
}

func exNew(symbols ...matching.Symbol) *exEngine {
	if len(symbols) == 0 {
		symbols = matching.DefaultSymbols()
	}
	e, err := matching.New(symbols)
	if err != nil {
		panic(err)
	}
	x := &exEngine{Engine: e, now: exT0, sym: symbols[0].Name, scale: map[string]int{}, byQuote: map[uint64]bool{}}
	for _, s := range symbols {
		x.scale[s.Base], x.scale[s.Quote] = s.BaseScale, s.QuoteScale
	}
	return x
}

// do applies a command at the example's clock.
func (x *exEngine) do(c matching.Command) []matching.Event {
	c.Seq, c.Time = x.Seq()+1, x.now
	evs, err := x.Apply(c, nil)
	if err != nil {
		panic(err)
	}
	return evs
}

// must applies a command that must not be refused.
func (x *exEngine) must(c matching.Command) []matching.Event {
	evs := x.do(c)
	if err := matching.Rejection(evs); err != nil {
		panic(fmt.Sprintf("%s refused: %v", c.Kind, err))
	}
	return evs
}

// open opens a trader account and deposits funds given as "ASSET amount".
func (x *exEngine) open(acct, owner string, funds ...string) {
	x.must(matching.Command{Kind: matching.CmdOpenAccount, Account: acct, Owner: owner, AccountKind: matching.KindTrader})
	for _, f := range funds {
		asset, amount, _ := strings.Cut(f, " ")
		x.must(matching.Command{Kind: matching.CmdDeposit, Account: acct, Asset: asset,
			Amount: exParse(amount, x.scale[asset]), ExtRef: fmt.Sprintf("dep-%d", x.Seq()+1)})
	}
}

// place places an order; symbol, type (limit) and a unique client ID are
// filled in when not given.
func (x *exEngine) place(c matching.Command) []matching.Event {
	c.Kind = matching.CmdPlaceOrder
	if c.Symbol == "" {
		c.Symbol = x.sym
	}
	if c.Type == 0 {
		c.Type = matching.Limit
	}
	if c.ClientID == "" {
		c.ClientID = fmt.Sprintf("c%d", x.Seq()+1)
	}
	evs := x.do(c)
	if c.QuoteQty != 0 && len(evs) > 0 && evs[0].Kind == matching.EvOrderAccepted {
		x.byQuote[evs[0].OrderID] = true
	}
	return evs
}

// limit places a GTC limit order that must be accepted.
func (x *exEngine) limit(acct string, side matching.Side, price, qty string) {
	s, _ := x.Symbol(x.sym)
	evs := x.place(matching.Command{Account: acct, Side: side, Price: exParse(price, s.QuoteScale), Quantity: exParse(qty, s.BaseScale)})
	if err := matching.Rejection(evs); err != nil {
		panic(err)
	}
}

// phase is an operator's phase change.
func (x *exEngine) phase(p matching.Phase) []matching.Event {
	return x.must(matching.Command{Kind: matching.CmdSetPhase, Symbol: x.sym, Phase: p})
}

// show prints events, one a line; level and balance events only when all.
func (x *exEngine) show(evs []matching.Event, all bool) {
	for _, ev := range evs {
		if !all && (ev.Kind == matching.EvLevel || ev.Kind == matching.EvBalance) {
			continue
		}
		fmt.Println(x.line(ev))
	}
}

// line describes one event.
func (x *exEngine) line(ev matching.Event) string {
	s, _ := x.Symbol(ev.Symbol)
	p := func(v int64) string { return exDec(v, s.QuoteScale) }
	q := func(v int64) string { return exDec(v, s.BaseScale) + " " + s.Base }
	var b strings.Builder
	if ev.Timer {
		b.WriteString("[timer] ")
	}
	switch ev.Kind {
	case matching.EvOrderAccepted:
		switch {
		case ev.Amount != 0:
			fmt.Fprintf(&b, "accepted #%d market %s for %s %s", ev.OrderID, ev.Side, p(ev.Amount), s.Quote)
		case ev.Type == matching.Market:
			fmt.Fprintf(&b, "accepted #%d market %s %s", ev.OrderID, ev.Side, q(ev.Quantity))
		default:
			fmt.Fprintf(&b, "accepted #%d %s %s @ %s %s", ev.OrderID, ev.Side, q(ev.Quantity), p(ev.Price), ev.TIF)
		}
	case matching.EvOrderDone:
		fmt.Fprintf(&b, "done #%d %s", ev.OrderID, ev.Status)
		if ev.Reason != "" {
			fmt.Fprintf(&b, " (%s)", ev.Reason)
		}
		if x.byQuote[ev.OrderID] {
			fmt.Fprintf(&b, ", bought %s, %s %s unspent", q(ev.Filled), p(ev.Amount), s.Quote)
		} else {
			fmt.Fprintf(&b, ", filled %s of %s", q(ev.Filled), q(ev.Quantity))
		}
	case matching.EvOrderAmended:
		fmt.Fprintf(&b, "amended #%d to %s @ %s", ev.OrderID, q(ev.Quantity), p(ev.Price))
		if ev.KeepsPriority {
			b.WriteString(", keeps priority")
		}
	case matching.EvTrade:
		taker := "auction"
		if ev.TakerSide != 0 {
			taker = "taker " + ev.TakerSide.String()
		}
		fmt.Fprintf(&b, "trade %s @ %s = %s %s; buyer #%d fee %s, seller #%d fee %s; %s",
			q(ev.Quantity), p(ev.Price), p(ev.QuoteAmount), s.Quote,
			ev.BuyOrderID, p(ev.BuyerFee), ev.SellOrderID, p(ev.SellerFee), taker)
	case matching.EvLevel:
		fmt.Fprintf(&b, "level %s %s: %s in %d orders", ev.Side, p(ev.Price), q(ev.Quantity), ev.Orders)
	case matching.EvBalance:
		fmt.Fprintf(&b, "balance %s %s: free %s, held %s", ev.Account, ev.Asset,
			exDec(ev.Free, x.scale[ev.Asset]), exDec(ev.Held, x.scale[ev.Asset]))
	case matching.EvPhase:
		fmt.Fprintf(&b, "phase %s", ev.Phase)
		if ev.Halted {
			b.WriteString(" (halted)")
		}
		if ev.Price != 0 {
			fmt.Fprintf(&b, ", price %s", p(ev.Price))
		}
		if ev.Until != 0 {
			fmt.Fprintf(&b, ", until t0+%ds", (ev.Until-exT0)/1000)
		}
	case matching.EvRejected:
		fmt.Fprintf(&b, "rejected %s", ev.Code)
	case matching.EvDuplicate:
		fmt.Fprintf(&b, "duplicate of #%d", ev.OrderID)
	default:
		b.WriteString(ev.Kind.String())
	}
	return b.String()
}

// band prints the symbol's reference price and the price band around it:
// ref ± floor(ref × PriceBandBps / 10,000).
func (x *exEngine) band() {
	s, _ := x.Symbol(x.sym)
	st, _ := x.Market(x.sym)
	d := st.RefPrice * s.PriceBandBps / 10_000 // small enough here not to overflow
	fmt.Printf("reference %s, band %s–%s\n", exDec(st.RefPrice, s.QuoteScale), exDec(st.RefPrice-d, s.QuoteScale), exDec(st.RefPrice+d, s.QuoteScale))
}

// stateKey is the state's hash without the sequence and the clock.
func (x *exEngine) stateKey() string {
	s := x.Snapshot()
	s.Seq, s.Now = 0, 0
	return s.Hash()
}

// exDec formats v minor units with scale decimals and thousands separators.
func exDec(v int64, scale int) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	s := strconv.FormatInt(v, 10)
	for len(s) <= scale {
		s = "0" + s
	}
	ip, fp := s[:len(s)-scale], s[len(s)-scale:]
	var b strings.Builder
	for i, c := range ip {
		if i > 0 && (len(ip)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if scale > 0 {
		b.WriteString("." + fp)
	}
	return sign + b.String()
}

// exShort is exDec without trailing zeros: 0.05000000 → 0.05.
func exShort(v int64, scale int) string {
	d := exDec(v, scale)
	if strings.Contains(d, ".") {
		d = strings.TrimRight(strings.TrimRight(d, "0"), ".")
	}
	return d
}

// exParse parses a decimal such as "43,000,000" or "0.25" into minor units.
func exParse(s string, scale int) int64 {
	s = strings.ReplaceAll(s, ",", "")
	ip, fp, _ := strings.Cut(s, ".")
	fp += strings.Repeat("0", scale-len(fp))
	v, err := strconv.ParseInt(ip+fp, 10, 64)
	if err != nil {
		panic(err)
	}
	return v
}

// exAuctionTable prints, for every price an uncross could choose (the
// prices of the crossing levels), the bids at or above it, the asks at or
// below it, the executable volume and the imbalance, and marks the price
// the engine chose (Indicative).
func (x *exEngine) auctionTable() {
	s, _ := x.Symbol(x.sym)
	bids, asks := x.Depth(x.sym, 1<<20)
	if len(bids) == 0 || len(asks) == 0 {
		return
	}
	prices := map[int64]bool{}
	for _, l := range bids {
		if l.Price >= asks[0].Price {
			prices[l.Price] = true
		}
	}
	for _, l := range asks {
		if l.Price <= bids[0].Price {
			prices[l.Price] = true
		}
	}
	chosen, volume := x.Indicative(x.sym)
	fmt.Println("| price | bids at or above | asks at or below | executable | imbalance |")
	for p := asks[0].Price; p <= bids[0].Price; p += s.TickSize {
		if !prices[p] {
			continue
		}
		var bv, av int64
		for _, l := range bids {
			if l.Price >= p {
				bv += l.Quantity
			}
		}
		for _, l := range asks {
			if l.Price <= p {
				av += l.Quantity
			}
		}
		mark := ""
		if p == chosen {
			mark = " ←"
		}
		fmt.Printf("| %s | %s | %s | %s | %s |%s\n", exDec(p, s.QuoteScale), exDec(bv, s.BaseScale),
			exDec(av, s.BaseScale), exDec(min(bv, av), s.BaseScale), exDec(max(bv-av, av-bv), s.BaseScale), mark)
	}
	fmt.Printf("indicative: %s × %s\n", exDec(chosen, s.QuoteScale), exDec(volume, s.BaseScale))
}

// ExampleDefaultSymbols prints the shipped markets.
func ExampleDefaultSymbols() {
	e, _ := matching.New(matching.DefaultSymbols())
	for _, s := range matching.DefaultSymbols() {
		st, _ := e.Market(s.Name)
		fmt.Printf("%s: %s/%s, scales %d/%d, tick %s %s, lot %s %s, quantity %s–%s %s, min notional %s %s\n",
			s.Name, s.Base, s.Quote, s.BaseScale, s.QuoteScale, exDec(s.TickSize, s.QuoteScale), s.Quote,
			exDec(s.LotSize, s.BaseScale), s.Base, exDec(s.MinQty, s.BaseScale), exDec(s.MaxQty, s.BaseScale), s.Base,
			exDec(s.MinNotional, s.QuoteScale), s.Quote)
		fmt.Printf("  fees maker %d / taker %d bps, band %d bps, volatility auction %d ms, ref price %d, phase %s\n",
			s.MakerFeeBps, s.TakerFeeBps, s.PriceBandBps, s.VolatilityAuctionMs, s.RefPrice, st.Phase)
	}
	// Output:
	// BTCKZT: BTC/KZT, scales 8/2, tick 1.00 KZT, lot 0.00000001 BTC, quantity 0.00000001–1,000.00000000 BTC, min notional 100.00 KZT
	//   fees maker 10 / taker 20 bps, band 1000 bps, volatility auction 300000 ms, ref price 0, phase continuous
	// ETHKZT: ETH/KZT, scales 9/2, tick 1.00 KZT, lot 0.000001000 ETH, quantity 0.000001000–10,000.000000000 ETH, min notional 100.00 KZT
	//   fees maker 10 / taker 20 bps, band 1000 bps, volatility auction 300000 ms, ref price 0, phase continuous
	// USDTKZT: USDT/KZT, scales 6/2, tick 0.01 KZT, lot 0.010000 USDT, quantity 0.010000–10,000,000.000000 USDT, min notional 100.00 KZT
	//   fees maker 10 / taker 20 bps, band 1000 bps, volatility auction 300000 ms, ref price 0, phase continuous
}

// ExampleSymbol_Notional shows the integer arithmetic: 128-bit notional,
// rounding down for trades and up for holds, fees rounded down.
func ExampleSymbol_Notional() {
	btc := matching.DefaultSymbols()[0]
	// 20 BTC at 50,000,000 ₸: 5,000,000,000 tiyn × 2,000,000,000 satoshi
	// is 10^19, beyond int64; the notional itself fits.
	n, ok := btc.Notional(5_000_000_000, 2_000_000_000)
	fmt.Println("20 BTC @ 50,000,000 ₸:", n, "tiyn", ok)
	// 3 satoshi at 43,000,123 ₸ is 129.00369 tiyn.
	lo, _ := btc.Notional(4_300_012_300, 3)
	hi, _ := btc.NotionalCeil(4_300_012_300, 3)
	fmt.Println("3 sat @ 43,000,123 ₸:", lo, "tiyn traded,", hi, "tiyn held")
	// 0.01234567 BTC at 43,000,000 ₸.
	n, _ = btc.Notional(4_300_000_000, 1_234_567)
	fmt.Println("0.01234567 BTC @ 43,000,000 ₸:", n, "tiyn; fees", matching.Fee(n, 20), "(20 bps),", matching.Fee(n, 10), "(10 bps)")
	// The buy's hold: the notional rounded up plus the larger fee on it.
	hi, _ = btc.NotionalCeil(4_300_000_000, 1_234_567)
	fmt.Println("its hold:", hi+matching.Fee(hi, max(btc.MakerFeeBps, btc.TakerFeeBps)), "tiyn")
	_, ok = btc.Notional(1<<62, 1<<62)
	fmt.Println("2^62 × 2^62 fits:", ok)
	// Output:
	// 20 BTC @ 50,000,000 ₸: 100000000000 tiyn true
	// 3 sat @ 43,000,123 ₸: 129 tiyn traded, 130 tiyn held
	// 0.01234567 BTC @ 43,000,000 ₸: 53086381 tiyn; fees 106172 (20 bps), 53086 (10 bps)
	// its hold: 53192553 tiyn
	// 2^62 × 2^62 fits: false
}

// ExampleEngine_limitOrder: a limit buy crosses two ask levels at the
// makers' prices, pays the taker fee, and rests the rest; every event of the
// command is shown, the coalesced level and balance events last.
func ExampleEngine_limitOrder() {
	x := exNew()
	x.open("maker-a", "a-co", "BTC 1")
	x.open("maker-b", "b-co", "BTC 1")
	x.open("taker", "t-co", "KZT 5,000,000")
	x.limit("maker-a", matching.Sell, "43,000,000", "0.01234567") // #1
	x.limit("maker-b", matching.Sell, "43,000,500", "0.02")       // #2
	evs := x.place(matching.Command{Account: "taker", Side: matching.Buy,
		Price: exParse("43,001,000", 2), Quantity: exParse("0.04", 8)}) // #3
	x.show(evs, true)
	// What the order held on acceptance, what it paid, what it holds now.
	btc, _ := x.Symbol("BTCKZT")
	n, _ := btc.NotionalCeil(exParse("43,001,000", 2), exParse("0.04", 8))
	var paid int64
	for _, ev := range evs {
		if ev.Kind == matching.EvTrade {
			paid += ev.QuoteAmount + ev.BuyerFee
		}
	}
	o, _ := x.Order(3)
	rest, _ := btc.NotionalCeil(o.Price, o.Remaining)
	fmt.Printf("held on acceptance: %s + fee %s = %s KZT\n", exDec(n, 2), exDec(matching.Fee(n, 20), 2), exDec(n+matching.Fee(n, 20), 2))
	fmt.Printf("paid: %s KZT\n", exDec(paid, 2))
	fmt.Printf("the rest, %s BTC, holds %s + fee %s = %s KZT\n", exDec(o.Remaining, 8), exDec(rest, 2), exDec(matching.Fee(rest, 20), 2), exDec(o.Held, 2))
	fmt.Printf("released: %s KZT\n", exDec(n+matching.Fee(n, 20)-paid-o.Held, 2))
	// Output:
	// accepted #3 buy 0.04000000 BTC @ 43,001,000.00 GTC
	// trade 0.01234567 BTC @ 43,000,000.00 = 530,863.81 KZT; buyer #3 fee 1,061.72, seller #1 fee 530.86; taker buy
	// done #1 filled, filled 0.01234567 BTC of 0.01234567 BTC
	// trade 0.02000000 BTC @ 43,000,500.00 = 860,010.00 KZT; buyer #3 fee 1,720.02, seller #2 fee 860.01; taker buy
	// done #2 filled, filled 0.02000000 BTC of 0.02000000 BTC
	// level sell 43,000,000.00: 0.00000000 BTC in 0 orders
	// level sell 43,000,500.00: 0.00000000 BTC in 0 orders
	// level buy 43,001,000.00: 0.00765433 BTC in 1 orders
	// balance taker KZT: free 3,276,542.32, held 329,802.13
	// balance taker BTC: free 0.03234567, held 0.00000000
	// balance maker-a BTC: free 0.98765433, held 0.00000000
	// balance maker-a KZT: free 530,332.95, held 0.00
	// balance exchange-fees KZT: free 4,172.61, held 0.00
	// balance maker-b BTC: free 0.98000000, held 0.00000000
	// balance maker-b KZT: free 859,149.99, held 0.00
	// held on acceptance: 1,720,040.00 + fee 3,440.08 = 1,723,480.08 KZT
	// paid: 1,393,655.55 KZT
	// the rest, 0.00765433 BTC, holds 329,143.85 + fee 658.28 = 329,802.13 KZT
	// released: 22.40 KZT
}

// ExampleEngine_iceberg: an iceberg shows one slice at a time; when a slice
// is used up the next one goes to the back of its price level.
func ExampleEngine_iceberg() {
	x := exNew()
	x.open("ice", "ice-co", "BTC 10")
	x.open("plain", "plain-co", "BTC 10")
	x.open("buyer", "buyer-co", "KZT 100,000,000")
	x.place(matching.Command{Account: "ice", Side: matching.Sell, Price: exParse("43,000,000", 2),
		Quantity: exParse("1", 8), DisplayQty: exParse("0.1", 8)}) // #1
	x.limit("plain", matching.Sell, "43,000,000", "0.1") // #2
	show := func() {
		_, asks := x.Depth("BTCKZT", 1)
		fmt.Printf("best ask %s: %s BTC visible in %d orders;", exDec(asks[0].Price, 2), exDec(asks[0].Quantity, 8), asks[0].Orders)
		for _, o := range x.BookOrders("BTCKZT", matching.Sell) {
			fmt.Printf(" #%d %s of %s", o.ID, exDec(o.Visible, 8), exDec(o.Remaining, 8))
		}
		fmt.Println()
	}
	show()
	x.show(x.place(matching.Command{Account: "buyer", Side: matching.Buy, Price: exParse("43,000,000", 2), Quantity: exParse("0.15", 8)}), false)
	show()
	// Output:
	// best ask 43,000,000.00: 0.20000000 BTC visible in 2 orders; #1 0.10000000 of 1.00000000 #2 0.10000000 of 0.10000000
	// accepted #3 buy 0.15000000 BTC @ 43,000,000.00 GTC
	// trade 0.10000000 BTC @ 43,000,000.00 = 4,300,000.00 KZT; buyer #3 fee 8,600.00, seller #1 fee 4,300.00; taker buy
	// trade 0.05000000 BTC @ 43,000,000.00 = 2,150,000.00 KZT; buyer #3 fee 4,300.00, seller #2 fee 2,150.00; taker buy
	// done #3 filled, filled 0.15000000 BTC of 0.15000000 BTC
	// best ask 43,000,000.00: 0.15000000 BTC visible in 2 orders; #2 0.05000000 of 0.05000000 #1 0.10000000 of 0.90000000
}

// ExampleEngine_marketBuyByQuote: a market buy sized by the quote amount to
// spend, fees included ("buy USDT for 100,000 ₸").
func ExampleEngine_marketBuyByQuote() {
	x := exNew()
	x.sym = "USDTKZT"
	x.open("seller", "s-co", "USDT 10,000")
	x.open("buyer", "b-co", "KZT 1,000,000")
	x.limit("seller", matching.Sell, "470.00", "100") // #1
	x.limit("seller", matching.Sell, "470.50", "500") // #2
	evs := x.place(matching.Command{Account: "buyer", Side: matching.Buy, Type: matching.Market, QuoteQty: exParse("100,000", 2)})
	x.show(evs, false)
	budget := exParse("100,000", 2)
	for _, ev := range evs {
		if ev.Kind == matching.EvTrade {
			budget -= ev.QuoteAmount + ev.BuyerFee
			fmt.Printf("%s USDT cost %s + %s = %s KZT; %s left\n", exShort(ev.Quantity, 6), exDec(ev.QuoteAmount, 2),
				exDec(ev.BuyerFee, 2), exDec(ev.QuoteAmount+ev.BuyerFee, 2), exDec(budget, 2))
		}
	}
	free, held := x.Balance("buyer", "KZT")
	fmt.Printf("buyer KZT: free %s, held %s\n", exDec(free, 2), exDec(held, 2))
	// Output:
	// accepted #3 market buy for 100,000.00 KZT
	// trade 100.000000 USDT @ 470.00 = 47,000.00 KZT; buyer #3 fee 94.00, seller #1 fee 47.00; taker buy
	// done #1 filled, filled 100.000000 USDT of 100.000000 USDT
	// trade 112.220000 USDT @ 470.50 = 52,799.51 KZT; buyer #3 fee 105.59, seller #2 fee 52.79; taker buy
	// done #3 filled, bought 212.220000 USDT, 0.90 KZT unspent
	// 100 USDT cost 47,000.00 + 94.00 = 47,094.00 KZT; 52,906.00 left
	// 112.22 USDT cost 52,799.51 + 105.59 = 52,905.10 KZT; 0.90 left
	// buyer KZT: free 900,000.90, held 0.00
}

// ExampleSTPMode: what each self-trade prevention mode does. bob sells
// 0.05 BTC @ 43,000,000 (#1), alice-2 — alice's owner — 0.10 @ 43,000,000
// (#2), carol 0.10 @ 43,001,000 (#3); then alice buys (#4).
func ExampleSTPMode() {
	cases := []struct {
		name string
		tif  matching.TimeInForce
		qty  string
		stp  matching.STPMode
		prep func(x *exEngine)
	}{
		{"unset: the account default, expire_taker", matching.GTC, "0.2", matching.STPDefault, nil},
		{"expire_taker", matching.GTC, "0.2", matching.STPExpireTaker, nil},
		{"expire_maker", matching.GTC, "0.2", matching.STPExpireMaker, nil},
		{"expire_both", matching.GTC, "0.2", matching.STPExpireBoth, nil},
		{"decrement", matching.GTC, "0.2", matching.STPDecrement, nil},
		{"unset after set_stp decrement", matching.GTC, "0.2", matching.STPDefault, func(x *exEngine) {
			x.must(matching.Command{Kind: matching.CmdSetSTP, Account: "alice", STP: matching.STPDecrement})
		}},
		{"FOK expire_taker", matching.FOK, "0.15", matching.STPExpireTaker, nil},
		{"FOK expire_maker", matching.FOK, "0.15", matching.STPExpireMaker, nil},
	}
	for _, c := range cases {
		x := exNew()
		x.open("alice", "alice-co", "KZT 100,000,000")
		x.open("alice-2", "alice-co", "BTC 1")
		x.open("bob", "bob-co", "BTC 1")
		x.open("carol", "carol-co", "BTC 1")
		x.limit("bob", matching.Sell, "43,000,000", "0.05")
		x.limit("alice-2", matching.Sell, "43,000,000", "0.1")
		x.limit("carol", matching.Sell, "43,001,000", "0.1")
		if c.prep != nil {
			c.prep(x)
		}
		evs := x.place(matching.Command{Account: "alice", Side: matching.Buy, TIF: c.tif, STP: c.stp,
			Price: exParse("43,001,000", 2), Quantity: exParse(c.qty, 8)})
		fmt.Printf("%s, %s %s:", c.name, c.tif, c.qty)
		for _, ev := range evs {
			switch ev.Kind {
			case matching.EvTrade:
				fmt.Printf(" trade %s @ %s;", exShort(ev.Quantity, 8), exShort(ev.Price, 2))
			case matching.EvOrderDone:
				fmt.Printf(" #%d %s", ev.OrderID, ev.Status)
				if ev.Reason != "" {
					fmt.Printf(" (%s)", ev.Reason)
				}
				fmt.Printf(" %s of %s;", exShort(ev.Filled, 8), exShort(ev.Quantity, 8))
			}
		}
		if o, ok := x.Order(4); ok {
			fmt.Printf(" #4 rests %s;", exShort(o.Remaining, 8))
		}
		if o, ok := x.Order(2); ok {
			fmt.Printf(" #2 rests %s;", exShort(o.Remaining, 8))
		}
		fmt.Println()
	}
	// Output:
	// unset: the account default, expire_taker, GTC 0.2: trade 0.05 @ 43,000,000; #1 filled 0.05 of 0.05; #4 expired (self_trade) 0.05 of 0.2; #2 rests 0.1;
	// expire_taker, GTC 0.2: trade 0.05 @ 43,000,000; #1 filled 0.05 of 0.05; #4 expired (self_trade) 0.05 of 0.2; #2 rests 0.1;
	// expire_maker, GTC 0.2: trade 0.05 @ 43,000,000; #1 filled 0.05 of 0.05; #2 expired (self_trade) 0 of 0.1; trade 0.1 @ 43,001,000; #3 filled 0.1 of 0.1; #4 rests 0.05;
	// expire_both, GTC 0.2: trade 0.05 @ 43,000,000; #1 filled 0.05 of 0.05; #2 expired (self_trade) 0 of 0.1; #4 expired (self_trade) 0.05 of 0.2;
	// decrement, GTC 0.2: trade 0.05 @ 43,000,000; #1 filled 0.05 of 0.05; #2 expired (self_trade) 0 of 0; trade 0.05 @ 43,001,000; #4 filled 0.1 of 0.1;
	// unset after set_stp decrement, GTC 0.2: trade 0.05 @ 43,000,000; #1 filled 0.05 of 0.05; #2 expired (self_trade) 0 of 0; trade 0.05 @ 43,001,000; #4 filled 0.1 of 0.1;
	// FOK expire_taker, FOK 0.15: #4 expired (fok) 0 of 0.15; #2 rests 0.1;
	// FOK expire_maker, FOK 0.15: trade 0.05 @ 43,000,000; #1 filled 0.05 of 0.05; #2 expired (self_trade) 0 of 0.1; trade 0.1 @ 43,001,000; #3 filled 0.1 of 0.1; #4 filled 0.15 of 0.15;
}

// ExampleAllowedTransitions prints the phase changes an operator may make.
func ExampleAllowedTransitions() {
	for p := matching.PhaseClosed; p <= matching.PhaseVolatilityAuction; p++ {
		fmt.Println(p, "→", matching.AllowedTransitions(p))
	}
	// Output:
	// closed → [pre_open continuous]
	// pre_open → [opening_auction closed]
	// opening_auction → [continuous closed]
	// continuous → [pre_close closed]
	// pre_close → [closing_auction closed]
	// closing_auction → [trading_at_last closed]
	// trading_at_last → [closed]
	// volatility_auction → [continuous closed]
}

// ExampleEngine_auctionMaxVolume: an opening auction uncrosses at the price
// that executes the most.
func ExampleEngine_auctionMaxVolume() {
	x := exNew()
	for _, a := range []string{"alice", "bob", "carol", "dave"} {
		x.open(a, a+"-co", "KZT 100,000,000", "BTC 10")
	}
	x.phase(matching.PhaseClosed)
	x.phase(matching.PhasePreOpen)
	x.limit("alice", matching.Buy, "43,300,000", "0.1")  // #1
	x.limit("bob", matching.Buy, "43,200,000", "0.2")    // #2
	x.limit("alice", matching.Buy, "43,100,000", "0.3")  // #3
	x.limit("bob", matching.Buy, "43,000,000", "0.1")    // #4
	x.limit("carol", matching.Sell, "42,900,000", "0.2") // #5
	x.limit("dave", matching.Sell, "43,000,000", "0.15") // #6
	x.limit("carol", matching.Sell, "43,100,000", "0.2") // #7
	x.limit("dave", matching.Sell, "43,200,000", "0.3")  // #8
	x.auctionTable()
	x.phase(matching.PhaseOpeningAuction)
	x.show(x.phase(matching.PhaseContinuous), false)
	for _, side := range []matching.Side{matching.Buy, matching.Sell} {
		for _, o := range x.BookOrders("BTCKZT", side) {
			fmt.Printf("left: #%d %s %s @ %s\n", o.ID, o.Side, exShort(o.Remaining, 8), exShort(o.Price, 2))
		}
	}
	// Output:
	// | price | bids at or above | asks at or below | executable | imbalance |
	// | 42,900,000.00 | 0.70000000 | 0.20000000 | 0.20000000 | 0.50000000 |
	// | 43,000,000.00 | 0.70000000 | 0.35000000 | 0.35000000 | 0.35000000 |
	// | 43,100,000.00 | 0.60000000 | 0.55000000 | 0.55000000 | 0.05000000 | ←
	// | 43,200,000.00 | 0.30000000 | 0.85000000 | 0.30000000 | 0.55000000 |
	// | 43,300,000.00 | 0.10000000 | 0.85000000 | 0.10000000 | 0.75000000 |
	// indicative: 43,100,000.00 × 0.55000000
	// trade 0.10000000 BTC @ 43,100,000.00 = 4,310,000.00 KZT; buyer #1 fee 4,310.00, seller #5 fee 4,310.00; auction
	// done #1 filled, filled 0.10000000 BTC of 0.10000000 BTC
	// trade 0.10000000 BTC @ 43,100,000.00 = 4,310,000.00 KZT; buyer #2 fee 4,310.00, seller #5 fee 4,310.00; auction
	// done #5 filled, filled 0.20000000 BTC of 0.20000000 BTC
	// trade 0.10000000 BTC @ 43,100,000.00 = 4,310,000.00 KZT; buyer #2 fee 4,310.00, seller #6 fee 4,310.00; auction
	// done #2 filled, filled 0.20000000 BTC of 0.20000000 BTC
	// trade 0.05000000 BTC @ 43,100,000.00 = 2,155,000.00 KZT; buyer #3 fee 2,155.00, seller #6 fee 2,155.00; auction
	// done #6 filled, filled 0.15000000 BTC of 0.15000000 BTC
	// trade 0.20000000 BTC @ 43,100,000.00 = 8,620,000.00 KZT; buyer #3 fee 8,620.00, seller #7 fee 8,620.00; auction
	// done #7 filled, filled 0.20000000 BTC of 0.20000000 BTC
	// phase continuous, price 43,100,000.00
	// left: #3 buy 0.05 @ 43,100,000
	// left: #4 buy 0.1 @ 43,000,000
	// left: #8 sell 0.3 @ 43,200,000
}

// ExampleEngine_auctionTieBreaks: when volumes tie, the smaller imbalance
// wins; then the price nearer the reference price; then the lower price.
func ExampleEngine_auctionTieBreaks() {
	preOpen := func(withReference bool) *exEngine {
		x := exNew()
		for _, a := range []string{"alice", "bob", "carol", "dave"} {
			x.open(a, a+"-co", "KZT 100,000,000", "BTC 10")
		}
		if withReference { // a trade at 43,000,000 sets the reference price
			x.limit("carol", matching.Sell, "43,000,000", "0.01")
			x.limit("dave", matching.Buy, "43,000,000", "0.01")
		}
		x.phase(matching.PhaseClosed)
		x.phase(matching.PhasePreOpen)
		return x
	}
	fmt.Println("imbalance:")
	x := preOpen(false)
	x.limit("alice", matching.Buy, "43,100,000", "0.15")
	x.limit("bob", matching.Buy, "43,000,000", "0.1")
	x.limit("alice", matching.Buy, "42,900,000", "0.1")
	x.limit("carol", matching.Sell, "42,900,000", "0.2")
	x.limit("dave", matching.Sell, "43,100,000", "0.1")
	x.auctionTable()
	for _, ref := range []bool{true, false} {
		x := preOpen(ref)
		st, _ := x.Market("BTCKZT")
		fmt.Printf("reference price %s:\n", exDec(st.RefPrice, 2))
		x.limit("alice", matching.Buy, "43,050,000", "0.1")
		x.limit("bob", matching.Sell, "42,900,000", "0.1")
		x.auctionTable()
	}
	// Output:
	// imbalance:
	// | price | bids at or above | asks at or below | executable | imbalance |
	// | 42,900,000.00 | 0.35000000 | 0.20000000 | 0.20000000 | 0.15000000 |
	// | 43,000,000.00 | 0.25000000 | 0.20000000 | 0.20000000 | 0.05000000 | ←
	// | 43,100,000.00 | 0.15000000 | 0.30000000 | 0.15000000 | 0.15000000 |
	// indicative: 43,000,000.00 × 0.20000000
	// reference price 43,000,000.00:
	// | price | bids at or above | asks at or below | executable | imbalance |
	// | 42,900,000.00 | 0.10000000 | 0.10000000 | 0.10000000 | 0.00000000 |
	// | 43,050,000.00 | 0.10000000 | 0.10000000 | 0.10000000 | 0.00000000 | ←
	// indicative: 43,050,000.00 × 0.10000000
	// reference price 0.00:
	// | price | bids at or above | asks at or below | executable | imbalance |
	// | 42,900,000.00 | 0.10000000 | 0.10000000 | 0.10000000 | 0.00000000 | ←
	// | 43,050,000.00 | 0.10000000 | 0.10000000 | 0.10000000 | 0.00000000 |
	// indicative: 42,900,000.00 × 0.10000000
}

// ExampleEngine_tradingAtLast: the closing auction's price becomes the
// closing price, and trading at last trades only at it.
func ExampleEngine_tradingAtLast() {
	x := exNew()
	for _, a := range []string{"alice", "bob", "carol", "dave"} {
		x.open(a, a+"-co", "KZT 100,000,000", "BTC 10")
	}
	x.limit("carol", matching.Sell, "42,800,000", "0.01") // #1
	x.limit("dave", matching.Buy, "42,800,000", "0.01")   // #2: last trade 42,800,000
	x.phase(matching.PhasePreClose)
	x.limit("alice", matching.Buy, "43,100,000", "0.1")   // #3
	x.limit("carol", matching.Sell, "43,000,000", "0.05") // #4
	x.limit("dave", matching.Sell, "43,200,000", "0.1")   // #5
	x.phase(matching.PhaseClosingAuction)
	x.auctionTable()
	x.show(x.phase(matching.PhaseTradingAtLast), false)
	x.show(x.place(matching.Command{Account: "bob", Side: matching.Sell, Price: exParse("42,900,000", 2), Quantity: exParse("0.05", 8)}), false)
	x.show(x.place(matching.Command{Account: "bob", Side: matching.Sell, Price: exParse("43,000,000", 2), Quantity: exParse("0.05", 8)}), false)
	// Output:
	// | price | bids at or above | asks at or below | executable | imbalance |
	// | 43,000,000.00 | 0.10000000 | 0.05000000 | 0.05000000 | 0.05000000 | ←
	// | 43,100,000.00 | 0.10000000 | 0.05000000 | 0.05000000 | 0.05000000 |
	// indicative: 43,000,000.00 × 0.05000000
	// trade 0.05000000 BTC @ 43,000,000.00 = 2,150,000.00 KZT; buyer #3 fee 2,150.00, seller #4 fee 2,150.00; auction
	// done #4 filled, filled 0.05000000 BTC of 0.05000000 BTC
	// phase trading_at_last, price 43,000,000.00
	// rejected PHASE_REFUSED
	// accepted #6 sell 0.05000000 BTC @ 43,000,000.00 GTC
	// trade 0.05000000 BTC @ 43,000,000.00 = 2,150,000.00 KZT; buyer #3 fee 2,150.00, seller #6 fee 4,300.00; taker sell
	// done #3 filled, filled 0.10000000 BTC of 0.10000000 BTC
	// done #6 filled, filled 0.05000000 BTC of 0.05000000 BTC
}

// ExampleEngine_volatilityAuction: an execution beyond the price band is not
// made; the symbol calls for five minutes and uncrosses at the end.
func ExampleEngine_volatilityAuction() {
	x := exNew()
	for _, a := range []string{"alice", "bob", "carol", "dave"} {
		x.open(a, a+"-co", "KZT 100,000,000", "BTC 10")
	}
	x.limit("carol", matching.Sell, "43,000,000", "0.01")
	x.limit("dave", matching.Buy, "43,000,000", "0.01") // #2: the reference is 43,000,000
	x.band()
	x.limit("carol", matching.Sell, "45,000,000", "0.1") // #3
	x.limit("dave", matching.Sell, "48,000,000", "0.1")  // #4
	x.show(x.place(matching.Command{Account: "alice", Side: matching.Buy, Price: exParse("48,000,000", 2), Quantity: exParse("0.2", 8)}), false)
	x.show(x.place(matching.Command{Account: "bob", Side: matching.Buy, TIF: matching.IOC, Price: exParse("46,000,000", 2), Quantity: exParse("0.1", 8)}), false)
	x.now = exT0 + 300_000 - 1
	fmt.Println("tick at t0+299.999s:")
	x.show(x.do(matching.Command{Kind: matching.CmdTick}), false)
	x.now = exT0 + 300_000
	fmt.Println("tick at t0+300s:")
	x.show(x.do(matching.Command{Kind: matching.CmdTick}), false)
	x.band()
	// Output:
	// reference 43,000,000.00, band 38,700,000.00–47,300,000.00
	// accepted #5 buy 0.20000000 BTC @ 48,000,000.00 GTC
	// trade 0.10000000 BTC @ 45,000,000.00 = 4,500,000.00 KZT; buyer #5 fee 9,000.00, seller #3 fee 4,500.00; taker buy
	// done #3 filled, filled 0.10000000 BTC of 0.10000000 BTC
	// phase volatility_auction, price 45,000,000.00, until t0+300s
	// rejected PHASE_REFUSED
	// tick at t0+299.999s:
	// ack
	// tick at t0+300s:
	// [timer] trade 0.10000000 BTC @ 48,000,000.00 = 4,800,000.00 KZT; buyer #5 fee 4,800.00, seller #4 fee 4,800.00; auction
	// [timer] done #5 filled, filled 0.20000000 BTC of 0.20000000 BTC
	// [timer] done #4 filled, filled 0.10000000 BTC of 0.10000000 BTC
	// [timer] phase continuous, price 48,000,000.00
	// reference 48,000,000.00, band 43,200,000.00–52,800,000.00
}

// ExampleEngine_priceBand: what a taker that reaches beyond the band does,
// by order type. The reference is 43,000,000 ₸, so the band is
// 38,700,000–47,300,000; 0.1 BTC is offered at 45,000,000 and at 48,000,000.
func ExampleEngine_priceBand() {
	cases := []struct {
		name string
		cmd  matching.Command
	}{
		{"limit GTC", matching.Command{TIF: matching.GTC, Price: exParse("48,000,000", 2)}},
		{"limit IOC", matching.Command{TIF: matching.IOC, Price: exParse("48,000,000", 2)}},
		{"limit FOK", matching.Command{TIF: matching.FOK, Price: exParse("48,000,000", 2)}},
		{"market", matching.Command{Type: matching.Market}},
	}
	for _, c := range cases {
		x := exNew()
		for _, a := range []string{"alice", "carol", "dave"} {
			x.open(a, a+"-co", "KZT 100,000,000", "BTC 10")
		}
		x.limit("carol", matching.Sell, "43,000,000", "0.01")
		x.limit("dave", matching.Buy, "43,000,000", "0.01")
		x.limit("carol", matching.Sell, "45,000,000", "0.1")
		x.limit("dave", matching.Sell, "48,000,000", "0.1")
		c.cmd.Account, c.cmd.Side, c.cmd.Quantity = "alice", matching.Buy, exParse("0.2", 8)
		evs := x.place(c.cmd)
		fmt.Printf("%s:", c.name)
		for _, ev := range evs {
			switch {
			case ev.Kind == matching.EvTrade:
				fmt.Printf(" trade %s @ %s;", exShort(ev.Quantity, 8), exShort(ev.Price, 2))
			case ev.Kind == matching.EvOrderDone && ev.OrderID == 5:
				fmt.Printf(" #5 %s (%s);", ev.Status, ev.Reason)
			}
		}
		if o, ok := x.Order(5); ok {
			fmt.Printf(" #5 rests %s @ %s;", exShort(o.Remaining, 8), exShort(o.Price, 2))
		}
		st, _ := x.Market("BTCKZT")
		fmt.Printf(" phase %s\n", st.Phase)
	}
	// Output:
	// limit GTC: trade 0.1 @ 45,000,000; #5 rests 0.1 @ 48,000,000; phase volatility_auction
	// limit IOC: trade 0.1 @ 45,000,000; #5 expired (price_band); phase volatility_auction
	// limit FOK: #5 expired (fok); phase continuous
	// market: trade 0.1 @ 45,000,000; #5 expired (price_band); phase volatility_auction
}

// ExampleEngine_sequencedTime: time passes only with commands. A GTD
// expiry is a timer event ahead of the command that carries the time; a
// finished order's client ID is remembered for the retention window.
func ExampleEngine_sequencedTime() {
	x := exNew()
	x.open("alice", "alice-co", "KZT 1,000,000")
	x.open("bob", "bob-co", "KZT 1,000,000")
	gtd := matching.Command{Account: "alice", ClientID: "a-1", Side: matching.Buy, TIF: matching.GTD,
		ExpireAt: exT0 + 60_000, Price: exParse("42,000,000", 2), Quantity: exParse("0.01", 8)}
	x.show(x.place(gtd), false)
	x.now = exT0 + 60_000
	x.show(x.place(matching.Command{Account: "bob", ClientID: "b-1", Side: matching.Buy,
		Price: exParse("41,000,000", 2), Quantity: exParse("0.01", 8)}), false)
	x.now = exT0 + 60_000 + 86_400_000 - 1 // retention: 24 hours after the expiry
	x.show(x.place(gtd), false)
	x.now++
	gtd.ExpireAt = x.now + 60_000
	x.show(x.place(gtd), false)
	x.show(x.place(matching.Command{Account: "bob", ClientID: "b-1", Side: matching.Buy,
		Price: exParse("41,000,000", 2), Quantity: exParse("0.01", 8)}), false)
	// Output:
	// accepted #1 buy 0.01000000 BTC @ 42,000,000.00 GTD
	// [timer] done #1 expired (gtd), filled 0.00000000 BTC of 0.01000000 BTC
	// accepted #2 buy 0.01000000 BTC @ 41,000,000.00 GTC
	// duplicate of #1
	// accepted #3 buy 0.01000000 BTC @ 42,000,000.00 GTD
	// duplicate of #2
}

// ExampleEngine_priceBandEdges: the band is ref ± floor(ref × bps / 10,000),
// edges included. On USDTKZT (tick 0.01 ₸) a trade at 470.05 ₸ makes the
// band 470.05 ± 47.00 (47.005 rounded down): 423.05–517.05.
func ExampleEngine_priceBandEdges() {
	x := exNew()
	x.sym = "USDTKZT"
	for _, a := range []string{"alice", "carol", "dave"} {
		x.open(a, a+"-co", "KZT 1,000,000", "USDT 1,000")
	}
	x.limit("carol", matching.Sell, "470.05", "1")
	x.limit("dave", matching.Buy, "470.05", "1")
	x.band()
	x.limit("carol", matching.Sell, "517.05", "1") // #3
	x.limit("dave", matching.Sell, "517.06", "1")  // #4
	x.show(x.place(matching.Command{Account: "alice", Side: matching.Buy, TIF: matching.IOC,
		Price: exParse("520", 2), Quantity: exParse("2", 6)}), false)
	// Output:
	// reference 470.05, band 423.05–517.05
	// accepted #5 buy 2.000000 USDT @ 520.00 IOC
	// trade 1.000000 USDT @ 517.05 = 517.05 KZT; buyer #5 fee 1.03, seller #3 fee 0.51; taker buy
	// done #3 filled, filled 1.000000 USDT of 1.000000 USDT
	// done #5 expired (price_band), filled 1.000000 USDT of 2.000000 USDT
	// phase volatility_auction, price 517.05, until t0+300s
}

// ExampleSymbol_schedule: a session schedule in Almaty time (UTC+5) drives
// the phases by sequenced time. At 10:10 one tick expires a GTD order
// first, then opens the auction; at 10:15 the auction uncrosses.
func ExampleSymbol_schedule() {
	s := matching.DefaultSymbols()[0]
	s.UTCOffsetMinutes = 300
	s.Schedule = []matching.ScheduleStep{
		{Minute: 0, Phase: matching.PhaseClosed},
		{Minute: 600, Phase: matching.PhasePreOpen},         // 10:00
		{Minute: 610, Phase: matching.PhaseOpeningAuction},  // 10:10
		{Minute: 615, Phase: matching.PhaseContinuous},      // 10:15
		{Minute: 1050, Phase: matching.PhasePreClose},       // 17:30
		{Minute: 1060, Phase: matching.PhaseClosingAuction}, // 17:40
		{Minute: 1065, Phase: matching.PhaseTradingAtLast},  // 17:45
		{Minute: 1080, Phase: matching.PhaseClosed},         // 18:00
	}
	x := exNew(s)
	almaty := func(minute int64) int64 { return exT0 + (minute-540)*60_000 } // exT0 is 09:00
	at := func(minute int64, c matching.Command) {
		x.now = almaty(minute)
		fmt.Printf("%02d:%02d %s\n", minute/60, minute%60, c.Kind)
		x.show(x.do(c), false)
	}
	tick := matching.Command{Kind: matching.CmdTick}
	x.open("alice", "alice-co", "KZT 100,000,000")
	x.open("carol", "carol-co", "BTC 10")
	st, _ := x.Market("BTCKZT")
	fmt.Println("09:00", st.Phase)
	at(600, tick)
	x.place(matching.Command{Account: "alice", Side: matching.Buy, Price: exParse("43,100,000", 2), Quantity: exParse("0.1", 8)})  // #1
	x.place(matching.Command{Account: "carol", Side: matching.Sell, Price: exParse("42,900,000", 2), Quantity: exParse("0.1", 8)}) // #2
	x.place(matching.Command{Account: "alice", Side: matching.Buy, TIF: matching.GTD, ExpireAt: almaty(610),
		Price: exParse("42,000,000", 2), Quantity: exParse("0.1", 8)}) // #3
	at(610, tick)
	at(615, tick)
	at(1050, tick)
	// Output:
	// 09:00 closed
	// 10:00 tick
	// [timer] phase pre_open
	// ack
	// 10:10 tick
	// [timer] done #3 expired (gtd), filled 0.00000000 BTC of 0.10000000 BTC
	// [timer] phase opening_auction
	// 10:15 tick
	// [timer] trade 0.10000000 BTC @ 42,900,000.00 = 4,290,000.00 KZT; buyer #1 fee 4,290.00, seller #2 fee 4,290.00; auction
	// [timer] done #1 filled, filled 0.10000000 BTC of 0.10000000 BTC
	// [timer] done #2 filled, filled 0.10000000 BTC of 0.10000000 BTC
	// [timer] phase continuous, price 42,900,000.00
	// 17:30 tick
	// [timer] phase pre_close, price 42,900,000.00
	// ack
}

// ExampleRejection: the rejection code of every situation the engine
// refuses, one a line. A refused command changes nothing.
func ExampleRejection() {
	type C = matching.Command
	pl := func(c C) C { // an order of alice's in BTCKZT unless it says otherwise
		c.Kind = matching.CmdPlaceOrder
		if c.Account == "" {
			c.Account = "alice"
		}
		if c.Symbol == "" {
			c.Symbol = "BTCKZT"
		}
		if c.ClientID == "" {
			c.ClientID = "r-1"
		}
		if c.Type == 0 {
			c.Type = matching.Limit
		}
		return c
	}
	am := func(c C) C { c.Kind, c.Account = matching.CmdAmendOrder, "alice"; return c }
	const P = 4_300_000_000 // 43,000,000 ₸ in tiyn
	const Q = 10_000_000    // 0.1 BTC in satoshi
	phases := func(ps ...matching.Phase) func(x *exEngine) {
		return func(x *exEngine) {
			for _, p := range ps {
				x.phase(p)
			}
		}
	}
	halt := func(x *exEngine) { x.must(C{Kind: matching.CmdHalt, Symbol: "BTCKZT"}) }
	cases := []struct {
		situation string
		prep      func(x *exEngine)
		cmd       C
	}{
		{"no such command kind", nil, C{Kind: 99}},
		{"an account ID that is not 1-64 of a-z, 0-9, -", nil, C{Kind: matching.CmdOpenAccount, Account: "Alice", Owner: "a", AccountKind: matching.KindTrader}},
		{"an account kind other than miner, trader, market_maker, operator", nil, C{Kind: matching.CmdOpenAccount, Account: "eve", Owner: "eve", AccountKind: matching.KindFee}},
		{"an account that exists with another owner", nil, C{Kind: matching.CmdOpenAccount, Account: "alice", Owner: "mallory", AccountKind: matching.KindTrader}},
		{"a command without its account", nil, C{Kind: matching.CmdCancelOrder, OrderID: 1}},
		{"an unknown account", nil, C{Kind: matching.CmdCancelOrder, Account: "zed", OrderID: 1}},
		{"a deposit of an unknown asset", nil, C{Kind: matching.CmdDeposit, Account: "alice", Asset: "XRP", Amount: 1, ExtRef: "x"}},
		{"a deposit of zero", nil, C{Kind: matching.CmdDeposit, Account: "alice", Asset: "KZT", ExtRef: "x"}},
		{"a deposit without an external reference", nil, C{Kind: matching.CmdDeposit, Account: "alice", Asset: "KZT", Amount: 1}},
		{"a deposit to the fee account", nil, C{Kind: matching.CmdDeposit, Account: matching.DefaultFeeAccount, Asset: "KZT", Amount: 1, ExtRef: "x"}},
		{"a withdrawal beyond the free balance", nil, C{Kind: matching.CmdWithdraw, Account: "bob", Asset: "BTC", Amount: 1_000_000_001, ExtRef: "w"}},
		{"an unknown permission", nil, C{Kind: matching.CmdSetPermission, Account: "alice", Permission: 9, Granted: true}},
		{"set_stp without a mode", nil, C{Kind: matching.CmdSetSTP, Account: "alice"}},
		{"a client ID longer than 64 characters", nil, pl(C{ClientID: strings.Repeat("x", 65), Side: matching.Buy, Price: P, Quantity: Q})},
		{"an order in an unknown symbol", nil, pl(C{Symbol: "XRPKZT", Side: matching.Buy, Price: P, Quantity: Q})},
		{"an order without a side", nil, pl(C{Price: P, Quantity: Q})},
		{"an unknown STP mode", nil, pl(C{Side: matching.Buy, Price: P, Quantity: Q, STP: 9})},
		{"an order from the fee account", nil, pl(C{Account: matching.DefaultFeeAccount, Side: matching.Buy, Price: P, Quantity: Q})},
		{"a mandatory buy", nil, pl(C{Side: matching.Buy, Price: P, Quantity: Q, Purpose: matching.PurposeMandatory})},
		{"a mandatory sell without the permission", nil, pl(C{Side: matching.Sell, Price: P, Quantity: Q, Purpose: matching.PurposeMandatory})},
		{"an obligation reference without purpose mandatory", nil, pl(C{Side: matching.Sell, Price: P, Quantity: Q, Obligation: "o-1"})},
		{"a price off the tick (43,000,000.50 ₸)", nil, pl(C{Side: matching.Buy, Price: P + 50, Quantity: Q})},
		{"a limit order without a price", nil, pl(C{Side: matching.Buy, Quantity: Q})},
		{"an unknown time in force", nil, pl(C{Side: matching.Buy, TIF: 9, Price: P, Quantity: Q})},
		{"a limit order with a quote amount", nil, pl(C{Side: matching.Buy, Price: P, Quantity: Q, QuoteQty: 1_000_000})},
		{"a quantity off the lot (ETHKZT, 0.0000015 ETH)", nil, pl(C{Symbol: "ETHKZT", Side: matching.Sell, Price: 150_000_000, Quantity: 1_500})},
		{"a quantity above the maximum (1,000.00000001 BTC)", nil, pl(C{Side: matching.Sell, Price: P, Quantity: 100_000_000_001})},
		{"below the minimum notional (0.000002 BTC = 86 ₸)", nil, pl(C{Side: matching.Buy, Price: P, Quantity: 200})},
		{"a GTD order expiring now", nil, pl(C{Side: matching.Buy, TIF: matching.GTD, ExpireAt: exT0, Price: P, Quantity: Q})},
		{"an expiry on a GTC order", nil, pl(C{Side: matching.Buy, ExpireAt: exT0 + 1, Price: P, Quantity: Q})},
		{"a display quantity not below the quantity", nil, pl(C{Side: matching.Buy, Price: P, Quantity: Q, DisplayQty: Q})},
		{"an IOC iceberg", nil, pl(C{Side: matching.Buy, TIF: matching.IOC, Price: P, Quantity: Q, DisplayQty: Q / 2})},
		{"a post-only FOK", nil, pl(C{Side: matching.Buy, TIF: matching.FOK, PostOnly: true, Price: P, Quantity: Q})},
		{"a post-only order that would trade", nil, pl(C{Side: matching.Buy, PostOnly: true, Price: P, Quantity: Q})},
		{"a buy beyond the free balance", nil, pl(C{Side: matching.Buy, Price: P, Quantity: 100 * Q})},
		{"a market order with a price", nil, pl(C{Type: matching.Market, Side: matching.Sell, Price: P, Quantity: Q})},
		{"a market order GTC", nil, pl(C{Type: matching.Market, Side: matching.Sell, TIF: matching.GTC, Quantity: Q})},
		{"a market buy with both quantity and quote amount", nil, pl(C{Type: matching.Market, Side: matching.Buy, Quantity: Q, QuoteQty: 1_000_000})},
		{"a market buy for less than the minimum notional", nil, pl(C{Type: matching.Market, Side: matching.Buy, QuoteQty: 9_999})},
		{"a market order outside continuous trading", phases(matching.PhasePreClose), pl(C{Type: matching.Market, Side: matching.Sell, Quantity: Q})},
		{"an IOC order in a call phase", phases(matching.PhasePreClose), pl(C{Side: matching.Buy, TIF: matching.IOC, Price: P, Quantity: Q})},
		{"any order while closed", phases(matching.PhaseClosed), pl(C{Side: matching.Buy, Price: P, Quantity: Q})},
		{"an amend while closed", phases(matching.PhaseClosed), am(C{OrderID: 2, Quantity: Q / 2})},
		{"another price than the closing price at last", func(x *exEngine) {
			x.limit("alice", matching.Buy, "43,000,000", "0.01") // trades: the closing price will be 43,000,000
			phases(matching.PhasePreClose, matching.PhaseClosingAuction, matching.PhaseTradingAtLast)(x)
		}, pl(C{Side: matching.Sell, Price: P + 100, Quantity: Q})},
		{"an order at last when nothing has traded (no closing price)",
			phases(matching.PhasePreClose, matching.PhaseClosingAuction, matching.PhaseTradingAtLast),
			pl(C{Side: matching.Sell, Price: P, Quantity: Q})},
		{"any order while halted", halt, pl(C{Side: matching.Buy, Price: P, Quantity: Q})},
		{"an amend while halted", halt, am(C{OrderID: 2, Quantity: Q / 2})},
		{"an amend of an unknown order", nil, am(C{OrderID: 9, Quantity: Q / 2})},
		{"an amend of another account's order", nil, am(C{OrderID: 1, Quantity: Q / 2})},
		{"an amend that changes nothing", nil, am(C{OrderID: 2, Price: P - 100_000_000})},
		{"an amend to the filled quantity or below", func(x *exEngine) {
			x.place(C{Account: "bob", Side: matching.Sell, Price: P - 100_000_000, Quantity: Q / 2})
		}, am(C{OrderID: 2, Quantity: Q / 2})},
		{"a post-only amend that would trade", func(x *exEngine) {
			x.place(C{Account: "alice", ClientID: "po", Side: matching.Buy, PostOnly: true, Price: P - 200_000_000, Quantity: Q})
		}, am(C{OrderID: 3, Price: P})},
		{"a cancel of an order that is not open", nil, C{Kind: matching.CmdCancelOrder, Account: "alice", ClientID: "nope"}},
		{"a cancel naming another symbol", nil, C{Kind: matching.CmdCancelOrder, Account: "alice", OrderID: 2, Symbol: "ETHKZT"}},
		{"a cancel-all with neither account nor symbol", nil, C{Kind: matching.CmdCancelAll}},
		{"a cancel-all with nothing to cancel", nil, C{Kind: matching.CmdCancelAll, Account: "alice", Symbol: "ETHKZT"}},
		{"a phase change the table does not allow", nil, C{Kind: matching.CmdSetPhase, Symbol: "BTCKZT", Phase: matching.PhaseOpeningAuction}},
		{"a halt of a halted symbol", halt, C{Kind: matching.CmdHalt, Symbol: "BTCKZT"}},
		{"a resume of a symbol that is not halted", nil, C{Kind: matching.CmdResume, Symbol: "BTCKZT"}},
	}
	for _, c := range cases {
		// bob offers 0.1 BTC @ 43,000,000 (#1); alice bids 0.1 @ 42,000,000 (#2).
		x := exNew()
		x.open("alice", "alice-co", "KZT 10,000,000")
		x.open("bob", "bob-co", "BTC 10", "KZT 10,000,000")
		x.limit("bob", matching.Sell, "43,000,000", "0.1")
		x.limit("alice", matching.Buy, "42,000,000", "0.1")
		if c.prep != nil {
			c.prep(x)
		}
		before := x.stateKey()
		evs := x.do(c.cmd)
		code := "accepted"
		if err := matching.Rejection(evs); err != nil {
			code = string(apperr.CodeOf(err))
		}
		if x.stateKey() != before {
			code += " (changed the state!)"
		}
		fmt.Printf("%-19s %s\n", code, c.situation)
	}
	// Output:
	// UNKNOWN_METHOD      no such command kind
	// INVALID_PARAMETER   an account ID that is not 1-64 of a-z, 0-9, -
	// INVALID_PARAMETER   an account kind other than miner, trader, market_maker, operator
	// CONFLICT            an account that exists with another owner
	// INVALID_PARAMETER   a command without its account
	// UNKNOWN_ACCOUNT     an unknown account
	// UNKNOWN_ASSET       a deposit of an unknown asset
	// INVALID_QUANTITY    a deposit of zero
	// INVALID_PARAMETER   a deposit without an external reference
	// NOT_PERMITTED       a deposit to the fee account
	// INSUFFICIENT_FUNDS  a withdrawal beyond the free balance
	// INVALID_PARAMETER   an unknown permission
	// INVALID_PARAMETER   set_stp without a mode
	// INVALID_PARAMETER   a client ID longer than 64 characters
	// UNKNOWN_SYMBOL      an order in an unknown symbol
	// INVALID_PARAMETER   an order without a side
	// INVALID_PARAMETER   an unknown STP mode
	// NOT_PERMITTED       an order from the fee account
	// INVALID_PARAMETER   a mandatory buy
	// NOT_PERMITTED       a mandatory sell without the permission
	// INVALID_PARAMETER   an obligation reference without purpose mandatory
	// INVALID_PRICE       a price off the tick (43,000,000.50 ₸)
	// INVALID_PRICE       a limit order without a price
	// INVALID_PARAMETER   an unknown time in force
	// INVALID_PARAMETER   a limit order with a quote amount
	// INVALID_QUANTITY    a quantity off the lot (ETHKZT, 0.0000015 ETH)
	// INVALID_QUANTITY    a quantity above the maximum (1,000.00000001 BTC)
	// INVALID_QUANTITY    below the minimum notional (0.000002 BTC = 86 ₸)
	// INVALID_PARAMETER   a GTD order expiring now
	// INVALID_PARAMETER   an expiry on a GTC order
	// INVALID_QUANTITY    a display quantity not below the quantity
	// INVALID_PARAMETER   an IOC iceberg
	// INVALID_PARAMETER   a post-only FOK
	// WOULD_TAKE          a post-only order that would trade
	// INSUFFICIENT_FUNDS  a buy beyond the free balance
	// INVALID_PRICE       a market order with a price
	// INVALID_PARAMETER   a market order GTC
	// INVALID_PARAMETER   a market buy with both quantity and quote amount
	// INVALID_QUANTITY    a market buy for less than the minimum notional
	// PHASE_REFUSED       a market order outside continuous trading
	// PHASE_REFUSED       an IOC order in a call phase
	// PHASE_REFUSED       any order while closed
	// PHASE_REFUSED       an amend while closed
	// PHASE_REFUSED       another price than the closing price at last
	// PHASE_REFUSED       an order at last when nothing has traded (no closing price)
	// MARKET_HALTED       any order while halted
	// MARKET_HALTED       an amend while halted
	// UNKNOWN_ORDER       an amend of an unknown order
	// UNKNOWN_ORDER       an amend of another account's order
	// INVALID_PARAMETER   an amend that changes nothing
	// INVALID_QUANTITY    an amend to the filled quantity or below
	// WOULD_TAKE          a post-only amend that would trade
	// UNKNOWN_ORDER       a cancel of an order that is not open
	// UNKNOWN_ORDER       a cancel naming another symbol
	// INVALID_PARAMETER   a cancel-all with neither account nor symbol
	// UNKNOWN_ORDER       a cancel-all with nothing to cancel
	// INVALID_TRANSITION  a phase change the table does not allow
	// INVALID_TRANSITION  a halt of a halted symbol
	// INVALID_TRANSITION  a resume of a symbol that is not halted
}

// ExampleEngine_StateHash: the same commands give the same state hash, and
// a snapshot restores to the same state, which then evolves identically.
func ExampleEngine_StateHash() {
	run := func(x *exEngine) {
		x.open("alice", "alice-co", "KZT 100,000,000")
		x.open("bob", "bob-co", "BTC 1")
		x.limit("bob", matching.Sell, "43,000,000", "0.5")
		x.place(matching.Command{Account: "alice", ClientID: "a-1", Side: matching.Buy, TIF: matching.GTD,
			ExpireAt: exT0 + 60_000, Price: exParse("43,000,000", 2), Quantity: exParse("0.8", 8)})
	}
	a, b := exNew(), exNew()
	run(a)
	run(b)
	fmt.Println("replayed:", a.StateHash() == b.StateHash())
	data, _ := json.Marshal(a.Snapshot())
	var snap matching.Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		panic(err)
	}
	e, err := matching.Restore(&snap, matching.Config{Symbols: matching.DefaultSymbols()})
	if err != nil {
		panic(err)
	}
	c := &exEngine{Engine: e, now: a.now, sym: a.sym, scale: a.scale, byQuote: map[uint64]bool{}}
	fmt.Println("restored:", c.StateHash() == a.StateHash(), "at seq", c.Seq())
	// One minute later the GTD order expires in both.
	a.now, c.now = exT0+60_000, exT0+60_000
	ea, ec := a.do(matching.Command{Kind: matching.CmdTick}), c.do(matching.Command{Kind: matching.CmdTick})
	fmt.Println("same events:", reflect.DeepEqual(ea, ec), "same state:", a.StateHash() == c.StateHash())
	a.show(ea, true)
	// Output:
	// replayed: true
	// restored: true at seq 6
	// same events: true same state: true
	// [timer] done #2 expired (gtd), filled 0.50000000 BTC of 0.80000000 BTC
	// level buy 43,000,000.00: 0.00000000 BTC in 0 orders
	// balance alice KZT: free 78,457,000.00, held 0.00
}
