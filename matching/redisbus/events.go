package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/matching"
)

// Field names of stream entries.
const (
	fieldCommand = "c"    // inbox: the command, matching.AppendCommand (or JSON)
	fieldRef     = "ref"  // inbox and events: the submitter's correlation reference
	fieldEvent   = "e"    // events: the command's events, matching.AppendEvents (one event as JSON in older entries)
	fieldLast    = "last" // events, single-event entries only: "1" on the last event of a command
)

// ReadEvents returns the events of up to count commands after stream ID
// after ("0" for the start), waiting up to block when there are none
// (block < 1 ms: no wait). Every event of a command carries the command's
// stream entry ID; the last one is marked Last.
func ReadEvents(ctx context.Context, rdb redis.UniversalClient, k Keys, after string, count int64, block time.Duration) ([]matching.Envelope, error) {
	return readEventsInto(ctx, rdb, k, after, count, block, nil)
}

// readEventsInto is ReadEvents appending to buf[:0], so that a reader that
// is done with one read's envelopes before the next reuses their memory.
func readEventsInto(ctx context.Context, rdb redis.UniversalClient, k Keys, after string, count int64, block time.Duration, buf []matching.Envelope) ([]matching.Envelope, error) {
	msgs, err := readEntries(ctx, rdb, k, after, count, block)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return buf[:0], nil
	}
	// A command has a few events: room for four each avoids most growth,
	// and one scratch slice serves every entry's decoding.
	out := buf[:0]
	if cap(out) < 4*len(msgs) {
		out = make([]matching.Envelope, 0, 4*len(msgs))
	}
	var scratch []matching.Event
	for _, m := range msgs {
		if out, err = decodeEntryInto(out, m, &scratch); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readEntries returns up to count entries of the events stream after the
// stream ID after, undecoded, waiting up to block when there are none
// (block < 1 ms: no wait).
func readEntries(ctx context.Context, rdb redis.UniversalClient, k Keys, after string, count int64, block time.Duration) ([]redis.XMessage, error) {
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
	if len(res) == 0 {
		return nil, nil
	}
	return res[0].Messages, nil
}

// decodeEntry appends a stream entry's events to out: a command's events in
// the compact encoding, or — in streams written before it — one event as
// JSON, marked last on its command's last event.
func decodeEntry(out []matching.Envelope, m redis.XMessage) ([]matching.Envelope, error) {
	var scratch []matching.Event
	return decodeEntryInto(out, m, &scratch)
}

// decodeEntryInto is decodeEntry decoding through *scratch, which it keeps
// for the next entry.
func decodeEntryInto(out []matching.Envelope, m redis.XMessage, scratch *[]matching.Event) ([]matching.Envelope, error) {
	raw, _ := m.Values[fieldEvent].(string)
	ref, _ := m.Values[fieldRef].(string)
	if strings.HasPrefix(raw, "{") {
		last, _ := m.Values[fieldLast].(string)
		env := matching.Envelope{StreamID: m.ID, Ref: ref, Last: last == "1"}
		if err := json.Unmarshal([]byte(raw), &env.Event); err != nil {
			return nil, fmt.Errorf("redisbus: event %s: %w", m.ID, err)
		}
		return append(out, env), nil
	}
	evs, err := matching.DecodeEvents(raw, (*scratch)[:0])
	*scratch = evs
	if err != nil || len(evs) == 0 {
		return nil, fmt.Errorf("redisbus: events %s: %d events (%v)", m.ID, len(evs), err)
	}
	for i := range evs {
		out = append(out, matching.Envelope{StreamID: m.ID, Ref: ref, Last: i == len(evs)-1, Event: evs[i]})
	}
	return out, nil
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

// ReadEventsInto is ReadEvents reusing buf's memory for its answer: the
// caller must be done with buf's envelopes.
func (r EventReader) ReadEventsInto(ctx context.Context, after string, max int64, block time.Duration, buf []matching.Envelope) ([]matching.Envelope, error) {
	return readEventsInto(ctx, r.RDB, r.Keys, after, max, block, buf)
}
