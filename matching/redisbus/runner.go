package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/matching"
)

// LoadScripts loads the Lua scripts, so that pipelined or clustered calls
// never meet NOSCRIPT.
func LoadScripts(ctx context.Context, rdb redis.UniversalClient) error {
	for _, script := range []*redis.Script{initFence, acquireLease, renewLease, releaseLease, readDepth, readOpenOrders, trimScript, markDurable} {
		if err := script.Load(ctx, rdb).Err(); err != nil {
			return fmt.Errorf("redisbus: load scripts: %w", err)
		}
	}
	return nil
}

// Runner is the engine loop of one shard: it reads the inbox strictly in
// order, in batches, applies each command with the sequence and time the
// inbox gave it, and writes the batch's events atomically. On start it
// replays the whole inbox into a fresh engine, writing only the events of
// commands past the stored position.
type Runner struct {
	rdb     redis.UniversalClient
	keys    Keys
	engine  *matching.Engine
	log     *zap.Logger
	batch   int64
	applied prometheus.Counter
	written prometheus.Counter
	// snapshots counts the snapshots this runner took, as leader or standby.
	snapshots *prometheus.CounterVec
	// snapshotSeconds times each snapshot's parts: the engine's pause for
	// the copy, and the work after it in the background.
	snapshotSeconds *prometheus.HistogramVec

	// Snapshots: one is taken after a batch when SnapshotEvery commands or
	// SnapshotInterval have passed since the last (either 0: not on that
	// count), and written to Redis in the background, and one when the
	// writer stops cleanly; SnapshotKeep are kept (default 2). On start the runner restores the newest usable snapshot,
	// if any, and replays the inbox only after it.
	SnapshotEvery    uint64
	SnapshotInterval time.Duration
	SnapshotKeep     int
	// SnapshotSpacing, when above 0, lets a snapshot start only when
	// SnapshotSpacing times the last one's cost — the engine's pause for
	// the copy and the background work after it, in wall time — has
	// passed since the last one started, whatever the counts above say.
	// Snapshots then take about 1/SnapshotSpacing of the time at most,
	// however large the state grows (a snapshot's cost grows with the
	// state, not with the commands it covers); the price is more inbox to
	// replay after a restart (docs/durability.md), which
	// SnapshotMaxReplay bounds: when above 0, a snapshot due by the counts
	// is taken regardless of the spacing once that many commands have
	// passed since the last one.
	SnapshotSpacing   int
	SnapshotMaxReplay uint64
	// SnapshotStandby leaves snapshots to the standby, so that the
	// leader, which answers clients, never pauses for one: a runner takes
	// them on the counts above while it stands by, and while it leads only
	// when no newer snapshot has been stored for three times those counts
	// (no standby is running). Give it to every runner of a shard that has
	// a standby.
	SnapshotStandby bool
	// WaitReplicas, when above 0, makes the writer wait (WAIT, up to
	// WaitTimeout, default 1 s) after each batch until that many replicas
	// have it, and then record the batch's sequence as durable (engine
	// hash "durable"); a Client with Durable set answers only then. Not for
	// Redis Cluster clients (WAIT has no key to route by).
	WaitReplicas int
	WaitTimeout  time.Duration
	durable      uint64 // the last sequence marked durable

	// NoTrim keeps the inbox and events whole (the leader otherwise trims
	// them after each snapshot; see trim.go).
	NoTrim bool

	// Lease, when set, makes the runner write only while it holds the
	// shard's lease; until then it is a standby that applies what the
	// leader has written and takes over when the lease lapses.
	Lease *Lease

	beforeRead     func() // tests: runs before each read of the inbox
	beforeWrite    func() // tests: runs before each write
	mirrorGroupMax int    // tests: a smaller bound on the mirror's groups
	afterWrite     func() // tests: runs after each write

	seq atomic.Uint64 // the engine's sequence after the last batch applied

	local *localWriter // what this process's clients learn from the runner (local.go)

	snapSeq    uint64                  // the sequence of the last snapshot taken
	snapAt     time.Time               // when it was taken
	snapCost   time.Duration           // what it cost: the pause and the background work (set before snapSaving closes)
	snapSaving chan struct{}           // closed when the snapshot being written is done; nil when none
	snapMem    matching.SnapshotMemory // every snapshot's copy and encoding, one at a time (snapSaving)
}

// NewRunner returns a runner for a fresh engine over the shard's keys. The
// engine carries the configured symbols; when the runner restores a
// snapshot it replaces the engine (see Engine).
func NewRunner(rdb redis.UniversalClient, keys Keys, engine *matching.Engine, log *zap.Logger, reg prometheus.Registerer) *Runner {
	r := &Runner{rdb: rdb, keys: keys, engine: engine, log: log, batch: batchCommands,
		applied: prometheus.NewCounter(prometheus.CounterOpts{Name: "satu_engine_commands_applied_total",
			Help: "Commands applied by the engine, replays included.", ConstLabels: prometheus.Labels{"shard": keys.Shard}}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "satu_engine_events_written_total",
			Help: "Events written to the events stream.", ConstLabels: prometheus.Labels{"shard": keys.Shard}}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "satu_engine_snapshots_total",
			Help: "Snapshots this engine took while running, by its role then (leader or standby).", ConstLabels: prometheus.Labels{"shard": keys.Shard}},
			[]string{"role"}),
		snapshotSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "satu_engine_snapshot_seconds",
			Help:    "Each snapshot's engine pause (the copy) and background work (completing, encoding, writing, trimming), in wall time.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9), ConstLabels: prometheus.Labels{"shard": keys.Shard}},
			[]string{"part"}),
	}
	if reg != nil {
		reg.MustRegister(r.applied, r.written, r.snapshots, r.snapshotSeconds)
	}
	return r
}

// Engine is the runner's engine: the one given to NewRunner, or the one
// restored from a snapshot when Run started. Read it only while Run is not
// running.
func (r *Runner) Engine() *matching.Engine { return r.engine }

// Seq is the sequence the runner's engine has applied up to (safe to read
// while Run runs).
func (r *Runner) Seq() uint64 { return r.seq.Load() }

// ErrStale means another engine wrote this shard's events: this one must stop.
var ErrStale = errors.New("redisbus: engine position moved under this writer")

// Run applies the inbox until ctx ends (nil) or an error occurs.
func (r *Runner) Run(ctx context.Context) error {
	err := r.run(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil // stopped in a step that reports the stop as its error (during the start, say)
	}
	return err
}

func (r *Runner) run(ctx context.Context) error {
	if err := LoadScripts(ctx, r.rdb); err != nil {
		return err
	}
	published, err := r.publishedSeq(ctx)
	if err != nil {
		return err
	}
	after := "0"
	r.snapAt = time.Now() // the snapshot interval counts from the start
	if r.engine.Seq() == 0 {
		e, meta, err := LoadSnapshot(ctx, r.rdb, r.keys, matching.Config{Symbols: r.engine.Symbols()}, r.log)
		switch {
		case err == nil:
			r.engine, after = e, meta.Inbox
			r.snapSeq, r.snapAt = meta.Seq, time.Now()
			r.seq.Store(e.Seq())
			r.log.Info("restored a snapshot", zap.Uint64("seq", meta.Seq), zap.Int("bytes", meta.Bytes))
		case !errors.Is(err, ErrNoSnapshot):
			return err
		}
		if trimmed, _, err := trimPoint(ctx, r.rdb, r.keys); err != nil {
			return err
		} else if r.engine.Seq() < trimmed {
			return fmt.Errorf("%w below sequence %d and no usable snapshot reaches it: the shard cannot be recovered from Redis alone",
				ErrTrimmed, trimmed)
		}
	}
	defer r.waitSnapshot()
	lease := newLeaseState(r.Lease)
	defer lease.release(r.rdb, r.keys)
	r.local = registerWriter(r.rdb, r.keys)
	defer unregisterWriter(r.rdb, r.keys, r.local)
	if lease.leading {
		r.local.lead(published)
	}
	// One batch's write may be in flight while the next is read and
	// applied: the engine's work overlaps Redis's. Writes stay in order —
	// the next is sent only after the previous one succeeded — and each
	// write's arguments live in one of two buffers until it is done.
	var w pipelinedWrite
	fw := fencedWriter{rdb: r.rdb, keys: r.keys}
	defer fw.close() // after the write in flight (deferred calls run last first)
	defer w.wait()
	var bufs [2]writeBuf
	cur := 0
	var events []matching.Event
	var cmds []inboxCommand // an entry's commands, decoded
	perEntry := int64(1)    // commands per inbox entry in the last batch
	mirror := newMirrorBatch(r.mirrorGroupMax)
	mirror.allMarkets = true // a writer's first batch records every symbol's state
	for ctx.Err() == nil {
		took, err := lease.tick(ctx, r.rdb, r.keys)
		if err != nil {
			// The write in flight was sent first: its refusal (FENCED)
			// says more than the lost renewal.
			if _, werr := w.finish(published); werr != nil {
				return werr
			}
			return err
		}
		if took || !lease.leading {
			// A standby applies only what the leader has written; a new
			// leader continues from what was written last.
			if published, err = r.publishedSeq(ctx); err != nil {
				if ctx.Err() != nil {
					break // stopped meanwhile
				}
				return err
			}
			// One that fell behind the trim point cannot read on: the
			// commands it needs are gone. It must restart from a snapshot.
			if trimmed, _, err := trimPoint(ctx, r.rdb, r.keys); err != nil {
				if ctx.Err() != nil {
					break
				}
				return err
			} else if r.engine.Seq() < trimmed {
				return fmt.Errorf("%w below sequence %d while this engine is at %d: restart it (it restores a snapshot)",
					ErrTrimmed, trimmed, r.engine.Seq())
			}
			if took {
				r.log.Info("took the shard's lease: writing", zap.String("epoch", lease.epoch), zap.Uint64("seq", published))
				r.local.lead(published)
				mirror.allMarkets = true // every symbol's state, in case an older writer did not record it
			}
		}
		// A batch is at most r.batch commands, and an entry may hold many:
		// read about as many entries as the last read's commands per entry
		// say will fill a batch (the entries that do not fit are read
		// again next time).
		limit := r.batch
		if !lease.leading {
			if limit = min(limit, int64(published-r.engine.Seq())); limit <= 0 {
				select { // caught up with the leader
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
		}
		count := max(1, min(limit, limit/perEntry))
		if r.beforeRead != nil {
			r.beforeRead()
		}
		res, err := r.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{r.keys.Inbox, after}, Count: count, Block: 200 * time.Millisecond}).Result()
		if errors.Is(err, redis.Nil) {
			if published, err = w.finish(published); err != nil {
				return err
			}
			// Idle: a batch the replicas had not confirmed is retried.
			if r.WaitReplicas > 0 && lease.leading && r.durable < published {
				r.waitReplicas(ctx, published)
			}
			// Idle and caught up: if something falls due by now (a GTD
			// expiry, the end of a volatility auction, a scheduled phase),
			// sequence a tick so that it happens without other traffic.
			if d := r.engine.NextDeadline(); lease.leading && d != 0 && time.Now().UnixMilli() >= d {
				if err := r.tick(ctx); err != nil && ctx.Err() == nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("redisbus: read inbox: %w", err)
		}
		msgs := res[0].Messages
		if !lease.leading || r.engine.Seq() < published {
			// A standby, or a new leader still catching up, may lag
			// behind the trim point, and a trim between the check at the
			// top of this loop and the read would make the read skip what
			// was trimmed. (A leader that has caught up is never behind
			// it: snapshots and so trims are at most where it wrote.)
			if err := checkNotTrimmed(ctx, r.rdb, r.keys, after); err != nil {
				return err
			}
		}
		expected := r.engine.Seq()
		events = events[:0]
		buf := &bufs[cur]
		buf.reset()
		mirror.reset()
		written, applied, entries := 0, int64(0), int64(0)
		for _, m := range msgs {
			cmds = entryCommands(m, cmds[:0])
			// Whole entries only: a batch ends where an entry ends, so
			// that the inbox position is an entry ID. A writer takes a
			// batch's first entry whatever its size; a standby never goes
			// past what the leader wrote (which ends where an entry ends).
			if n := int64(len(cmds)); (entries > 0 || !lease.leading) && applied+n > limit {
				break
			}
			entries++
			t := idMillis(m.ID)
			for i := range cmds {
				start, ref := len(events), cmds[i].ref
				var seq uint64
				if events, seq, err = applyCommand(r.engine, &cmds[i], t, events); err != nil {
					return err
				}
				r.applied.Inc()
				applied++
				if seq <= published {
					events = events[:start] // replayed: its events are already written
					continue
				}
				// The commands' records share one buffer, the entry's value;
				// a local answer's slice of it stays valid when a later append
				// moves the buffer.
				var at int
				buf.arena, at = beginRecord(buf.arena, ref)
				buf.arena = matching.AppendEvents(buf.arena, events[start:])
				endRecord(buf.arena, at)
				if ref != "" {
					buf.answers = append(buf.answers, localAnswer{ref: ref, raw: buf.arena[at+4 : len(buf.arena) : len(buf.arena)]})
				}
				written += len(events) - start
				for j := start; j < len(events); j++ {
					mirror.add(&events[j])
				}
			}
			after = m.ID
		}
		if entries == 0 { // a standby whose next entry goes past the leader's position
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		perEntry = max(1, applied/entries)
		r.seq.Store(r.engine.Seq())
		if r.engine.Seq() <= published {
			if r.SnapshotStandby && !lease.leading {
				r.maybeSnapshot(ctx, after, false)
			}
			continue
		}
		if expected < published {
			expected = published
		}
		seq := strconv.FormatUint(r.engine.Seq(), 10)
		bw := &buf.batch
		bw.expected, bw.seq, bw.inbox, bw.epoch, bw.entry, bw.records = strconv.FormatUint(expected, 10), seq, after, lease.epoch, seq+"-0", buf.arena
		if bw.mirror, err = mirror.ops(r.engine, r.keys, bw.mirror); err != nil {
			return err
		}
		// The previous write must have succeeded before this one is sent.
		if published, err = w.finish(published); err != nil {
			return err
		}
		if r.beforeWrite != nil {
			r.beforeWrite()
		}
		bw, answers := &buf.batch, buf.answers
		w.start(func() error { return r.write(ctx, &fw, bw, answers) }, r.engine.Seq(), written, r.written)
		cur = 1 - cur
		// The hook and a snapshot need the engine at the written sequence:
		// they wait for this write.
		if r.afterWrite != nil || r.snapshotDue(true) {
			if published, err = w.finish(published); err != nil {
				return err
			}
			if r.afterWrite != nil {
				r.afterWrite()
			}
			r.maybeSnapshot(ctx, after, true)
		}
	}
	if p, err := w.finish(published); err == nil {
		published = p
	} else if ctx.Err() == nil {
		return err
	}
	// A clean stop of the writer leaves a snapshot of the final state, so
	// the next start replays nothing.
	if lease.leading && r.SnapshotEvery+uint64(r.SnapshotInterval) > 0 && r.engine.Seq() > r.snapSeq && r.engine.Seq() == published {
		r.waitSnapshot()
		stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		snap := r.engine.SnapshotLaterIn(&r.snapMem)()
		if meta, err := saveSnapshot(stop, r.rdb, r.keys, snap, after, r.SnapshotKeep, &r.snapMem.Encoded); err != nil {
			r.log.Error("final snapshot not written", zap.Error(err))
		} else {
			r.log.Info("final snapshot written", zap.Uint64("seq", meta.Seq))
		}
	}
	return nil
}

// writeBuf holds one batch's write: the transaction (fence.go), the
// entry's records (its arena) and, for this process's clients, each
// referenced command's events within them.
type writeBuf struct {
	batch   batchWrite
	arena   []byte
	answers []localAnswer
}

// localAnswer is a written command's reference and encoded events.
type localAnswer struct {
	ref string
	raw []byte
}

func (b *writeBuf) reset() {
	clear(b.batch.mirror)
	clear(b.answers)
	b.batch = batchWrite{mirror: b.batch.mirror[:0]}
	b.arena, b.answers = b.arena[:0], b.answers[:0]
}

// pipelinedWrite is the batch write in flight, if any.
type pipelinedWrite struct {
	done    chan error // nil when none is in flight
	seq     uint64     // the sequence it writes up to
	events  int
	counter prometheus.Counter
}

func (w *pipelinedWrite) start(write func() error, seq uint64, events int, counter prometheus.Counter) {
	w.done, w.seq, w.events, w.counter = make(chan error, 1), seq, events, counter
	go func(done chan<- error) { done <- write() }(w.done)
}

// finish waits for the write in flight and returns the written sequence
// (published when none was in flight).
func (w *pipelinedWrite) finish(published uint64) (uint64, error) {
	if w.done == nil {
		return published, nil
	}
	err := <-w.done
	w.done = nil
	if err != nil {
		return published, err
	}
	w.counter.Add(float64(w.events))
	return w.seq, nil
}

// wait waits for a write in flight, ignoring its outcome (Run is returning).
func (w *pipelinedWrite) wait() {
	if w.done != nil {
		<-w.done
		w.done = nil
	}
}

// write runs the batch's transaction and, with WaitReplicas, waits for
// the replicas.
func (r *Runner) write(ctx context.Context, fw *fencedWriter, b *batchWrite, answers []localAnswer) error {
	if err := fw.write(ctx, b); err != nil {
		return err
	}
	seq, _ := strconv.ParseUint(b.seq, 10, 64)
	if r.WaitReplicas > 0 {
		r.waitReplicas(ctx, seq)
	}
	// The events are written: this process's clients are answered now.
	for _, c := range localClients(r.rdb, r.keys) {
		c.written(answers, b.entry, seq, r.durable)
	}
	r.local.wrote(seq, b.entry, b.records)
	return nil
}

// waitReplicas waits until WaitReplicas replicas have everything written
// so far, then marks it durable; when they do not answer in time the mark
// stays behind (Durable clients wait) and the next batch tries again.
func (r *Runner) waitReplicas(ctx context.Context, seq uint64) {
	timeout := r.WaitTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	// WAIT counts the replicas that have every write of its own
	// connection, and the batch may have gone out on another one: a write
	// on the same connection first (the sequence asked for, "waitSeq")
	// takes the connection's offset past everything written so far.
	pipe := r.rdb.Pipeline()
	pipe.HSet(ctx, r.keys.Engine, "waitSeq", seq)
	wait := pipe.Do(ctx, "WAIT", r.WaitReplicas, timeout.Milliseconds())
	_, _ = pipe.Exec(ctx)
	n, err := wait.Int64()
	if err != nil || n < int64(r.WaitReplicas) {
		if ctx.Err() == nil {
			r.log.Warn("replicas behind: commands are not acknowledged until they catch up",
				zap.Int64("replicas", n), zap.Int("want", r.WaitReplicas), zap.Error(err))
		}
		return
	}
	if err := markDurable.Run(ctx, r.rdb, []string{r.keys.Engine}, seq).Err(); err != nil && !errors.Is(err, redis.Nil) {
		if ctx.Err() == nil {
			r.log.Warn("could not mark the batch durable", zap.Error(err))
		}
		return
	}
	r.durable = seq
}

// markDurable raises the engine hash's durable mark to ARGV[1], never
// lowers it: a deposed leader that wakes up after a stall between its WAIT
// and its mark must not take back what the new leader marked (its
// durable clients would wait for a mark the idle new leader does not
// repeat).
var markDurable = redis.NewScript(`
if tonumber(redis.call('HGET', KEYS[1], 'durable') or '0') < tonumber(ARGV[1]) then
	redis.call('HSET', KEYS[1], 'durable', ARGV[1])
end
return 1
`)

// maybeSnapshot takes a snapshot after the command whose inbox entry is
// inboxID, if one is due (snapshotDue), and writes it in the background. A
// leader that leaves snapshots to a standby first looks for a newer one
// the standby stored, and takes its own only when there is none.
func (r *Runner) maybeSnapshot(ctx context.Context, inboxID string, leading bool) {
	if !r.snapshotDue(leading) {
		return
	}
	if leading && r.SnapshotStandby {
		newest, err := r.rdb.ZRevRangeWithScores(ctx, r.keys.snapshots(), 0, 0).Result()
		if err != nil {
			r.log.Warn("reading the stored snapshots", zap.Error(err))
		} else if len(newest) == 1 && uint64(newest[0].Score) > r.snapSeq && uint64(newest[0].Score) <= r.engine.Seq() {
			r.snapSeq, r.snapAt = uint64(newest[0].Score), time.Now() // a standby's: due again three counts after it
			return
		}
	}
	seq := r.engine.Seq()
	if r.snapSaving != nil {
		select {
		case <-r.snapSaving:
			r.snapSaving = nil
		default:
			return // the previous one is still being written
		}
	}
	// The engine's pause: the copy, into the memory of the snapshot before
	// (written by now); the rest is done in the background.
	start := time.Now()
	finish := r.engine.SnapshotLaterIn(&r.snapMem)
	pause := time.Since(start)
	role := "standby"
	if leading {
		role = "leader"
	}
	r.snapshots.WithLabelValues(role).Inc()
	r.snapshotSeconds.WithLabelValues("pause").Observe(pause.Seconds())
	r.snapSeq, r.snapAt = seq, start
	done := make(chan struct{})
	r.snapSaving = done
	go func() {
		background := time.Now()
		defer close(done)
		defer func() {
			took := time.Since(background)
			r.snapshotSeconds.WithLabelValues("background").Observe(took.Seconds())
			r.snapCost = pause + took
		}()
		meta, err := saveSnapshot(context.WithoutCancel(ctx), r.rdb, r.keys, finish(), inboxID, r.SnapshotKeep, &r.snapMem.Encoded)
		if err != nil {
			r.log.Error("snapshot not written", zap.Uint64("seq", seq), zap.Error(err))
			return
		}
		r.log.Info("snapshot written", zap.Uint64("seq", meta.Seq), zap.Int("bytes", meta.Bytes), zap.Int("chunks", meta.Chunks),
			zap.Duration("pause", pause), zap.Duration("background", time.Since(background)))
		if !r.NoTrim {
			if err := trim(context.WithoutCancel(ctx), r.rdb, r.keys); err != nil {
				r.log.Error("trimming failed", zap.Error(err))
			}
		}
	}()
}

// snapshotDue says whether a snapshot of the engine as it is is due (and
// can be taken: the previous one is written, and SnapshotSpacing allows
// it). A leader that leaves snapshots to a standby counts three times as
// far.
func (r *Runner) snapshotDue(leading bool) bool {
	if r.snapSaving != nil {
		select {
		case <-r.snapSaving:
		default:
			return false
		}
	}
	every, interval := r.SnapshotEvery, r.SnapshotInterval
	if leading && r.SnapshotStandby {
		every, interval = 3*every, 3*interval
	}
	seq := r.engine.Seq()
	if r.SnapshotSpacing > 0 && time.Since(r.snapAt) < time.Duration(r.SnapshotSpacing)*r.snapCost &&
		(r.SnapshotMaxReplay == 0 || seq-r.snapSeq < r.SnapshotMaxReplay) {
		return false
	}
	return every > 0 && seq-r.snapSeq >= every ||
		interval > 0 && seq > r.snapSeq && time.Since(r.snapAt) >= interval
}

// waitSnapshot waits for a snapshot being written.
func (r *Runner) waitSnapshot() {
	if r.snapSaving != nil {
		<-r.snapSaving
		r.snapSaving = nil
	}
}

// tick appends a tick command to the inbox. Ticks are idempotent no-ops
// apart from the time they carry: a standby engine adding its own is
// harmless.
func (r *Runner) tick(ctx context.Context) error {
	payload := `{"kind":"tick"}`
	if err := r.rdb.XAdd(ctx, &redis.XAddArgs{Stream: r.keys.Inbox, Values: []any{fieldCommand, payload, fieldRef, ""}}).Err(); err != nil {
		return fmt.Errorf("redisbus: tick: %w", err)
	}
	return nil
}

func (r *Runner) publishedSeq(ctx context.Context) (uint64, error) {
	s, err := r.rdb.HGet(ctx, r.keys.Engine, "seq").Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisbus: engine position: %w", err)
	}
	return strconv.ParseUint(s, 10, 64)
}

// Replay applies a shard's inbox from its start to a fresh engine until the
// engine reaches sequence to, without writing anything: the engine's state
// at that sequence, rebuilt from the journal alone (reconciliation's
// independent check). It fails if the inbox ends first, and with
// ErrTrimmed if the inbox no longer starts at the first command (see
// ReplayFromSnapshot).
func Replay(ctx context.Context, rdb redis.UniversalClient, keys Keys, e *matching.Engine, to uint64) error {
	if e.Seq() != 0 {
		return fmt.Errorf("redisbus: replay needs a fresh engine (at sequence %d)", e.Seq())
	}
	trimmed, _, err := trimPoint(ctx, rdb, keys)
	if err != nil {
		return err
	}
	if trimmed > 0 {
		return fmt.Errorf("%w below sequence %d", ErrTrimmed, trimmed)
	}
	return replayAfter(ctx, rdb, keys, e, "-", to)
}

// InboxCommands counts the commands a shard's inbox holds, reading all of
// it (for tests and diagnostics).
func InboxCommands(ctx context.Context, rdb redis.UniversalClient, keys Keys) (int64, error) {
	var n int64
	var cmds []inboxCommand
	for from := "-"; ; {
		msgs, err := rdb.XRangeN(ctx, keys.Inbox, from, "+", 1000).Result()
		if err != nil {
			return 0, fmt.Errorf("redisbus: inbox: %w", err)
		}
		if len(msgs) == 0 {
			return n, nil
		}
		for _, m := range msgs {
			cmds = entryCommands(m, cmds[:0])
			n += int64(len(cmds))
			from = "(" + m.ID
		}
	}
}

// replayAfter applies inbox entries from the XRANGE start from (inclusive
// ID, "(ID" exclusive, or "-") until the engine reaches sequence to.
func replayAfter(ctx context.Context, rdb redis.UniversalClient, keys Keys, e *matching.Engine, from string, to uint64) error {
	var events []matching.Event
	var cmds []inboxCommand
	for e.Seq() < to {
		msgs, err := rdb.XRangeN(ctx, keys.Inbox, from, "+", min(10_000, int64(to-e.Seq()))).Result()
		if err != nil {
			return fmt.Errorf("redisbus: replay: %w", err)
		}
		// A trim while the replay reads (a snapshot written meanwhile)
		// would make this page start past entries it needs.
		if err := checkNotTrimmed(ctx, rdb, keys, strings.TrimPrefix(from, "(")); err != nil {
			return fmt.Errorf("redisbus: replay: %w", err)
		}
		if len(msgs) == 0 {
			return fmt.Errorf("redisbus: replay: the inbox ends at sequence %d, before %d", e.Seq(), to)
		}
		for _, m := range msgs {
			cmds = entryCommands(m, cmds[:0])
			t := idMillis(m.ID)
			for i := range cmds {
				if e.Seq() == to {
					return nil // to may end within an entry
				}
				if events, _, err = applyCommand(e, &cmds[i], t, events[:0]); err != nil {
					return fmt.Errorf("redisbus: replay: %w", err)
				}
			}
			from = "(" + m.ID
		}
	}
	return nil
}

// inboxCommand is one command of an inbox entry and its reference.
type inboxCommand struct {
	cmd matching.Command
	ref string
}

// entryCommands appends an inbox entry's commands to into: a record each
// (fieldCommands: the submitter's reference, then the command), or, in
// entries written before, one command (fieldCommand, with fieldRef). Every
// entry applies the same way in the runner and in replays, so a replay is
// the run. An undecodable command becomes a command of no kind, which the
// engine rejects (UNKNOWN_METHOD); an entry whose records cannot be split
// is one such command: the sequence stays gap-free either way.
func entryCommands(m redis.XMessage, into []inboxCommand) []inboxCommand {
	if raw, ok := m.Values[fieldCommands].(string); ok {
		start := len(into)
		err := eachRecord(raw, func(ref, payload string) error {
			into = append(into, inboxCommand{cmd: decodeCommand(payload), ref: ref})
			return nil
		})
		if err != nil || len(into) == start {
			into = append(into[:start], inboxCommand{})
		}
		return into
	}
	raw, _ := m.Values[fieldCommand].(string)
	ref, _ := m.Values[fieldRef].(string)
	return append(into, inboxCommand{cmd: decodeCommand(raw), ref: ref})
}

// applyCommand applies one of an inbox entry's commands to the engine with
// the next sequence number and the entry's time t (its ID's millisecond
// part), and returns the sequence it got. Runner and Replay share it, so a
// replay is the run.
func applyCommand(e *matching.Engine, c *inboxCommand, t int64, out []matching.Event) ([]matching.Event, uint64, error) {
	cmd := c.cmd
	cmd.Seq, cmd.Time = e.Seq()+1, t
	out, err := e.Apply(cmd, out)
	return out, cmd.Seq, err
}

// decodeCommand reads a command in the compact encoding
// (matching.AppendCommand) or as JSON; an undecodable one is a command of
// no kind.
func decodeCommand(raw string) matching.Command {
	var c matching.Command
	var err error
	if strings.HasPrefix(raw, "{") {
		c, err = decodeJSONCommand(raw)
	} else {
		// Decoded from a copy of the command's own bytes: the strings
		// decoded (its client order ID, its obligation, ...) share the
		// memory they are decoded from, and the engine keeps some of them
		// while an order is open. Shared with the entry as Redis returned
		// it — every command a client sent in one round trip — one
		// resting order kept the whole entry alive: 18 of the 138 MB the
		// server held after 20 s of bench-ws.sh batch 20 20000.
		c, err = matching.DecodeCommand(strings.Clone(raw))
	}
	if err != nil {
		return matching.Command{}
	}
	return c
}

// decodeJSONCommand reads a command of an older inbox, written as JSON. Its
// own function, so that the command json.Unmarshal makes escape is not
// decodeCommand's: there it was an allocation per command on every path.
func decodeJSONCommand(raw string) (matching.Command, error) {
	var c matching.Command
	err := json.Unmarshal([]byte(raw), &c)
	return c, err
}

// idMillis is the time part of a stream ID: the moment Redis sequenced the entry.
func idMillis(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	v, _ := strconv.ParseInt(ms, 10, 64)
	return v
}
