package settlement

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/matching"
)

// EventSource yields a shard's events in stream order (the Redis events stream).
type EventSource interface {
	ReadEvents(ctx context.Context, after string, max int64, block time.Duration) ([]matching.Envelope, error)
}

// IntoEventSource is an EventSource that can reuse the memory of a previous
// answer, which the caller must be done with.
type IntoEventSource interface {
	ReadEventsInto(ctx context.Context, after string, max int64, block time.Duration, buf []matching.Envelope) ([]matching.Envelope, error)
}

// Store persists batches. Settle must write the whole batch and the new
// position in one transaction, and refuse (ErrPositionMoved) unless the
// stored position is b.After: that is what makes settlement exactly-once
// when a writer restarts or a second one appears.
type Store interface {
	Position(ctx context.Context, shard string) (streamID string, err error)
	Settle(ctx context.Context, shard string, b *Batch) error
}

// Prepared is a batch whose transaction is open with its bulk written;
// Commit finishes it (claiming the position) or rolls it back.
type Prepared interface {
	Commit(ctx context.Context) error
	Rollback(ctx context.Context)
}

// Pipeliner is a Store that can prepare the next batches while an earlier
// one commits. Only Commit may wait for a previous batch of its writer;
// Prepare never does, so the batches in flight cannot deadlock. (Prepare
// can wait for another writer's uncommitted rows; the PostgreSQL store
// bounds that wait, and WriterLocker keeps a second writer from running.)
type Pipeliner interface {
	Prepare(ctx context.Context, shard string, b *Batch) (Prepared, error)
}

// WriterLocker is a Store that can make its writer the shard's only one:
// LockWriter waits (until ctx ends) for the shard's writer lock and returns
// its release. A second writer of a shard then waits as a standby instead
// of settling alongside: exactly-once holds either way (the position
// check), but two pipelines of overlapping batches could otherwise wait on
// each other's uncommitted rows.
type WriterLocker interface {
	LockWriter(ctx context.Context, shard string) (release func(), err error)
}

// ErrPositionMoved means the stored position is not where this writer
// expected: another writer settled, or a commit succeeded unseen.
var ErrPositionMoved = errors.New("settlement: stored position moved")

// ErrGap means the events after the stored position do not start at the
// next sequence: they were trimmed from the stream before they were
// settled (the position went back — PostgreSQL restored from a backup,
// say — while Redis had trimmed up to the newer one). Settlement stops
// there rather than skip fills; it needs an operator.
var ErrGap = errors.New("settlement: events missing after the stored position")

// Consumer is the single settlement writer of one shard.
type Consumer struct {
	Shard     string
	Source    EventSource
	Store     Store
	Log       *zap.Logger
	BatchSize int64         // commands read per transaction at most (more only when one events entry holds more); default 8000
	Wait      time.Duration // how long a read waits for events; default 200 ms
	// Depth is how many batches may be in flight at once (read, bulk
	// written, waiting to commit), each on its own connection; default 3.
	Depth int
	// Linger is the least time from one batch to the next when the first
	// held less than half BatchSize commands (default 20 ms; negative:
	// none). Under light load the reader would otherwise start a
	// transaction for every few commands: at 5,000 orders/s, hundreds of
	// tiny transactions a second. Under load batches are full and follow
	// each other at once; after a quiet spell the first event is read at
	// once.
	Linger time.Duration
	// Settled, when set, is told about every committed batch (metrics, tests).
	Settled func(b *Batch)
	// Durable, when set, is the highest sequence the shard's Redis has made
	// durable (the engine's WaitReplicas mark): nothing beyond it is
	// settled. Redis answers reads of what its primary holds, and a
	// primary lost before its replicas had a batch takes the batch with
	// it — the engine then gives its sequences to other commands, and a
	// ledger that had settled the lost batch would hold fills that never
	// happened (and skip the new ones). Nil: everything written counts.
	Durable func(ctx context.Context) (uint64, error)

	readBuf []matching.Envelope // the last read's envelopes, reused by the next (one reader at a time)
	durable uint64              // the highest durable mark Durable returned: a read below it asks no more
}

// Run settles until ctx ends. Transient errors are logged and retried from
// the stored position; nothing is skipped.
func (c *Consumer) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := c.runLocked(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		c.Log.Warn("settlement interrupted; resuming from the stored position", zap.String("shard", c.Shard), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}

// runLocked runs the writer under the shard's writer lock when the store
// has one, taken afresh on every attempt (a lock whose connection died
// with the database is gone).
func (c *Consumer) runLocked(ctx context.Context) error {
	l, ok := c.Store.(WriterLocker)
	if !ok {
		return c.run(ctx)
	}
	release, err := l.LockWriter(ctx, c.Shard)
	if err != nil {
		return err
	}
	defer release()
	return c.run(ctx)
}

func (c *Consumer) run(ctx context.Context) error {
	after, err := c.Store.Position(ctx, c.Shard)
	if err != nil {
		return err
	}
	if p, ok := c.Store.(Pipeliner); ok {
		return c.pipeline(ctx, p, after)
	}
	for ctx.Err() == nil {
		var err error
		if _, after, err = c.settleNext(ctx, after); err != nil {
			return err
		}
	}
	return nil
}

// pipeline settles with the stages of several batches overlapping: a
// reader goroutine reads and decodes the next batches; each batch's bulk is
// written (Prepare) on its own connection as soon as it is read, up to
// Depth batches in flight, while the batch before it commits (its position
// claim, balances and commit). Bulk writes of different batches conflict
// with nothing, so they run side by side on two cores; commits stay
// strictly in order: batch k+1 commits only after k's commit succeeded. If
// any batch fails, every later one is rolled back and the writer resumes
// from the stored position. Waits point only backwards (a batch waits for
// its predecessor's outcome, never the reverse), so the stages cannot
// deadlock.
func (c *Consumer) pipeline(ctx context.Context, store Pipeliner, after string) error {
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	type read struct {
		b   *Batch
		err error
	}
	batches := make(chan read, 1)
	go func() {
		defer close(batches)
		var lingerUntil time.Time // after a batch that was not full
		for from := after; readCtx.Err() == nil; {
			if d := time.Until(lingerUntil); d > 0 {
				select {
				case <-time.After(d):
				case <-readCtx.Done():
					return
				}
			}
			b, err := c.nextBatch(readCtx, from)
			if b == nil && err == nil {
				continue
			}
			if err == nil {
				lingerUntil = c.lingerAfter(b)
			}
			select {
			case batches <- read{b, err}:
			case <-readCtx.Done():
				return
			}
			if err != nil {
				return
			}
			from = b.LastStreamID
		}
	}()
	depth := c.Depth
	if depth <= 0 {
		depth = 3
	}
	// Each batch's outcome channel carries it to its successor and,
	// through inFlight, to this loop; failed ends the loop early.
	inFlight := make(chan chan error, depth)
	failed := make(chan struct{})
	var failOnce sync.Once
	fail := func() { failOnce.Do(func() { close(failed) }) }
	prev := make(chan error, 1)
	prev <- nil
	var err error
loop:
	for {
		var r read
		var ok bool
		select {
		case r, ok = <-batches:
		case <-failed:
			break loop
		}
		if !ok {
			break // ctx ended
		}
		if r.err != nil {
			err = r.err
			break
		}
		if len(inFlight) == depth { // the oldest must finish before another starts
			if e := <-<-inFlight; e != nil {
				err = e
				break
			}
		}
		b, wait, done := r.b, prev, make(chan error, 2) // one for the successor, one for this loop
		inFlight <- done
		prev = done
		go func() {
			err := c.settlePipelined(ctx, store, b, wait)
			if err != nil {
				fail()
			}
			done <- err
			done <- err
		}()
	}
	stopReading()
	for range batches { // let the reader end
	}
	for len(inFlight) > 0 {
		if e := <-<-inFlight; e != nil && err == nil {
			err = e
		}
	}
	return err
}

// batchSize is BatchSize or its default.
func (c *Consumer) batchSize() int64 {
	if c.BatchSize > 0 {
		return c.BatchSize
	}
	return 8000
}

// lingerAfter is when the batch after b may be read: at once after a batch
// of at least half BatchSize commands (a reader under a backlog: its reads
// end at entry boundaries, a little short of the size), Linger later
// otherwise.
func (c *Consumer) lingerAfter(b *Batch) time.Time {
	linger := c.Linger
	if linger == 0 {
		linger = 20 * time.Millisecond
	}
	if linger < 0 || 2*(int64(b.LastSeq-b.FirstSeq)+1) >= c.batchSize() {
		return time.Time{}
	}
	return time.Now().Add(linger)
}

// settlePipelined prepares a batch, waits for its predecessor's outcome and
// commits it if that succeeded; otherwise it rolls it back.
func (c *Consumer) settlePipelined(ctx context.Context, store Pipeliner, b *Batch, prev <-chan error) error {
	p, err := store.Prepare(ctx, c.Shard, b)
	if perr := <-prev; perr != nil {
		if err == nil {
			p.Rollback(ctx)
		}
		return perr
	}
	if err == nil {
		err = p.Commit(ctx)
	}
	if err != nil {
		return fmt.Errorf("settle events after %s..%s: %w", b.After, b.LastStreamID, err)
	}
	if c.Settled != nil {
		c.Settled(b)
	}
	return nil
}

// SettleOnce settles at most one batch after the stored position and
// returns how many events it settled.
func (c *Consumer) SettleOnce(ctx context.Context) (int, error) {
	after, err := c.Store.Position(ctx, c.Shard)
	if err != nil {
		return 0, err
	}
	n, _, err := c.settleNext(ctx, after)
	return n, err
}

func (c *Consumer) settleNext(ctx context.Context, after string) (int, string, error) {
	b, err := c.nextBatch(ctx, after)
	if err != nil || b == nil {
		return 0, after, err
	}
	if err := c.Store.Settle(ctx, c.Shard, b); err != nil {
		return 0, after, fmt.Errorf("settle events after %s..%s: %w", after, b.LastStreamID, err)
	}
	if c.Settled != nil {
		c.Settled(b)
	}
	return b.Events, b.LastStreamID, nil
}

// nextBatch reads the next batch after the stream position after, or nil
// when there is nothing to settle yet.
func (c *Consumer) nextBatch(ctx context.Context, after string) (*Batch, error) {
	size, wait := c.batchSize(), c.Wait
	if wait <= 0 {
		wait = 200 * time.Millisecond
	}
	var envs []matching.Envelope
	var err error
	if into, ok := c.Source.(IntoEventSource); ok {
		// The batch copies what it keeps, so the next read may reuse the
		// envelopes' memory: tens of megabytes a second less for the
		// collector to trace under load.
		envs, err = into.ReadEventsInto(ctx, after, size, wait, c.readBuf)
		c.readBuf = envs
	} else {
		envs, err = c.Source.ReadEvents(ctx, after, size, wait)
	}
	if err != nil || len(envs) == 0 {
		return nil, err
	}
	if c.Durable != nil && envs[len(envs)-1].Event.Seq > c.durable {
		d, err := c.Durable(ctx)
		if err != nil {
			return nil, err
		}
		c.durable = max(c.durable, d)
		n := 0 // the durable commands' events, whole: the mark covers whole commands
		for n < len(envs) && envs[n].Event.Seq <= c.durable {
			n++
		}
		if n == 0 {
			// Written, not durable yet: look again shortly, not at once
			// (the read would return the same events without waiting).
			select {
			case <-time.After(min(wait, 20*time.Millisecond)):
			case <-ctx.Done():
			}
			return nil, nil
		}
		envs = envs[:n]
	}
	// A batch ends at a command's last event: the engine's balance events
	// come last in a command, and the ledger and the engine's balance view
	// must be settled to the same sequence (see Reconcile). A command with
	// more events than the batch size is read on until its end.
	for {
		if end := lastCommandEnd(envs); end > 0 {
			envs = envs[:end]
			break
		}
		more, err := c.Source.ReadEvents(ctx, envs[len(envs)-1].StreamID, size, wait) // a fresh slice: envs may be readBuf
		if err != nil {
			return nil, err
		}
		if len(more) == 0 {
			return nil, nil // the command's end is not written yet
		}
		envs = append(envs, more...)
	}
	// Sized up front: under load a batch holds thousands of fills, and
	// growing its slices by doubling made most of settlement's garbage.
	var trades, custody int
	for i := range envs {
		switch envs[i].Event.Kind {
		case matching.EvTrade:
			trades++
		case matching.EvDeposited, matching.EvWithdrawn:
			custody++
		}
	}
	b := &Batch{After: after, Fills: make([]Fill, 0, trades), Postings: make([]Posting, 0, 2*custody)}
	for i := range envs {
		b.Add(envs[i].StreamID, envs[i].Event)
	}
	return b, nil
}

// lastCommandEnd is the length of the longest prefix of envs that ends with
// a command's last event (0 if none does).
func lastCommandEnd(envs []matching.Envelope) int {
	for i := len(envs) - 1; i >= 0; i-- {
		if envs[i].Last {
			return i + 1
		}
	}
	return 0
}
