package redisbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// The batch write is one Redis transaction (MULTI … EXEC) of native
// commands: the batch's events entry, the Redis order book's changes
// (mirror.go) and the engine position. It used to be a Lua script; a
// script turns every argument into a Lua string and back, which cost Redis
// about as much again as the commands themselves (BENCHMARKS.md).
//
// A transaction cannot refuse itself, so the fence is checked with WATCH.
// The shard's fence key, satu:{s1}:fence, holds the fencing epoch and the
// written position (seq); only the lease script (which increments the
// epoch) and the writer change it — settlement's marks and the snapshot
// bookkeeping go to the engine hash, and would abort transactions at
// random. The writer holds one connection and sends each batch as
//
//	MULTI, XADD events, the mirror's commands, HSET engine seq/inbox,
//	HSET fence seq, EXEC, WATCH fence, HMGET fence epoch seq
//
// in one round trip: the WATCH and read after EXEC are the next batch's
// check, answered by the time it is ready. Before sending, the writer
// compares what it read with its epoch and its expected position: a
// takeover or another writer since then makes it stop (ErrFenced,
// ErrStale); one between the read and the EXEC changed the fence, so
// Redis discards the transaction, and the writer reads again.
//
// A transaction is not rolled back when one of its commands fails. The
// events entry's explicit ID (seq-0) would fail only if something other
// than an engine had written the stream past it; the other commands would
// still apply, and the writer stops with the error (in the script, the
// failing XADD had stopped the rest).
//
// A fence key missing (a shard written by an older version) is created
// from the engine hash's epoch and seq by initFence. Engines of one shard
// are upgraded together: an older engine's lease script bumps only the
// engine hash's epoch.

func (k Keys) fence() string { return k.Prefix + "fence" }

// KEYS[1] engine hash, KEYS[2] fence. Creates the fence from the engine
// hash unless it holds a position already.
var initFence = redis.NewScript(`
if redis.call('HEXISTS', KEYS[2], 'seq') == 0 then
  redis.call('HSET', KEYS[2], 'epoch', redis.call('HGET', KEYS[1], 'epoch') or '0',
    'seq', redis.call('HGET', KEYS[1], 'seq') or '0')
end
return 1
`)

// fencedWriter is the runner's connection for batch writes and what it
// last read of the fence under WATCH.
type fencedWriter struct {
	rdb     redis.UniversalClient
	keys    Keys
	conn    *redis.Conn
	watched bool   // WATCH is on and epoch, seq were read after it
	epoch   string // the fence as read
	seq     string
}

// batchWrite is one batch's transaction: the head and the mirror's
// commands.
type batchWrite struct {
	expected string // the position the writer continues from
	seq      string // the batch's last sequence
	inbox    string // the inbox entry it ends with
	epoch    string // the writer's epoch; "" without a lease
	entry    string // the events entry's ID
	records  []byte
	mirror   [][]any
}

func (f *fencedWriter) close() {
	if f.conn != nil {
		_ = f.conn.Close()
		f.conn, f.watched = nil, false
	}
}

// connect opens the writer's connection, to the master holding the
// shard's slot on a cluster.
func (f *fencedWriter) connect(ctx context.Context) error {
	var c *redis.Client
	switch rdb := f.rdb.(type) {
	case *redis.Client:
		c = rdb
	case *redis.ClusterClient:
		var err error
		if c, err = rdb.MasterForKey(ctx, f.keys.fence()); err != nil {
			return fmt.Errorf("redisbus: the fence's master: %w", err)
		}
	default:
		return fmt.Errorf("redisbus: batch writes need a *redis.Client or *redis.ClusterClient, not %T", f.rdb)
	}
	f.conn = c.EphemeralConn() // closed, never pooled again: it carries a WATCH
	return nil
}

// watch (re)starts WATCH and reads the fence.
func (f *fencedWriter) watch(ctx context.Context) error {
	if f.conn == nil {
		if err := f.connect(ctx); err != nil {
			return err
		}
	}
	var read *redis.SliceCmd
	_, err := f.conn.Pipelined(ctx, func(p redis.Pipeliner) error {
		initFence.EvalSha(ctx, p, []string{f.keys.Engine, f.keys.fence()})
		p.Do(ctx, "WATCH", f.keys.fence())
		read = p.HMGet(ctx, f.keys.fence(), "epoch", "seq")
		return nil
	})
	if err != nil {
		f.close()
		return fmt.Errorf("redisbus: watch the fence: %w", err)
	}
	return f.read(read)
}

func (f *fencedWriter) read(c *redis.SliceCmd) error {
	v, err := c.Result()
	if err != nil || len(v) != 2 {
		f.close()
		return fmt.Errorf("redisbus: read the fence: %v", err)
	}
	f.epoch, _ = v[0].(string)
	f.seq, _ = v[1].(string)
	f.watched = true
	return nil
}

// check refuses a write that would not continue the fence.
func (f *fencedWriter) check(b *batchWrite) error {
	if b.epoch != "" && f.epoch != b.epoch {
		return fmt.Errorf("%w: epoch is %s, writer holds %s", ErrFenced, f.epoch, b.epoch)
	}
	if f.seq != b.expected {
		return fmt.Errorf("%w: engine position is %s, writer expected %s", ErrStale, f.seq, b.expected)
	}
	return nil
}

// write runs the batch's transaction (see above). A connection error
// closes the connection and is returned: the runner stops, and a restart
// replays the inbox from the stored position, whether or not the
// transaction landed.
func (f *fencedWriter) write(ctx context.Context, b *batchWrite) error {
	for attempt := 0; ; attempt++ {
		if !f.watched {
			if err := f.watch(ctx); err != nil {
				return err
			}
		}
		if err := f.check(b); err != nil {
			f.close()
			return err
		}
		var exec *redis.Cmd
		var read *redis.SliceCmd
		_, err := f.conn.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Do(ctx, "MULTI")
			p.Do(ctx, "XADD", f.keys.Events, b.entry, "b", b.records)
			for _, c := range b.mirror {
				p.Do(ctx, c...)
			}
			p.Do(ctx, "HSET", f.keys.Engine, "seq", b.seq, "inbox", b.inbox)
			p.Do(ctx, "HSET", f.keys.fence(), "seq", b.seq)
			exec = p.Do(ctx, "EXEC")
			p.Do(ctx, "WATCH", f.keys.fence())
			read = p.HMGet(ctx, f.keys.fence(), "epoch", "seq")
			return nil
		})
		f.watched = false
		if err != nil && !errors.Is(err, redis.Nil) && !isRedisError(err) {
			f.close() // the connection's state is unknown
			return fmt.Errorf("redisbus: write events: %w", err)
		}
		replies, eerr := exec.Slice()
		if rerr := f.read(read); rerr != nil {
			return rerr
		}
		switch {
		case errors.Is(eerr, redis.Nil): // discarded: the fence changed after it was read
			if attempt < 3 {
				continue // check again against what changed it
			}
			f.close()
			return fmt.Errorf("%w: the write was discarded %d times", ErrStale, attempt+1)
		case eerr != nil:
			f.close()
			return fmt.Errorf("redisbus: write events: %w", eerr)
		}
		for _, r := range replies {
			if rerr, ok := r.(error); ok {
				// Not expected with the fence checked (an event ID below
				// the stream's last means someone else wrote it).
				f.close()
				return fmt.Errorf("redisbus: write events: a command of the batch failed: %w", rerr)
			}
		}
		return nil
	}
}

func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
