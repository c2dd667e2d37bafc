package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
			ev, err := decodeEvent(m)
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

func decodeEvent(m redis.XMessage) (matching.Envelope, error) {
	raw, _ := m.Values[fieldEvent].(string)
	var ev matching.Event
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		return matching.Envelope{}, fmt.Errorf("redisbus: event %s: %w", m.ID, err)
	}
	ref, _ := m.Values[fieldRef].(string)
	last, _ := m.Values[fieldLast].(string)
	return matching.Envelope{StreamID: m.ID, Ref: ref, Last: last == "1", Event: ev}, nil
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
}

// ReadEvents returns up to max events after the stream ID after.
func (r EventReader) ReadEvents(ctx context.Context, after string, max int64, block time.Duration) ([]matching.Envelope, error) {
	return ReadEvents(ctx, r.RDB, r.Keys, after, max, block)
}
