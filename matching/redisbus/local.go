package redisbus

import (
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
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

// localWriter is what a runner tells its process's clients: whether it
// leads, from which sequence (everything written after it is its own), and
// the last sequence it wrote and answered.
type localWriter struct {
	mu      sync.Mutex
	leading bool
	from    uint64
	written uint64
}

func (w *localWriter) lead(from uint64) {
	w.mu.Lock()
	w.leading, w.from, w.written = true, from, from
	w.mu.Unlock()
}

func (w *localWriter) wrote(seq uint64) {
	w.mu.Lock()
	w.written = seq
	w.mu.Unlock()
}

func (w *localWriter) stop() {
	w.mu.Lock()
	w.leading = false
	w.mu.Unlock()
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
