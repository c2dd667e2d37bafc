package wsgateway

import (
	"context"
	"encoding/json"
	"fmt"
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
// Lock: hub.mu guards the subscriptions only; it is held while pushing,
// and push never blocks or takes another lock of the hub.
type hub struct {
	src     EventSource
	book    bookReader
	symbols map[string]matching.Symbol
	scales  map[string]int32 // asset → scale
	log     *zap.Logger

	books map[string]*bookState // only the Run goroutine touches it
	names []string              // the symbols, sorted

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
	snapshot  uint64 // events at or below it are in the snapshot
	lastDepth uint64 // u of the last depth update, or the snapshot's sequence
	bids      map[int64]int64
	asks      map[int64]int64
	bid, ask  [2]int64 // the best bid and ask (price, quantity) last published
	// top is the best price of each side (bids, asks; 0: empty), kept as
	// levels change; stale when the level at it went, and found again by a
	// scan only then, so a command costs no scan of the book.
	top   [2]int64
	stale [2]bool

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

// snapshotLevels is how many levels per side the hub reads at start: all
// of them. With only the best few thousand, a level beyond them that no
// command touched since would be unknown to the hub, and once the levels
// above it traded away, bookTicker would name a worse price as the best.
const snapshotLevels = 0

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
		for _, l := range bids {
			st.bids[l.Price] = l.Quantity
		}
		for _, l := range asks {
			st.asks[l.Price] = l.Quantity
		}
		st.bid, st.ask = best(st.bids, true), best(st.asks, false)
		st.top = [2]int64{st.bid[0], st.ask[0]}
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
	_, ok := h.loadBooks(ctx)
	return ok
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
	st := &bookState{snapshot: seq, lastDepth: seq, bids: map[int64]int64{}, asks: map[int64]int64{}}
	for i, iv := range depthIntervals {
		st.interval[i] = intervalDepth{stream: wsapi.StreamName(symbol, iv.kind), last: seq, bids: map[int64]int64{}, asks: map[int64]int64{}}
	}
	return st
}

// touch follows the best price of a side through a level's new quantity.
func (st *bookState) touch(bid bool, price, qty int64) {
	i := 1
	if bid {
		i = 0
	}
	switch {
	case st.stale[i]: // found by the next scan
	case qty == 0 && price == st.top[i]:
		st.stale[i] = true
	case qty > 0 && (st.top[i] == 0 || bid && price > st.top[i] || !bid && price < st.top[i]):
		st.top[i] = price
	}
}

// best returns the best (price, quantity) of a side; zero when empty.
func (st *bookState) best(bid bool) [2]int64 {
	i, levels := 1, st.asks
	if bid {
		i, levels = 0, st.bids
	}
	if st.stale[i] {
		b := best(levels, bid)
		st.top[i], st.stale[i] = b[0], false
		return b
	}
	if st.top[i] == 0 {
		return [2]int64{}
	}
	return [2]int64{st.top[i], levels[st.top[i]]}
}

// best scans a side for its best (price, quantity); zero when empty.
func best(levels map[int64]int64, bid bool) [2]int64 {
	var out [2]int64
	for p, q := range levels {
		if out[0] == 0 || bid && p > out[0] || !bid && p < out[0] {
			out = [2]int64{p, q}
		}
	}
	return out
}

// publish sends what one command's events mean to the subscribers.
func (h *hub) publish(evs []matching.Event) {
	if len(evs) == 0 {
		return
	}
	seq, at := evs[0].Seq, evs[0].Time
	type diff struct {
		bids, asks [][2]string
	}
	diffs := map[string]*diff{}
	var msgs []wsapi.StreamMessage
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
			side := st.asks
			if ev.Side == matching.Buy {
				side = st.bids
			}
			if ev.Quantity == 0 {
				delete(side, ev.Price)
			} else {
				side[ev.Price] = ev.Quantity
			}
			st.touch(ev.Side == matching.Buy, ev.Price, ev.Quantity)
			for i := range st.interval {
				if ev.Side == matching.Buy {
					st.interval[i].bids[ev.Price] = ev.Quantity
				} else {
					st.interval[i].asks[ev.Price] = ev.Quantity
				}
			}
			d := diffs[ev.Symbol]
			if d == nil {
				d = &diff{bids: [][2]string{}, asks: [][2]string{}}
				diffs[ev.Symbol] = d
			}
			if ev.Side == matching.Buy {
				d.bids = append(d.bids, wsapi.Level(s, ev.Price, ev.Quantity))
			} else {
				d.asks = append(d.asks, wsapi.Level(s, ev.Price, ev.Quantity))
			}
		case matching.EvTrade:
			msgs = append(msgs, wsapi.StreamMessage{Stream: wsapi.StreamName(ev.Symbol, wsapi.StreamTrade), Data: wsapi.TradeFrom(ev, s)})
		case matching.EvPhase:
			msgs = append(msgs, wsapi.StreamMessage{Stream: wsapi.StreamName(ev.Symbol, wsapi.StreamPhase), Data: wsapi.PhaseUpdate{
				Event: wsapi.StreamPhase, Time: ev.Time, Symbol: ev.Symbol, Seq: seq, Phase: ev.Phase.String(), Halted: ev.Halted, Until: ev.Until}})
		}
		h.pushUser(ev)
	}
	names := make([]string, 0, len(diffs))
	for name := range diffs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		d, st, s := diffs[name], h.books[name], h.symbols[name]
		msgs = append(msgs, wsapi.StreamMessage{Stream: wsapi.StreamName(name, wsapi.StreamDepth), Data: wsapi.DepthUpdate{
			Event: "depthUpdate", Time: at, Symbol: name, First: st.lastDepth + 1, Last: seq, Bids: d.bids, Asks: d.asks}})
		st.lastDepth = seq
		for i := range st.interval {
			st.interval[i].upto, st.interval[i].time = seq, at
			h.pending[i] = true
		}
		if bid, ask := st.best(true), st.best(false); bid != st.bid || ask != st.ask {
			st.bid, st.ask = bid, ask
			t := wsapi.BookTicker{Event: wsapi.StreamBookTicker, Symbol: name, Seq: seq}
			if bid[0] != 0 {
				t.Bid, t.BidQty = money.Format(bid[0], s.QuoteScale), money.Format(bid[1], s.BaseScale)
			}
			if ask[0] != 0 {
				t.Ask, t.AskQty = money.Format(ask[0], s.QuoteScale), money.Format(ask[1], s.BaseScale)
			}
			msgs = append(msgs, wsapi.StreamMessage{Stream: wsapi.StreamName(name, wsapi.StreamBookTicker), Data: t})
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range msgs {
		subs := h.subs[m.Stream]
		if len(subs) == 0 {
			continue
		}
		b, err := json.Marshal(m)
		if err != nil {
			h.log.Error("stream hub: encode", zap.Error(err))
			continue
		}
		for s := range subs {
			s.push(b)
		}
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
		if subs := h.subs[p.stream]; len(subs) > 0 {
			s := h.symbols[name]
			b, err := json.Marshal(wsapi.StreamMessage{Stream: p.stream, Data: wsapi.DepthUpdate{
				Event: "depthUpdate", Time: p.time, Symbol: name, First: p.last + 1, Last: p.upto,
				Bids: levels(s, p.bids, true), Asks: levels(s, p.asks, false)}})
			if err != nil {
				h.log.Error("stream hub: encode", zap.Error(err))
			} else {
				for sub := range subs {
					sub.push(b)
				}
			}
		}
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
// concerns.
func (h *hub) pushUser(ev *matching.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.users) == 0 {
		return
	}
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
