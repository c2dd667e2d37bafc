package wsgateway

import (
	"testing"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/matching"
)

// BenchmarkHubPublish: what the stream hub does with one command's events
// — an order resting at a new level of a book of 1,000 levels a side (its
// acceptance, the level, the owner's balance), or an IOC order taking one
// maker (acceptance, trade, both orders done, the level, five balances) —
// with nobody subscribed, and with one subscriber of each of the symbol's
// per-command streams (depth, trade, bookTicker) and of the two accounts'
// user data.
//
//	go test -run xxx -bench HubPublish ./matching/wsgateway/
func BenchmarkHubPublish(b *testing.B) {
	for _, subscribed := range []bool{false, true} {
		name := map[bool]string{false: "nobody", true: "subscribed"}[subscribed]
		b.Run(name, func(b *testing.B) {
			h := newHub(nil, nil, []matching.Symbol{testSymbol}, zap.NewNop())
			st := newBookState("BTCKZT", 0)
			for i := range int64(1000) {
				st.set(true, 9_999-i, 5)
				st.set(false, 10_001+i, 5)
			}
			st.bid, st.ask = st.best(true), st.best(false)
			h.books["BTCKZT"] = st
			if subscribed {
				h.subscribe(discard{}, []string{"btckzt@depth", "btckzt@trade", "btckzt@bookTicker"})
				h.subscribeUser(discard{}, "maker")
				h.subscribeUser(discard{}, "taker")
			}
			rest := func(seq uint64, price int64) []matching.Event {
				t := int64(seq) * 1000
				return []matching.Event{
					{Seq: seq, Time: t, Kind: matching.EvOrderAccepted, Symbol: "BTCKZT", Account: "maker", OrderID: seq, ClientID: "c1", Side: matching.Sell,
						Type: matching.Limit, TIF: matching.GTC, Status: matching.StatusNew, Price: price, Quantity: 5, Remaining: 5},
					{Seq: seq, Time: t, Index: 1, Kind: matching.EvLevel, Symbol: "BTCKZT", Side: matching.Sell, Price: price, Quantity: 5, Orders: 1},
					{Seq: seq, Time: t, Index: 2, Kind: matching.EvBalance, Account: "maker", Asset: "BTC", Free: 1_000_000, Held: 5},
				}
			}
			take := func(seq uint64, price int64) []matching.Event {
				t := int64(seq) * 1000
				evs := []matching.Event{
					{Seq: seq, Time: t, Kind: matching.EvOrderAccepted, Symbol: "BTCKZT", Account: "taker", OrderID: seq, ClientID: "c2", Side: matching.Buy,
						Type: matching.Limit, TIF: matching.IOC, Status: matching.StatusNew, Price: price, Quantity: 5, Remaining: 5},
					{Seq: seq, Time: t, Kind: matching.EvTrade, Symbol: "BTCKZT", Price: price, Quantity: 5, QuoteAmount: price * 5, TakerSide: matching.Buy,
						BuyerAccount: "taker", SellerAccount: "maker", BuyOrderID: seq, SellOrderID: seq - 1, BaseAsset: "BTC", QuoteAsset: "KZT"},
					{Seq: seq, Time: t, Kind: matching.EvOrderDone, Symbol: "BTCKZT", Account: "maker", OrderID: seq - 1, Status: matching.StatusFilled, Filled: 5},
					{Seq: seq, Time: t, Kind: matching.EvOrderDone, Symbol: "BTCKZT", Account: "taker", OrderID: seq, Status: matching.StatusFilled, Filled: 5},
					{Seq: seq, Time: t, Kind: matching.EvLevel, Symbol: "BTCKZT", Side: matching.Sell, Price: price, Quantity: 0},
				}
				for _, a := range []string{"taker", "maker", "fees"} {
					for _, asset := range []string{"BTC", "KZT"} {
						if a != "fees" || asset == "KZT" {
							evs = append(evs, matching.Event{Seq: seq, Time: t, Kind: matching.EvBalance, Account: a, Asset: asset, Free: 1_000_000, Held: 0})
						}
					}
				}
				for i := range evs {
					evs[i].Index = uint32(i)
				}
				return evs
			}
			// Pairs of commands: a sell rests at 10,000 (between the best
			// bid and ask), then an IOC buy takes it.
			pair := [2][]matching.Event{rest(0, 10_000), take(0, 10_000)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				evs := pair[i%2]
				for j := range evs {
					evs[j].Seq, evs[j].Time = uint64(i+1), int64(i+1)*1000
				}
				h.publish(evs)
			}
		})
	}
}

// discard is a subscriber that drops what it is pushed.
type discard struct{}

func (discard) push([]byte) {}
