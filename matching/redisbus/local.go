package redisbus

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/matching"
)

// A Runner answers the Clients of its own process directly after each
// write: once the batch script has succeeded the events are in Redis, which
// is all an acknowledgement promises, so a client in the engine's process
// (satu serve runs both on one Redis client) need not wait for its tail of
// the events stream to bring them back — one Redis crossing less. The tail
// still runs and answers whatever the local runner does not write (a
// standby's client, another process's engine); whichever comes first
// answers, and the other finds no waiter.
//
// While a linked runner leads, the tail does not even read what it wrote:
// every entry after the sequence the runner took over at is the runner's
// own, already answered, so the tail moves its position to the runner's
// last write instead of reading and parsing every entry a second time. It
// reads again as soon as no linked runner leads (stopped, fenced, deposed).
//
// Runner and Client are linked when they use the same Redis client value
// and the same shard.
type localKey struct {
	rdb    redis.UniversalClient
	events string
}

var local struct {
	mu      sync.Mutex
	clients map[localKey][]*Client
	writers map[localKey][]*localWriter
}

// localWriter is what a runner tells its process's clients and event
// readers: whether it leads, from which sequence (everything written after
// it is its own), the last sequence it wrote and answered, and its latest
// events entries as written (the feed).
type localWriter struct {
	mu      sync.Mutex
	leading bool
	from    uint64
	written uint64
	feed    []feedEntry   // entries written since from, the newest last; at most feedEntries and about feedBytes
	bytes   int           // the feed's values' size
	wake    chan struct{} // closed, and replaced, at each write and when the writer stops leading
	// read is set once an event reader of this process looked for the
	// feed: until then no entry is copied into it (an engine running in
	// a process of its own, satu engine, has no such reader).
	read atomic.Bool
}

// feedEntry is one events entry as the runner wrote it: its ID and value,
// and the sequences of its first and last commands.
type feedEntry struct {
	first, last uint64
	id, value   string
}

// The feed's bounds: a reader further behind reads Redis.
const (
	feedEntries = 1024
	feedBytes   = 32 << 20
)

// feedEntriesTest, when above 0, replaces feedEntries (for the tests).
var feedEntriesTest atomic.Int64

// localReads counts the reads the feed answered (for the tests).
var localReads atomic.Int64

func (w *localWriter) lead(from uint64) {
	w.mu.Lock()
	w.leading, w.from, w.written = true, from, from
	w.feed, w.bytes = w.feed[:0], 0
	w.wakeLocked()
	w.mu.Unlock()
}

// wrote records a written batch: its last sequence and, once a reader
// looked for the feed, its events entry (ID and value, a copy) holding
// commands of sequences (written, seq].
func (w *localWriter) wrote(seq uint64, id string, value []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// A reader sets read before it looks at the feed under w.mu: one that
	// looked before this write is woken by it.
	if w.read.Load() {
		w.keep(feedEntry{first: w.written + 1, last: seq, id: id, value: string(value)})
		w.wakeLocked()
	}
	w.written = seq
}

// keep adds e to the feed and drops the oldest entries past the feed's
// bounds; the caller holds w.mu.
func (w *localWriter) keep(e feedEntry) {
	w.feed = append(w.feed, e)
	w.bytes += len(e.value)
	drop, most := 0, feedEntries
	if n := feedEntriesTest.Load(); n > 0 {
		most = int(n)
	}
	for len(w.feed)-drop > 1 && (len(w.feed)-drop > most || w.bytes > feedBytes) {
		w.bytes -= len(w.feed[drop].value)
		drop++
	}
	// Past a bound, a quarter goes at once, so that the entries are moved
	// down once every few hundred writes rather than at each.
	for drop > 0 && drop < len(w.feed)/4 {
		w.bytes -= len(w.feed[drop].value)
		drop++
	}
	if drop > 0 {
		n := copy(w.feed, w.feed[drop:])
		clear(w.feed[n:])
		w.feed = w.feed[:n]
	}
}

func (w *localWriter) stop() {
	w.mu.Lock()
	w.leading = false
	w.wakeLocked()
	w.mu.Unlock()
}

// wakeLocked wakes the readers waiting for the feed; the caller holds w.mu.
func (w *localWriter) wakeLocked() {
	if w.wake != nil {
		close(w.wake)
	}
	w.wake = make(chan struct{})
}

// after returns the feed's entries following sequence at (whole entries
// holding commands up to at+count, at least one), in order. ok is false
// when the feed cannot answer — the writer does not lead, or at is not
// where one of its entries starts or where it has written up to — and the
// reader must read Redis; with ok and no entries, the reader is at the
// writer's last write and may wait on wake.
func (w *localWriter) after(at uint64, count int64) (entries []feedEntry, wake <-chan struct{}, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.leading {
		return nil, nil, false
	}
	if at == w.written {
		return nil, w.wake, true
	}
	i, found := slices.BinarySearchFunc(w.feed, at+1, func(e feedEntry, first uint64) int { return cmp.Compare(e.first, first) })
	if !found {
		return nil, nil, false
	}
	for j := i; j < len(w.feed) && (j == i || w.feed[j].last <= at+uint64(max(count, 1))); j++ {
		entries = append(entries, w.feed[j])
	}
	return entries, nil, true
}

func registerWriter(rdb redis.UniversalClient, k Keys) *localWriter {
	w := &localWriter{}
	key := localKey{rdb, k.Events}
	local.mu.Lock()
	defer local.mu.Unlock()
	if local.writers == nil {
		local.writers = map[localKey][]*localWriter{}
	}
	local.writers[key] = append(local.writers[key], w)
	return w
}

func unregisterWriter(rdb redis.UniversalClient, k Keys, w *localWriter) {
	w.stop()
	local.mu.Lock()
	defer local.mu.Unlock()
	removeLinked(local.writers, localKey{rdb, k.Events}, w)
}

// removeLinked takes v out of m[k], dropping the key with its last value.
// The caller holds local.mu.
func removeLinked[T comparable](m map[localKey][]T, k localKey, v T) {
	vs := m[k]
	if i := slices.Index(vs, v); i >= 0 {
		vs = append(vs[:i:i], vs[i+1:]...)
	}
	if len(vs) == 0 {
		delete(m, k)
	} else {
		m[k] = vs
	}
}

// localSkip returns the sequence a client's tail at sequence at may move
// to without reading: the last write of a linked runner that leads since a
// sequence at or below at; 0 when there is none.
func localSkip(rdb redis.UniversalClient, k Keys, at uint64) uint64 {
	local.mu.Lock()
	ws := local.writers[localKey{rdb, k.Events}]
	local.mu.Unlock()
	var to uint64
	for _, w := range ws {
		w.mu.Lock()
		if w.leading && w.from <= at && w.written > to {
			to = w.written
		}
		w.mu.Unlock()
	}
	return to
}

func registerLocal(c *Client) {
	k := localKey{c.rdb, c.keys.Events}
	local.mu.Lock()
	defer local.mu.Unlock()
	if local.clients == nil {
		local.clients = map[localKey][]*Client{}
	}
	local.clients[k] = append(local.clients[k], c)
}

func unregisterLocal(c *Client) {
	local.mu.Lock()
	defer local.mu.Unlock()
	removeLinked(local.clients, localKey{c.rdb, c.keys.Events}, c)
}

func localClients(rdb redis.UniversalClient, k Keys) []*Client {
	local.mu.Lock()
	defer local.mu.Unlock()
	return local.clients[localKey{rdb, k.Events}]
}

// readLocal answers a read of the events stream after the stream ID
// after from the feed of a runner of this process that leads the shard
// (same Redis client value), when it holds the entries that follow: the
// same entries, as written, without a round trip to Redis or a second
// copy of them to parse. Caught up with the runner, it waits up to block
// for its next write. ok is false when no such runner can answer (none
// leads, or the reader is behind its feed or elsewhere): the caller reads
// Redis. While a runner leads, nobody else writes the shard's events; one
// deposed without knowing it yet stops at its next write or lease
// renewal, and its readers then turn to Redis.
func readLocal(ctx context.Context, rdb redis.UniversalClient, k Keys, after string, count int64, block time.Duration, buf []matching.Envelope) (out []matching.Envelope, ok bool, err error) {
	local.mu.Lock()
	ws := local.writers[localKey{rdb, k.Events}]
	local.mu.Unlock()
	at := uint64(max(idMillis(after), 0))
	var timer <-chan time.Time
	for {
		var wake <-chan struct{}
		for _, w := range ws {
			w.read.Store(true)
			entries, wk, ok := w.after(at, count)
			if !ok {
				continue
			}
			if len(entries) == 0 {
				wake = wk
				break
			}
			out = buf[:0]
			var scratch []matching.Event
			for _, e := range entries {
				if out, err = decodeBatchInto(out, e.id, e.value, &scratch); err != nil {
					return nil, true, err
				}
			}
			localReads.Add(1)
			return out, true, nil
		}
		if wake == nil {
			return nil, false, nil
		}
		if block < time.Millisecond {
			return buf[:0], true, nil
		}
		if timer == nil {
			t := time.NewTimer(block)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-wake: // written, or stopped leading: look again
		case <-timer:
			return buf[:0], true, nil
		case <-ctx.Done():
			return nil, true, ctx.Err()
		}
	}
}
