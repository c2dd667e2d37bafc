package redisbus

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/matching"
)

// The Redis order book: a mirror of the engine's books and open orders,
// written by the engine in the same atomic step as the batch's events and
// position, so that at every batch boundary it equals the engine's state
// at the engine hash's seq. Gateways serve depth snapshots and open-order
// queries from it without asking the engine.
//
//	satu:{s1}:book:BTCKZT:bid      sorted set of bid prices (score = price)
//	satu:{s1}:book:BTCKZT:bid:qty  hash price → "visible orders"
//	satu:{s1}:book:BTCKZT:ask      (and :ask:qty) the same for asks
//	satu:{s1}:order:<id>           an open order, matching.OrderView's binary
//	                               record (AppendBinary; JSON before it,
//	                               still read: DecodeOrderRecord)
//	satu:{s1}:orders:<account>     set of the account's open order IDs
//	satu:{s1}:markets              hash symbol → matching.MarketState as JSON
//	                               (phase, halt, reference prices), written
//	                               when a batch changed it and, for every
//	                               symbol, by a writer's first batch

func (k Keys) bookSide(symbol string, side matching.Side) (levels, quantities string) {
	s := "bid"
	if side == matching.Sell {
		s = "ask"
	}
	levels = k.Prefix + "book:" + symbol + ":" + s
	return levels, levels + ":qty"
}

func (k Keys) order(id uint64) string           { return k.Prefix + "order:" + strconv.FormatUint(id, 10) }
func (k Keys) markets() string                  { return k.Prefix + "markets" }
func (k Keys) accountOrders(acct string) string { return k.Prefix + "orders:" + acct }

type levelKey struct {
	symbol string
	side   matching.Side
	price  int64
}

// mirrorBatch collects what a batch's written commands changed: the last
// value of each touched level, and the touched orders with their accounts.
type mirrorBatch struct {
	levels map[levelKey]matching.Level
	orders map[uint64]string
	born   map[uint64]bool // orders accepted in this batch: not in the mirror before it
	// markets are the symbols whose trading state changed; allMarkets
	// asks the next write for every symbol's (a new writer's first).
	markets    map[string]bool
	allMarkets bool

	groups mirrorGroups
}

func newMirrorBatch(groupMax int) *mirrorBatch {
	if groupMax <= 0 {
		groupMax = maxGroup
	}
	return &mirrorBatch{levels: map[levelKey]matching.Level{}, orders: map[uint64]string{}, born: map[uint64]bool{},
		markets: map[string]bool{}, groups: mirrorGroups{at: map[groupKey]int{}, max: groupMax}}
}

// reset forgets a written batch (but not a pending allMarkets).
func (mb *mirrorBatch) reset() {
	clear(mb.levels)
	clear(mb.orders)
	clear(mb.born)
	clear(mb.markets)
}

// add notes what an event touched.
func (mb *mirrorBatch) add(ev *matching.Event) {
	switch ev.Kind {
	case matching.EvLevel:
		mb.levels[levelKey{ev.Symbol, ev.Side, ev.Price}] = matching.Level{Price: ev.Price, Quantity: ev.Quantity, Orders: ev.Orders}
	case matching.EvOrderAccepted, matching.EvOrderDone, matching.EvOrderAmended:
		mb.orders[ev.OrderID] = ev.Account
		if ev.Kind == matching.EvOrderAccepted {
			mb.born[ev.OrderID] = true
		}
	case matching.EvPhase:
		mb.markets[ev.Symbol] = true
	case matching.EvTrade:
		mb.markets[ev.Symbol] = true // the last price
		if ev.BuyOrderID != 0 {
			mb.orders[ev.BuyOrderID] = ev.BuyerAccount
		}
		if ev.SellOrderID != 0 {
			mb.orders[ev.SellOrderID] = ev.SellerAccount
		}
	}
}

// ops appends the mirror's writes for the batch as Redis commands,
// grouped (see mirrorGroups), reading the touched orders' state from the
// engine at the batch's end. An order accepted and ended within the batch
// (a taker filled at once, a resting order filled or cancelled before the
// batch ended) was never in the mirror and needs no write. Within a batch
// each level and each order is written once, so grouping changes no
// outcome.
func (mb *mirrorBatch) ops(e *matching.Engine, k Keys, cmds [][]any) ([][]any, error) {
	g := &mb.groups
	g.reset()
	for lk, l := range mb.levels {
		levels, qty := k.bookSide(lk.symbol, lk.side)
		price := strconv.FormatInt(l.Price, 10)
		if l.Quantity == 0 && l.Orders == 0 {
			g.add("ZREM", levels, price)
			g.add("HDEL", qty, price)
		} else {
			g.add("ZADD", levels, price, price)
			g.add("HSET", qty, price, strconv.FormatInt(l.Quantity, 10)+" "+strconv.FormatInt(int64(l.Orders), 10))
		}
	}
	// Open orders are set (one MSET) and ended ones deleted (one DEL);
	// then their accounts' sets.
	for id, acct := range mb.orders {
		o, open := e.Order(id)
		switch {
		case open:
			g.add("MSET", "", k.order(id), o.AppendBinary(make([]byte, 0, 96)))
			g.add("SADD", k.accountOrders(acct), strconv.FormatUint(id, 10))
		case !mb.born[id]:
			g.add("DEL", "", k.order(id))
			g.add("SREM", k.accountOrders(acct), strconv.FormatUint(id, 10))
		}
	}
	if mb.allMarkets {
		for _, sym := range e.Symbols() {
			mb.markets[sym.Name] = true
		}
		mb.allMarkets = false
	}
	for sym := range mb.markets {
		st, ok := e.Market(sym)
		if !ok {
			continue
		}
		v, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("redisbus: encode market %s: %w", sym, err)
		}
		g.add("HSET", k.markets(), sym, v)
	}
	return g.appendTo(cmds), nil
}

// The mirror's writes are grouped by command and key, so that a batch
// costs a handful of commands instead of two per order and level: one
// ZADD, ZREM, HSET, HDEL, SADD or SREM per key, one MSET of the batch's
// open orders and one DEL of its ended ones (keyless groups: their
// arguments name the keys). A group is split at maxGroup arguments, which
// bounds a command's size.
const maxGroup = 1000

type groupKey struct {
	cmd string
	key string // "" for MSET and DEL
}

// mirrorGroups collects a batch's writes by command and key, in the order
// of their first write.
type mirrorGroups struct {
	at   map[groupKey]int
	list []mirrorGroup
	max  int // arguments per command: maxGroup (tests set less)
}

type mirrorGroup struct {
	groupKey
	args []any
}

func (g *mirrorGroups) reset() {
	clear(g.at)
	for i := range g.list {
		clear(g.list[i].args)
		g.list[i].args = g.list[i].args[:0]
	}
	g.list = g.list[:0]
}

func (g *mirrorGroups) add(cmd, key string, args ...any) {
	k := groupKey{cmd, key}
	i, ok := g.at[k]
	if !ok {
		i = len(g.list)
		if i < cap(g.list) {
			g.list = g.list[:i+1]
			g.list[i].groupKey = k
		} else {
			g.list = append(g.list, mirrorGroup{groupKey: k})
		}
		g.at[k] = i
	}
	g.list[i].args = append(g.list[i].args, args...)
}

// appendTo appends the groups as commands, each at most g.max arguments
// (whole pairs for ZADD, HSET and MSET).
func (g *mirrorGroups) appendTo(cmds [][]any) [][]any {
	for _, gr := range g.list {
		step := g.max
		switch gr.cmd {
		case "ZADD", "HSET", "MSET":
			step = max(2, g.max&^1)
		}
		for k := 0; k < len(gr.args); k += step {
			n := min(step, len(gr.args)-k)
			c := make([]any, 0, n+2)
			c = append(c, gr.cmd)
			if gr.key != "" {
				c = append(c, gr.key)
			}
			cmds = append(cmds, append(c, gr.args[k:k+n]...))
		}
	}
	return cmds
}

// Markets reads every symbol's trading state from the mirror, with the
// engine sequence it reflects.
func Markets(ctx context.Context, rdb redis.UniversalClient, keys Keys) (map[string]matching.MarketState, error) {
	raw, err := rdb.HGetAll(ctx, keys.markets()).Result()
	if err != nil {
		return nil, fmt.Errorf("redisbus: markets: %w", err)
	}
	out := make(map[string]matching.MarketState, len(raw))
	for sym, v := range raw {
		var st matching.MarketState
		if err := json.Unmarshal([]byte(v), &st); err != nil {
			return nil, fmt.Errorf("redisbus: market %s: %w", sym, err)
		}
		out[sym] = st
	}
	return out, nil
}

// readDepth returns a symbol's levels from the mirror, atomically with the
// sequence they reflect.
//
// KEYS: engine hash, bid levels, bid quantities, ask levels, ask quantities;
// ARGV[1] the limit per side.
var readDepth = redis.NewScript(`
local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
local n = tonumber(ARGV[1])
local b = redis.call('ZREVRANGE', KEYS[2], 0, n - 1)
local a = redis.call('ZRANGE', KEYS[4], 0, n - 1)
-- HMGET in parts: Lua's unpack refuses a few thousand values.
local function quantities(key, prices)
  local out = {}
  for i = 1, #prices, 1000 do
    local part = redis.call('HMGET', key, unpack(prices, i, math.min(i + 999, #prices)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end
return {seq, b, quantities(KEYS[3], b), a, quantities(KEYS[5], a)}
`)

// readOpenOrders returns an account's open orders from the mirror,
// atomically with the sequence they reflect. The order keys share the
// account set's hash tag (one slot on Redis Cluster).
//
// KEYS: engine hash, the account's order set; ARGV[1] the order key prefix.
var readOpenOrders = redis.NewScript(`
local seq = redis.call('HGET', KEYS[1], 'seq') or '0'
local ids = redis.call('SMEMBERS', KEYS[2])
local out = {}
for i, id in ipairs(ids) do
  out[i] = redis.call('GET', ARGV[1] .. id)
end
return {seq, out}
`)

// Depth reads up to limit levels of each side of a symbol's book from the
// mirror, best first, with the engine sequence they reflect (one script,
// during which Redis serves nothing else: 9,000 levels took 17–19 ms end
// to end here, TestDepthReadsManyLevels).
func Depth(ctx context.Context, rdb redis.UniversalClient, keys Keys, symbol string, limit int) (seq uint64, bids, asks []matching.Level, err error) {
	bl, bq := keys.bookSide(symbol, matching.Buy)
	al, aq := keys.bookSide(symbol, matching.Sell)
	res, err := readDepth.Run(ctx, rdb, []string{keys.Engine, bl, bq, al, aq}, max(limit, 1)).Slice()
	if err != nil {
		return 0, nil, nil, fmt.Errorf("redisbus: depth: %w", err)
	}
	seq, err = strconv.ParseUint(res[0].(string), 10, 64)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("redisbus: depth: %w", err)
	}
	if bids, err = levelsOf(res[1], res[2]); err != nil {
		return 0, nil, nil, err
	}
	if asks, err = levelsOf(res[3], res[4]); err != nil {
		return 0, nil, nil, err
	}
	return seq, bids, asks, nil
}

func levelsOf(prices, quantities any) ([]matching.Level, error) {
	ps, _ := prices.([]any)
	qs, _ := quantities.([]any)
	if len(ps) != len(qs) {
		return nil, errors.New("redisbus: depth: levels and quantities differ")
	}
	out := make([]matching.Level, 0, len(ps))
	for i := range ps {
		p, _ := ps[i].(string)
		q, _ := qs[i].(string)
		qty, orders, _ := strings.Cut(q, " ")
		var l matching.Level
		var err1, err2, err3 error
		l.Price, err1 = strconv.ParseInt(p, 10, 64)
		l.Quantity, err2 = strconv.ParseInt(qty, 10, 64)
		n, err3 := strconv.ParseInt(orders, 10, 32)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("redisbus: depth: level %q %q: %w", p, q, err)
		}
		l.Orders = int32(n)
		out = append(out, l)
	}
	return out, nil
}

// OpenOrders reads an account's open orders from the mirror, by order ID,
// with the engine sequence they reflect.
func OpenOrders(ctx context.Context, rdb redis.UniversalClient, keys Keys, account string) (uint64, []matching.OrderView, error) {
	res, err := readOpenOrders.Run(ctx, rdb, []string{keys.Engine, keys.accountOrders(account)}, keys.Prefix+"order:").Slice()
	if err != nil {
		return 0, nil, fmt.Errorf("redisbus: open orders: %w", err)
	}
	seq, err := strconv.ParseUint(res[0].(string), 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("redisbus: open orders: %w", err)
	}
	raw, _ := res[1].([]any)
	out := make([]matching.OrderView, 0, len(raw))
	for _, r := range raw {
		s, ok := r.(string)
		if !ok {
			return 0, nil, errors.New("redisbus: open orders: an indexed order is missing")
		}
		o, err := matching.DecodeOrderRecord(s)
		if err != nil {
			return 0, nil, fmt.Errorf("redisbus: open orders: %w", err)
		}
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b matching.OrderView) int { return cmp.Compare(a.ID, b.ID) })
	return seq, out, nil
}

// Book reads a shard's Redis order book (for the HTTP API and gateways).
type Book struct {
	RDB  redis.UniversalClient
	Keys Keys
}

// Depth reads up to limit levels per side; see the function Depth.
func (b Book) Depth(ctx context.Context, symbol string, limit int) (uint64, []matching.Level, []matching.Level, error) {
	return Depth(ctx, b.RDB, b.Keys, symbol, limit)
}

// Markets reads every symbol's trading state; see the function Markets.
func (b Book) Markets(ctx context.Context) (map[string]matching.MarketState, error) {
	return Markets(ctx, b.RDB, b.Keys)
}

// OpenOrders reads an account's open orders; see the function OpenOrders.
func (b Book) OpenOrders(ctx context.Context, account string) (uint64, []matching.OrderView, error) {
	return OpenOrders(ctx, b.RDB, b.Keys, account)
}
