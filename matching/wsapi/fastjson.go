package wsapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeFast decodes params into v without reflection when v is one of the
// order-entry parameter types (order.place, order.cancel and their batches:
// most of what a gateway decodes), v is still zero, and params is plain
// JSON: an object of the type's own field names spelt exactly, strings
// without escapes, integers, booleans, and for a batch an array of such
// objects. Anything else — an unknown or differently cased name, an escape,
// null, a fraction, a repeated "orders", trailing bytes — returns false
// with v untouched, and Decode hands params to encoding/json, whose result
// or error stands. So the fast path only ever produces what encoding/json
// would (FuzzDecodeFast checks that on arbitrary input), and decides no
// error itself. In a profile of satu serve under batched order entry,
// encoding/json's reflection was a tenth of the server's CPU.
func decodeFast(params []byte, v any) bool {
	switch p := v.(type) {
	case *PlaceParams:
		return fastObject(params, p)
	case *CancelParams:
		return fastObject(params, p)
	case *BatchParams[PlaceParams]:
		return fastBatch(params, p)
	case *BatchParams[CancelParams]:
		return fastBatch(params, p)
	}
	return false
}

// fastParams is an order-entry parameter type the fast path reads: it is
// comparable (so a zero value can be told) and reads its own fields.
type fastParams[P comparable] interface {
	*P
	field(s *scanner, name []byte) bool
}

// fastObject decodes one object of params into *p, if p is zero and all of
// params is plain (see decodeFast).
func fastObject[P comparable, PP fastParams[P]](params []byte, p PP) bool {
	var zero P
	if *p != zero {
		return false
	}
	s := scanner{b: params}
	var out P
	if !s.object(func(name []byte) bool { return PP(&out).field(&s, name) }) || !s.end() {
		return false
	}
	*p = out
	return true
}

// fastBatch decodes {"orders":[…]} into p, if p has no orders yet and all
// of params is plain.
func fastBatch[P comparable, PP fastParams[P]](params []byte, p *BatchParams[P]) bool {
	if p.Orders != nil {
		return false
	}
	s := scanner{b: params}
	out := []P{} // encoding/json makes an empty array an empty slice, not nil
	ok := s.batch(func() bool {
		out = append(out, *new(P))
		o := PP(&out[len(out)-1])
		return s.object(func(name []byte) bool { return o.field(&s, name) })
	})
	if !ok || !s.end() {
		return false
	}
	p.Orders = out
	return true
}

// field reads the value of the field named name into p.
func (p *PlaceParams) field(s *scanner, name []byte) bool {
	switch string(name) {
	case "symbol":
		return s.str(&p.Symbol)
	case "side":
		return s.enum(&p.Side, "BUY", "SELL")
	case "type":
		return s.enum(&p.Type, "LIMIT", "MARKET", "LIMIT_MAKER")
	case "timeInForce":
		return s.enum(&p.TimeInForce, "GTC", "IOC", "FOK", "GTD")
	case "goodTillDate":
		return s.int64(&p.GoodTillDate)
	case "price":
		return s.str(&p.Price)
	case "quantity":
		return s.str(&p.Quantity)
	case "quoteOrderQty":
		return s.str(&p.QuoteOrderQty)
	case "icebergQty":
		return s.str(&p.IcebergQty)
	case "selfTradePreventionMode":
		return s.enum(&p.SelfTradePreventionMode, "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")
	case "newClientOrderId":
		return s.str(&p.NewClientOrderID)
	case "mandatory":
		return s.bool(&p.Mandatory)
	case "obligation":
		return s.str(&p.Obligation)
	}
	return false
}

// field reads the value of the field named name into p.
func (p *CancelParams) field(s *scanner, name []byte) bool {
	switch string(name) {
	case "symbol":
		return s.str(&p.Symbol)
	case "orderId":
		return s.uint64(&p.OrderID)
	case "origClientOrderId":
		return s.str(&p.OrigClientOrderID)
	}
	return false
}

// scanner reads plain JSON (see decodeFast); each method reports false on
// anything it does not take, leaving the rest to encoding/json.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and takes c.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether nothing but white space is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// object reads an object, calling field for each member's name with the
// scanner at its value.
func (s *scanner) object(field func(name []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		s.space()
		name, ok := s.raw()
		if !ok || !s.next(':') {
			return false
		}
		s.space()
		if !field(name) {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// batch reads {"orders":[…]}: elem reads each element.
func (s *scanner) batch(elem func() bool) bool {
	if !s.next('{') {
		return false
	}
	s.space()
	if name, ok := s.raw(); !ok || string(name) != "orders" || !s.next(':') || !s.next('[') {
		return false
	}
	if !s.next(']') {
		for {
			s.space()
			if !elem() {
				return false
			}
			if s.next(']') {
				break
			}
			if !s.next(',') {
				return false
			}
		}
	}
	return s.next('}') // a second member, even "orders" again, goes to encoding/json
}

// raw reads a string without escapes, control characters or invalid
// UTF-8 — the bytes encoding/json would decode it to — and returns them.
func (s *scanner) raw() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := s.b[start:j]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (s *scanner) str(v *string) bool {
	b, ok := s.raw()
	if ok {
		*v = string(b)
	}
	return ok
}

// enum is str for a field of a few known values, which it takes without
// allocating a copy.
func (s *scanner) enum(v *string, known ...string) bool {
	b, ok := s.raw()
	if !ok {
		return false
	}
	for _, k := range known {
		if string(b) == k {
			*v = k
			return true
		}
	}
	*v = string(b)
	return true
}

func (s *scanner) bool(v *bool) bool {
	switch {
	case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
		*v, s.i = true, s.i+4
	case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
		*v, s.i = false, s.i+5
	default:
		return false
	}
	return s.delimited()
}

// digits reads an integer literal: an optional minus (when signed), then
// 0 or a digit 1–9 and more digits, not followed by a fraction or an
// exponent.
func (s *scanner) digits(signed bool) ([]byte, bool) {
	start := s.i
	if signed && s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	first := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == first || s.b[first] == '0' && s.i-first > 1 || !s.delimited() {
		return nil, false
	}
	return s.b[start:s.i], true
}

// delimited reports whether a literal ends where a JSON value can end.
func (s *scanner) delimited() bool {
	if s.i == len(s.b) {
		return true
	}
	switch s.b[s.i] {
	case ' ', '\t', '\n', '\r', ',', '}', ']':
		return true
	}
	return false
}

func (s *scanner) int64(v *int64) bool {
	b, ok := s.digits(true)
	if !ok {
		return false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return false
	}
	*v = n
	return true
}

func (s *scanner) uint64(v *uint64) bool {
	b, ok := s.digits(false)
	if !ok {
		return false
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return false
	}
	*v = n
	return true
}

// DecodeRequest unmarshals a request's envelope like json.Unmarshal, whose
// error it returns. The common envelope — an object of exactly "id",
// "method" (a string without escapes) and "params", none of them null — is
// taken apart without reflection once json.Valid has checked all of it
// (json.Unmarshal validates all of it too, then scans it again to decode);
// every other one goes to json.Unmarshal.
func DecodeRequest(msg []byte, req *Request) error {
	if req.ID == nil && req.Method == "" && req.Params == nil && json.Valid(msg) {
		var out Request
		s := scanner{b: msg}
		if s.object(func(name []byte) bool { return out.field(&s, name) }) && s.end() {
			*req = out
			return nil
		}
	}
	return json.Unmarshal(msg, req)
}

// LeadingID is a request's id read off its front, without reading the rest
// of the message: when the message opens with an "id" member holding an
// integer or a string without escapes (what clients send, the Go client
// included), and nil otherwise. The gateway answers a request it refuses
// before decoding it — one over its address's rate limit — with this id,
// so that the client can tell which call was refused.
func LeadingID(msg []byte) json.RawMessage {
	s := scanner{b: msg}
	var name []byte
	var ok bool
	if !s.next('{') {
		return nil
	}
	s.space()
	if name, ok = s.raw(); !ok || string(name) != "id" || !s.next(':') {
		return nil
	}
	s.space()
	start := s.i
	if _, ok = s.raw(); !ok {
		_, ok = s.digits(true)
	}
	if !ok || !s.next(',') && !s.next('}') {
		return nil
	}
	return append(json.RawMessage(nil), bytes.TrimRight(msg[start:s.i-1], " \t\n\r")...)
}

// field reads the value of the field named name into r; the input is
// valid JSON.
func (r *Request) field(s *scanner, name []byte) bool {
	switch string(name) {
	case "id":
		return s.rawValue(&r.ID)
	case "method":
		return s.str(&r.Method)
	case "params":
		return s.rawValue(&r.Params)
	}
	return false
}

// rawValue copies the next value, not null, of input known to be valid.
func (s *scanner) rawValue(v *json.RawMessage) bool {
	start, depth := s.i, 0
scan:
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			for s.i++; s.i < len(s.b) && s.b[s.i] != '"'; s.i++ {
				if s.b[s.i] == '\\' {
					s.i++ // the escaped byte
				}
			}
			s.i++ // the closing quote
		case c == '{' || c == '[':
			depth++
			s.i++
		case c == '}' || c == ']':
			if depth == 0 {
				break scan // the end of the object holding the value
			}
			depth--
			s.i++
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			break scan
		default:
			s.i++
		}
		if depth == 0 && (c == '"' || c == '}' || c == ']') {
			break // a string, an object or an array ends the value
		}
	}
	raw := s.b[start:s.i]
	if len(raw) == 0 || string(raw) == "null" {
		return false
	}
	*v = append(json.RawMessage(nil), raw...)
	return true
}
