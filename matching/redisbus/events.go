package redisbus

import (
	"context"
	"encoding/binary"
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
	fieldCommands = "cs"   // inbox: commands, each a record (beginRecord): reference, matching.AppendCommand
	fieldCommand  = "c"    // inbox, older entries: one command, matching.AppendCommand (or JSON)
	fieldRef      = "ref"  // inbox and events: the submitter's correlation reference
	fieldBatch    = "b"    // events: a batch's commands, each a record (beginRecord): reference, matching.AppendEvents
	fieldEvent    = "e"    // events, older entries: one command's events, matching.AppendEvents (or one event as JSON)
	fieldLast     = "last" // events, single-event entries only: "1" on the last event of a command
)

// batchCommands is the most commands a runner applies and writes as one
// batch, so the most one events entry holds.
const batchCommands = 512

// Both streams hold several commands per entry, a record each, in
// sequence order:
//
//	uvarint len(ref) | ref | uint32 little-endian len(payload) | payload
//
// An inbox entry (fieldCommands) is what one client sent in one round
// trip, the payload a command (matching.AppendCommand); an events entry
// (fieldBatch) is one batch of the runner, ID "seq-0" with seq the batch's
// last sequence, the payload a command's events (matching.AppendEvents).
// The payload's length is fixed-width so that a writer encodes it in place
// and writes its length afterwards. Entries of several commands spare
// Redis an XADD and its arguments per command: the busier the engine, the
// fewer entries per command.

// beginRecord appends a record's head for ref and returns where the
// payload's length goes; the caller appends the payload and calls
// endRecord.
func beginRecord(dst []byte, ref string) ([]byte, int) {
	dst = binary.AppendUvarint(dst, uint64(len(ref)))
	dst = append(dst, ref...)
	return append(dst, 0, 0, 0, 0), len(dst)
}

// endRecord writes the length of the payload appended since beginRecord.
func endRecord(dst []byte, at int) {
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
}

// nextRecord splits the first record off an entry's value.
func nextRecord(raw string) (ref, payload, rest string, err error) {
	n, k := binary.Uvarint([]byte(raw[:min(len(raw), binary.MaxVarintLen64)]))
	if k <= 0 || n > uint64(len(raw)-k) {
		return "", "", "", errors.New("bad reference length")
	}
	ref, raw = raw[k:k+int(n)], raw[k+int(n):]
	if len(raw) < 4 {
		return "", "", "", errors.New("truncated record")
	}
	m := binary.LittleEndian.Uint32([]byte(raw[:4]))
	if uint64(m) > uint64(len(raw)-4) || m == 0 {
		return "", "", "", errors.New("bad payload length")
	}
	return ref, raw[4 : 4+m], raw[4+m:], nil
}

// eachRecord calls f with each record of an entry's value, in order,
// stopping at f's first error; a value that does not split into records is
// an error before or after some calls.
func eachRecord(value string, f func(ref, payload string) error) error {
	for value != "" {
		ref, payload, rest, err := nextRecord(value)
		if err != nil {
			return err
		}
		if err := f(ref, payload); err != nil {
			return err
		}
		value = rest
	}
	return nil
}

// ReadEvents returns the events of the entries after stream ID after ("0"
// for the start) that hold at most count commands — at least one entry
// when any follows, however many commands it holds — waiting up to block
// when there are none (block < 1 ms: no wait). Every event carries its
// entry's stream ID (a batch's: resume after it); a command's last event
// is marked Last.
func ReadEvents(ctx context.Context, rdb redis.UniversalClient, k Keys, after string, count int64, block time.Duration) ([]matching.Envelope, error) {
	return readEventsInto(ctx, rdb, k, after, count, block, nil)
}

// readEventsInto is ReadEvents appending to buf[:0], so that a reader that
// is done with one read's envelopes before the next reuses their memory.
func readEventsInto(ctx context.Context, rdb redis.UniversalClient, k Keys, after string, count int64, block time.Duration, buf []matching.Envelope) ([]matching.Envelope, error) {
	if out, ok, err := readLocal(ctx, rdb, k, after, count, block, buf); ok {
		return out, err
	}
	msgs, err := readEntries(ctx, rdb, k, after, count, block)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return buf[:0], nil
	}
	// A command has a few events: room for four each avoids most growth,
	// and one scratch slice serves every entry's decoding. The commands
	// read are the sequences the entries' IDs cover (at most count).
	commands := max(int64(len(msgs)), min(count, idMillis(msgs[len(msgs)-1].ID)-idMillis(after)))
	out := buf[:0]
	if int64(cap(out)) < 4*commands {
		out = make([]matching.Envelope, 0, 4*commands)
	}
	var scratch []matching.Event
	for _, m := range msgs {
		if out, err = decodeEntryInto(out, m, &scratch); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readEntries returns the entries of the events stream after the stream
// ID after, undecoded, that hold at most count commands (at least one
// entry when any follows), waiting up to block when there are none
// (block < 1 ms: no wait).
//
// An entry's ID is its last command's sequence, and sequences have no
// gaps, so the entries holding the commands after sequence a up to a+count
// are exactly the range (after, a+count]. The blocking XREAD asks for as
// many entries as surely fit (count / batchCommands, at least one); when
// it brings that many and they hold fewer than count commands, an XRANGE
// tops the read up to the bound — under a backlog, two round trips bring
// count commands; when caught up, one waits for the next entry.
func readEntries(ctx context.Context, rdb redis.UniversalClient, k Keys, after string, count int64, block time.Duration) ([]redis.XMessage, error) {
	if block < time.Millisecond {
		block = -1 // go-redis sends BLOCK only for durations ≥ 0; sub-millisecond would mean forever
	}
	first := max(1, count/batchCommands)
	res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{k.Events, after}, Count: first, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisbus: read events: %w", err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	msgs := res[0].Messages
	if int64(len(msgs)) < first {
		return msgs, nil
	}
	a, last := idMillis(after), msgs[len(msgs)-1].ID
	if end := a + count; idMillis(last) < end {
		more, err := rdb.XRange(ctx, k.Events, "("+last, strconv.FormatInt(end, 10)).Result()
		if err != nil {
			return nil, fmt.Errorf("redisbus: read events: %w", err)
		}
		msgs = append(msgs, more...)
	}
	return msgs, nil
}

// decodeEntry appends a stream entry's events to out: a batch's commands'
// events, or — in streams written before batch entries — one command's
// events in the compact encoding, or one event as JSON, marked last on its
// command's last event.
func decodeEntry(out []matching.Envelope, m redis.XMessage) ([]matching.Envelope, error) {
	var scratch []matching.Event
	return decodeEntryInto(out, m, &scratch)
}

// decodeEntryInto is decodeEntry decoding through *scratch, which it keeps
// for the next entry.
func decodeEntryInto(out []matching.Envelope, m redis.XMessage, scratch *[]matching.Event) ([]matching.Envelope, error) {
	if batch, ok := m.Values[fieldBatch].(string); ok {
		return decodeBatchInto(out, m.ID, batch, scratch)
	}
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
	return appendDecoded(out, m.ID, ref, raw, scratch)
}

// decodeBatchInto appends the events of a batch entry, ID id and value
// batch (its commands' records), to out.
func decodeBatchInto(out []matching.Envelope, id, batch string, scratch *[]matching.Event) ([]matching.Envelope, error) {
	err := eachRecord(batch, func(ref, raw string) (err error) {
		out, err = appendDecoded(out, id, ref, raw, scratch)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("redisbus: events %s: %w", id, err)
	}
	return out, nil
}

// appendDecoded appends one command's events, encoded in raw, to out.
func appendDecoded(out []matching.Envelope, id, ref, raw string, scratch *[]matching.Event) ([]matching.Envelope, error) {
	evs, err := matching.DecodeEvents(raw, (*scratch)[:0])
	*scratch = evs
	if err != nil || len(evs) == 0 {
		return nil, fmt.Errorf("redisbus: events %s: %d events (%v)", id, len(evs), err)
	}
	for i := range evs {
		out = append(out, matching.Envelope{StreamID: id, Ref: ref, Last: i == len(evs)-1, Event: evs[i]})
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
