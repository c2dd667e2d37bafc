package wsapi

import (
	"encoding/json"
	"reflect"
	"testing"
)

// fastTargets are fresh values of the types decodeFast takes, and one it
// does not.
func fastTargets() []any {
	return []any{&PlaceParams{}, &CancelParams{}, &BatchParams[PlaceParams]{}, &BatchParams[CancelParams]{}, &SymbolParams{}}
}

// checkFast: when decodeFast takes b into a fresh value of a type, the
// strict decoding (encoding/json) takes it too, to an equal value; when it
// does not, it leaves the value untouched.
func checkFast(t *testing.T, b []byte) (taken int) {
	t.Helper()
	for _, fast := range fastTargets() {
		strict := reflect.New(reflect.TypeOf(fast).Elem()).Interface()
		if !decodeFast(b, fast) {
			if !reflect.ValueOf(fast).Elem().IsZero() {
				t.Fatalf("%q: decodeFast refused it but changed %T to %+v", b, fast, fast)
			}
			continue
		}
		taken++
		if err := decodeStrict(b, strict); err != nil {
			t.Fatalf("%q: decodeFast took it as %T %+v; encoding/json refuses it: %v", b, fast, fast, err)
		}
		if !reflect.DeepEqual(fast, strict) {
			t.Fatalf("%q: decodeFast made %+v; encoding/json %+v", b, fast, strict)
		}
	}
	return taken
}

// TestDecodeFast: the plain requests a client sends are taken by the fast
// path, to what encoding/json makes of them; everything it is not sure of
// is left to encoding/json.
func TestDecodeFast(t *testing.T) {
	taken := []string{
		`{"symbol":"BTCKZT","side":"SELL","type":"LIMIT","price":"43000000","quantity":"0.3","newClientOrderId":"tour-1","mandatory":true}`,
		` { "symbol" : "ETHKZT" , "side":"BUY","type":"LIMIT","timeInForce":"GTD","goodTillDate":1700000000000,"price":"1.5","quantity":"0.000001","newClientOrderId":"a","mandatory":false,"obligation":"ob-1","selfTradePreventionMode":"DECREMENT","icebergQty":"0.1","quoteOrderQty":"5"}` + "\n\t",
		`{"symbol":"a","symbol":"b"}`,
		`{"goodTillDate":-0}`,
		`{"goodTillDate":-9223372036854775808}`,
		"{\"symbol\":\"Алматы ₸ \u2028\"}", // U+2028 itself, not an escape
		`{}`,
		`{"symbol":"BTCKZT","orderId":18446744073709551615}`,
		`{"symbol":"BTCKZT","origClientOrderId":"x"}`,
		`{"orders":[]}`,
		`{"orders":[{"symbol":"BTCKZT","side":"BUY","type":"LIMIT","price":"1","quantity":"1","newClientOrderId":"c1"},{"symbol":"BTCKZT","side":"SELL","type":"MARKET","quantity":"2","newClientOrderId":"c2"}]}`,
		`{"orders":[{"symbol":"BTCKZT","orderId":7},{"symbol":"BTCKZT","origClientOrderId":"c1"}]}`,
	}
	for _, s := range taken {
		if checkFast(t, []byte(s)) == 0 {
			t.Errorf("%s: the fast path took it for no type", s)
		}
	}
	left := []string{
		``, `null`, `[]`, `{`, `{"symbol":"a"`, `{"symbol":"a"}x`, `{"symbol":"a"}]`, `{"symbol":"a"}{}`,
		`{"Symbol":"a"}`, `{"symbol":null}`, `{"symbol":1}`, `{"symbol":"a\"b"}`, `{"symbol":"a\nb"}`, "{\"symbol\":\"a\x01\"}",
		"{\"symbol\":\"\xff\"}", "{\"symbol\":\"\xed\xa0\x80\"}", `{"sym\u0062ol":"a"}`, `{"unknown":"a"}`,
		`{"goodTillDate":1.0}`, `{"goodTillDate":1e3}`, `{"goodTillDate":01}`, `{"goodTillDate":"1"}`, `{"goodTillDate":-}`,
		`{"goodTillDate":9223372036854775808}`, `{"orderId":-0}`, `{"orderId":-1}`, `{"orderId":18446744073709551616}`,
		`{"mandatory":1}`, `{"mandatory":tru}`, `{"mandatory":truex}`, `{"mandatory":"true"}`,
		`{"orders":null}`, `{"orders":[null]}`, `{"orders":[{}],"orders":[{}]}`, `{"orders":[{"symbol":"a"}],"x":1}`, `{"orders":[{"symbol":"a"},]}`,
		`{,}`, `{"symbol":"a",}`, `{"symbol" "a"}`,
	}
	for _, s := range left {
		if n := checkFast(t, []byte(s)); n != 0 {
			t.Errorf("%q: the fast path took it for %d types; want it left to encoding/json", s, n)
		}
	}
	// A value already set is left to encoding/json, which merges into it.
	p := PlaceParams{Symbol: "x"}
	if decodeFast([]byte(`{"side":"BUY"}`), &p) || p != (PlaceParams{Symbol: "x"}) {
		t.Fatalf("decodeFast into a set value: %+v", p)
	}
}

// FuzzDecodeFast: on any input, what the fast path takes, encoding/json
// takes to the same value.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"symbol":"BTCKZT","side":"SELL","type":"LIMIT","price":"43000000","quantity":"0.3","newClientOrderId":"tour-1","mandatory":true}`,
		`{"symbol":"BTCKZT","orderId":12,"origClientOrderId":"x"}`,
		`{"orders":[{"symbol":"BTCKZT","side":"BUY","goodTillDate":5}]}`,
		`{"goodTillDate":-0,"mandatory":false}`,
		`{"symbol":"\u00e9"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFast(t, b)
		if json.Valid(b) {
			checkFast(t, append([]byte(" "), b...))
		}
	})
}

// BenchmarkDecodeBatch decodes a batchOrders.place request's parameters of
// 20 orders, as satu load sends them, by the fast path and by
// encoding/json.
//
//	go test -run xxx -bench DecodeBatch ./matching/wsapi/
func BenchmarkDecodeBatch(b *testing.B) {
	orders := make([]PlaceParams, 20)
	for i := range orders {
		orders[i] = PlaceParams{Symbol: "BTCKZT", Side: "BUY", Type: "LIMIT", TimeInForce: "GTC", Price: "29990000",
			Quantity: "0.0001", NewClientOrderID: "load-abc-" + string(rune('a'+i))}
	}
	params, _ := json.Marshal(BatchParams[PlaceParams]{Orders: orders})
	for _, bc := range []struct {
		name   string
		decode func(json.RawMessage, any) error
	}{{"fast", Decode}, {"encoding-json", decodeStrict}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var p BatchParams[PlaceParams]
				if err := bc.decode(params, &p); err != nil || len(p.Orders) != 20 {
					b.Fatal(err, len(p.Orders))
				}
			}
		})
	}
}

// checkRequest: DecodeRequest agrees with json.Unmarshal on whether msg is
// a request and, when it is, on what it says.
func checkRequest(t *testing.T, msg []byte) {
	t.Helper()
	var fast, strict Request
	ferr, serr := DecodeRequest(msg, &fast), json.Unmarshal(msg, &strict)
	if (ferr == nil) != (serr == nil) {
		t.Fatalf("%q: DecodeRequest says %v, json.Unmarshal %v", msg, ferr, serr)
	}
	if ferr == nil && !reflect.DeepEqual(fast, strict) {
		t.Fatalf("%q: DecodeRequest made %+v; json.Unmarshal %+v", msg, fast, strict)
	}
}

func TestDecodeRequest(t *testing.T) {
	for _, s := range []string{
		`{"id":1,"method":"order.place","params":{"symbol":"BTCKZT","side":"BUY"}}`,
		` {"params" : {"orders":[{"a":"}]"},{"b":"\"]}"}]} , "method":"batchOrders.place", "id":"req-\"7\""} `,
		`{"id":[1, {"x":[2,3]}],"method":"ping"}`,
		`{"id":-1.5e3,"method":"ping","params":[]}`,
		`{"id":true,"method":"m","params":"s"}`,
		`{"id":1,"id":2,"method":"a","method":"b"}`,
		`{"id":null,"method":"ping"}`, `{"id":1,"params":null}`, `{"ID":1,"Method":"x"}`, `{"id":1,"method":"x","extra":{}}`,
		`{"id":1,"method":"x\u0041"}`, `{"id":1,"method":2}`, `{"id":1,"method":"x","params":{bad}}`, `{"id":1}x`, `[]`, `null`, ``, `{}`,
	} {
		checkRequest(t, []byte(s))
	}
}

func FuzzDecodeRequestEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"method":"order.place","params":{"symbol":"BTCKZT","side":"BUY"}}`,
		`{"id":"a\"b","method":"batchOrders.place","params":{"orders":[{"x":"]}"}]}}`,
		`{"id":[1,{"x":null}],"method":"ping","params":[true,false,-0.5e-3]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkRequest(t, b) })
}

// BenchmarkDecodeRequest decodes the envelope of a batchOrders.place
// request of 20 orders by DecodeRequest and by json.Unmarshal.
//
//	go test -run xxx -bench 'DecodeRequest|DecodeBatch' ./matching/wsapi/
func BenchmarkDecodeRequest(b *testing.B) {
	orders := make([]PlaceParams, 20)
	for i := range orders {
		orders[i] = PlaceParams{Symbol: "BTCKZT", Side: "BUY", Type: "LIMIT", TimeInForce: "GTC", Price: "29990000",
			Quantity: "0.0001", NewClientOrderID: "load-abc-" + string(rune('a'+i))}
	}
	params, _ := json.Marshal(BatchParams[PlaceParams]{Orders: orders})
	msg, _ := json.Marshal(Request{ID: json.RawMessage("12345"), Method: MethodBatchPlace, Params: params})
	for _, bc := range []struct {
		name   string
		decode func([]byte, *Request) error
	}{{"fast", DecodeRequest}, {"encoding-json", func(b []byte, r *Request) error { return json.Unmarshal(b, r) }}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var r Request
				if err := bc.decode(msg, &r); err != nil || len(r.Params) != len(params) {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLeadingID: the id read off a message's front, for a refusal before
// decoding; anything else gives none.
func TestLeadingID(t *testing.T) {
	for msg, want := range map[string]string{
		`{"id":17,"method":"ping"}`:          "17",
		`{"id":-3}`:                          "-3",
		` {  "id" :  "a-1"  , "method":"x"}`: `"a-1"`,
		`{"id":"é"}`:                         `"é"`,
		`{"id":1.5,"method":"ping"}`:         "", // not an integer
		`{"id":"a\"b","method":"ping"}`:      "", // an escape
		`{"id":0012}`:                        "",
		`{"method":"ping","id":9}`:           "",
		`{"id":null}`:                        "",
		`{"id":{"a":1}}`:                     "",
		`{"id":7`:                            "",
		`{"id":"x`:                           "",
		`not json`:                           "",
		``:                                   "",
	} {
		if got := LeadingID([]byte(msg)); string(got) != want {
			t.Errorf("LeadingID(%s) = %s; want %q", msg, got, want)
		}
		if got := LeadingID([]byte(msg)); got != nil && !json.Valid(got) {
			t.Errorf("LeadingID(%s) = %s: not JSON", msg, got)
		}
	}
}
