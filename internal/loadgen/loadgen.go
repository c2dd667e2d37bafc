// Package loadgen drives a running Satu through its public APIs only: it
// opens and funds its own trader accounts over REST with an operator's key,
// issues each a signing key, then sends orders from many websocket
// connections at a set rate and mix for a bounded time, and reports
// throughput and acknowledgement latency. It can also hold idle logged-on
// connections and depth-stream subscribers that check every update chains
// to the one before. It refuses any address that is not loopback: it is a
// measuring tool, not a way to flood somebody else's exchange.
package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/demo"
	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsclient"
)

// Bounds on a run.
const (
	MaxConns       = 1024
	MaxInFlight    = 16
	MaxDuration    = 10 * time.Minute
	MaxIdle        = 20000
	MaxSubscribers = 5000
)

// Mix is the order mix in percent; it must add up to 100.
type Mix struct {
	Rest   int // a limit order that rests (does not cross)
	Cancel int // cancel one of the connection's resting orders
	Take   int // an IOC order that crosses the spread
}

// Config is one run.
type Config struct {
	Addr        string // host:port of Satu; loopback only
	OperatorKey string // an operator's API key: opens and funds the accounts, issues their keys
	Conns       int    // order-sending connections, each its own account and key
	InFlight    int    // requests in flight per connection
	// Batch is how many orders each request carries: 1 sends order.place
	// and order.cancel, more sends batchOrders.place and
	// batchOrders.cancel of up to that many orders.
	Batch    int
	Rate     int // orders per second over all connections; 0: as fast as the connections allow
	Duration time.Duration
	Mix      Mix
	// MaxOpen bounds the resting orders of each connection: one holding
	// that many cancels one where the mix has it place a resting order (a
	// batch: cancels up to a batch of them, and places crossing orders
	// only), so that the book stays near Conns × MaxOpen orders instead of
	// growing all run — passed by at most a request's orders per request in
	// flight. Below Batch, a connection at the bound sends cancel batches of
	// what it has, so fewer orders than Rate a second. 0: no bound.
	MaxOpen  int
	Symbol   string
	Quantity string // each order's quantity, in the base asset
	// Mid is the price orders are placed around, in the quote asset; ""
	// takes the middle of the symbol's best bid and offer (or of the one
	// side there is) and fails on an empty book.
	Mid         string
	Idle        int    // extra logged-on connections held open and silent for the run
	Subscribers int    // connections subscribed to Stream for the run
	Stream      string // e.g. btckzt@depth@100ms
	// CountUpdates follows the symbol's per-command depth stream on one
	// more connection and reports the book's update rate.
	CountUpdates bool
	Progress     time.Duration
}

// Validate checks the bounds.
func (c Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("addr %q: %w", c.Addr, err)
	}
	// The address is pasted into URLs: a port that is not a port could
	// carry another host ("127.0.0.1:80@elsewhere").
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || net.JoinHostPort(host, port) != c.Addr {
		return fmt.Errorf("addr %q: want host:port, the port a number from 1 to 65535", c.Addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("addr %q: satu load runs against a loopback address only", c.Addr)
	}
	switch {
	case c.Conns < 0 || c.Conns > MaxConns:
		return fmt.Errorf("conns must be from 0 to %d", MaxConns)
	case c.InFlight < 1 || c.InFlight > MaxInFlight:
		return fmt.Errorf("inflight must be from 1 to %d (the gateway answers at most %d at once per connection)", MaxInFlight, MaxInFlight)
	case c.Batch < 0 || c.Batch > wsapi.MaxBatchOrders:
		return fmt.Errorf("batch must be from 1 to %d orders per request (0 means 1)", wsapi.MaxBatchOrders)
	case c.Rate < 0:
		return errors.New("rate must not be negative")
	case c.MaxOpen < 0:
		return errors.New("max-open must not be negative")
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("duration must be above 0 and at most %s", MaxDuration)
	case c.Mix.Rest < 0 || c.Mix.Cancel < 0 || c.Mix.Take < 0 || c.Mix.Rest+c.Mix.Cancel+c.Mix.Take != 100:
		return fmt.Errorf("mix %d/%d/%d must be three percentages adding up to 100", c.Mix.Rest, c.Mix.Cancel, c.Mix.Take)
	case c.Idle < 0 || c.Idle > MaxIdle:
		return fmt.Errorf("idle must be from 0 to %d", MaxIdle)
	case c.Subscribers < 0 || c.Subscribers > MaxSubscribers:
		return fmt.Errorf("subscribers must be from 0 to %d", MaxSubscribers)
	case c.Conns == 0 && c.Idle == 0 && c.Subscribers == 0:
		return errors.New("nothing to do: conns, idle and subscribers are all 0")
	case c.OperatorKey == "" && (c.Conns > 0 || c.Idle > 0):
		return errors.New("an operator key is needed to open the accounts")
	}
	return nil
}

// Report is what a run measured.
type Report struct {
	Elapsed  time.Duration    // the timed part: from the first order to the last answer
	Sent     int64            // orders sent
	Requests int64            // requests they were sent in
	OK       int64            // answered 200
	Errors   map[string]int64 // error answers by code; "CLIENT" for a request that got no answer
	Latency  Percentiles      // acknowledgement latency of answered orders: send to answer
	// LatencyDue is, in a paced run, the latency from when each request
	// was due by the schedule: a request sent late, because its
	// connection's earlier answer came late, counts its wait too (the
	// coordinated omission that Latency alone would hide).
	LatencyDue Percentiles
	ConnsLost  int    // order connections the server closed during the run
	Resting    int    // orders the connections left resting at the end, as far as they know
	Unmatched  uint64 // answers with a null id (refused unread), which reached no request
	Idle       int    // idle connections still open at the end
	IdleLost   int    // idle connections the server closed during the run
	Subs       SubscriberReport
	Book       SubscriberReport // the update counter's (CountUpdates)
	Server     ServerStats
}

// Throughput is answered orders per second.
func (r Report) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK+r.errorCount()) / r.Elapsed.Seconds()
}

func (r Report) errorCount() int64 {
	var n int64
	for code, c := range r.Errors {
		if code != clientError {
			n += c
		}
	}
	return n
}

// clientError counts requests that got no answer (connection lost, timeout).
const clientError = "CLIENT"

// badAnswer counts the orders of a batch answered with a different number
// of items.
const badAnswer = "BAD_ANSWER"

// Percentiles of a latency distribution.
type Percentiles struct {
	N                              int
	P50, P90, P99, P999, Max, Mean time.Duration
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[rank(q, len(d))-1] }
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return Percentiles{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: d[len(d)-1], Mean: sum / time.Duration(len(d))}
}

// rank is the nearest rank of quantile q among n values: the smallest k
// with at least q·n values at or below the k-th (1 ≤ k ≤ n).
func rank(q float64, n int) int {
	k := int(math.Ceil(q*float64(n) - 1e-9)) // q·n is inexact: 0.9 × 10 is 9.000000000000002
	return max(1, min(k, n))
}

// Run performs one run, writing progress to progress (nil: none).
func Run(ctx context.Context, cfg Config, progress io.Writer) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	if progress == nil {
		progress = io.Discard
	}
	var sym wsapi.SymbolInfo
	var mid int64
	if cfg.Conns > 0 {
		var err error
		if sym, mid, err = market(ctx, cfg); err != nil {
			return Report{}, err
		}
	}
	rest := demo.NewClient(cfg.Addr, cfg.OperatorKey)
	run := strconv.FormatInt(time.Now().UnixNano()%1e12, 36) // names this run's accounts
	fmt.Fprintf(progress, "satu load: opening %d trading and %d idle accounts (run %s)\n", cfg.Conns, cfg.Idle, run)
	traders, err := openAll(ctx, rest, cfg, sym, run)
	defer func() {
		for _, t := range traders {
			if t != nil && t.ws != nil {
				_ = t.ws.Close()
			}
		}
	}()
	if err != nil {
		return Report{}, err
	}

	var rep Report
	idle, err := holdIdle(ctx, rest, cfg, run, progress)
	defer idle.close()
	if err != nil {
		return rep, err
	}
	subs, err := subscribe(ctx, cfg.Addr, cfg.Stream, cfg.Subscribers)
	defer subs.close()
	if err != nil {
		return rep, err
	}
	// The book's update rate: one more connection on the symbol's
	// per-command depth stream, counting every update.
	counter, err := subscribe(ctx, cfg.Addr, strings.ToLower(cfg.Symbol)+"@depth", b2i(cfg.CountUpdates && cfg.Conns > 0))
	defer counter.close()
	if err != nil {
		return rep, err
	}

	if cfg.Conns > 0 {
		batch := ""
		if cfg.Batch > 1 {
			batch = fmt.Sprintf(" × %d orders per request", cfg.Batch)
		}
		if cfg.MaxOpen > 0 {
			batch += fmt.Sprintf(", at most %d resting orders per connection", cfg.MaxOpen)
		}
		fmt.Fprintf(progress, "satu load: %d connections × %d in flight%s, rate %s, mix %d/%d/%d rest/cancel/take, %s on %s\n",
			cfg.Conns, cfg.InFlight, batch, rateText(cfg.Rate), cfg.Mix.Rest, cfg.Mix.Cancel, cfg.Mix.Take, cfg.Duration, sym.Symbol)
	} else {
		fmt.Fprintf(progress, "satu load: holding %d idle connections and %d subscribers for %s\n", cfg.Idle, cfg.Subscribers, cfg.Duration)
	}
	rep = drive(ctx, cfg, sym, mid, traders, progress)
	rep.Idle, rep.IdleLost = idle.count()
	rep.Subs = subs.report()
	rep.Book = counter.report()
	rep.Server = serverStats(ctx, cfg.Addr) // while every connection is still open
	return rep, nil
}

// ServerStats is what the server's /metrics said at the end of the run.
type ServerStats struct {
	RSS        float64 // process_resident_memory_bytes
	Goroutines float64 // go_goroutines
	SlowClosed float64 // satu_ws_slow_consumers_total
}

// serverStats reads the server's own figures; zero when /metrics does not answer.
func serverStats(ctx context.Context, addr string) ServerStats {
	var st ServerStats
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	if err != nil {
		return st
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			st.RSS = v
		case "go_goroutines":
			st.Goroutines = v
		case "satu_ws_slow_consumers_total":
			st.SlowClosed = v
		}
	}
	return st
}

func rateText(r int) string {
	if r == 0 {
		return "unpaced"
	}
	return strconv.Itoa(r) + " orders/s"
}

// market finds the symbol and the mid price in its minor units.
func market(ctx context.Context, cfg Config) (wsapi.SymbolInfo, int64, error) {
	var info struct{ Symbols []wsapi.SymbolInfo }
	if err := demo.NewClient(cfg.Addr, "").Call(ctx, "GET", "/v1/exchangeInfo", nil, &info); err != nil {
		return wsapi.SymbolInfo{}, 0, fmt.Errorf("exchangeInfo: %w", err)
	}
	for _, s := range info.Symbols {
		if s.Symbol != cfg.Symbol {
			continue
		}
		scale := scaleOf(s.TickSize)
		if cfg.Mid != "" {
			mid, err := money.Parse(cfg.Mid, scale)
			if err != nil || mid <= 0 {
				return s, 0, fmt.Errorf("mid %q: not a price of %s", cfg.Mid, s.Symbol)
			}
			return s, mid, nil
		}
		var depth wsapi.DepthResult
		if err := demo.NewClient(cfg.Addr, "").Call(ctx, "GET", "/v1/depth?symbol="+s.Symbol+"&limit=1", nil, &depth); err != nil {
			return s, 0, fmt.Errorf("depth: %w", err)
		}
		var sides []int64
		for _, l := range [][][2]string{depth.Bids, depth.Asks} {
			if len(l) > 0 {
				p, err := money.Parse(l[0][0], scale)
				if err != nil {
					return s, 0, fmt.Errorf("depth price %q: %w", l[0][0], err)
				}
				sides = append(sides, p)
			}
		}
		if len(sides) == 0 {
			return s, 0, fmt.Errorf("%s has an empty book: give -mid", s.Symbol)
		}
		tick, _ := money.Parse(s.TickSize, scale)
		mid := sides[0]
		if len(sides) == 2 {
			mid = (sides[0] + sides[1]) / 2 / tick * tick
		}
		return s, mid, nil
	}
	return wsapi.SymbolInfo{}, 0, fmt.Errorf("unknown symbol %q", cfg.Symbol)
}

// scaleOf is the number of decimals of a decimal string such as "0.00000001".
func scaleOf(s string) int {
	for i := range len(s) {
		if s[i] == '.' {
			return len(s) - i - 1
		}
	}
	return 0
}

// trader is one order-sending connection and what it has resting.
type trader struct {
	account string
	ws      *wsclient.Client
	maxOpen int        // Config.MaxOpen
	mu      sync.Mutex // guards open
	open    []uint64   // IDs of its resting orders
}

// openAll opens, funds and logs on one account per connection, in parallel.
func openAll(ctx context.Context, rest *demo.Client, cfg Config, sym wsapi.SymbolInfo, run string) ([]*trader, error) {
	traders := make([]*trader, cfg.Conns)
	err := parallel(ctx, cfg.Conns, 16, func(ctx context.Context, i int) error {
		acct := fmt.Sprintf("load-%s-%d", run, i)
		ws, err := account(ctx, rest, acct, func(ctx context.Context) error {
			for _, d := range [][2]string{{sym.Base, "1000000"}, {sym.Quote, "100000000000"}} {
				if err := rest.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": acct, "asset": d[0], "amount": d[1], "extRef": acct + "-" + d[0]}, nil); err != nil {
					return fmt.Errorf("deposit: %w", err)
				}
			}
			return nil
		})
		traders[i] = &trader{account: acct, ws: ws, maxOpen: cfg.MaxOpen}
		return err
	})
	return traders, err
}

// account opens acct, runs fund, issues a signing key and returns a
// logged-on connection.
func account(ctx context.Context, rest *demo.Client, acct string, fund func(context.Context) error) (*wsclient.Client, error) {
	if err := rest.Call(ctx, "POST", "/v1/operator/accounts", map[string]string{"account": acct, "owner": acct, "kind": "trader"}, nil); err != nil {
		return nil, fmt.Errorf("open %s: %w", acct, err)
	}
	if err := fund(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", acct, err)
	}
	signer, err := rest.NewSigner(ctx, demo.KeyRequest{Role: "trader", Account: acct, Label: "satu load"})
	if err != nil {
		return nil, err
	}
	ws, err := wsclient.Dial(ctx, rest.WSURL)
	if err != nil {
		return nil, err
	}
	if _, err := ws.Logon(ctx, signer, ""); err != nil {
		_ = ws.Close()
		return nil, fmt.Errorf("logon %s: %w", acct, err)
	}
	return ws, nil
}

// parallel runs f(0…n-1) on at most width goroutines; the first error wins.
func parallel(ctx context.Context, n, width int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(n, width) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// worker is one in-flight slot of a connection.
type worker struct {
	t      *trader
	rng    *rand.Rand
	lat    []time.Duration // send to answer
	latDue []time.Duration // due to answer (paced runs)
}

// counters are the run's live totals, read by the progress printer.
type counters struct {
	sent, ok, failed atomic.Int64
	requests         atomic.Int64
	live             liveLatency // the latencies, for each progress line's quantiles
	mu               sync.Mutex  // guards codes
	codes            map[string]int64
}

func (c *counters) fail(code string) {
	c.failed.Add(1)
	c.mu.Lock()
	c.codes[code]++
	c.mu.Unlock()
}

// drive sends the orders and measures them.
func drive(ctx context.Context, cfg Config, sym wsapi.SymbolInfo, mid int64, traders []*trader, progress io.Writer) Report {
	rep := Report{Errors: map[string]int64{}}
	if len(traders) == 0 {
		t := time.NewTimer(cfg.Duration)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		rep.Elapsed = cfg.Duration
		return rep
	}
	scale := scaleOf(sym.TickSize)
	tick, _ := money.Parse(sym.TickSize, scale)
	qty := cfg.Quantity
	cnt := &counters{codes: map[string]int64{}}
	workers := make([]*worker, 0, len(traders)*cfg.InFlight)
	for i, t := range traders {
		for j := range cfg.InFlight {
			workers = append(workers, &worker{t: t, rng: rand.New(rand.NewPCG(uint64(i), uint64(j)))})
		}
	}
	// Pacing: worker k sends its n-th request at start + (n·W + k)·B/rate,
	// B orders per request.
	batch := max(1, cfg.Batch)
	var every time.Duration
	if cfg.Rate > 0 {
		every = time.Duration(float64(time.Second) * float64(len(workers)*batch) / float64(cfg.Rate))
	}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for k, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := start
			if every > 0 {
				next = start.Add(every * time.Duration(k) / time.Duration(len(workers)))
			}
			for runCtx.Err() == nil {
				var due time.Time // zero: unpaced
				if every > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-runCtx.Done():
							return
						}
					}
					due, next = next, next.Add(every)
				}
				var sent bool
				if batch > 1 {
					sent = w.batch(ctx, due, batch, cfg.Mix, sym.Symbol, mid, tick, scale, qty, cnt)
				} else {
					sent = w.one(ctx, due, cfg.Mix, sym.Symbol, mid, tick, scale, qty, cnt)
				}
				if !sent { // the connection has ended: nothing more goes out on it
					return
				}
			}
		}()
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.Progress <= 0 {
			<-stopProgress
			return
		}
		t := time.NewTicker(cfg.Progress)
		defer t.Stop()
		var last int64
		var lastCounts liveCounts
		lastAt := start
		for {
			select {
			case <-stopProgress:
				return
			case now := <-t.C:
				done := cnt.ok.Load() + cnt.failed.Load()
				var n int64
				var q []time.Duration
				lastCounts, n, q = cnt.live.read(&lastCounts, 0.5, 0.99)
				window := "  (no answers)"
				if n > 0 {
					window = fmt.Sprintf("  p50 ≤ %v  p99 ≤ %v", roundLive(q[0]), roundLive(q[1]))
				}
				fmt.Fprintf(progress, "%6.1fs  sent %9d  answered %9d  errors %7d  %8.0f orders/s%s\n", now.Sub(start).Seconds(),
					cnt.sent.Load(), done, cnt.failed.Load(), float64(done-last)/now.Sub(lastAt).Seconds(), window)
				last, lastAt = done, now
			}
		}
	}()
	wg.Wait()
	rep.Elapsed = time.Since(start)
	close(stopProgress)
	<-progressDone
	var all, allDue []time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		allDue = append(allDue, w.latDue...)
	}
	rep.Latency, rep.LatencyDue = percentiles(all), percentiles(allDue)
	for _, t := range traders {
		select {
		case <-t.ws.Done():
			rep.ConnsLost++
		default:
		}
		rep.Unmatched += t.ws.Unmatched()
		t.mu.Lock()
		rep.Resting += len(t.open)
		t.mu.Unlock()
	}
	rep.Sent, rep.Requests, rep.OK = cnt.sent.Load(), cnt.requests.Load(), cnt.ok.Load()
	cnt.mu.Lock()
	for k, v := range cnt.codes {
		rep.Errors[k] = v
	}
	cnt.mu.Unlock()
	return rep
}

// one sends one order request of the mix, due at due (zero: unpaced), and
// waits for its answer. It reports false when the request could not be
// sent: the connection has ended.
func (w *worker) one(ctx context.Context, due time.Time, mix Mix, symbol string, mid, tick int64, scale int, qty string, cnt *counters) bool {
	roll := w.rng.IntN(100)
	var method string
	var params any
	var ids []uint64
	if roll < mix.Cancel || roll < 100-mix.Take && w.t.full() {
		ids = w.t.takeN(w.rng, 1)
	}
	if len(ids) == 1 {
		method, params = wsapi.MethodCancel, wsapi.CancelParams{Symbol: symbol, OrderID: ids[0]}
	} else {
		method, params = wsapi.MethodPlace, w.place(roll >= 100-mix.Take, symbol, mid, tick, scale, qty)
	}
	var res wsapi.OrderResult
	took, err := w.call(ctx, cnt, 1, method, params, &res)
	switch {
	case errors.Is(err, wsclient.ErrNotSent):
		w.t.rested(ids...) // not cancelled after all
		return false
	case err != nil:
		w.failAll(cnt, 1, due, took, codeOf(err))
		return true
	}
	w.record(cnt, due, took)
	cnt.ok.Add(1)
	if method == wsapi.MethodPlace && res.Status == "NEW" {
		w.t.rested(res.OrderID)
	}
	return true
}

// batch sends one batchOrders request of n orders and waits for its
// answer: cancels of n resting orders of the connection (a cancel of the
// mix, when it has n resting), else n orders to place, each resting or
// crossing in the mix's proportion. A connection holding MaxOpen resting
// orders rests none: a batch that would rest orders cancels instead (up to
// n of them), and one that places, places crossing orders only. Each
// order counts, with the batch's latency. It reports false when the
// request could not be sent.
func (w *worker) batch(ctx context.Context, due time.Time, n int, mix Mix, symbol string, mid, tick int64, scale int, qty string, cnt *counters) bool {
	var method string
	var params any
	var ids []uint64
	full := mix.Rest > 0 && w.t.full()
	if w.rng.IntN(100) < mix.Cancel || full && w.rng.IntN(mix.Rest+mix.Take) < mix.Rest {
		k := n
		if full {
			k = min(n, w.t.count())
		}
		ids = w.t.takeN(w.rng, k)
	}
	if len(ids) > 0 {
		n = len(ids)
		orders := make([]wsapi.CancelParams, n)
		for i, id := range ids {
			orders[i] = wsapi.CancelParams{Symbol: symbol, OrderID: id}
		}
		method, params = wsapi.MethodBatchCancel, wsapi.BatchCancelParams{Orders: orders}
	} else {
		orders := make([]wsapi.PlaceParams, n)
		for i := range orders {
			cross := mix.Take > 0 && (full || w.rng.IntN(mix.Rest+mix.Take) >= mix.Rest)
			orders[i] = w.place(cross, symbol, mid, tick, scale, qty)
		}
		method, params = wsapi.MethodBatchPlace, wsapi.BatchPlaceParams{Orders: orders}
	}
	var res wsapi.BatchResult
	took, err := w.call(ctx, cnt, n, method, params, &res)
	switch {
	case errors.Is(err, wsclient.ErrNotSent):
		w.t.rested(ids...)
		return false
	case err != nil:
		w.failAll(cnt, n, due, took, codeOf(err))
		return true
	case len(res.Orders) != n:
		w.failAll(cnt, n, due, took, badAnswer)
		return true
	}
	for _, it := range res.Orders {
		w.record(cnt, due, took)
		if it.Error != nil {
			cnt.fail(string(it.Error.Code))
			continue
		}
		cnt.ok.Add(1)
		if method == wsapi.MethodBatchPlace && it.Result != nil && it.Result.Status == "NEW" {
			w.t.rested(it.Result.OrderID)
		}
	}
	return true
}

// call sends one request carrying n orders and waits for its answer into
// out, at most 15 s. A request that was not sent (wsclient.ErrNotSent) is
// not counted.
func (w *worker) call(ctx context.Context, cnt *counters, n int, method string, params, out any) (time.Duration, error) {
	cnt.sent.Add(int64(n))
	cnt.requests.Add(1)
	sent := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := w.t.ws.Call(cctx, method, params, out)
	if errors.Is(err, wsclient.ErrNotSent) {
		cnt.sent.Add(-int64(n))
		cnt.requests.Add(-1)
	}
	return time.Since(sent), err
}

// record counts an answer's latency: took from its send, and, in a paced
// run, from when it was due.
func (w *worker) record(cnt *counters, due time.Time, took time.Duration) {
	w.lat = append(w.lat, took)
	cnt.live.add(took)
	if !due.IsZero() {
		w.latDue = append(w.latDue, time.Since(due))
	}
}

// failAll counts each of a request's n orders as failed with code, with
// the request's latency unless it got no answer (CLIENT).
func (w *worker) failAll(cnt *counters, n int, due time.Time, took time.Duration, code string) {
	for range n {
		if code != clientError {
			w.record(cnt, due, took)
		}
		cnt.fail(code)
	}
}

// codeOf is the error code of a request's failure: the server's, or
// CLIENT when it did not answer.
func codeOf(err error) string {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return string(ae.Code)
	}
	return clientError
}

// place makes one order of the mix: crossing (an IOC order up to 200
// ticks through the mid: it takes what rests there) or resting (1 to 500
// ticks away from the mid, on either side).
func (w *worker) place(cross bool, symbol string, mid, tick int64, scale int, qty string) wsapi.PlaceParams {
	if cross {
		side, price := "BUY", mid+200*tick
		if w.rng.IntN(2) == 0 {
			side, price = "SELL", mid-200*tick
		}
		return wsapi.PlaceParams{Symbol: symbol, Side: side, Type: "LIMIT", TimeInForce: "IOC",
			Price: money.Format(price, scale), Quantity: qty, NewClientOrderID: w.clientID()}
	}
	off := (1 + w.rng.Int64N(500)) * tick
	side, price := "BUY", mid-off
	if w.rng.IntN(2) == 0 {
		side, price = "SELL", mid+off
	}
	return wsapi.PlaceParams{Symbol: symbol, Side: side, Type: "LIMIT", TimeInForce: "GTC",
		Price: money.Format(price, scale), Quantity: qty, NewClientOrderID: w.clientID()}
}

// rested remembers resting orders of the trader, for later cancels.
func (t *trader) rested(ids ...uint64) {
	t.mu.Lock()
	t.open = append(t.open, ids...)
	t.mu.Unlock()
}

// count is how many resting orders the trader knows of.
func (t *trader) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open)
}

// full reports whether the trader holds its MaxOpen resting orders.
func (t *trader) full() bool {
	if t.maxOpen == 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open) >= t.maxOpen
}

// takeN removes n random resting orders of the trader; none when it has
// fewer.
func (t *trader) takeN(rng *rand.Rand, n int) []uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.open) < n {
		return nil
	}
	ids := make([]uint64, n)
	for k := range ids {
		i := rng.IntN(len(t.open))
		ids[k] = t.open[i]
		t.open[i] = t.open[len(t.open)-1]
		t.open = t.open[:len(t.open)-1]
	}
	return ids
}

func (w *worker) clientID() string {
	return strconv.FormatUint(w.rng.Uint64(), 36)
}

// Write prints the report.
func (r Report) Write(w io.Writer) {
	if r.Server.RSS > 0 {
		fmt.Fprintf(w, "server:     RSS %.0f MiB, %.0f goroutines, %.0f slow consumers closed since start (its /metrics at the end)\n",
			r.Server.RSS/(1<<20), r.Server.Goroutines, r.Server.SlowClosed)
	}
	if r.Sent == 0 && len(r.Errors) == 0 {
		r.writeHeld(w)
		return
	}
	in := ""
	if r.Requests != r.Sent {
		in = fmt.Sprintf(" in %d requests", r.Requests)
	}
	fmt.Fprintf(w, "orders:     %d sent%s, %d answered OK, %d answered with an error, %d unanswered in %.2fs\n",
		r.Sent, in, r.OK, r.errorCount(), r.Errors[clientError], r.Elapsed.Seconds())
	fmt.Fprintf(w, "throughput: %.0f orders/s answered\n", r.Throughput())
	fmt.Fprintf(w, "resting:    %d orders of the run's connections left in the book\n", r.Resting)
	if r.Latency.N > 0 {
		l := r.Latency
		fmt.Fprintf(w, "latency:    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s  (%d answers)\n",
			ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), ms(l.Mean), l.N)
	}
	if l := r.LatencyDue; l.N > 0 {
		fmt.Fprintf(w, "from due:   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s  (each answer from when the schedule had it sent)\n",
			ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), ms(l.Mean))
	}
	if r.ConnsLost > 0 {
		fmt.Fprintf(w, "lost:       %d order connections closed by the server during the run\n", r.ConnsLost)
	}
	if r.Unmatched > 0 {
		fmt.Fprintf(w, "unmatched:  %d answers with a null id (refused unread), counted under no request\n", r.Unmatched)
	}
	codes := make([]string, 0, len(r.Errors))
	for c := range r.Errors {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		fmt.Fprintf(w, "error:      %-20s %d\n", c, r.Errors[c])
	}
	r.writeHeld(w)
}

// writeHeld prints the idle connections and subscribers.
func (r Report) writeHeld(w io.Writer) {
	if r.Idle+r.IdleLost > 0 {
		fmt.Fprintf(w, "idle:       %d logged-on connections open at the end, %d closed by the server\n", r.Idle, r.IdleLost)
	}
	if b := r.Book; b.N > 0 && r.Elapsed > 0 {
		fmt.Fprintf(w, "book:       %d depth updates (%.0f/s) with %d level changes, %d gaps, %d closed by the server\n",
			b.Depth, float64(b.Depth)/r.Elapsed.Seconds(), b.Levels, b.Gaps, b.Closed)
	}
	if s := r.Subs; s.N > 0 {
		fmt.Fprintf(w, "streams:    %d subscribers, %d messages (fewest per subscriber %d), %d depth updates with %d level changes checked, %d gaps, %d undecodable, %d closed by the server\n",
			s.N, s.Messages, s.MinMsgs, s.Depth, s.Levels, s.Gaps, s.Malformed, s.Closed)
		for reason, n := range s.Reasons {
			fmt.Fprintf(w, "closed:     %q × %d\n", reason, n)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) + "ms" }
