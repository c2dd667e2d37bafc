package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/loadgen"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// TestLoadGenerator runs the load generator against the real service:
// orders from several connections at a paced rate, idle logged-on
// connections and depth subscribers; every order is answered, the only
// refusals are cancels of orders that traded first, nobody is dropped and
// no depth update is missed.
func TestLoadGenerator(t *testing.T) {
	app, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := loadgen.Config{Addr: app.Addr(), OperatorKey: app.Token(access.RoleOperator), Conns: 4, InFlight: 2, Rate: 400,
		Duration: 1500 * time.Millisecond, Mix: loadgen.Mix{Rest: 60, Cancel: 25, Take: 15}, Symbol: "BTCKZT", Quantity: "0.001",
		Mid: "30000000", Idle: 5, Subscribers: 3, Stream: "btckzt@depth"}
	var progress bytes.Buffer
	rep, err := loadgen.Run(ctx, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Write(&out)
	t.Logf("%s%s", progress.String(), out.String())
	if rep.Sent < 400 || rep.Sent > 700 {
		t.Errorf("sent %d orders in 1.5 s at 400/s", rep.Sent)
	}
	if answered := rep.OK + rep.Errors["UNKNOWN_ORDER"]; answered != rep.Sent || rep.OK < rep.Sent*3/4 {
		t.Errorf("sent %d, OK %d, errors %v: every order must be answered, and only cancels of traded orders refused", rep.Sent, rep.OK, rep.Errors)
	}
	if rep.Latency.N != int(rep.Sent) || rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.Latency.P99 > rep.Latency.Max {
		t.Errorf("latency %+v", rep.Latency)
	}
	// Paced: each answer also from when it was due, which is never after
	// its send — so no quantile is below the one from the send.
	if d, l := rep.LatencyDue, rep.Latency; d.N != l.N || d.P50 < l.P50 || d.P99 < l.P99 || d.Max < l.Max {
		t.Errorf("latency from due %+v; from send %+v", d, l)
	}
	if rep.ConnsLost != 0 || rep.Unmatched != 0 {
		t.Errorf("%d connections lost, %d answers unmatched", rep.ConnsLost, rep.Unmatched)
	}
	if rep.Idle != 5 || rep.IdleLost != 0 {
		t.Errorf("idle: %d open, %d lost; want 5, 0", rep.Idle, rep.IdleLost)
	}
	if s := rep.Subs; s.N != 3 || s.Closed != 0 || s.Gaps != 0 || s.Malformed != 0 || s.MinMsgs < 100 || s.Depth < 3*100 || s.Levels < s.Depth {
		t.Errorf("subscribers: %+v", s)
	}
	if rep.Server.RSS <= 0 || rep.Server.Goroutines < 2*(4+5+3) {
		t.Errorf("server stats from /metrics: %+v", rep.Server)
	}
	for _, want := range []string{"server:     RSS", "throughput:", "latency:    p50", "from due:   p50", "p99.9", "idle:       5 logged-on", "streams:    3 subscribers"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	must(t, c.WaitSettled(ctx))

	// Batches: the same mix, five orders per request (batchOrders.place
	// and .cancel); every order answered on its own.
	cfg.Batch, cfg.Idle, cfg.Subscribers, cfg.Rate, cfg.CountUpdates = 5, 0, 0, 500, true
	rep, err = loadgen.Run(ctx, cfg, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent < 500 || rep.Sent > 1000 {
		t.Errorf("batches: sent %d orders in 1.5 s at 500/s", rep.Sent)
	}
	if answered := rep.OK + rep.Errors["UNKNOWN_ORDER"]; answered != rep.Sent || rep.OK < rep.Sent*3/4 || rep.Latency.N != int(rep.Sent) {
		t.Errorf("batches: sent %d, OK %d, errors %v, %d latencies: every order must be answered, and only cancels of traded orders refused",
			rep.Sent, rep.OK, rep.Errors, rep.Latency.N)
	}
	if rep.Requests*2 > rep.Sent {
		t.Errorf("batches: %d orders in %d requests; want most requests to carry 5", rep.Sent, rep.Requests)
	}
	// The counter saw the book change with the orders, every update
	// continuing the one before.
	if b := rep.Book; b.N != 1 || b.Depth < rep.OK/2 || b.Gaps != 0 || b.Closed != 0 || b.Levels < b.Depth {
		t.Errorf("batches: the book's update counter saw %+v for %d orders", b, rep.OK)
	}
	out.Reset()
	rep.Write(&out)
	if !strings.Contains(out.String(), "book:       ") {
		t.Errorf("batches: the report lacks the book's updates:\n%s", out.String())
	}
	if !strings.Contains(progress.String(), "× 5 orders per request") {
		t.Errorf("batches: progress %q does not say 5 orders per request", progress.String())
	}
	must(t, c.WaitSettled(ctx))

	// A bound on each connection's resting orders: only resting orders in
	// the mix, yet the book gains at most MaxOpen a connection.
	bookOrders := func() int64 { // every order is 0.001 BTC
		var depth wsapi.DepthResult
		must(t, c.Call(ctx, "GET", "/v1/depth?symbol=BTCKZT&limit=5000", nil, &depth))
		var n int64
		for _, l := range append(depth.Bids, depth.Asks...) {
			q, err := money.Parse(l[1], 8)
			must(t, err)
			n += q / 100_000
		}
		return n
	}
	before := bookOrders()
	cfg.Batch, cfg.CountUpdates, cfg.Conns, cfg.Rate, cfg.MaxOpen = 1, false, 2, 300, 5
	cfg.Mix = loadgen.Mix{Rest: 100}
	if rep, err = loadgen.Run(ctx, cfg, &progress); err != nil {
		t.Fatal(err)
	}
	must(t, c.WaitSettled(ctx))
	// Each connection holds 5 give or take its 2 requests in flight (a
	// place and a cancel crossing at the bound).
	if after := bookOrders(); rep.OK != rep.Sent || rep.Sent < 300 || int64(rep.Resting) != after-before || rep.Resting < 2*3 || rep.Resting > 2*6 {
		t.Errorf("max-open 5: sent %d, OK %d, %d left resting, the book grew by %d orders; want all OK, 6–12 and the same", rep.Sent, rep.OK, rep.Resting, after-before)
	}
	// In batches larger than the bound: a connection at it cancels what it
	// has, and passes it by at most a batch per request in flight.
	before = bookOrders()
	cfg.Batch, cfg.MaxOpen = 5, 3
	if rep, err = loadgen.Run(ctx, cfg, &progress); err != nil {
		t.Fatal(err)
	}
	must(t, c.WaitSettled(ctx))
	if after := bookOrders(); rep.OK != rep.Sent || rep.Sent < 300 || int64(rep.Resting) != after-before || rep.Resting > 2*(3+5*2) {
		t.Errorf("max-open 3, batches of 5: sent %d, OK %d, %d left resting, the book grew by %d orders; want all OK, at most 26 and the same",
			rep.Sent, rep.OK, rep.Resting, after-before)
	}

	// The command line: bounds are refused before anything is sent.
	key := filepath.Join(t.TempDir(), "operator.token")
	must(t, os.WriteFile(key, []byte(app.Token(access.RoleOperator)), 0o600))
	for _, tc := range []struct{ args, msg string }{
		{"-addr 192.0.2.1:8080", "loopback address only"},
		{"-addr 127.0.0.1:80@192.0.2.1", "the port a number from 1 to 65535"}, // would be a URL's user info
		{"-addr 127.0.0.1:0", "the port a number from 1 to 65535"},
		{"-conns 5000", "conns must be from 0 to 1024"},
		{"-duration 11m", "at most 10m0s"},
		{"-mix 70/20/5", "adding up to 100"},
		{"-inflight 17", "inflight must be from 1 to 16"},
		{"-batch 21", "batch must be from 1 to 20"},
		{"-max-open -1", "max-open must not be negative"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"load", "-operator-key", key}, strings.Fields(tc.args)...)
		if code := run(ctx, args, &stdout, &stderr, func(string) string { return "" }); code != 1 || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("satu load %s: exit %d, %q; want 1 and %q", tc.args, code, stderr.String(), tc.msg)
		}
	}
	var stdout, stderr bytes.Buffer
	args := []string{"load", "-addr", app.Addr(), "-operator-key", key, "-conns", "2", "-rate", "100", "-duration", "1s", "-mid", "30000000", "-progress", "250ms"}
	if code := run(ctx, args, &stdout, &stderr, func(string) string { return "" }); code != 0 {
		t.Fatalf("satu load: exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"satu load: 2 connections × 1 in flight, rate 100 orders/s", "orders/s  p50 ≤ ", "throughput:", "latency:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("satu load printed %q; lacks %q", stdout.String(), want)
		}
	}
}
