package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/matching"
)

// Field names of stream entries.
const (
	fieldCommand = "c"    // inbox: the command as JSON
	fieldRef     = "ref"  // inbox and events: the submitter's correlation reference
	fieldEvent   = "e"    // events: the event as JSON
	fieldLast    = "last" // events: "1" on the last event of a command
)

// ReadEvents returns up to count events after stream ID after ("0" for the
// start), waiting up to block when there are none (block < 1 ms: no wait).
func ReadEvents(ctx context.Context, rdb redis.UniversalClient, k Keys, after string, count int64, block time.Duration) ([]matching.Envelope, error) {
	return readEvents(ctx, rdb, k, after, count, block, nil)
}

func readEvents(ctx context.Context, rdb redis.UniversalClient, k Keys, after string, count int64, block time.Duration,
	only func(matching.EventKind) bool) ([]matching.Envelope, error) {
	if block < time.Millisecond {
		block = -1 // go-redis sends BLOCK only for durations ≥ 0; sub-millisecond would mean forever
	}
	res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{k.Events, after}, Count: count, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisbus: read events: %w", err)
	}
	var out []matching.Envelope
	for _, s := range res {
		for _, m := range s.Messages {
			ev, err := decodeEvent(m, only)
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

// decodeEvent decodes a stream entry. When only is set and refuses the
// event's kind, the event is not decoded: it carries just its sequence and
// index (from the stream ID) and its kind.
func decodeEvent(m redis.XMessage, only func(matching.EventKind) bool) (matching.Envelope, error) {
	raw, _ := m.Values[fieldEvent].(string)
	ref, _ := m.Values[fieldRef].(string)
	last, _ := m.Values[fieldLast].(string)
	env := matching.Envelope{StreamID: m.ID, Ref: ref, Last: last == "1"}
	if only != nil {
		if kind, ok := peekKind(raw); ok && !only(kind) {
			seq, idx, _ := strings.Cut(m.ID, "-")
			s, err1 := strconv.ParseUint(seq, 10, 64)
			i, err2 := strconv.ParseUint(idx, 10, 32)
			if err1 == nil && err2 == nil {
				env.Event = matching.Event{Seq: s, Index: uint32(i), Kind: kind}
				return env, nil
			}
		}
	}
	if err := json.Unmarshal([]byte(raw), &env.Event); err != nil {
		return matching.Envelope{}, fmt.Errorf("redisbus: event %s: %w", m.ID, err)
	}
	return env, nil
}

// peekKind finds an encoded event's kind without decoding the rest.
func peekKind(raw string) (matching.EventKind, bool) {
	const key = `"kind":"`
	i := strings.Index(raw, key)
	if i < 0 {
		return 0, false
	}
	rest := raw[i+len(key):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return 0, false
	}
	var k matching.EventKind
	if k.UnmarshalText([]byte(rest[:j])) != nil {
		return 0, false
	}
	return k, true
}

// LastEventID is the ID of the newest event, or "0-0" when there is none.
func LastEventID(ctx context.Context, rdb redis.UniversalClient, k Keys) (string, error) {
	msgs, err := rdb.XRevRangeN(ctx, k.Events, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("redisbus: last event: %w", err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// EventReader reads one shard's events stream; it is the settlement
// consumer's event source.
type EventReader struct {
	RDB  redis.UniversalClient
	Keys Keys
	// Only, when set, names the kinds of events to decode in full; the
	// others carry only their sequence, index and kind (the reader still
	// sees every event, so command boundaries are kept). Decoding is most
	// of a reader's work.
	Only func(matching.EventKind) bool
}

// ReadEvents returns up to max events after the stream ID after.
func (r EventReader) ReadEvents(ctx context.Context, after string, max int64, block time.Duration) ([]matching.Envelope, error) {
	return readEvents(ctx, r.RDB, r.Keys, after, max, block, r.Only)
}
