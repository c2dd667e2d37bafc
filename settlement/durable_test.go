package settlement_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/settlement"
)

// stream is an events stream of one deposit per command, 1…n.
type stream struct{ n uint64 }

func (s stream) ReadEvents(_ context.Context, after string, max int64, _ time.Duration) ([]matching.Envelope, error) {
	from := uint64(0)
	if after != "0" {
		seq, err := strconv.ParseUint(after[:len(after)-2], 10, 64) // "<seq>-0"
		if err != nil {
			return nil, err
		}
		from = seq
	}
	var out []matching.Envelope
	for seq := from + 1; seq <= s.n && int64(len(out)) < max; seq++ {
		out = append(out, matching.Envelope{StreamID: strconv.FormatUint(seq, 10) + "-0", Last: true,
			Event: matching.Event{Seq: seq, Time: 1, Kind: matching.EvDeposited, Account: "a", Asset: "BTC", Amount: 1, ExtRef: "d" + strconv.FormatUint(seq, 10)}})
	}
	return out, nil
}

// ledger keeps the batches settled and the position.
type ledger struct {
	at      string
	batches []*settlement.Batch
}

func (l *ledger) Position(context.Context, string) (string, error) { return l.at, nil }
func (l *ledger) Settle(_ context.Context, _ string, b *settlement.Batch) error {
	l.batches = append(l.batches, b)
	l.at = b.LastStreamID
	return nil
}

// TestSettlesOnlyWhatIsDurable: with a durable mark (the engine waits for
// Redis replicas), nothing beyond it is settled — a batch a failover could
// take back never reaches the ledger — and the rest follows once the mark
// moves.
func TestSettlesOnlyWhatIsDurable(t *testing.T) {
	ctx := context.Background()
	var durable uint64 = 3
	l := &ledger{at: "0"}
	c := &settlement.Consumer{Shard: "s1", Source: stream{n: 5}, Store: l, Log: zap.NewNop(), Wait: time.Millisecond,
		Durable: func(context.Context) (uint64, error) { return durable, nil }}
	settle := func() int {
		n, err := c.SettleOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := settle(); n != 3 || l.batches[0].LastSeq != 3 {
		t.Fatalf("settled %d events through %d; want the durable 3", n, l.batches[len(l.batches)-1].LastSeq)
	}
	if n := settle(); n != 0 {
		t.Fatalf("settled %d events beyond the durable mark", n)
	}
	durable = 5
	if n := settle(); n != 2 || l.batches[1].LastSeq != 5 {
		t.Fatalf("after the mark moved: settled %d events", n)
	}
}
