package matching_test

import (
	"strconv"
	"testing"

	"github.com/satu-exchange/satu/matching"
)

// BenchmarkPlaceCross measures the engine alone: each iteration rests a sell
// and crosses it with a buy (two commands, one trade, four events).
func BenchmarkPlaceCross(b *testing.B) {
	e, err := matching.New(matching.DefaultSymbols())
	if err != nil {
		b.Fatal(err)
	}
	var seq uint64
	apply := func(c matching.Command, out []matching.Event) []matching.Event {
		seq++
		c.Seq, c.Time = seq, int64(seq)
		out, err := e.Apply(c, out)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	apply(matching.Command{Kind: matching.CmdOpenAccount, Account: "s", Owner: "s", AccountKind: matching.KindTrader}, nil)
	apply(matching.Command{Kind: matching.CmdOpenAccount, Account: "b", Owner: "b", AccountKind: matching.KindTrader}, nil)
	apply(matching.Command{Kind: matching.CmdDeposit, Account: "s", Asset: "BTC", Amount: 1 << 60, ExtRef: "s"}, nil)
	apply(matching.Command{Kind: matching.CmdDeposit, Account: "b", Asset: "KZT", Amount: 1 << 62, ExtRef: "b"}, nil)
	ids := make([]string, b.N*2)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	out := make([]matching.Event, 0, 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = apply(matching.Command{Kind: matching.CmdPlaceOrder, Account: "s", Symbol: "BTCKZT", ClientID: ids[2*i],
			Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, Price: 4_300_000_000, Quantity: 1_000_000}, out[:0])
		out = apply(matching.Command{Kind: matching.CmdPlaceOrder, Account: "b", Symbol: "BTCKZT", ClientID: ids[2*i+1],
			Side: matching.Buy, Type: matching.Limit, TIF: matching.GTC, Price: 4_300_000_000, Quantity: 1_000_000}, out[:0])
		if len(out) != 4 {
			b.Fatalf("events = %d", len(out))
		}
	}
}
