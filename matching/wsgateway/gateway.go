// Package wsgateway is the websocket gateway: it decodes client requests,
// appends commands to the shard's Redis inbox and answers once the engine's
// events are written. It holds no trading state, so any number can run.
//
// Each connection has one reader goroutine, one writer goroutine fed by a
// bounded queue, and at most MaxInFlight requests being answered at once. A
// client that does not read its responses fills its queue and is closed
// (1008, "slow consumer"); it never slows the engine or other clients.
package wsgateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// Limits of one connection.
const (
	MaxMessageBytes = 16 << 10
	OutboundQueue   = 256
	MaxInFlight     = 16
	// StreamQueue is a market-data connection's outbound queue: room for
	// bursts of book updates.
	StreamQueue = 4096
	// maxStreams is how many streams one connection may combine.
	maxStreams     = 64
	pongWait       = 60 * time.Second
	pingEvery      = 25 * time.Second
	writeWait      = 5 * time.Second
	requestTimeout = 10 * time.Second
	// queueWait is how long a response waits for room in a full outbound
	// queue before the client is judged a slow consumer. Meanwhile the
	// connection's requests stop being read (back-pressure), so a client that
	// pipelines requests but reads its responses is never closed.
	queueWait = time.Second
)

// Engine is what the gateway needs of the sequencer: submit a command, get its events.
type Engine interface {
	Do(ctx context.Context, cmd matching.Command) ([]matching.Event, error)
}

// Auth is what the gateway needs to check signed requests.
type Auth struct {
	// Keys finds a signing key by its ID (access/postgres.KeyStore).
	Keys interface {
		SigningKey(ctx context.Context, id string) (access.SigningKey, error)
	}
	// Replays remembers accepted signatures for ttl, shared by every
	// gateway (redisbus.Replays): FirstUse is false for a signature seen
	// before.
	Replays interface {
		FirstUse(ctx context.Context, id string, ttl time.Duration) (bool, error)
	}
	// Now is the gateway's clock for timestamps (time.Now if nil).
	Now func() time.Time
}

// Reads are the read paths the gateway answers from; a nil field answers
// UNAVAILABLE.
type Reads struct {
	// Book is the shard's Redis order book (redisbus.Book).
	Book interface {
		Depth(ctx context.Context, symbol string, limit int) (seq uint64, bids, asks []matching.Level, err error)
		OpenOrders(ctx context.Context, account string) (seq uint64, orders []matching.OrderView, err error)
	}
	// Markets returns each symbol's trading state as the engine last wrote
	// it (redisbus.Book.Markets); nil: the configured initial phases.
	Markets func(ctx context.Context) (map[string]matching.MarketState, error)
	// Balances returns an account's free and held balances as the engine
	// reported them, as of the settled sequence seq.
	Balances func(ctx context.Context, account string) (seq uint64, balances []wsapi.Balance, err error)
	// Obligations returns a miner's obligations and their progress.
	Obligations func(ctx context.Context, miner string) ([]compliance.ObligationView, error)
	// Events is the shard's events stream, for market-data streams and
	// user data (redisbus.EventReader); with Book it starts the hub.
	Events EventSource
}

// session is who a connection or a signed request acts as.
type session struct {
	principal access.Principal
	account   string // the account orders are for; "" for none
	since     time.Time
}

// Gateway serves /ws/api.
type Gateway struct {
	engine   Engine
	auth     Auth
	reads    Reads
	symbols  map[string]matching.Symbol
	list     []matching.Symbol
	log      *zap.Logger
	upgrader websocket.Upgrader

	mu       sync.Mutex // guards conns and shutdown
	conns    map[*conn]struct{}
	shutdown bool

	hub         *hub             // nil without an event source
	obligations *obligationWatch // nil without Reads.Obligations

	limits     Limits
	open       atomic.Int64 // connections held or being upgraded, for MaxConnections
	ipLimit    *limiter     // requests per IP address; nil: none
	orderLimit *limiter     // orders per API key; nil: none

	slow          prometheus.Counter
	clients       prometheus.Gauge
	streams       prometheus.Gauge
	refused       prometheus.Counter
	rateLimited   *prometheus.CounterVec
	sessionsEnded prometheus.Counter
}

// New returns a gateway. allowedOrigins lists the browser origins allowed to
// connect ("*" allows any); requests without an Origin header (non-browser
// clients) are always allowed.
func New(engine Engine, auth Auth, reads Reads, symbols []matching.Symbol, allowedOrigins []string, log *zap.Logger, reg prometheus.Registerer) *Gateway {
	if auth.Now == nil {
		auth.Now = time.Now
	}
	g := &Gateway{engine: engine, auth: auth, reads: reads, symbols: map[string]matching.Symbol{}, list: symbols, log: log, conns: map[*conn]struct{}{},
		slow:        prometheus.NewCounter(prometheus.CounterOpts{Name: "satu_ws_slow_consumers_total", Help: "Connections closed because they did not read their messages."}),
		clients:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "satu_ws_connections", Help: "Open websocket connections."}),
		streams:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "satu_ws_stream_connections", Help: "Open market-data stream connections."}),
		refused:     prometheus.NewCounter(prometheus.CounterOpts{Name: "satu_ws_connections_refused_total", Help: "Websocket upgrades refused because the gateway held its maximum of connections."}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "satu_ws_rate_limited_total", Help: "Requests refused with RATE_LIMITED, by limit (REQUESTS per address, ORDERS per key)."}, []string{"limit"}),
		sessionsEnded: prometheus.NewCounter(prometheus.CounterOpts{Name: "satu_ws_sessions_ended_total",
			Help: "Logged-on connections closed by the sweep because their API key was revoked or no longer acts for the session's account."}),
	}
	g.SetLimits(DefaultLimits)
	if reads.Events != nil && reads.Book != nil {
		g.hub = newHub(reads.Events, reads.Book, symbols, log)
	}
	if reads.Obligations != nil {
		g.obligations = newObligationWatch(reads.Obligations, auth.Now, log)
	}
	for _, s := range symbols {
		g.symbols[s.Name] = s
	}
	allowed := map[string]bool{}
	for _, o := range allowedOrigins {
		allowed[o] = true
	}
	// Write buffers are shared through a pool and held only while a
	// message is written, so an idle connection holds none.
	g.upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{}, CheckOrigin: func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		return origin == "" || allowed["*"] || allowed[origin]
	}}
	if reg != nil {
		reg.MustRegister(g.slow, g.clients, g.streams, g.refused, g.rateLimited, g.sessionsEnded)
	}
	return g
}

// SetLimits sets the gateway's connection and rate limits (DefaultLimits
// until called); call it before serving.
func (g *Gateway) SetLimits(l Limits) {
	g.limits = l
	g.ipLimit = newLimiter(limitRequests, "requests from this address", l.IPRequests)
	g.orderLimit = newLimiter(limitOrders, "orders for this API key", l.KeyOrders)
}

// ServeHTTP upgrades the request and serves the connection until it closes.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := g.accept(w, r, OutboundQueue)
	if c == nil {
		return
	}
	defer g.release(c)
	c.serve(r.Context())
}

// accept upgrades the request to a registered connection with an outbound
// queue of the given length; nil when the upgrade failed (the upgrader has
// answered).
func (g *Gateway) accept(w http.ResponseWriter, r *http.Request, queue int) *conn {
	if n := g.open.Add(1); g.limits.MaxConnections > 0 && n > int64(g.limits.MaxConnections) {
		g.open.Add(-1)
		g.refused.Inc()
		httpError(w, http.StatusServiceUnavailable, apperr.New(apperr.Unavailable,
			"this gateway holds its maximum of %d connections: retry later or connect to another gateway", g.limits.MaxConnections))
		return nil
	}
	cw := &corkWriter{ResponseWriter: w}
	ws, err := g.upgrader.Upgrade(cw, r, nil)
	if err != nil {
		g.open.Add(-1)
		return nil
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	c := &conn{g: g, ws: ws, sock: cw.conn, ip: ip, out: make(chan []byte, queue), closing: make(chan struct{}),
		inflight: make(chan struct{}, MaxInFlight), work: make(chan []byte)}
	// Before registering: a Shutdown may close c at once, and its closing
	// deadline must not be overwritten.
	ws.SetReadLimit(MaxMessageBytes)
	_ = ws.SetReadDeadline(time.Now().Add(pongWait))
	ws.SetPongHandler(func(string) error {
		select {
		case <-c.closing: // keep the closing deadline
			return nil
		default:
			return ws.SetReadDeadline(time.Now().Add(pongWait))
		}
	})
	g.mu.Lock()
	g.conns[c] = struct{}{}
	late := g.shutdown
	g.mu.Unlock()
	g.clients.Inc()
	if late { // upgraded while shutting down
		c.close(websocket.CloseGoingAway, "server shutting down")
	}
	return c
}

// release forgets a connection that has ended.
func (g *Gateway) release(c *conn) {
	c.dropUserData()
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	g.clients.Dec()
	g.open.Add(-1)
}

// Streams serves /ws/stream?streams=btckzt@depth/btckzt@trade/…: market
// data pushed as {"stream", "data"}; the client sends nothing but pongs
// and its close frame.
func (g *Gateway) Streams() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.hub == nil {
			httpError(w, http.StatusServiceUnavailable, apperr.New(apperr.Unavailable, "market-data streams are not served by this gateway"))
			return
		}
		names, err := g.hub.parseStreams(r.URL.Query().Get("streams"))
		if err != nil {
			httpError(w, http.StatusBadRequest, apperr.New(apperr.InvalidParameter, "%v", err))
			return
		}
		select {
		case <-g.hub.ready:
		case <-r.Context().Done():
			return
		case <-time.After(requestTimeout):
			httpError(w, http.StatusServiceUnavailable, apperr.New(apperr.Unavailable, "the stream hub is starting"))
			return
		}
		// Subscribed before the upgrade answers: a client that takes a
		// depth snapshot as soon as it is connected misses no update.
		held := &holding{}
		g.hub.subscribe(held, names)
		c := g.accept(w, r, StreamQueue)
		if c == nil {
			g.hub.unsubscribe(held)
			return
		}
		defer g.release(c)
		g.streams.Inc()
		defer g.streams.Dec()
		g.hub.handOver(held, c)
		go c.writeLoop()
		for {
			if _, _, err := c.ws.ReadMessage(); err != nil {
				if errors.Is(err, websocket.ErrReadLimit) {
					c.close(websocket.CloseMessageTooBig, "message too big")
				}
				break
			}
		}
		c.close(websocket.CloseNormalClosure, "")
		_ = c.ws.Close()
	})
}

// httpError answers a request that is not upgraded with an error object.
func httpError(w http.ResponseWriter, status int, err *apperr.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(err)
}

// Run follows the shard's events for the streams and user data, and sweeps
// the logged-on sessions (when the gateway checks keys), until ctx ends;
// with neither to do it returns at once.
func (g *Gateway) Run(ctx context.Context) error {
	if g.auth.Keys != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() { defer close(done); repeat(ctx, sessionSweep, g.sweepSessions) }()
	}
	if g.hub == nil {
		if g.auth.Keys != nil {
			<-ctx.Done() // the sweep runs until then
		}
		return nil
	}
	if g.obligations != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() { defer close(done); g.obligations.run(ctx, ObligationPoll) }()
	}
	return g.hub.run(ctx)
}

// push queues a pushed message (stream or user data) without waiting: a
// client whose queue is full is a slow consumer and is closed — in its own
// goroutine, because sending the close frame may wait for the socket and
// the hub calls push holding its lock.
func (c *conn) push(b []byte) {
	if c.overQueued(len(b)) {
		go c.slowConsumer()
		return
	}
	select {
	case c.out <- b:
		c.queued.Add(int64(len(b)))
	case <-c.closing:
	default:
		go c.slowConsumer()
	}
}

// maxQueuedBytes bounds the bytes queued for one connection's writer, as
// the queue's length bounds its messages: a client that asks for large
// answers (deep depth snapshots) and does not read them is a slow
// consumer long before 256 of them are held. A variable for tests.
var maxQueuedBytes int64 = 16 << 20

// overQueued reports whether n bytes more would pass maxQueuedBytes. A
// message is counted once it is queued and uncounted once written, so
// senders racing past the check overshoot the bound by a message each at
// most.
func (c *conn) overQueued(n int) bool { return c.queued.Load()+int64(n) > maxQueuedBytes }

// Shutdown closes every connection with 1001 (going away).
func (g *Gateway) Shutdown() {
	g.mu.Lock()
	g.shutdown = true
	conns := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	// All at once: a close waits up to writeWait for a client that does
	// not read, and one after another such clients would hold back the
	// others' 1001 for writeWait each.
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.close(websocket.CloseGoingAway, "server shutting down")
		}()
	}
	wg.Wait()
}

type conn struct {
	g        *Gateway
	checked  time.Time    // when the session's key was last found standing (guarded by mu)
	queued   atomic.Int64 // bytes in out, for maxQueuedBytes
	ws       *websocket.Conn
	sock     *corkConn // ws's socket, to gather the writes of a burst
	ip       string    // the peer's address, for the per-address rate limit
	out      chan []byte
	inflight chan struct{}
	work     chan []byte // requests for the connection's idle workers
	closing  chan struct{}
	once     sync.Once
	slowOnce sync.Once // counts the connection as a slow consumer once
	wg       sync.WaitGroup

	mu      sync.Mutex // guards session and userSubs
	session *session   // nil until a signed session.logon
	// userSubs are the sessions the connection's user-data subscriptions
	// were made under — a logon, or a signed userDataStream.subscribe's
	// own; one connection may follow several accounts with several keys.
	// When any of their keys no longer stands, the user data ends.
	userSubs []*session
}

// close stops the connection's work and sends a close frame (safe from any
// goroutine). It does not close the socket: closing it while the client's
// input is unread makes the kernel reset the connection and discard what is
// still unsent, the close frame included. The reader drains the input until
// the client's close frame or writeWait, and serve then closes the socket.
func (c *conn) close(code int, reason string) {
	c.once.Do(func() {
		close(c.closing)
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(writeWait))
		_ = c.ws.SetReadDeadline(time.Now().Add(writeWait))
	})
}

// slowConsumer closes a client that does not read its responses, counting
// the connection once.
func (c *conn) slowConsumer() {
	c.slowOnce.Do(c.g.slow.Inc)
	c.close(websocket.ClosePolicyViolation, "slow consumer: outbound queue full")
}

func (c *conn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go c.writeLoop()
	workers := 0
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				c.close(websocket.CloseMessageTooBig, "message too big")
			}
			break
		}
		select {
		case <-c.closing: // checked first: select picks randomly among ready cases
			continue // closing: discard the input until the client's close frame
		default:
		}
		select {
		case c.inflight <- struct{}{}:
		case <-c.closing:
			continue
		}
		// An idle worker takes the request; else a new one, up to
		// MaxInFlight. Workers live as long as the connection, so their
		// stacks are grown once, not for every request.
		select {
		case c.work <- msg:
		default:
			if workers < MaxInFlight {
				workers++
				c.wg.Add(1)
				go c.worker(ctx, msg)
			} else {
				c.work <- msg // all are running: one is about to take it
			}
		}
	}
	cancel()
	c.wg.Wait()
	c.close(websocket.CloseNormalClosure, "")
	_ = c.ws.Close()
}

// worker answers requests, first and then those from c.work, until the
// connection's context ends.
func (c *conn) worker(ctx context.Context, first []byte) {
	defer c.wg.Done()
	for msg := first; ; {
		c.send(c.handle(ctx, msg))
		<-c.inflight
		select {
		case msg = <-c.work:
		case <-ctx.Done():
			return
		}
	}
}

func (c *conn) send(resp wsapi.Response) {
	b, err := json.Marshal(resp)
	if err != nil {
		c.g.log.Error("encode response", zap.Error(err))
		return
	}
	if c.overQueued(len(b)) {
		c.slowConsumer()
		return
	}
	select {
	case c.out <- b:
		c.queued.Add(int64(len(b)))
		return
	case <-c.closing:
		return
	default:
	}
	// The queue is full: hold this request's in-flight slot (so the reader
	// stops reading once all are held) and give the client queueWait to catch up.
	t := time.NewTimer(queueWait)
	defer t.Stop()
	select {
	case c.out <- b:
		c.queued.Add(int64(len(b)))
	case <-c.closing:
	case <-t.C:
		c.slowConsumer()
	}
}

func (c *conn) writeLoop() {
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case b := <-c.out:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			// Gather what else is queued, then write it all at once. One
			// yield first lets the goroutines woken with this answer — the
			// other answers of the same engine batch — queue theirs: under
			// load they are runnable and a write (a system call, ≈ 16 µs on
			// loopback here) carries several answers; when idle there is
			// nobody to wait for.
			c.sock.cork()
			err := c.ws.WriteMessage(websocket.TextMessage, b)
			c.queued.Add(-int64(len(b)))
			if len(c.out) == 0 {
				runtime.Gosched()
			}
			for err == nil && len(c.out) > 0 && c.sock.gathered() < maxCorked {
				b := <-c.out
				err = c.ws.WriteMessage(websocket.TextMessage, b)
				c.queued.Add(-int64(len(b)))
			}
			if uerr := c.sock.uncork(); err == nil {
				err = uerr
			}
			if err != nil {
				if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
					c.slowConsumer() // the client has not read for writeWait
				} else {
					c.close(websocket.CloseInternalServerErr, "write failed") // 1006 must not be sent
				}
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.close(websocket.CloseInternalServerErr, "ping failed")
				return
			}
		case <-c.closing:
			return
		}
	}
}

func (c *conn) handle(ctx context.Context, msg []byte) wsapi.Response {
	var limits []wsapi.RateLimit
	// Every message counts against its address, even one that is not JSON.
	rl, err := c.g.take(c.g.ipLimit, c.ip)
	if rl != nil {
		limits = append(limits, *rl)
	}
	var req wsapi.Request
	if err != nil {
		// Refused unread: answered with the id off the message's front, when
		// it has one there, so the client can tell which call it was.
		req.ID = wsapi.LeadingID(msg)
	} else {
		if jerr := wsapi.DecodeRequest(msg, &req); jerr != nil {
			req = wsapi.Request{} // answered with a null id, whatever was decoded
			err = apperr.New(apperr.MalformedJSON, "request is not valid JSON: %v", jerr)
		}
	}
	// A signed request acts as its key, for itself alone.
	var as *session
	if err == nil {
		var sig access.Signature
		var payload string
		var rest json.RawMessage
		var signed bool
		sig, payload, rest, signed, err = access.SplitSigned(req.Method, req.Params)
		if signed && isBatch(req.Method) {
			// A signature covers flat parameters only (access.Payload).
			err = apperr.New(apperr.InvalidParameter, "%s cannot be signed: send it on a logged-on session (session.logon)", req.Method)
		}
		if err == nil && signed {
			as, err = c.g.authenticate(ctx, sig, payload)
			req.Params = rest
		}
	}
	if err == nil && isOrder(req.Method) {
		// The session is looked up once: the order is charged to the key
		// it then acts as (a session.logon on another of the connection's
		// workers may replace the session meanwhile).
		switch s, aerr := c.acting(ctx, as); {
		case s != nil:
			as = s
			rl, err = c.g.take(c.g.orderLimit, s.principal.KeyID)
			if rl != nil {
				limits = append(limits, *rl)
			}
		case apperr.CodeOf(aerr) != apperr.NotLoggedOn:
			err = aerr // the session's key revoked, say
		} // without a session, dispatch refuses it
	}
	var result any
	if err == nil {
		result, err = c.dispatch(ctx, req, as, &limits)
	}
	if err != nil {
		if apperr.CodeOf(err) == apperr.Internal {
			c.g.log.Error("request failed", zap.String("method", req.Method), zap.Error(err))
		}
		resp := wsapi.ErrorResponse(req.ID, err)
		resp.RateLimits = limits
		return resp
	}
	return wsapi.Response{ID: req.ID, Status: http.StatusOK, Result: result, RateLimits: limits}
}

// isBatch tells the methods that carry several orders.
func isBatch(method string) bool {
	return method == wsapi.MethodBatchPlace || method == wsapi.MethodBatchCancel
}

// isOrder tells the methods that count one against a key's order rate (a
// batch counts its orders: takeBatch).
func isOrder(method string) bool {
	switch method {
	case wsapi.MethodPlace, wsapi.MethodCancel, wsapi.MethodAmend, wsapi.MethodCancelAll:
		return true
	}
	return false
}

// take counts one request of client against l (nil: no limit, no report).
func (g *Gateway) take(l *limiter, client string) (*wsapi.RateLimit, error) {
	return g.takeN(l, client, 1)
}

// takeN counts n requests of client against l, all or none.
func (g *Gateway) takeN(l *limiter, client string, n int) (*wsapi.RateLimit, error) {
	if l == nil {
		return nil, nil
	}
	rl, err := l.take(client, g.auth.Now(), n)
	if err != nil {
		g.rateLimited.WithLabelValues(l.kind).Inc()
	}
	return &rl, err
}

// dispatch answers a request; a batch adds the order allowance it counted
// against to limits.
func (c *conn) dispatch(ctx context.Context, req wsapi.Request, signed *session, limits *[]wsapi.RateLimit) (any, error) {
	switch req.Method {
	case wsapi.MethodPing:
		return struct{}{}, nil
	case wsapi.MethodExchangeInfo:
		var markets map[string]matching.MarketState
		if c.g.reads.Markets != nil {
			m, err := c.g.reads.Markets(ctx)
			if err != nil {
				return nil, err
			}
			markets = m
		}
		return map[string]any{"symbols": wsapi.ExchangeInfo(c.g.list, markets)}, nil
	case wsapi.MethodLogon:
		return c.logon(req, signed)
	case wsapi.MethodPlace:
		return orderOf(ctx, c, req, signed, c.placeCommand)
	case wsapi.MethodCancel:
		return orderOf(ctx, c, req, signed, c.cancelFor)
	case wsapi.MethodBatchPlace:
		return batchOf(ctx, c, req, signed, limits, c.placeCommand)
	case wsapi.MethodBatchCancel:
		return batchOf(ctx, c, req, signed, limits, c.cancelFor)
	case wsapi.MethodAmend:
		return orderOf(ctx, c, req, signed, func(s *session, p wsapi.AmendParams) (matching.Command, error) {
			return wsapi.AmendCommand(s.account, p, c.g.symbols)
		})
	case wsapi.MethodCancelAll:
		s, err := c.trader(ctx, signed)
		if err != nil {
			return nil, err
		}
		account := s.account
		var p wsapi.SymbolParams
		if err := wsapi.Decode(req.Params, &p); err != nil {
			return nil, err
		}
		if _, ok := c.g.symbols[p.Symbol]; !ok {
			return nil, apperr.New(apperr.UnknownSymbol, "unknown symbol %q", p.Symbol)
		}
		return do(ctx, c, matching.Command{Kind: matching.CmdCancelAll, Account: account, Symbol: p.Symbol}, wsapi.CancelledFromEvents)
	case wsapi.MethodOpenOrders, wsapi.MethodOrderStatus:
		s, err := c.trader(ctx, signed)
		if err != nil {
			return nil, err
		}
		account := s.account
		return c.openOrders(ctx, req, account)
	case wsapi.MethodAccount:
		s, err := c.trader(ctx, signed)
		if err != nil {
			return nil, err
		}
		account := s.account
		if err := wsapi.Decode(req.Params, &struct{}{}); err != nil {
			return nil, err
		}
		if c.g.reads.Balances == nil {
			return nil, apperr.New(apperr.Unavailable, "balances are not served by this gateway")
		}
		seq, bs, err := c.g.reads.Balances(ctx, account)
		if err != nil {
			return nil, err
		}
		return wsapi.AccountResult{Account: account, UpdateID: seq, Balances: bs}, nil
	case wsapi.MethodDepth:
		var p wsapi.DepthParams
		if err := wsapi.Decode(req.Params, &p); err != nil {
			return nil, err
		}
		sym, ok := c.g.symbols[p.Symbol]
		if !ok {
			return nil, apperr.New(apperr.UnknownSymbol, "unknown symbol %q", p.Symbol)
		}
		if p.Limit == 0 {
			p.Limit = 100
		}
		if p.Limit < 1 || p.Limit > 5000 {
			return nil, apperr.New(apperr.InvalidParameter, "limit must be from 1 to 5000")
		}
		if c.g.reads.Book == nil {
			return nil, apperr.New(apperr.Unavailable, "the order book is not served by this gateway")
		}
		seq, bids, asks, err := c.g.reads.Book.Depth(ctx, sym.Name, p.Limit)
		if err != nil {
			return nil, err
		}
		return wsapi.Depth(sym, seq, bids, asks), nil
	case wsapi.MethodUserSubscribe, wsapi.MethodUserUnsubscribe:
		s, err := c.trader(ctx, signed)
		if err != nil {
			return nil, err
		}
		account := s.account
		if err := wsapi.Decode(req.Params, &struct{}{}); err != nil {
			return nil, err
		}
		if c.g.hub == nil {
			return nil, apperr.New(apperr.Unavailable, "user data is not served by this gateway")
		}
		if req.Method == wsapi.MethodUserUnsubscribe {
			c.dropUserData()
			return struct{}{}, nil
		}
		// A miner's key also follows its obligations' progress: that is
		// subscribed first, so that its failure leaves nothing to undo.
		if s.principal.Miner != "" && c.g.obligations != nil {
			if err := c.g.obligations.subscribe(ctx, c, s.principal.Miner); err != nil {
				return nil, err
			}
		}
		c.g.hub.subscribeUser(c, account)
		c.followedUnder(s)
		return map[string]any{"subscriptionId": 0, "account": account}, nil
	case wsapi.MethodObligations:
		s, err := c.acting(ctx, signed)
		if err != nil {
			return nil, err
		}
		if err := wsapi.Decode(req.Params, &struct{}{}); err != nil {
			return nil, err
		}
		if s.principal.Miner == "" {
			return nil, apperr.New(apperr.NotPermitted, "only a miner's key has obligations")
		}
		if c.g.reads.Obligations == nil {
			return nil, apperr.New(apperr.Unavailable, "obligations are not served by this gateway")
		}
		obs, err := c.g.reads.Obligations(ctx, s.principal.Miner)
		if err != nil {
			return nil, err
		}
		return map[string]any{"miner": s.principal.Miner, "obligations": obs}, nil
	}
	return nil, apperr.New(apperr.UnknownMethod, "unknown method %q", req.Method)
}

// authenticate checks a signed request: the key exists and may sign, the
// timestamp is fresh, the signature matches, and it was not used before.
// The replay memory is written last, so a refused request does not use
// up its signature.
func (g *Gateway) authenticate(ctx context.Context, sig access.Signature, payload string) (*session, error) {
	if g.auth.Keys == nil || g.auth.Replays == nil {
		return nil, apperr.New(apperr.Unavailable, "signed requests are not configured on this gateway")
	}
	k, err := g.auth.Keys.SigningKey(ctx, sig.APIKey)
	if err != nil {
		return nil, err
	}
	now := g.auth.Now()
	if err := k.Check(sig, payload, now); err != nil {
		return nil, err
	}
	first, err := g.auth.Replays.FirstUse(ctx, k.ReplayID(sig), sig.ReplayTTL(now))
	if err != nil {
		return nil, err
	}
	if !first {
		return nil, apperr.New(apperr.Replayed, "this signed request was received before: sign each request anew")
	}
	s := &session{principal: k.Principal, since: now}
	if len(k.Principal.Accounts) == 1 {
		s.account = k.Principal.Accounts[0]
	}
	return s, nil
}

// logon binds the connection to a signed request's key and account.
func (c *conn) logon(req wsapi.Request, signed *session) (any, error) {
	if signed == nil {
		return nil, apperr.New(apperr.Unauthenticated, "session.logon must be signed: apiKey, timestamp and signature")
	}
	var p wsapi.LogonParams
	if err := wsapi.Decode(req.Params, &p); err != nil {
		return nil, err
	}
	s := *signed
	switch {
	case p.Account != "" && !s.principal.ActsForAccount(p.Account):
		return nil, apperr.New(apperr.NotPermitted, "key %s does not act for account %q", s.principal.KeyID, p.Account)
	case p.Account != "":
		s.account = p.Account
	case len(s.principal.Accounts) > 1:
		return nil, apperr.New(apperr.InvalidParameter, "key %s acts for %d accounts: name one in account", s.principal.KeyID, len(s.principal.Accounts))
	}
	c.mu.Lock()
	c.session, c.checked = &s, s.since // authenticate just found the key standing
	c.mu.Unlock()
	return wsapi.LogonResult{APIKey: s.principal.KeyID, Role: string(s.principal.Role), Account: s.account,
		AuthorizedSince: s.since.UnixMilli(), ServerTime: c.g.auth.Now().UnixMilli()}, nil
}

// acting returns who a request acts as: the signed request's key, or the
// session's.
func (c *conn) acting(ctx context.Context, signed *session) (*session, error) {
	if signed != nil {
		return signed, nil
	}
	c.mu.Lock()
	s, checked := c.session, c.checked
	c.mu.Unlock()
	if s == nil {
		return nil, apperr.New(apperr.NotLoggedOn, "sign the request or call session.logon first")
	}
	if c.g.auth.Now().Sub(checked) >= sessionRecheck {
		if err := c.recheck(ctx, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// sessionRecheck is how long a logged-on session's key is trusted before a
// request on it asks the key store again whether the key still stands — not
// revoked, and still acting for the session's account. (The gateway also
// sweeps every session each sessionSweep, which ends the user-data streams
// of idle ones.)
const sessionRecheck = time.Second

// recheck asks the key store whether session s's key still stands. A key
// revoked, or no longer acting for the session's account, ends the session
// (the connection logs on again or signs its requests); the store being
// unreachable fails this request only.
func (c *conn) recheck(ctx context.Context, s *session) error {
	if err := c.g.keyStands(ctx, s); err != nil {
		if apperr.CodeOf(err) == apperr.Unauthenticated {
			c.endSession(s)
		}
		return err
	}
	c.mu.Lock()
	if c.session == s {
		c.checked = c.g.auth.Now()
	}
	c.mu.Unlock()
	return nil
}

// followedUnder notes that user data is followed under session s: once
// per key and account, since a signed request makes a session of its own
// each time and repeated subscribes must not pile up.
func (c *conn) followedUnder(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.ContainsFunc(c.userSubs, func(x *session) bool {
		return x == s || x.principal.KeyID == s.principal.KeyID && x.account == s.account
	}) {
		c.userSubs = append(c.userSubs, s)
	}
}

// endSession ends session s, unless a logon replaced it meanwhile, and the
// connection's user data if a subscription was made under it.
func (c *conn) endSession(s *session) {
	c.mu.Lock()
	if c.session == s {
		c.session = nil
	}
	sub := slices.Contains(c.userSubs, s)
	c.mu.Unlock()
	if sub {
		c.dropUserData()
	}
}

// dropUserData ends all the connection's user-data streams.
func (c *conn) dropUserData() {
	c.mu.Lock()
	c.userSubs = nil
	c.mu.Unlock()
	if c.g.hub != nil {
		c.g.hub.unsubscribe(c)
	}
	if c.g.obligations != nil {
		c.g.obligations.unsubscribe(c)
	}
}

// keyStands reports, as UNAUTHENTICATED, a session whose key was revoked or
// no longer acts for its account.
func (g *Gateway) keyStands(ctx context.Context, s *session) error {
	if g.auth.Keys == nil {
		return nil
	}
	k, err := g.auth.Keys.SigningKey(ctx, s.principal.KeyID)
	return standing(s, k, err)
}

// standing judges session s by its key as the key store returned it.
func standing(s *session, k access.SigningKey, err error) error {
	switch {
	case apperr.CodeOf(err) == apperr.Unauthenticated:
		return apperr.New(apperr.Unauthenticated, "API key %s was revoked: the session is over", s.principal.KeyID)
	case err != nil:
		return err
	case s.account != "" && !k.Principal.ActsForAccount(s.account):
		return apperr.New(apperr.Unauthenticated, "API key %s no longer acts for account %q: the session is over", s.principal.KeyID, s.account)
	}
	return nil
}

// sessionSweep is how often the gateway asks the key store about every
// logged-on session's key, and closes the connections of those that no
// longer stand (ClosePolicyViolation): a connection that only reads its
// user-data stream sends no request that would find out.
var sessionSweep = 5 * time.Second // a variable for tests

// sweepSessions closes the connections whose session's key — or a key
// one of their user-data streams was subscribed with, which may be a
// signed request's without a logon, or an earlier logon's — was revoked or
// no longer acts for its account, asking the key store once per key. (A
// connection still logged on with another key is closed too: its user
// data mixes the accounts, and its client logs on and subscribes again.)
func (g *Gateway) sweepSessions(ctx context.Context) {
	type held struct {
		c *conn
		s *session
	}
	byKey := map[string][]held{}
	g.mu.Lock()
	for c := range g.conns {
		c.mu.Lock()
		if s := c.session; s != nil {
			byKey[s.principal.KeyID] = append(byKey[s.principal.KeyID], held{c, s})
		}
		for _, s := range c.userSubs {
			if s != c.session {
				byKey[s.principal.KeyID] = append(byKey[s.principal.KeyID], held{c, s})
			}
		}
		c.mu.Unlock()
	}
	g.mu.Unlock()
	for id, hs := range byKey {
		k, kerr := g.auth.Keys.SigningKey(ctx, id)
		for _, h := range hs {
			if apperr.CodeOf(standing(h.s, k, kerr)) != apperr.Unauthenticated {
				continue // standing, or the store unreachable: ask again next time
			}
			h.c.endSession(h.s)
			g.sessionsEnded.Inc()
			go h.c.close(websocket.ClosePolicyViolation, "API key revoked or no longer acting for the account")
		}
	}
}

// trader returns who a request acts as — the signed request's key or the
// session — once it has checked that this trades for one account
// (s.account). A request looks its session up once: a session.logon on
// another of the connection's workers may replace it meanwhile.
func (c *conn) trader(ctx context.Context, signed *session) (*session, error) {
	s, err := c.acting(ctx, signed)
	switch {
	case err != nil:
		return nil, err
	case len(s.principal.Accounts) == 0:
		return nil, apperr.New(apperr.NotPermitted, "a %s key trades for no account", s.principal.Role)
	case s.account == "":
		return nil, apperr.New(apperr.InvalidParameter, "key %s acts for %d accounts: sign session.logon naming one", s.principal.KeyID, len(s.principal.Accounts))
	}
	return s, nil
}

// placeCommand checks an order.place's parameters (alone or in a batch)
// and makes its command for the account s trades for.
func (c *conn) placeCommand(s *session, p wsapi.PlaceParams) (matching.Command, error) {
	cmd, err := wsapi.PlaceCommand(s.account, p, c.g.symbols)
	if err != nil {
		return cmd, err
	}
	// Only a miner's account may hold the engine's mandatory-sale
	// permission; another key's mandatory order is refused here. A
	// miner's is decided by the engine, which knows the permission.
	if p.Mandatory && s.principal.Role != access.RoleMiner {
		return cmd, apperr.New(apperr.NotPermitted, "only a miner's key may send a mandatory order; this is a %s key", s.principal.Role)
	}
	return cmd, nil
}

// cancelCommand checks an order.cancel's parameters (alone or in a batch)
// and makes its command for account.
func (c *conn) cancelCommand(account string, p wsapi.CancelParams) (matching.Command, error) {
	if _, ok := c.g.symbols[p.Symbol]; !ok {
		return matching.Command{}, apperr.New(apperr.UnknownSymbol, "unknown symbol %q", p.Symbol)
	}
	if p.OrderID == 0 && p.OrigClientOrderID == "" {
		return matching.Command{}, apperr.New(apperr.InvalidParameter, "orderId or origClientOrderId is required")
	}
	return matching.Command{Kind: matching.CmdCancelOrder, Account: account, Symbol: p.Symbol,
		OrderID: p.OrderID, ClientID: p.OrigClientOrderID}, nil
}

// takeBatch checks a batch's size and counts its n orders against the
// order rate of s's key, all or none, reporting the allowance in limits.
func (c *conn) takeBatch(s *session, n int, limits *[]wsapi.RateLimit) error {
	if n < 1 || n > wsapi.MaxBatchOrders {
		return apperr.New(apperr.InvalidParameter, "a batch carries from 1 to %d orders, not %d", wsapi.MaxBatchOrders, n)
	}
	if l := c.g.orderLimit; l != nil && n > l.limit {
		return apperr.New(apperr.InvalidParameter, "a batch of %d orders is more than this key's allowance of %d orders per second", n, l.limit)
	}
	rl, err := c.g.takeN(c.g.orderLimit, s.principal.KeyID, n)
	if rl != nil {
		*limits = append(*limits, *rl)
	}
	return err
}

// orderOf answers a request of one order command of params P (order.place,
// order.cancel, order.amend): command checks the order and makes its
// command, which goes to the engine.
func orderOf[P any](ctx context.Context, c *conn, req wsapi.Request, signed *session,
	command func(s *session, p P) (matching.Command, error)) (any, error) {
	s, err := c.trader(ctx, signed)
	if err != nil {
		return nil, err
	}
	var p P
	if err := wsapi.Decode(req.Params, &p); err != nil {
		return nil, err
	}
	cmd, err := command(s, p)
	if err != nil {
		return nil, err
	}
	return c.order(ctx, cmd)
}

// cancelFor is cancelCommand for the session's account.
func (c *conn) cancelFor(s *session, p wsapi.CancelParams) (matching.Command, error) {
	return c.cancelCommand(s.account, p)
}

// batchOf answers a batchOrders request, whose orders are each the
// parameters P of a single order request; command checks one and makes
// its command for the account s trades for.
func batchOf[P any](ctx context.Context, c *conn, req wsapi.Request, signed *session, limits *[]wsapi.RateLimit,
	command func(s *session, p P) (matching.Command, error)) (any, error) {
	s, err := c.trader(ctx, signed)
	if err != nil {
		return nil, err
	}
	var p wsapi.BatchParams[P]
	if err := wsapi.Decode(req.Params, &p); err != nil {
		return nil, err
	}
	if err := c.takeBatch(s, len(p.Orders), limits); err != nil {
		return nil, err
	}
	return c.batch(ctx, len(p.Orders), func(i int) (matching.Command, error) { return command(s, p.Orders[i]) }), nil
}

// batchEngine is an Engine that submits several commands at once and
// answers each in order (redisbus.Client).
type batchEngine interface {
	DoBatch(ctx context.Context, cmds []matching.Command, buf []matching.Event, each func(i int, evs []matching.Event, err error))
}

// batch answers a batchOrders request of n orders: command(i) checks
// order i and makes its command; the orders it refuses are answered with
// their error and never reach the engine, the others go to the engine
// together, in order, and each is answered with its own outcome.
func (c *conn) batch(ctx context.Context, n int, command func(i int) (matching.Command, error)) wsapi.BatchResult {
	items := make([]wsapi.BatchItem, n)
	cmds := make([]matching.Command, 0, n)
	at := make([]int, 0, n) // cmds[k] is order at[k]
	for i := range n {
		cmd, err := command(i)
		if err != nil {
			items[i] = wsapi.ItemError(err)
			continue
		}
		cmds = append(cmds, cmd)
		at = append(at, i)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var internal error // the first internal error, logged once for the batch
	failed := 0
	buf := eventBufs.Get().(*[]matching.Event)
	defer eventBufs.Put(buf)
	each := func(k int, evs []matching.Event, err error) {
		keepLarger(buf, evs)
		var r wsapi.OrderResult
		if err == nil {
			r, err = wsapi.OrderFromEvents(evs, c.g.symbols)
		}
		if err != nil {
			if apperr.CodeOf(err) == apperr.Internal {
				internal = cmp.Or(internal, err)
				failed++
			}
			items[at[k]] = wsapi.ItemError(err)
			return
		}
		items[at[k]] = wsapi.BatchItem{Status: http.StatusOK, Result: &r}
	}
	if eng, ok := c.g.engine.(batchEngine); ok && len(cmds) > 0 {
		eng.DoBatch(ctx, cmds, *buf, each)
	} else {
		for k, cmd := range cmds {
			evs, err := c.g.engine.Do(ctx, cmd)
			each(k, evs, err)
		}
	}
	if internal != nil {
		c.g.log.Error("batch orders failed", zap.Int("failed", failed), zap.Int("orders", n), zap.Error(internal))
	}
	return wsapi.BatchResult{Orders: items}
}

// intoEngine is an Engine that can decode its answer into a slice the
// caller reuses (redisbus.Client).
type intoEngine interface {
	DoInto(ctx context.Context, cmd matching.Command, buf []matching.Event) ([]matching.Event, error)
}

// eventBufs holds answers' event slices between requests: an answer is a
// few kilobytes, and allocating one per order was half of what the
// acknowledgement path allocated.
var eventBufs = sync.Pool{New: func() any { return new([]matching.Event) }}

// keepLarger keeps evs's memory in the pooled *buf when it is larger, up
// to a sweep's size.
func keepLarger(buf *[]matching.Event, evs []matching.Event) {
	if cap(evs) > cap(*buf) && cap(evs) <= 64 {
		*buf = evs[:0]
	}
}

// do submits a command, waits for its events and returns what answer
// makes of them; the events are valid only until answer returns.
func do[T any](ctx context.Context, c *conn, cmd matching.Command, answer func([]matching.Event, map[string]matching.Symbol) (T, error)) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	eng, ok := c.g.engine.(intoEngine)
	if !ok {
		evs, err := c.g.engine.Do(ctx, cmd)
		if err != nil {
			return nil, err
		}
		return answer(evs, c.g.symbols)
	}
	buf := eventBufs.Get().(*[]matching.Event)
	defer eventBufs.Put(buf)
	evs, err := eng.DoInto(ctx, cmd, *buf)
	keepLarger(buf, evs)
	if err != nil {
		return nil, err
	}
	return answer(evs, c.g.symbols)
}

func (c *conn) order(ctx context.Context, cmd matching.Command) (any, error) {
	return do(ctx, c, cmd, wsapi.OrderFromEvents)
}

// openOrders answers openOrders.status (the account's open orders,
// optionally of one symbol) and order.status (one open order by either
// ID) from the Redis order book.
func (c *conn) openOrders(ctx context.Context, req wsapi.Request, account string) (any, error) {
	var p wsapi.CancelParams // order.status names an order as a cancel does
	if req.Method == wsapi.MethodOpenOrders {
		var sp wsapi.SymbolParams
		if err := wsapi.Decode(req.Params, &sp); err != nil {
			return nil, err
		}
		p.Symbol = sp.Symbol
	} else {
		if err := wsapi.Decode(req.Params, &p); err != nil {
			return nil, err
		}
		if p.OrderID == 0 && p.OrigClientOrderID == "" {
			return nil, apperr.New(apperr.InvalidParameter, "orderId or origClientOrderId is required")
		}
	}
	if _, ok := c.g.symbols[p.Symbol]; !ok && (p.Symbol != "" || req.Method == wsapi.MethodOrderStatus) {
		return nil, apperr.New(apperr.UnknownSymbol, "unknown symbol %q", p.Symbol)
	}
	if c.g.reads.Book == nil {
		return nil, apperr.New(apperr.Unavailable, "the order book is not served by this gateway")
	}
	seq, orders, err := c.g.reads.Book.OpenOrders(ctx, account)
	if err != nil {
		return nil, err
	}
	out := wsapi.OpenOrdersResult{LastUpdateID: seq, Orders: []wsapi.OrderResult{}}
	for _, o := range orders {
		if p.Symbol != "" && o.Symbol != p.Symbol {
			continue
		}
		r := wsapi.OpenOrder(o, c.g.symbols[o.Symbol])
		if req.Method == wsapi.MethodOrderStatus && (o.ID == p.OrderID || p.OrderID == 0 && o.ClientID == p.OrigClientOrderID) {
			return r, nil
		}
		out.Orders = append(out.Orders, r)
	}
	if req.Method == wsapi.MethodOrderStatus {
		return nil, apperr.New(apperr.UnknownOrder, "no open order %d%s of this account in %s (finished orders are in the account's fills)",
			p.OrderID, p.OrigClientOrderID, p.Symbol)
	}
	return out, nil
}
