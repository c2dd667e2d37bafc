package settlement

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are one shard's settlement throughput and lag.
type Metrics struct {
	events, fills, postings, batches prometheus.Counter
	seq                              prometheus.Gauge
	lag                              prometheus.Histogram
}

// NewMetrics registers a shard's settlement metrics on reg (if not nil).
func NewMetrics(reg prometheus.Registerer, shard string) *Metrics {
	labels := prometheus.Labels{"shard": shard}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
	}
	m := &Metrics{
		events:   counter("satu_settlement_events_total", "Events settled into PostgreSQL."),
		fills:    counter("satu_settlement_fills_total", "Fills settled into PostgreSQL."),
		postings: counter("satu_settlement_postings_total", "Ledger postings written."),
		batches:  counter("satu_settlement_batches_total", "Settlement transactions committed."),
		seq: prometheus.NewGauge(prometheus.GaugeOpts{Name: "satu_settlement_position_seq",
			Help: "The engine sequence settlement has reached.", ConstLabels: labels}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "satu_settlement_lag_seconds",
			Help: "From the sequencing of a batch's newest command to its settlement commit.", ConstLabels: labels,
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.fills, m.postings, m.batches, m.seq, m.lag)
	}
	return m
}

// Observe records a committed batch; committed is the commit's wall time.
func (m *Metrics) Observe(b *Batch, committed time.Time) {
	m.events.Add(float64(b.Events))
	m.fills.Add(float64(len(b.Fills)))
	m.postings.Add(float64(b.PostingCount))
	m.batches.Inc()
	m.seq.Set(float64(b.LastSeq))
	if b.MaxTime > 0 {
		m.lag.Observe(b.Lag(committed).Seconds())
	}
}

// Lag is how long after its newest command was sequenced the batch was
// committed (engine time is the inbox's clock, in milliseconds).
func (b *Batch) Lag(committed time.Time) time.Duration {
	return committed.Sub(time.UnixMilli(b.MaxTime))
}
