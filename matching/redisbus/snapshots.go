package redisbus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/matching"
)

// Engine snapshots in Redis. A snapshot is the engine's whole state
// (matching.Snapshot in its canonical binary encoding) after the command at
// sequence Seq,
// stored in chunks under the shard's hash tag:
//
//	satu:{s1}:snap:<seq>:<i>   the chunks, in order (≤ SnapshotChunk bytes each)
//	satu:{s1}:snap:<seq>       hash: seq, inbox (ID of the entry of that command),
//	                           chunks, bytes, sha256 (of the whole encoding, which
//	                           is also the engine's state hash), at (Unix ms)
//	satu:{s1}:snaps            sorted set of the kept snapshots' sequences
//
// The meta hash is written last, so a snapshot is listed only when all its
// chunks are there; the checksum catches a chunk damaged or lost later.

// SnapshotChunk bounds the size of one chunk.
const SnapshotChunk = 4 << 20

// SnapshotMeta describes one stored snapshot.
type SnapshotMeta struct {
	Seq    uint64
	Inbox  string // the inbox entry of the command at Seq: replay continues after it
	Chunks int
	Bytes  int
	SHA256 string // of the stored encoding (in encoding 1 not the engine's StateHash: see loadSnapshot)
	At     time.Time
}

func (k Keys) snapshot(seq uint64) string { return k.snapPrefix() + strconv.FormatUint(seq, 10) }
func (k Keys) snapPrefix() string         { return k.Prefix + "snap:" }
func (k Keys) snapshots() string          { return k.Prefix + "snaps" }

// SaveSnapshot stores a snapshot taken after the command whose inbox entry
// is inboxID, then drops all but the newest keep (at least 2).
func SaveSnapshot(ctx context.Context, rdb redis.UniversalClient, keys Keys, snap *matching.Snapshot, inboxID string, keep int) (SnapshotMeta, error) {
	return saveSnapshot(ctx, rdb, keys, snap, inboxID, keep, new([]byte))
}

// saveSnapshot is SaveSnapshot encoding into *buf's memory (see
// matching.SnapshotMemory), which it leaves holding the encoding.
func saveSnapshot(ctx context.Context, rdb redis.UniversalClient, keys Keys, snap *matching.Snapshot, inboxID string, keep int, buf *[]byte) (SnapshotMeta, error) {
	data, err := snap.AppendBinary((*buf)[:0])
	*buf = data
	if err != nil {
		return SnapshotMeta{}, fmt.Errorf("redisbus: encode snapshot: %w", err)
	}
	sum := sha256.Sum256(data)
	// The state hash (Snapshot.Hash) is the SHA-256 of this same canonical
	// encoding: the checksum of the stored bytes is the state hash.
	meta := SnapshotMeta{Seq: snap.Seq, Inbox: inboxID, Bytes: len(data), SHA256: hex.EncodeToString(sum[:]), At: time.Now().UTC()}
	base := keys.snapshot(snap.Seq)
	pipe := rdb.Pipeline()
	for off := 0; off < len(data) || off == 0; off += SnapshotChunk {
		end := min(off+SnapshotChunk, len(data))
		pipe.Set(ctx, base+":"+strconv.Itoa(meta.Chunks), data[off:end], 0)
		meta.Chunks++
		if end == len(data) {
			break
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return SnapshotMeta{}, fmt.Errorf("redisbus: write snapshot chunks: %w", err)
	}
	pipe = rdb.TxPipeline()
	pipe.HSet(ctx, base, "seq", meta.Seq, "inbox", meta.Inbox, "chunks", meta.Chunks, "bytes", meta.Bytes,
		"sha256", meta.SHA256, "at", meta.At.UnixMilli())
	pipe.ZAdd(ctx, keys.snapshots(), redis.Z{Score: float64(meta.Seq), Member: strconv.FormatUint(meta.Seq, 10)})
	if _, err := pipe.Exec(ctx); err != nil {
		return SnapshotMeta{}, fmt.Errorf("redisbus: write snapshot: %w", err)
	}
	return meta, pruneSnapshots(ctx, rdb, keys, max(keep, 2))
}

// pruneSnapshots deletes all but the newest keep snapshots.
func pruneSnapshots(ctx context.Context, rdb redis.UniversalClient, keys Keys, keep int) error {
	old, err := rdb.ZRevRange(ctx, keys.snapshots(), int64(keep), -1).Result()
	if err != nil {
		return fmt.Errorf("redisbus: list snapshots: %w", err)
	}
	for _, s := range old {
		seq, _ := strconv.ParseUint(s, 10, 64)
		if err := deleteSnapshot(ctx, rdb, keys, seq); err != nil {
			return err
		}
	}
	return nil
}

func deleteSnapshot(ctx context.Context, rdb redis.UniversalClient, keys Keys, seq uint64) error {
	base := keys.snapshot(seq)
	n, _ := rdb.HGet(ctx, base, "chunks").Int()
	pipe := rdb.TxPipeline()
	pipe.ZRem(ctx, keys.snapshots(), strconv.FormatUint(seq, 10))
	pipe.Del(ctx, base)
	for i := range max(n, 1) {
		pipe.Del(ctx, base+":"+strconv.Itoa(i))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("redisbus: delete snapshot %d: %w", seq, err)
	}
	return nil
}

// Snapshots lists the stored snapshots, newest first.
func Snapshots(ctx context.Context, rdb redis.UniversalClient, keys Keys) ([]SnapshotMeta, error) {
	seqs, err := rdb.ZRevRange(ctx, keys.snapshots(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("redisbus: list snapshots: %w", err)
	}
	var out []SnapshotMeta
	for _, s := range seqs {
		seq, _ := strconv.ParseUint(s, 10, 64)
		v, err := rdb.HGetAll(ctx, keys.snapshot(seq)).Result()
		if err != nil {
			return nil, fmt.Errorf("redisbus: snapshot %d: %w", seq, err)
		}
		m := SnapshotMeta{Seq: seq, Inbox: v["inbox"], SHA256: v["sha256"]}
		m.Chunks, _ = strconv.Atoi(v["chunks"])
		m.Bytes, _ = strconv.Atoi(v["bytes"])
		ms, _ := strconv.ParseInt(v["at"], 10, 64)
		m.At = time.UnixMilli(ms).UTC()
		out = append(out, m)
	}
	return out, nil
}

// ErrNoSnapshot means no stored snapshot could be used.
var ErrNoSnapshot = errors.New("redisbus: no usable snapshot")

// LoadSnapshot restores an engine from the newest snapshot that is whole
// and verifies: every chunk present, the checksum of their concatenation,
// and the restored engine's state hash equal to the one recorded. A
// snapshot that fails is reported in the log and the previous one tried.
// cfg's symbols must match the snapshot's (matching.Restore).
func LoadSnapshot(ctx context.Context, rdb redis.UniversalClient, keys Keys, cfg matching.Config, log *zap.Logger) (*matching.Engine, SnapshotMeta, error) {
	metas, err := Snapshots(ctx, rdb, keys)
	if err != nil {
		return nil, SnapshotMeta{}, err
	}
	for _, m := range metas {
		e, err := loadSnapshot(ctx, rdb, keys, m, cfg)
		if err == nil {
			return e, m, nil
		}
		if ctx.Err() != nil {
			return nil, SnapshotMeta{}, ctx.Err()
		}
		log.Error("snapshot unusable; trying the previous one", zap.Uint64("seq", m.Seq), zap.Error(err))
	}
	return nil, SnapshotMeta{}, ErrNoSnapshot
}

func loadSnapshot(ctx context.Context, rdb redis.UniversalClient, keys Keys, m SnapshotMeta, cfg matching.Config) (*matching.Engine, error) {
	if m.Chunks < 1 || m.Inbox == "" {
		return nil, fmt.Errorf("incomplete metadata %+v", m)
	}
	names := make([]string, m.Chunks)
	for i := range names {
		names[i] = keys.snapshot(m.Seq) + ":" + strconv.Itoa(i)
	}
	data := make([]byte, 0, m.Bytes)
	for _, name := range names { // one at a time: chunks are large, and on Redis Cluster one key per call is simplest
		b, err := rdb.Get(ctx, name).Bytes()
		if err != nil {
			return nil, fmt.Errorf("chunk %s: %w", name, err)
		}
		data = append(data, b...)
	}
	sum := sha256.Sum256(data)
	if len(data) != m.Bytes || hex.EncodeToString(sum[:]) != m.SHA256 {
		return nil, fmt.Errorf("checksum mismatch: %d bytes, sha256 %x; recorded %d bytes, %s", len(data), sum, m.Bytes, m.SHA256)
	}
	var snap matching.Snapshot
	if err := snap.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if snap.Seq != m.Seq {
		return nil, fmt.Errorf("snapshot holds sequence %d, recorded as %d", snap.Seq, m.Seq)
	}
	e, err := matching.Restore(&snap, cfg)
	if err != nil {
		return nil, err
	}
	// The checksum proved the bytes; this proves the restore: the restored
	// engine must encode back to exactly them, in their encoding.
	back := e.Snapshot()
	back.InEncoding(snap.Encoding())
	if h := back.Hash(); h != m.SHA256 {
		return nil, fmt.Errorf("restored state hash %s, recorded %s", h, m.SHA256)
	}
	return e, nil
}
