package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
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
type Client struct {
	rdb    redis.UniversalClient
	keys   Keys
	log    *zap.Logger
	prefix string // unique per client, so references never collide across processes
	next   atomic.Uint64
	ready  chan struct{}

	mu      sync.Mutex // guards waiters; never held while doing I/O
	waiters map[string]*waiter

	// Durable, when set, answers a command only once the engine has
	// recorded that its events reached the replicas it waits for (the
	// runner's WaitReplicas): the engine hash's "durable" sequence.
	Durable bool
}

type waiter struct {
	events []matching.Event
	done   chan struct{}
}

// NewClient returns a client; call Run before Do.
func NewClient(rdb redis.UniversalClient, keys Keys, log *zap.Logger) *Client {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Client{rdb: rdb, keys: keys, log: log, prefix: hex.EncodeToString(b[:]),
		ready: make(chan struct{}), waiters: map[string]*waiter{}}
}

// Run tails the events stream from its current end and hands each event to
// the waiter of its reference, until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	after, err := LastEventID(ctx, c.rdb, c.keys)
	if err != nil {
		return err
	}
	close(c.ready)
	var pending []matching.Envelope // read, not yet durable
	for ctx.Err() == nil {
		block := 200 * time.Millisecond
		if len(pending) > 0 {
			block = 5 * time.Millisecond // poll the durable mark promptly
		}
		evs, err := ReadEvents(ctx, c.rdb, c.keys, after, 1024, block)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			c.log.Warn("tailing events", zap.Error(err))
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if len(evs) > 0 {
			after = evs[len(evs)-1].StreamID
		}
		if !c.Durable {
			for _, ev := range evs {
				c.deliver(ev)
			}
			continue
		}
		pending = append(pending, evs...)
		if len(pending) == 0 {
			continue
		}
		durable, err := c.rdb.HGet(ctx, c.keys.Engine, "durable").Uint64()
		if err != nil && !errors.Is(err, redis.Nil) {
			continue
		}
		n := 0
		for n < len(pending) && pending[n].Event.Seq <= durable {
			c.deliver(pending[n])
			n++
		}
		pending = append(pending[:0], pending[n:]...)
	}
	return nil
}

func (c *Client) deliver(ev matching.Envelope) {
	if ev.Ref == "" {
		return
	}
	c.mu.Lock()
	w := c.waiters[ev.Ref]
	if w != nil {
		w.events = append(w.events, ev.Event)
		if ev.Last {
			delete(c.waiters, ev.Ref)
			close(w.done)
		}
	}
	c.mu.Unlock()
}

// Do appends cmd to the inbox and returns its events once written. If ctx
// ends first it returns a TIMEOUT error: the command may still be applied
// later (its client order ID makes a retry safe).
func (c *Client) Do(ctx context.Context, cmd matching.Command) ([]matching.Event, error) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, apperr.New(apperr.Unavailable, "event stream not ready")
	}
	cmd.Seq, cmd.Time = 0, 0 // the sequencer sets these
	payload := matching.AppendCommand(nil, &cmd)
	ref := c.prefix + "-" + strconv.FormatUint(c.next.Add(1), 10)
	w := &waiter{done: make(chan struct{})}
	c.mu.Lock()
	c.waiters[ref] = w
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, ref)
		c.mu.Unlock()
	}()
	if err := c.rdb.XAdd(ctx, &redis.XAddArgs{Stream: c.keys.Inbox, Values: []any{fieldCommand, payload, fieldRef, ref}}).Err(); err != nil {
		return nil, fmt.Errorf("redisbus: append to inbox: %w", err)
	}
	select {
	case <-w.done:
		return w.events, nil
	case <-ctx.Done():
		return nil, apperr.New(apperr.Timeout, "the engine did not answer in time; the command may still be applied")
	}
}

// Append appends commands to a shard's inbox in one pipeline, without
// waiting for their events: for load generators and bulk submitters that
// read the outcome from the events stream. Each command's events carry no
// reference. On error some of the commands may have been appended.
func Append(ctx context.Context, rdb redis.UniversalClient, keys Keys, cmds []matching.Command) error {
	pipe := rdb.Pipeline()
	for _, cmd := range cmds {
		cmd.Seq, cmd.Time = 0, 0 // the sequencer sets these
		payload := matching.AppendCommand(nil, &cmd)
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys.Inbox, Values: []any{fieldCommand, payload, fieldRef, ""}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisbus: append to inbox: %w", err)
	}
	return nil
}
