package wsgateway

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/money"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// EventSource reads the shard's events stream (redisbus.EventReader).
type EventSource interface {
	ReadEvents(ctx context.Context, after string, max int64, block time.Duration) ([]matching.Envelope, error)
}

// subscriber receives pushed messages. push must not block: a subscriber
// that cannot take a message closes itself as a slow consumer.
type subscriber interface {
	push(b []byte)
}

// hub tails the events stream once per gateway and fans market data and
// user data out to the connections subscribed. It starts from the Redis
// order book's snapshot of every symbol, so that its depth updates
// continue that snapshot.
//
// The interval depth streams (<symbol>@depth@100ms, @depth@1000ms) gather
// each symbol's level changes in its bookState and are pushed by flushDue,
// which the Run goroutine calls between reads of the events; it reads with
// a block no longer than the time to the next push due.
//
// Lock: hub.mu guards the subscriptions; it is held while pushing — for
// the whole of a command's publishing, the books' updates and the
// encoding included — and push never blocks or takes another lock of the
// hub. The books themselves are the Run goroutine's alone.
type hub struct {
	src     EventSource
	book    bookReader
	symbols map[string]matching.Symbol
	scales  map[string]int32 // asset → scale
	log     *zap.Logger

	books   map[string]*bookState // only the Run goroutine touches it
	changed []*bookState          // publish's scratch: the books a command changed
	names   []string              // the symbols, sorted

	// The interval depth streams, only the Run goroutine touches them:
	// whether a change waits for a push, and when the next push may be.
	now     func() time.Time
	pending [len(depthIntervals)]bool
	due     [len(depthIntervals)]time.Time

	mu    sync.Mutex
	subs  map[string]map[subscriber]struct{} // stream name → subscribers
	users map[string]map[subscriber]struct{} // account → user-data subscribers
	ready chan struct{}                      // closed once the snapshots are read
}

type bookReader interface {
	Depth(ctx context.Context, symbol string, limit int) (seq uint64, bids, asks []matching.Level, err error)
}

// bookState is one symbol's book as the hub follows it.
type bookState struct {
	symbol  string
	streams struct{ depth, trade, bookTicker, phase string } // the symbol's per-command stream names
	// diff is the depth update of the command being published, listed
	// only when someone follows the symbol's @depth stream.
	diff struct {
		bids, asks [][2]string
	}

	snapshot  uint64 // events at or below it are in the snapshot
	lastDepth uint64 // u of the last depth update, or the snapshot's sequence
	bids      map[int64]int64
	asks      map[int64]int64
	bid, ask  [2]int64 // the best bid and ask (price, quantity) last published
	// prices holds each side's prices (bids, asks) in order, the best
	// last, so that the best is found at once whatever left the book. A
	// new level is put in its place by binary search and a copy of the
	// levels better than it — few, as orders mostly rest near the best.
	prices [2][]int64

	interval [len(depthIntervals)]intervalDepth // by depthIntervals
}

// depthIntervals are the update speeds of the interval depth streams.
var depthIntervals = [...]struct {
	kind  string
	every time.Duration
}{
	{wsapi.StreamDepth100ms, 100 * time.Millisecond},
	{wsapi.StreamDepth1000ms, time.Second},
}

// intervalDepth is what one interval depth stream of a symbol has not
// pushed yet. Its next message is U = last + 1, u = upto: the merge of the
// @depth updates since the last one, the latest quantity of each level.
type intervalDepth struct {
	stream     string          // e.g. "btckzt@depth@100ms"
	last       uint64          // u of the last message, or the snapshot's sequence
	upto       uint64          // the last command since then that changed a level; 0: none
	time       int64           // its engine time
	bids, asks map[int64]int64 // price → quantity after upto, of every level changed
}

// readBlock is the longest the hub waits for events.
const readBlock = 200 * time.Millisecond

// snapshotLevels is how many levels per side the hub reads at start (and
// again after missed events): a level beyond them that no command touched
// since is unknown to the hub, and once every level above it has gone,
// bookTicker names a worse price as the best until the hub reads the books
// again. 100,000 levels a side is far more than a market shows, and reads
// in one script of about 0.2 s — Redis serves nothing else meanwhile, so
// the whole of an adversarially deep book (millions of cheap far-off
// levels) would stall it for seconds.
const snapshotLevels = 100_000

func newHub(src EventSource, book bookReader, symbols []matching.Symbol, log *zap.Logger) *hub {
	h := &hub{src: src, book: book, symbols: map[string]matching.Symbol{}, scales: map[string]int32{}, log: log,
		books: map[string]*bookState{}, subs: map[string]map[subscriber]struct{}{}, users: map[string]map[subscriber]struct{}{},
		ready: make(chan struct{}), now: time.Now}
	for _, s := range symbols {
		h.symbols[s.Name] = s
		h.scales[s.Base], h.scales[s.Quote] = int32(s.BaseScale), int32(s.QuoteScale)
		h.names = append(h.names, s.Name)
	}
	slices.Sort(h.names)
	return h
}

// loadBooks reads every symbol's book from the Redis order book, waiting
// for Redis while it is away, and returns the lowest of their sequences
// (false: ctx ended). Each symbol's depth updates then continue its book's
// sequence: after a reload, the next U is past the last u sent, and a
// client following the recipe sees the gap and reads a snapshot again.
func (h *hub) loadBooks(ctx context.Context) (uint64, bool) {
	var from uint64
	first := true
	for name := range h.symbols {
		seq, bids, asks, err := h.book.Depth(ctx, name, snapshotLevels)
		for err != nil { // Redis is away: wait for it, as the event reader does
			if ctx.Err() != nil {
				return 0, false
			}
			h.log.Warn("stream hub: reading the book snapshot", zap.String("symbol", name), zap.Error(err))
			time.Sleep(500 * time.Millisecond)
			seq, bids, asks, err = h.book.Depth(ctx, name, snapshotLevels)
		}
		st := newBookState(name, seq)
		for _, side := range []struct {
			bid    bool
			levels []matching.Level
		}{{true, bids}, {false, asks}} {
			for _, l := range slices.Backward(side.levels) { // worst first: each goes last
				st.set(side.bid, l.Price, l.Quantity)
			}
		}
		st.bid, st.ask = st.best(true), st.best(false)
		h.books[name] = st
		if first || seq < from {
			from, first = seq, false
		}
	}
	return from, true
}

// missed handles a break in the events the hub read — commands after last
// up to next never came, as when the events stream was trimmed past a
// gateway's hub that had fallen behind, or next is not after last, another
// history's: the books are read again (so the
// depth streams' next U jumps, and their clients resynchronise), and the
// connections following user data, whose executions and balance changes
// in the gap are lost, are closed with 1013 to subscribe and read their
// state again.
func (h *hub) missed(ctx context.Context, last, next uint64) bool {
	h.log.Warn("stream hub: events missed; reading the books again and closing the user-data streams",
		zap.Uint64("last", last), zap.Uint64("next", next))
	h.mu.Lock()
	var users []subscriber
	for _, subs := range h.users {
		for s := range subs {
			users = append(users, s)
		}
	}
	h.users = map[string]map[subscriber]struct{}{}
	h.mu.Unlock()
	for _, s := range users {
		if c, ok := s.(interface{ close(code int, reason string) }); ok {
			go c.close(websocket.CloseTryAgainLater, "user data missed events: subscribe again and read your state")
		}
	}
	before := maps.Clone(h.books) // loadBooks replaces each book
	if _, ok := h.loadBooks(ctx); !ok {
		return false
	}
	// A best bid or offer that moved in the gap is told at once: a
	// bookTicker subscriber has no U to see the gap by.
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, name := range h.names {
		if st, was := h.books[name], before[name]; st.bid != was.bid || st.ask != was.ask {
			h.sendTicker(st, st.snapshot)
		}
	}
	return true
}

// run reads the snapshots, then tails the events until ctx ends.
func (h *hub) run(ctx context.Context) error {
	from, ok := h.loadBooks(ctx)
	if !ok {
		return nil
	}
	close(h.ready)
	after := strconv.FormatUint(from, 10) + "-0"
	last := from // the sequence of the last command read: the next is last + 1
	var cmd []matching.Event
	// A source that can reuse memory gets back each read's envelopes: the
	// hub is done with them before it reads again.
	into, reuse := h.src.(interface {
		ReadEventsInto(ctx context.Context, after string, max int64, block time.Duration, buf []matching.Envelope) ([]matching.Envelope, error)
	})
	var envs []matching.Envelope
	for ctx.Err() == nil {
		now := h.now()
		h.flushDue(now)
		var err error
		if reuse {
			envs, err = into.ReadEventsInto(ctx, after, 1024, h.block(now), envs)
		} else {
			envs, err = h.src.ReadEvents(ctx, after, 1024, h.block(now))
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			h.log.Warn("stream hub: reading events", zap.Error(err))
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for _, e := range envs {
			cmd = append(cmd, e.Event)
			if e.Last {
				// Every command has events: a sequence skipped is a
				// command missed, and one that goes back is another
				// history (a failover that lost the last batches, whose
				// sequences the new leader gives to other commands).
				if seq := cmd[0].Seq; seq != last+1 && !h.missed(ctx, last, seq) {
					return nil
				}
				last = cmd[0].Seq
				h.publish(cmd)
				cmd = cmd[:0]
				after = e.StreamID
			}
		}
	}
	return nil
}

// newBookState is symbol's book, empty, as of the snapshot seq.
func newBookState(symbol string, seq uint64) *bookState {
	st := &bookState{symbol: symbol, snapshot: seq, lastDepth: seq, bids: map[int64]int64{}, asks: map[int64]int64{}}
	st.streams.depth, st.streams.trade = wsapi.StreamName(symbol, wsapi.StreamDepth), wsapi.StreamName(symbol, wsapi.StreamTrade)
	st.streams.bookTicker, st.streams.phase = wsapi.StreamName(symbol, wsapi.StreamBookTicker), wsapi.StreamName(symbol, wsapi.StreamPhase)
	for i, iv := range depthIntervals {
		st.interval[i] = intervalDepth{stream: wsapi.StreamName(symbol, iv.kind), last: seq, bids: map[int64]int64{}, asks: map[int64]int64{}}
	}
	return st
}

// set makes a level's quantity qty (0: the level is gone).
func (st *bookState) set(bid bool, price, qty int64) {
	i, levels := 1, st.asks
	if bid {
		i, levels = 0, st.bids
	}
	_, had := levels[price]
	switch {
	case qty == 0 && had:
		delete(levels, price)
		ps := st.prices[i]
		if n := len(ps); ps[n-1] == price { // the best went, as it mostly does
			st.prices[i] = ps[:n-1]
		} else if j, ok := slices.BinarySearchFunc(ps, price, st.order(bid)); ok {
			st.prices[i] = slices.Delete(ps, j, j+1)
		}
	case qty > 0:
		levels[price] = qty
		if !had {
			ps := st.prices[i]
			j, _ := slices.BinarySearchFunc(ps, price, st.order(bid))
			st.prices[i] = slices.Insert(ps, j, price)
		}
	}
}

// order is the comparison of a side's prices, the best last.
func (st *bookState) order(bid bool) func(a, b int64) int {
	if bid {
		return cmp.Compare[int64]
	}
	return func(a, b int64) int { return cmp.Compare(b, a) }
}

// best returns the best (price, quantity) of a side; zero when empty.
func (st *bookState) best(bid bool) [2]int64 {
	i, levels := 1, st.asks
	if bid {
		i, levels = 0, st.bids
	}
	ps := st.prices[i]
	if len(ps) == 0 {
		return [2]int64{}
	}
	p := ps[len(ps)-1]
	return [2]int64{p, levels[p]}
}

// publish sends what one command's events mean to the subscribers. It
// holds h.mu throughout, so that whoever subscribes meanwhile gets the
// whole of a command's messages or none, and it formats only the messages
// someone is subscribed to: the book state is followed either way.
func (h *hub) publish(evs []matching.Event) {
	if len(evs) == 0 {
		return
	}
	seq, at := evs[0].Seq, evs[0].Time
	h.mu.Lock()
	defer h.mu.Unlock()
	users := len(h.users) > 0
	changed := h.changed[:0] // the books whose levels changed: mostly one
	for i := range evs {
		ev := &evs[i]
		s, known := h.symbols[ev.Symbol]
		st := h.books[ev.Symbol]
		if known && seq <= st.snapshot {
			continue // already in the snapshot the hub started from
		}
		switch ev.Kind {
		case matching.EvLevel:
			if !known {
				break // a symbol the hub has no book of
			}
			st.set(ev.Side == matching.Buy, ev.Price, ev.Quantity)
			for i := range st.interval {
				if ev.Side == matching.Buy {
					st.interval[i].bids[ev.Price] = ev.Quantity
				} else {
					st.interval[i].asks[ev.Price] = ev.Quantity
				}
			}
			if len(h.subs[st.streams.depth]) > 0 {
				if ev.Side == matching.Buy {
					st.diff.bids = append(st.diff.bids, wsapi.Level(s, ev.Price, ev.Quantity))
				} else {
					st.diff.asks = append(st.diff.asks, wsapi.Level(s, ev.Price, ev.Quantity))
				}
			}
			if !slices.Contains(changed, st) {
				changed = append(changed, st)
			}
		case matching.EvTrade:
			if known {
				h.send(st.streams.trade, func() any { return wsapi.TradeFrom(ev, s) })
			}
		case matching.EvPhase:
			if known {
				h.send(st.streams.phase, func() any {
					return wsapi.PhaseUpdate{Event: wsapi.StreamPhase, Time: ev.Time, Symbol: ev.Symbol, Seq: seq,
						Phase: ev.Phase.String(), Halted: ev.Halted, Until: ev.Until}
				})
			}
		}
		if users {
			h.pushUser(ev)
		}
	}
	if len(changed) > 1 {
		slices.SortFunc(changed, func(a, b *bookState) int { return cmp.Compare(a.symbol, b.symbol) })
	}
	for _, st := range changed {
		h.levelsChanged(st, seq, at)
	}
	h.changed = changed
}

// levelsChanged ends a command that changed st's levels: its depth update,
// the interval streams' marks and, when the best bid or ask moved, a
// bookTicker. The caller holds h.mu.
func (h *hub) levelsChanged(st *bookState, seq uint64, at int64) {
	name := st.symbol
	h.send(st.streams.depth, func() any {
		d := wsapi.DepthUpdate{Event: "depthUpdate", Time: at, Symbol: name, First: st.lastDepth + 1, Last: seq,
			Bids: st.diff.bids, Asks: st.diff.asks}
		if d.Bids == nil {
			d.Bids = [][2]string{}
		}
		if d.Asks == nil {
			d.Asks = [][2]string{}
		}
		return d
	})
	st.diff.bids, st.diff.asks = st.diff.bids[:0], st.diff.asks[:0]
	st.lastDepth = seq
	for i := range st.interval {
		st.interval[i].upto, st.interval[i].time = seq, at
		h.pending[i] = true
	}
	if bid, ask := st.best(true), st.best(false); bid != st.bid || ask != st.ask {
		st.bid, st.ask = bid, ask
		h.sendTicker(st, seq)
	}
}

// sendTicker pushes st's best bid and ask, as of seq, to its bookTicker
// subscribers. The caller holds h.mu.
func (h *hub) sendTicker(st *bookState, seq uint64) {
	s := h.symbols[st.symbol]
	h.send(st.streams.bookTicker, func() any {
		t := wsapi.BookTicker{Event: wsapi.StreamBookTicker, Symbol: st.symbol, Seq: seq}
		if st.bid[0] != 0 {
			t.Bid, t.BidQty = money.Format(st.bid[0], s.QuoteScale), money.Format(st.bid[1], s.BaseScale)
		}
		if st.ask[0] != 0 {
			t.Ask, t.AskQty = money.Format(st.ask[0], s.QuoteScale), money.Format(st.ask[1], s.BaseScale)
		}
		return t
	})
}

// send pushes a stream's message, made by data, to its subscribers — if it
// has any: otherwise data is not called. The caller holds h.mu.
func (h *hub) send(stream string, data func() any) {
	subs := h.subs[stream]
	if len(subs) == 0 {
		return
	}
	b, err := json.Marshal(wsapi.StreamMessage{Stream: stream, Data: data()})
	if err != nil {
		h.log.Error("stream hub: encode", zap.Error(err))
		return
	}
	for s := range subs {
		s.push(b)
	}
}

// block is how long the next read of the events may wait: readBlock, or
// less when an interval depth stream has a push due sooner (at least 1 ms,
// since a shorter block would not block at all).
func (h *hub) block(now time.Time) time.Duration {
	d := readBlock
	for i := range depthIntervals {
		if h.pending[i] {
			d = min(d, h.due[i].Sub(now))
		}
	}
	return max(d, time.Millisecond)
}

// flushDue pushes every interval depth stream whose changes wait and whose
// interval has passed since its last push: one message per symbol with
// changes, encoded once for all its subscribers. A change after a quiet
// interval is thus pushed at once, later ones at most one interval apart.
func (h *hub) flushDue(now time.Time) {
	for i, iv := range depthIntervals {
		if h.pending[i] && !now.Before(h.due[i]) {
			h.flush(i)
			h.pending[i], h.due[i] = false, now.Add(iv.every)
		}
	}
}

// flush pushes interval i's waiting changes of every symbol. The changes
// of a stream without subscribers are dropped: U = previous u + 1 still
// holds for whoever subscribes later, whose snapshot holds them.
func (h *hub) flush(i int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, name := range h.names {
		p := &h.books[name].interval[i]
		if p.upto == 0 {
			continue
		}
		s := h.symbols[name]
		h.send(p.stream, func() any {
			return wsapi.DepthUpdate{Event: "depthUpdate", Time: p.time, Symbol: name, First: p.last + 1, Last: p.upto,
				Bids: levels(s, p.bids, true), Asks: levels(s, p.asks, false)}
		})
		p.last, p.upto = p.upto, 0
		clear(p.bids)
		clear(p.asks)
	}
}

// levels formats a side's changed levels, best first.
func levels(s matching.Symbol, side map[int64]int64, bid bool) [][2]string {
	prices := make([]int64, 0, len(side))
	for p := range side {
		prices = append(prices, p)
	}
	slices.Sort(prices)
	if bid {
		slices.Reverse(prices)
	}
	out := make([][2]string, len(prices))
	for j, p := range prices {
		out[j] = wsapi.Level(s, p, side[p])
	}
	return out
}

// pushUser sends an event to the user-data subscribers of the accounts it
// concerns. The caller holds h.mu.
func (h *hub) pushUser(ev *matching.Event) {
	send := func(account string, event any) {
		subs := h.users[account]
		if len(subs) == 0 {
			return
		}
		b, err := json.Marshal(wsapi.UserEvent{Event: event})
		if err != nil {
			h.log.Error("stream hub: encode", zap.Error(err))
			return
		}
		for s := range subs {
			s.push(b)
		}
	}
	s := h.symbols[ev.Symbol]
	switch ev.Kind {
	case matching.EvOrderAccepted, matching.EvOrderAmended, matching.EvOrderDone:
		send(ev.Account, wsapi.OrderReport(ev, s))
	case matching.EvTrade:
		send(ev.BuyerAccount, wsapi.TradeReport(ev, s, ev.BuyOrderID))
		send(ev.SellerAccount, wsapi.TradeReport(ev, s, ev.SellOrderID))
	case matching.EvBalance:
		scale := int(h.scales[ev.Asset])
		send(ev.Account, wsapi.BalanceUpdate{Event: "balanceUpdate", Time: ev.Time, Seq: ev.Seq, Asset: ev.Asset,
			Free: money.Format(ev.Free, scale), Held: money.Format(ev.Held, scale)})
	}
}

// subscribe adds s to streams (names already validated).
func (h *hub) subscribe(s subscriber, streams []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, name := range streams {
		if h.subs[name] == nil {
			h.subs[name] = map[subscriber]struct{}{}
		}
		h.subs[name][s] = struct{}{}
	}
}

// holding stands in for a stream connection that is not upgraded yet: the
// hub subscribes it before the upgrade answers, so that nothing published
// after the client could have taken a snapshot is lost, and keeps what is
// pushed meanwhile. Its fields are touched only under hub.mu (push is
// called under it; handOver takes it).
type holding struct {
	msgs     [][]byte
	overflow bool
}

func (h *holding) push(b []byte) {
	if len(h.msgs) >= StreamQueue {
		h.overflow = true
		return
	}
	h.msgs = append(h.msgs, b)
}

// handOver moves held's subscriptions to c and queues for c what held
// kept, in order, before anything published later. A hold that
// overflowed closes c as a slow consumer.
func (h *hub) handOver(held *holding, c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, subs := range h.subs {
		if _, ok := subs[held]; ok {
			delete(subs, held)
			subs[c] = struct{}{}
		}
	}
	if held.overflow {
		go c.slowConsumer()
		return
	}
	for _, b := range held.msgs {
		c.push(b)
	}
	held.msgs = nil
}

// subscribeUser adds s to account's user data.
func (h *hub) subscribeUser(s subscriber, account string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.users[account] == nil {
		h.users[account] = map[subscriber]struct{}{}
	}
	h.users[account][s] = struct{}{}
}

// unsubscribe removes s from everything.
func (h *hub) unsubscribe(s subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	dropSubscriber(h.subs, s)
	dropSubscriber(h.users, s)
}

// dropSubscriber removes s from every set of m, deletes the sets it leaves
// empty and returns their keys.
func dropSubscriber[K comparable](m map[K]map[subscriber]struct{}, s subscriber) (emptied []K) {
	for k, subs := range m {
		delete(subs, s)
		if len(subs) == 0 {
			delete(m, k)
			emptied = append(emptied, k)
		}
	}
	return emptied
}

// parseStreams validates a combined-stream list: "btckzt@depth/btckzt@trade".
func (h *hub) parseStreams(list string) ([]string, error) {
	if list == "" {
		return nil, fmt.Errorf("streams is required, e.g. streams=btckzt@depth/btckzt@trade")
	}
	names := strings.Split(list, "/")
	if len(names) > maxStreams {
		return nil, fmt.Errorf("at most %d streams per connection", maxStreams)
	}
	for _, n := range names {
		sym, kind, ok := strings.Cut(n, "@")
		if _, known := h.symbols[strings.ToUpper(sym)]; !ok || !known || sym != strings.ToLower(sym) {
			return nil, fmt.Errorf("stream %q: want <symbol>@<kind> with a known symbol in lower case", n)
		}
		switch kind {
		case wsapi.StreamDepth, wsapi.StreamDepth100ms, wsapi.StreamDepth1000ms, wsapi.StreamTrade, wsapi.StreamBookTicker, wsapi.StreamPhase:
		default:
			if speed, ok := strings.CutPrefix(kind, wsapi.StreamDepth+"@"); ok {
				return nil, fmt.Errorf("stream %q: update speed %q unknown: want depth (every command), depth@100ms or depth@1000ms", n, speed)
			}
			return nil, fmt.Errorf("stream %q: kind must be depth, depth@100ms, depth@1000ms, trade, bookTicker or phase", n)
		}
	}
	return names, nil
}
