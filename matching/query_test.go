package matching_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/satu-exchange/satu/matching"
)

// TestOrderViewAppendJSON compares OrderView.AppendJSON with json.Marshal
// on random views: plain and escaped strings (quotes, backslashes, HTML
// characters, control bytes, non-ASCII, invalid UTF-8), every enum value
// and one past each, zero and non-zero optional fields.
func TestOrderViewAppendJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	alphabet := []string{"a", "Z", "9", "-", "_", ".", ":", " ", "~", `"`, `\`, "<", ">", "&", "\n", "\x01", "é", "\u2028", "\xff"}
	str := func() string {
		var b []byte
		for range rng.IntN(6) {
			if rng.IntN(4) == 0 {
				b = append(b, alphabet[rng.IntN(len(alphabet))]...)
			} else {
				b = append(b, alphabet[rng.IntN(7)]...) // mostly plain
			}
		}
		return string(b)
	}
	num := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return -rng.Int64()
		}
		return rng.Int64()
	}
	fast, slow := 0, 0
	for i := range 20_000 {
		o := matching.OrderView{ID: rng.Uint64() >> rng.IntN(64), Account: str(), Symbol: str(), ClientID: str(),
			Side: matching.Side(rng.IntN(4)), Type: matching.OrderType(rng.IntN(4)), TIF: matching.TimeInForce(rng.IntN(6)),
			STP: matching.STPMode(rng.IntN(6)), Purpose: matching.Purpose(rng.IntN(3)), Obligation: str(), PostOnly: rng.IntN(2) == 0,
			Price: num(), Quantity: num(), Remaining: num(), Visible: num(), Display: num(), Held: num(), ExpireAt: num()}
		want, werr := json.Marshal(o)
		got, gerr := o.AppendJSON([]byte("x"))
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("view %d %+v: AppendJSON error %v, json.Marshal error %v", i, o, gerr, werr)
		}
		if werr != nil {
			slow++
			continue
		}
		if !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Fatalf("view %d %+v:\nAppendJSON   %s\njson.Marshal %s", i, o, got[1:], want)
		}
		fast++
	}
	if fast < 1000 || slow < 1000 {
		t.Fatalf("%d views encoded, %d refused: the test wants more of both", fast, slow)
	}
}

// BenchmarkOrderViewJSON: an open order as the Redis order book writes it,
// by AppendJSON and by json.Marshal.
func BenchmarkOrderViewJSON(b *testing.B) {
	o := matching.OrderView{ID: 123456789, Account: "mm-0042", Symbol: "BTCKZT", ClientID: "c-1764680000123",
		Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, STP: matching.STPExpireTaker,
		Price: 3_000_010_000, Quantity: 1_000_000, Remaining: 1_000_000, Visible: 1_000_000, Held: 1_000_000}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 256)
		for range b.N {
			buf, _ = o.AppendJSON(buf[:0])
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_, _ = json.Marshal(o)
		}
	})
}
