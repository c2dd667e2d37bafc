package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsclient"
)

// TestDepthIntervalStreams: clients of btckzt@depth@100ms and
// btckzt@depth@1000ms rebuild the book with the local order book recipe
// while orders are placed, traded and cancelled, and end exactly at a
// final depth snapshot, from a message or so per interval.
func TestDepthIntervalStreams(t *testing.T) {
	_, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	accounts := []string{"di-1", "di-2"}
	clients := map[string]*wsclient.Client{}
	for _, a := range accounts {
		must(t, c.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": a, "owner": a, "kind": "trader"}, nil))
		must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": a, "asset": "BTC", "amount": "50", "extRef": a + "-btc"}, nil))
		must(t, c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": a, "asset": "KZT", "amount": "5000000000", "extRef": a + "-kzt"}, nil))
		ws, err := wsclient.Dial(ctx, c.WSURL)
		must(t, err)
		defer ws.Close()
		logon(ctx, t, c, ws, trader(a))
		clients[a] = ws
	}
	place := func(ws *wsclient.Client, cid, side, price, qty string) (wsapi.OrderResult, error) {
		return ws.Place(ctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: side, Type: "LIMIT", Price: price, Quantity: qty, NewClientOrderID: cid})
	}
	// Resting orders in the snapshot, and a first trade for the price band.
	for i, a := range accounts {
		_, err := place(clients[a], a+"-b", "BUY", fmt.Sprint(44_900_000-i*10_000), "0.01")
		must(t, err)
		_, err = place(clients[a], a+"-s", "SELL", fmt.Sprint(45_100_000+i*10_000), "0.01")
		must(t, err)
	}

	base := strings.Replace(c.WSURL, "/ws/api", "/ws/stream", 1)
	for _, bad := range []string{"btckzt@depth@7ms", "btckzt@depth@", "btckzt@depth@100MS", "btckzt@depth@100ms@x", "btckzt@depth@1s",
		"btckzt@trade@100ms", "btckzt@depth/btckzt@depth@10ms"} {
		_, resp, err := websocket.DefaultDialer.DialContext(ctx, base+"?streams="+bad, nil)
		if err == nil || resp == nil || resp.StatusCode != 400 {
			t.Fatalf("streams %q: %v %v; want 400", bad, resp, err)
		}
		var e apperr.Error
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Code != apperr.InvalidParameter || !strings.Contains(e.Message, bad[strings.LastIndex(bad, "/")+1:]) {
			t.Fatalf("streams %q: error %+v", bad, e)
		}
		resp.Body.Close()
	}

	// The stream clients subscribe, read into buffers, then snapshot.
	type arrival struct {
		d  wsapi.DepthUpdate
		at time.Time
	}
	subscribe := func(stream string) <-chan arrival {
		conn, _, err := websocket.DefaultDialer.DialContext(ctx, base+"?streams="+stream, nil)
		must(t, err)
		t.Cleanup(func() { conn.Close() })
		out := make(chan arrival, 100_000)
		go func() {
			defer close(out)
			for {
				var m struct {
					Stream string            `json:"stream"`
					Data   wsapi.DepthUpdate `json:"data"`
				}
				if err := conn.ReadJSON(&m); err != nil {
					return
				}
				if m.Stream != stream || m.Data.Event != "depthUpdate" || m.Data.Symbol != "BTCKZT" {
					t.Errorf("%s: pushed %+v", stream, m)
					return
				}
				out <- arrival{m.Data, time.Now()}
			}
		}()
		return out
	}
	subscribed := time.Now()
	fast, slow := subscribe("btckzt@depth@100ms"), subscribe("btckzt@depth@1000ms")
	var snap wsapi.DepthResult
	must(t, clients["di-1"].Call(ctx, wsapi.MethodDepth, wsapi.DepthParams{Symbol: "BTCKZT", Limit: 5000}, &snap))

	// Churn: each account's two workers place around the middle (so that
	// some orders trade) and cancel their older orders, paced below the
	// rate limits, for two seconds.
	var wg sync.WaitGroup
	var commands sync.Map // worker → commands sent
	churn := 2 * time.Second
	for w := range 4 {
		ws := clients[accounts[w%2]]
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			var open []uint64
			tick := time.NewTicker(6 * time.Millisecond)
			defer tick.Stop()
			n := 0
			for end := time.Now().Add(churn); time.Now().Before(end); <-tick.C {
				n++
				if len(open) > 0 && rnd.IntN(3) == 0 {
					i := rnd.IntN(len(open))
					// An order that traded in full is gone: UNKNOWN_ORDER.
					_, _ = ws.Cancel(ctx, wsapi.CancelParams{Symbol: "BTCKZT", OrderID: open[i]})
					open = append(open[:i], open[i+1:]...)
					continue
				}
				side, price := "BUY", 44_950_000+rnd.IntN(12)*10_000
				if rnd.IntN(2) == 0 {
					side, price = "SELL", 45_050_000-rnd.IntN(12)*10_000
				}
				r, err := place(ws, fmt.Sprintf("w%d-%d", w, n), side, fmt.Sprint(price), fmt.Sprintf("0.00%d", 1+rnd.IntN(9)))
				if err != nil {
					t.Errorf("place: %v", err)
					return
				}
				if r.Status == "NEW" || r.Status == "PARTIALLY_FILLED" {
					open = append(open, r.OrderID)
				}
			}
			commands.Store(w, n)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// The marker, the last command that changes the book: the update that
	// brings it brings everything before it.
	_, err := place(clients["di-1"], "marker", "BUY", "44000000", "0.01234567")
	must(t, err)
	var final wsapi.DepthResult
	must(t, clients["di-1"].Call(ctx, wsapi.MethodDepth, wsapi.DepthParams{Symbol: "BTCKZT", Limit: 5000}, &final))
	total := 0
	commands.Range(func(_, n any) bool { total += n.(int); return true })

	want := map[string]map[string]string{"b": {}, "a": {}}
	for _, l := range final.Bids {
		want["b"][l[0]] = l[1]
	}
	for _, l := range final.Asks {
		want["a"][l[0]] = l[1]
	}
	for _, s := range []struct {
		name  string
		every time.Duration
		in    <-chan arrival
	}{{"btckzt@depth@100ms", 100 * time.Millisecond, fast}, {"btckzt@depth@1000ms", time.Second, slow}} {
		book := map[string]map[string]string{"b": {}, "a": {}}
		for _, l := range snap.Bids {
			book["b"][l[0]] = l[1]
		}
		for _, l := range snap.Asks {
			book["a"][l[0]] = l[1]
		}
		var last uint64 // u of the last message applied
		var prev uint64 // u of the last message received
		msgs := 0
		var end time.Time
		for book["b"]["44000000.00"] != "0.01234567" {
			var a arrival
			var ok bool
			select {
			case a, ok = <-s.in:
			case <-time.After(10 * time.Second):
			}
			if !ok {
				t.Fatalf("%s: ended after %d messages at u=%d (final snapshot %d)", s.name, msgs, last, final.LastUpdateID)
			}
			msgs, end = msgs+1, a.at
			d := a.d
			if prev != 0 && d.First != prev+1 || d.First > d.Last {
				t.Fatalf("%s: U=%d u=%d after u=%d", s.name, d.First, d.Last, prev)
			}
			prev = d.Last
			if d.Last <= snap.LastUpdateID {
				continue // in the snapshot already
			}
			if last == 0 && !(d.First <= snap.LastUpdateID+1 && snap.LastUpdateID+1 <= d.Last) {
				t.Fatalf("%s: the first update after the snapshot at %d is U=%d u=%d", s.name, snap.LastUpdateID, d.First, d.Last)
			}
			last = d.Last
			for side, levels := range map[string][][2]string{"b": d.Bids, "a": d.Asks} {
				seen := map[string]bool{}
				for _, l := range levels {
					if seen[l[0]] {
						t.Fatalf("%s: level %s twice in U=%d u=%d", s.name, l[0], d.First, d.Last)
					}
					seen[l[0]] = true
					if strings.Trim(l[1], "0.") == "" {
						delete(book[side], l[0])
					} else {
						book[side][l[0]] = l[1]
					}
				}
			}
		}
		if last > final.LastUpdateID {
			t.Fatalf("%s: ended at u=%d after the final snapshot at %d", s.name, last, final.LastUpdateID)
		}
		if fmt.Sprint(book) != fmt.Sprint(want) {
			t.Fatalf("%s: book rebuilt from the stream %v; the snapshot says %v", s.name, book, want)
		}
		// About one message per interval: the first change after a quiet
		// time is pushed at once, later ones at most one per interval.
		elapsed := end.Sub(subscribed)
		if limit := int(elapsed/s.every) + 2; msgs > limit {
			t.Fatalf("%s: %d messages in %v", s.name, msgs, elapsed)
		}
		if msgs < 2 {
			t.Fatalf("%s: %d messages", s.name, msgs)
		}
		t.Logf("%s: %d messages in %v for %d orders and cancels; book rebuilt to u=%d, final snapshot %d",
			s.name, msgs, elapsed.Round(time.Millisecond), total, last, final.LastUpdateID)
	}
}
