package loadgen

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestSubscriberFindsGaps: a subscriber checks every depth update against
// the one before and counts what it cannot decode.
func TestSubscriberFindsGaps(t *testing.T) {
	msgs := []string{
		`{"stream":"btckzt@depth","data":{"e":"depthUpdate","E":1,"s":"BTCKZT","U":5,"u":7,"b":[["1.00","2"]],"a":[]}}`,
		`{"stream":"btckzt@depth","data":{"e":"depthUpdate","E":2,"s":"BTCKZT","U":8,"u":8,"b":[],"a":[["2.00","1"],["3.00","0"]]}}`,
		`{"stream":"btckzt@trade","data":{"e":"trade","E":3,"s":"BTCKZT","t":"9-1","p":"2.00","q":"1","m":false,"u":9}}`,
		`{"stream":"btckzt@depth","data":{"e":"depthUpdate","E":4,"s":"BTCKZT","U":11,"u":12,"b":[],"a":[["2.00","0"]]}}`, // 9-10 missed
		`{"stream":"btckzt@depth","data":{"e":"depthUpdate","E":5,"s":"BTCKZT","U":13`,                                    // cut short
	}
	r := readAll(t, msgs, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "slow consumer"))
	if r.Messages != 5 || r.Depth != 3 || r.Levels != 4 || r.Gaps != 1 || r.Malformed != 1 || r.Closed != 1 || r.Reasons["1008 slow consumer"] != 1 {
		t.Fatalf("report %+v", r)
	}
}

// TestSubscriberFollowsStreamsApart: on a connection following two depth
// streams, each update continues the one before of its own stream.
func TestSubscriberFollowsStreamsApart(t *testing.T) {
	msgs := []string{
		`{"stream":"btckzt@depth","data":{"e":"depthUpdate","E":1,"s":"BTCKZT","U":5,"u":7,"b":[],"a":[]}}`,
		`{"stream":"ethkzt@depth","data":{"e":"depthUpdate","E":1,"s":"ETHKZT","U":40,"u":40,"b":[],"a":[]}}`,
		`{"stream":"btckzt@depth","data":{"e":"depthUpdate","E":2,"s":"BTCKZT","U":8,"u":9,"b":[],"a":[]}}`,
		`{"stream":"ethkzt@depth","data":{"e":"depthUpdate","E":2,"s":"ETHKZT","U":41,"u":41,"b":[],"a":[]}}`,
		`{"stream":"ethkzt@depth","data":{"e":"depthUpdate","E":3,"s":"ETHKZT","U":43,"u":43,"b":[],"a":[]}}`, // 42 missed
	}
	if r := readAll(t, msgs, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); r.Depth != 5 || r.Gaps != 1 || r.Malformed != 0 {
		t.Fatalf("report %+v; want 5 updates, 1 gap", r)
	}
}

// readAll has one subscriber read msgs from a server that then closes the
// connection with closing (a close frame's payload), and reports.
func readAll(t *testing.T, msgs []string, closing []byte) SubscriberReport {
	t.Helper()
	upgrader := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for _, m := range msgs {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(m))
		}
		_ = ws.WriteMessage(websocket.CloseMessage, closing)
		time.Sleep(100 * time.Millisecond)
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &subscriber{ws: ws, done: make(chan struct{})}
	var stop atomic.Bool
	go s.read(&stop)
	<-s.done
	return (&subscriberSet{subs: []*subscriber{s}}).report()
}
