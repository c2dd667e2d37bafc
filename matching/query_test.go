package matching_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"github.com/satu-exchange/satu/matching"
)

// randomView returns a random OrderView: plain and odd strings (quotes,
// backslashes, control bytes, non-ASCII, invalid UTF-8), every enum value
// and, when odd is set, possibly one past each, zero and non-zero optional
// fields, integers of every size and sign.
func randomView(rng *rand.Rand, odd bool) matching.OrderView {
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
			return -rng.Int64() >> rng.IntN(64)
		}
		return rng.Int64() >> rng.IntN(64)
	}
	enum := func(n int) int {
		if odd {
			return rng.IntN(n + 1)
		}
		return rng.IntN(n)
	}
	return matching.OrderView{ID: rng.Uint64() >> rng.IntN(64), Account: str(), Symbol: str(), ClientID: str(),
		Side: matching.Side(enum(3)), Type: matching.OrderType(enum(3)), TIF: matching.TimeInForce(enum(5)),
		STP: matching.STPMode(enum(5)), Purpose: matching.Purpose(enum(2)), Obligation: str(), PostOnly: rng.IntN(2) == 0,
		Price: num(), Quantity: num(), Remaining: num(), Visible: num(), Display: num(), Held: num(), ExpireAt: num(),
		QuoteFilled: num()}
}

// TestOrderRecord: a record (version 2) decodes to the view it was made
// from and nothing else does — every shorter prefix, a trailing byte,
// another version byte and any enum out of range are refused with
// ErrOrderRecord; a version-1 record (no QuoteFilled) and the JSON records
// stored before version 1 still decode to their view.
func TestOrderRecord(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 20_000 {
		o := randomView(rng, false)
		rec := string(o.AppendBinary([]byte("x")))[1:]
		got, err := matching.DecodeOrderRecord(rec)
		if err != nil || got != o {
			t.Fatalf("view %d %+v: decoded %+v, %v", i, o, got, err)
		}
		// JSON has no form for invalid UTF-8 (it writes U+FFFD); the record has.
		if utf8.ValidString(o.Account + o.Symbol + o.ClientID + o.Obligation) {
			j, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := matching.DecodeOrderRecord(string(j)); err != nil || got != o {
				t.Fatalf("view %d as JSON %s: decoded %+v, %v", i, j, got, err)
			}
		}
		// Version 1: the same record without its last field.
		v1 := o
		v1.QuoteFilled = 0
		r1 := v1.AppendBinary(nil)
		r1 = append([]byte{matching.OrderRecordV1}, r1[1:len(r1)-1]...) // a zero varint is one byte
		if got, err := matching.DecodeOrderRecord(string(r1)); err != nil || got != v1 {
			t.Fatalf("view %d as version 1: decoded %+v, %v", i, got, err)
		}
		if i%10 == 0 {
			for n := range len(rec) {
				if _, err := matching.DecodeOrderRecord(rec[:n]); !errors.Is(err, matching.ErrOrderRecord) {
					t.Fatalf("view %d: its first %d of %d bytes decoded (%v)", i, n, len(rec), err)
				}
			}
			for _, bad := range []string{rec + "\x00", "\x01" + rec[1:], "\x03" + rec[1:], "\x00" + rec[1:]} {
				if _, err := matching.DecodeOrderRecord(bad); !errors.Is(err, matching.ErrOrderRecord) {
					t.Fatalf("view %d: %q decoded (%v)", i, bad, err)
				}
			}
		}
	}
	refused := 0
	for range 2_000 {
		o := randomView(rng, true)
		_, err := matching.DecodeOrderRecord(string(o.AppendBinary(nil)))
		inRange := o.Side <= matching.Sell && int(o.Type) < 3 && int(o.TIF) < 5 && int(o.STP) < 5 && int(o.Purpose) < 2
		if inRange != (err == nil) {
			t.Fatalf("%+v: decode error %v", o, err)
		}
		if err != nil {
			if !errors.Is(err, matching.ErrOrderRecord) {
				t.Fatalf("%+v: %v is not ErrOrderRecord", o, err)
			}
			refused++
		}
	}
	if refused < 200 {
		t.Fatalf("only %d views with an enum out of range: the test wants more", refused)
	}
	// PostOnly is a byte of its own, after the ID, three strings and five enums.
	rec := benchView.AppendBinary(nil)
	post := 1 + len(binary.AppendUvarint(nil, benchView.ID)) + 3 + len(benchView.Account+benchView.Symbol+benchView.ClientID) + 5
	if rec[post] != 0 {
		t.Fatalf("byte %d of %x is not PostOnly", post, rec)
	}
	rec[post] = 2
	if _, err := matching.DecodeOrderRecord(string(rec)); !errors.Is(err, matching.ErrOrderRecord) {
		t.Fatalf("PostOnly 2: %v", err)
	}
	if _, err := matching.DecodeOrderRecord(`{"orderId":"x"}`); !errors.Is(err, matching.ErrOrderRecord) {
		t.Fatalf("bad JSON: %v", err)
	}
}

// benchView is a typical open order as the Redis order book stores it.
var benchView = matching.OrderView{ID: 123456789, Account: "mm-0042", Symbol: "BTCKZT", ClientID: "c-1764680000123",
	Side: matching.Sell, Type: matching.Limit, TIF: matching.GTC, STP: matching.STPExpireTaker,
	Price: 3_000_010_000, Quantity: 1_000_000, Remaining: 1_000_000, Visible: 1_000_000, Held: 1_000_000}

// TestOrderRecordSize: the reason for the record — a typical order in
// under two fifths of its JSON.
func TestOrderRecordSize(t *testing.T) {
	j, _ := json.Marshal(benchView)
	rec := benchView.AppendBinary(nil)
	if 5*len(rec) > 2*len(j) {
		t.Fatalf("record %d bytes, JSON %d", len(rec), len(j))
	}
	t.Logf("record %d bytes, JSON %d", len(rec), len(j))
}

// BenchmarkOrderRecord: an open order written and read as the Redis order
// book does, and the same as JSON.
func BenchmarkOrderRecord(b *testing.B) {
	rec := string(benchView.AppendBinary(nil))
	j, _ := json.Marshal(benchView)
	b.Run("AppendBinary", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 96)
		for range b.N {
			buf = benchView.AppendBinary(buf[:0])
		}
	})
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := matching.DecodeOrderRecord(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			_, _ = json.Marshal(benchView)
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			var o matching.OrderView
			if err := json.Unmarshal(j, &o); err != nil {
				b.Fatal(err)
			}
		}
	})
}
