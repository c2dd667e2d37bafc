package wsclient

import "testing"

// TestAnswerID: answers as the gateway writes them are routed by the id
// read off their front; anything else is decoded to find its id, and a
// message without one is a pushed message.
func TestAnswerID(t *testing.T) {
	for _, tc := range []struct {
		msg, id string
		bad     bool
	}{
		{msg: `{"id":17,"status":200,"result":{"orderId":3}}`, id: "17"},
		{msg: `{"id":9}`, id: "9"},
		{msg: `{"id":"a-1","status":200}`, id: `"a-1"`},                          // not the fast path's: decoded
		{msg: `{"status":400,"id":12,"error":{"code":"X","msg":"y"}}`, id: "12"}, // id not first
		{msg: `{"id":12x,"status":200}`, bad: true},                              // the fast path refuses it, the decoder too
		{msg: `{"stream":"btckzt@trade","data":{}}`, id: ""},                     // pushed
		{msg: `{"id":`, bad: true},
		{msg: `not json`, bad: true},
	} {
		id, err := answerID([]byte(tc.msg))
		if (err != nil) != tc.bad || string(id) != tc.id {
			t.Errorf("answerID(%s) = %q, %v; want %q, error %v", tc.msg, id, err, tc.id, tc.bad)
		}
	}
}
