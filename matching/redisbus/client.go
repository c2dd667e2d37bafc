package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/matching"
)

// Client submits commands to a shard's inbox and waits for their events. It
// is what gateways and the REST API use; any number of them can run, each
// tailing the events stream for the references it issued. A command is
// answered only once the engine has applied it and its events are written.
//
// The commands of concurrent Do calls are appended together: one sender
// goroutine writes everything submitted since its last round trip as one
// pipeline of XADDs, so a busy gateway costs Redis (and the kernel) one
// read and one write per round trip instead of one per command. The events
// stream is tailed by one reader, which decodes only the entries of
// commands this client is waiting for.
type Client struct {
	rdb    redis.UniversalClient
	keys   Keys
	log    *zap.Logger
	prefix string // unique per client, so references never collide across processes
	next   atomic.Uint64
	ready  chan struct{}

	mu      sync.Mutex // guards waiters and queue; never held while doing I/O
	waiters map[string]*waiter
	queue   []*waiter     // submitted, not yet sent to the inbox
	kick    chan struct{} // wakes the sender (capacity 1)

	// Durable, when set, answers a command only once the engine has
	// recorded that its events reached the replicas it waits for (the
	// runner's WaitReplicas): the engine hash's "durable" sequence.
	Durable bool
}

// A waiter is one Do call. Whoever removes it from the waiters map — the
// events reader when its command's last event arrives, the sender when the
// append failed — completes it and closes done; Do removes it itself when
// its context ends first.
type waiter struct {
	ctx     context.Context
	ref     string
	payload []byte
	events  []matching.Event // the answer when it came as JSON entries
	id, raw string           // or its events entry: ID and events, encoded
	err     error
	done    chan struct{}
}

// answer returns a completed waiter's events or error.
func (w *waiter) answer(buf []matching.Event) ([]matching.Event, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.raw == "" {
		return w.events, nil
	}
	if n := eventCount(w.raw); cap(buf) < n {
		buf = make([]matching.Event, 0, n)
	}
	evs, err := matching.DecodeEvents(w.raw, buf[:0])
	if err == nil && len(evs) == 0 {
		err = errors.New("no events")
	}
	if err != nil {
		return nil, fmt.Errorf("redisbus: events %s: %w", w.id, err)
	}
	return evs, nil
}

// NewClient returns a client; call Run before Do.
func NewClient(rdb redis.UniversalClient, keys Keys, log *zap.Logger) *Client {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Client{rdb: rdb, keys: keys, log: log, prefix: hex.EncodeToString(b[:]) + "-",
		ready: make(chan struct{}), waiters: map[string]*waiter{}, kick: make(chan struct{}, 1)}
}

// Run tails the events stream from its current end and hands each
// command's events to the waiter of its reference, and sends submitted
// commands to the inbox, until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	after, err := LastEventID(ctx, c.rdb, c.keys)
	if err != nil {
		return err
	}
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		c.send(ctx)
	}()
	defer func() { <-sending }()
	registerLocal(c)
	defer unregisterLocal(c)
	close(c.ready)
	var pending []redis.XMessage // read, not yet durable
	for ctx.Err() == nil {
		if !c.Durable && c.skipLocal(ctx, &after) {
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		block := 200 * time.Millisecond
		if len(pending) > 0 {
			block = 5 * time.Millisecond // poll the durable mark promptly
		}
		msgs, err := readEntries(ctx, c.rdb, c.keys, after, 1024, block)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			c.log.Warn("tailing events", zap.Error(err))
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if len(msgs) > 0 {
			after = msgs[len(msgs)-1].ID
		}
		if !c.Durable {
			for i := range msgs {
				c.deliver(&msgs[i])
			}
			continue
		}
		pending = append(pending, msgs...)
		if len(pending) == 0 {
			continue
		}
		durable, err := durableMark(ctx, c.rdb, c.keys)
		if err != nil {
			continue
		}
		n := 0
		for n < len(pending) && idMillis(pending[n].ID) <= int64(durable) {
			c.deliver(&pending[n])
			n++
		}
		pending = append(pending[:0], pending[n:]...)
	}
	return nil
}

// skipLocal moves the tail's position after past what a linked runner
// leading in this process wrote and answered itself (local.go), and says
// whether the stream ends there: if not, the tail reads what follows, so
// an entry written by anyone else — a new leader the local runner has not
// yet noticed — is always read.
func (c *Client) skipLocal(ctx context.Context, after *string) bool {
	at := uint64(idMillis(*after))
	to := localSkip(c.rdb, c.keys, at)
	if to == 0 {
		return false
	}
	if at < to {
		*after = strconv.FormatUint(to, 10) + "-0"
	}
	last, err := LastEventID(ctx, c.rdb, c.keys)
	return err == nil && uint64(idMillis(last)) <= to
}

// deliver hands the events of an entry's commands to the waiters of their
// references, if this client has any; other clients' commands are not
// decoded.
func (c *Client) deliver(m *redis.XMessage) {
	if batch, ok := m.Values[fieldBatch].(string); ok {
		err := eachRecord(batch, func(ref, raw string) error {
			if strings.HasPrefix(ref, c.prefix) {
				if w := c.take(ref); w != nil {
					w.id, w.raw = m.ID, raw // decoded by Do, in its caller's goroutine
					close(w.done)
				}
			}
			return nil
		})
		if err != nil {
			c.log.Warn("undecodable events entry", zap.String("id", m.ID), zap.Error(err))
		}
		return
	}
	ref, _ := m.Values[fieldRef].(string)
	if !strings.HasPrefix(ref, c.prefix) {
		return
	}
	raw, _ := m.Values[fieldEvent].(string)
	if strings.HasPrefix(raw, "{") { // one event per entry, as JSON (streams written before the compact encoding)
		envs, err := decodeEntry(nil, *m)
		if err != nil || len(envs) != 1 {
			c.log.Warn("undecodable events entry", zap.String("id", m.ID), zap.Error(err))
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		w := c.waiters[ref]
		if w == nil {
			return
		}
		w.events = append(w.events, envs[0].Event)
		if envs[0].Last {
			delete(c.waiters, ref)
			close(w.done)
		}
		return
	}
	w := c.take(ref)
	if w == nil {
		return
	}
	w.id, w.raw = m.ID, raw // decoded by Do, in its caller's goroutine
	close(w.done)
}

// take removes and returns the waiter of ref; nil when none waits.
func (c *Client) take(ref string) *waiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waiters[ref]
	if w != nil {
		delete(c.waiters, ref)
	}
	return w
}

// written answers the waiters of this client among a batch's commands,
// which the runner of this process has just written up to sequence seq as
// the entry id (see local.go).
func (c *Client) written(answers []localAnswer, id string, seq uint64, durable uint64) {
	if c.Durable && durable < seq {
		return // the tail answers once the replicas have it
	}
	for _, a := range answers {
		if !strings.HasPrefix(a.ref, c.prefix) {
			continue
		}
		w := c.take(a.ref)
		if w == nil {
			continue
		}
		// A copy, not the runner's buffer: the decoded events share it.
		// Do decodes it, off the runner's path.
		w.id, w.raw = id, string(a.raw)
		close(w.done)
	}
}

// eventCount is the number of events an entry in the compact encoding
// says it holds (a version byte, then the count), capped by its length:
// the exact capacity to decode it into.
func eventCount(raw string) int {
	if len(raw) < 2 {
		return 0
	}
	n, k := binary.Uvarint([]byte(raw[1:min(len(raw), 11)]))
	if k <= 0 || n > uint64(len(raw)) {
		return 0
	}
	return int(n)
}

// send appends submitted commands to the inbox: everything queued since the
// last round trip goes as one pipeline. A failed append completes its
// waiter with the error.
func (c *Client) send(ctx context.Context) {
	var batch []*waiter
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
		for {
			c.mu.Lock()
			batch, c.queue = c.queue, batch[:0]
			c.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			var sent []*waiter
			for _, w := range batch {
				if w.ctx.Err() == nil { // else its caller gave up before it was sent
					sent = append(sent, w)
				}
			}
			if len(sent) > 0 {
				pipe := c.rdb.Pipeline()
				queueInbox(ctx, pipe, c.keys, len(sent), func(value []byte, i int) []byte {
					value, at := beginRecord(value, sent[i].ref)
					value = append(value, sent[i].payload...)
					endRecord(value, at)
					return value
				})
				cmds, err := pipe.Exec(ctx)
				for i, w := range sent {
					e := err
					if k := i / batchCommands; k < len(cmds) { // its entry's XADD (queueInbox)
						e = cmds[k].Err()
					}
					if e != nil {
						c.fail(w, fmt.Errorf("redisbus: append to inbox: %w", e))
					}
				}
			}
			clear(batch)
		}
	}
}

func (c *Client) fail(w *waiter, err error) {
	c.mu.Lock()
	_, mine := c.waiters[w.ref]
	if mine {
		delete(c.waiters, w.ref)
	}
	c.mu.Unlock()
	if mine {
		w.err = err
		close(w.done)
	}
}

// Do appends cmd to the inbox and returns its events once written. If ctx
// ends first it returns a TIMEOUT error: the command may still be applied
// later (its client order ID makes a retry safe).
func (c *Client) Do(ctx context.Context, cmd matching.Command) ([]matching.Event, error) {
	return c.DoInto(ctx, cmd, nil)
}

// DoInto is Do decoding the answer into buf's memory when it is large
// enough (the events' strings are never buf's): a caller that is done with
// one answer before its next command — a gateway's request worker — reuses
// one slice instead of allocating a few kilobytes per command, which was
// half of what the acknowledgement path allocated.
func (c *Client) DoInto(ctx context.Context, cmd matching.Command, buf []matching.Event) ([]matching.Event, error) {
	if err := c.await(ctx); err != nil {
		return nil, err
	}
	w := c.newWaiter(ctx, cmd)
	c.enqueue(w)
	return c.wait(ctx, w, buf)
}

// DoBatch appends cmds to the inbox together, in order, and calls each
// with every command's events (or error) in that order as they come;
// evs are decoded into buf's memory when it is large enough and are
// valid only during the call. The commands go out in one pipeline, so
// the engine applies them one after another in the order given (another
// client's command may come between two of them). When ctx ends first,
// each command not yet answered gets a TIMEOUT error: it may still be
// applied later.
func (c *Client) DoBatch(ctx context.Context, cmds []matching.Command, buf []matching.Event, each func(i int, evs []matching.Event, err error)) {
	if err := c.await(ctx); err != nil {
		for i := range cmds {
			each(i, nil, err)
		}
		return
	}
	ws := make([]*waiter, len(cmds))
	for i, cmd := range cmds {
		ws[i] = c.newWaiter(ctx, cmd)
	}
	c.enqueue(ws...)
	for i, w := range ws {
		evs, err := c.wait(ctx, w, buf)
		if cap(evs) > cap(buf) {
			buf = evs[:0] // the next answer may decode into it
		}
		each(i, evs, err)
	}
}

// await waits until Run tails the events stream.
func (c *Client) await(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return apperr.New(apperr.Unavailable, "event stream not ready")
	}
}

// newWaiter makes the waiter of a command to submit.
func (c *Client) newWaiter(ctx context.Context, cmd matching.Command) *waiter {
	cmd.Seq, cmd.Time = 0, 0 // the sequencer sets these
	return &waiter{ctx: ctx, payload: matching.AppendCommand(nil, &cmd), done: make(chan struct{}),
		ref: c.prefix + strconv.FormatUint(c.next.Add(1), 10)}
}

// enqueue queues waiters for the sender, all at once so that they leave
// in one pipeline and in order.
func (c *Client) enqueue(ws ...*waiter) {
	c.mu.Lock()
	for _, w := range ws {
		c.waiters[w.ref] = w
	}
	c.queue = append(c.queue, ws...)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default: // the sender is already due to look
	}
}

// wait returns w's answer, or a TIMEOUT error when ctx ends first.
func (c *Client) wait(ctx context.Context, w *waiter, buf []matching.Event) ([]matching.Event, error) {
	select {
	case <-w.done:
		return w.answer(buf)
	case <-ctx.Done():
		c.mu.Lock()
		_, mine := c.waiters[w.ref]
		delete(c.waiters, w.ref)
		c.mu.Unlock()
		if !mine { // completed meanwhile
			<-w.done
			return w.answer(buf)
		}
		return nil, apperr.New(apperr.Timeout, "the engine did not answer in time; the command may still be applied")
	}
}

// queueInbox queues on pipe the inbox entries of n commands, an entry per
// batchCommands of them in order (entry k holds commands k·batchCommands
// onward): Redis sequences an entry's commands together, and the runner
// reads them as one. record appends command i's record to an entry's
// value.
func queueInbox(ctx context.Context, pipe redis.Pipeliner, keys Keys, n int, record func(value []byte, i int) []byte) {
	for from := 0; from < n; from += batchCommands {
		var value []byte
		for i := from; i < min(from+batchCommands, n); i++ {
			value = record(value, i)
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.Inbox, Values: []any{fieldCommands, value}})
	}
}

// Append appends commands to a shard's inbox in one pipeline, an entry per
// batchCommands of them, without waiting for their events: for load
// generators and bulk submitters that read the outcome from the events
// stream. Each command's events carry no reference. On error some of the
// commands may have been appended.
func Append(ctx context.Context, rdb redis.UniversalClient, keys Keys, cmds []matching.Command) error {
	pipe := rdb.Pipeline()
	queueInbox(ctx, pipe, keys, len(cmds), func(value []byte, i int) []byte {
		cmd := cmds[i]
		cmd.Seq, cmd.Time = 0, 0 // the sequencer sets these
		value, at := beginRecord(value, "")
		value = matching.AppendCommand(value, &cmd)
		endRecord(value, at)
		return value
	})
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisbus: append to inbox: %w", err)
	}
	return nil
}
