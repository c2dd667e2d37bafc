package wsgateway

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/matching/wsapi"
)

// ObligationPoll is how often a gateway reads the obligations of the miners
// whose keys subscribed to user data. Obligations progress when settlement
// commits a miner's mandatory fills, not when the engine trades, so they
// are read from where settlement writes them.
const ObligationPoll = time.Second

// obligationWatch pushes obligationUpdate user-data events: an obligation
// of a subscribed miner whose sold, remaining or status changed since the
// last read.
//
// Lock: mu guards subs and last; it is never held while reading the
// obligations, and push never blocks.
type obligationWatch struct {
	read func(ctx context.Context, miner string) ([]compliance.ObligationView, error)
	now  func() time.Time
	log  *zap.Logger

	mu   sync.Mutex
	subs map[string]map[subscriber]struct{}             // miner → connections
	last map[string]map[int64]compliance.ObligationView // miner → obligation ID → last seen
}

func newObligationWatch(read func(context.Context, string) ([]compliance.ObligationView, error), now func() time.Time, log *zap.Logger) *obligationWatch {
	return &obligationWatch{read: read, now: now, log: log, subs: map[string]map[subscriber]struct{}{},
		last: map[string]map[int64]compliance.ObligationView{}}
}

// subscribe adds c for miner; the miner's obligations are read now, as the
// state later changes are reported against.
func (w *obligationWatch) subscribe(ctx context.Context, c subscriber, miner string) error {
	obs, err := w.read(ctx, miner)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.subs[miner] == nil {
		w.subs[miner] = map[subscriber]struct{}{}
		w.last[miner] = byID(obs)
	}
	w.subs[miner][c] = struct{}{}
	return nil
}

// unsubscribe removes c from every miner it follows.
func (w *obligationWatch) unsubscribe(c subscriber) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, miner := range dropSubscriber(w.subs, c) {
		delete(w.last, miner)
	}
}

func byID(obs []compliance.ObligationView) map[int64]compliance.ObligationView {
	m := make(map[int64]compliance.ObligationView, len(obs))
	for _, o := range obs {
		m[o.ID] = o
	}
	return m
}

// run polls until ctx ends.
func (w *obligationWatch) run(ctx context.Context, every time.Duration) { repeat(ctx, every, w.poll) }

// repeat calls f every interval until ctx ends.
func repeat(ctx context.Context, every time.Duration, f func(context.Context)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

// poll reads each followed miner's obligations and pushes what changed.
func (w *obligationWatch) poll(ctx context.Context) {
	w.mu.Lock()
	miners := make([]string, 0, len(w.subs))
	for m := range w.subs {
		miners = append(miners, m)
	}
	w.mu.Unlock()
	for _, miner := range miners {
		obs, err := w.read(ctx, miner)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("obligation updates: reading obligations", zap.String("miner", miner), zap.Error(err))
			}
			continue
		}
		at := w.now().UnixMilli()
		w.mu.Lock()
		last, subs := w.last[miner], w.subs[miner]
		if last == nil { // unsubscribed meanwhile
			w.mu.Unlock()
			continue
		}
		for _, o := range obs {
			before, seen := last[o.ID]
			last[o.ID] = o
			if seen && before.Sold == o.Sold && before.Remaining == o.Remaining && before.Status == o.Status &&
				before.Required == o.Required {
				continue
			}
			b, err := json.Marshal(wsapi.UserEvent{Event: wsapi.ObligationUpdate{Event: "obligationUpdate", Time: at, Obligation: o}})
			if err != nil {
				w.log.Error("obligation updates: encode", zap.Error(err))
				continue
			}
			for s := range subs {
				s.push(b)
			}
		}
		w.mu.Unlock()
	}
}
