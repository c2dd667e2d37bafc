package settlement

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// The reconciliation checks, by name. Each is an invariant of the ledger or
// of the ledger against the engine; a check that finds a difference reports
// it and never corrects it.
const (
	CheckEngine        = "engine_vs_ledger"     // per account and asset: ledger balance = Σ shards engine free + held
	CheckBalances      = "balances_vs_postings" // each balance = the sum of its postings
	CheckAssetZeroSum  = "asset_zero_sum"       // per asset, all postings sum to zero
	CheckEventZeroSum  = "event_zero_sum"       // per event and asset, its postings sum to zero
	CheckNegative      = "no_negative_balance"  // no balance below zero but the custody mirror
	CheckFills         = "fills_well_formed"    // each fill, its trade's journal entry, names known accounts and a fee account for its fees
	CheckCustodyPosted = "custody_posted"       // each deposit's and withdrawal's postings are exactly the movement
	CheckBatches       = "batches"              // batch counts = rows present; batches chain; the position is the last batch
	// CheckReplay is run on request (satu reconcile -replay): every balance
	// against an engine rebuilt from the inbox alone to the settled sequence.
	CheckReplay = "replay_vs_ledger"
)

// Checks lists the checks in the order a report shows them.
var Checks = []string{CheckEngine, CheckBalances, CheckAssetZeroSum, CheckEventZeroSum, CheckNegative,
	CheckFills, CheckCustodyPosted, CheckBatches}

// Difference is one violation a check found. Ledger and Expected are
// decimal amounts in whole units of Asset, when the check compares amounts.
type Difference struct {
	Shard    string `json:"shard,omitempty"`
	Account  string `json:"account,omitempty"`
	Asset    string `json:"asset,omitempty"`
	Ref      string `json:"ref,omitempty"` // an event, fill or batch
	Ledger   string `json:"ledger,omitempty"`
	Expected string `json:"expected,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// CheckResult is one check's outcome: how many differences it found and
// the first of them (at most MaxExamples).
type CheckResult struct {
	Name        string       `json:"name"`
	Differences int          `json:"differences"`
	Examples    []Difference `json:"examples,omitempty"`
}

// MaxExamples bounds the differences a report lists per check.
const MaxExamples = 20

// Position is where a shard's settlement stood when the report was taken:
// every check of one report sees the ledger at exactly these positions.
type Position struct {
	Shard    string `json:"shard"`
	Seq      uint64 `json:"seq"`
	StreamID string `json:"streamId"`
}

// Report is one reconciliation run.
type Report struct {
	At        time.Time     `json:"at"`
	Positions []Position    `json:"positions"`
	Checks    []CheckResult `json:"checks"`
}

// Clean reports whether no check found a difference.
func (r Report) Clean() bool {
	for _, c := range r.Checks {
		if c.Differences > 0 {
			return false
		}
	}
	return true
}

// Differences is the total over all checks.
func (r Report) Differences() int {
	n := 0
	for _, c := range r.Checks {
		n += c.Differences
	}
	return n
}

// WriteText prints the report for a person: one line per check, then each
// listed difference.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "reconciliation at %s\n", r.At.UTC().Format(time.RFC3339))
	for _, p := range r.Positions {
		fmt.Fprintf(&b, "  shard %s settled to sequence %d (stream %s)\n", p.Shard, p.Seq, p.StreamID)
	}
	for _, c := range r.Checks {
		verdict := "ok"
		if c.Differences > 0 {
			verdict = fmt.Sprintf("%d difference(s)", c.Differences)
		}
		fmt.Fprintf(&b, "  %-22s %s\n", c.Name, verdict)
		for _, d := range c.Examples {
			b.WriteString("      ")
			for _, f := range [][2]string{{"shard", d.Shard}, {"account", d.Account}, {"asset", d.Asset}, {"ref", d.Ref},
				{"ledger", d.Ledger}, {"expected", d.Expected}, {"detail", d.Detail}} {
				if f[1] != "" {
					fmt.Fprintf(&b, " %s=%s", f[0], f[1])
				}
			}
			b.WriteByte('\n')
		}
	}
	if r.Clean() {
		b.WriteString("clean\n")
	} else {
		fmt.Fprintf(&b, "NOT CLEAN: %d difference(s)\n", r.Differences())
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String is the report as WriteText prints it.
func (r Report) String() string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}

// Reconciler produces a report (settlement/postgres implements it).
type Reconciler interface {
	Reconcile(ctx context.Context) (Report, error)
}

// ReconcileLoop runs reconciliation periodically, reports every difference
// in the log and in metrics, and changes nothing.
type ReconcileLoop struct {
	Reconciler Reconciler
	Interval   time.Duration
	Log        *zap.Logger

	differences *prometheus.GaugeVec
	runs        *prometheus.CounterVec
	lastClean   prometheus.Gauge
}

// NewReconcileLoop returns a loop with its metrics registered on reg (if not nil).
func NewReconcileLoop(r Reconciler, interval time.Duration, log *zap.Logger, reg prometheus.Registerer) *ReconcileLoop {
	l := &ReconcileLoop{Reconciler: r, Interval: interval, Log: log,
		differences: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "satu_reconcile_differences",
			Help: "Differences the last reconciliation found, per check."}, []string{"check"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "satu_reconcile_runs_total",
			Help: "Reconciliation runs by result: clean, differences, error."}, []string{"result"}),
		lastClean: prometheus.NewGauge(prometheus.GaugeOpts{Name: "satu_reconcile_last_clean_timestamp_seconds",
			Help: "When a reconciliation last found no difference (Unix seconds)."}),
	}
	if reg != nil {
		reg.MustRegister(l.differences, l.runs, l.lastClean)
	}
	return l
}

// Run reconciles every Interval until ctx ends.
func (l *ReconcileLoop) Run(ctx context.Context) error {
	t := time.NewTicker(l.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_, _ = l.Once(ctx)
		}
	}
}

// Once runs one reconciliation and records its outcome.
func (l *ReconcileLoop) Once(ctx context.Context) (Report, error) {
	r, err := l.Reconciler.Reconcile(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.runs.WithLabelValues("error").Inc()
			l.Log.Warn("reconciliation could not run", zap.Error(err))
		}
		return r, err
	}
	for _, c := range r.Checks {
		l.differences.WithLabelValues(c.Name).Set(float64(c.Differences))
	}
	if r.Clean() {
		l.runs.WithLabelValues("clean").Inc()
		l.lastClean.Set(float64(r.At.Unix()))
		l.Log.Info("reconciliation clean", zap.Any("positions", r.Positions))
		return r, nil
	}
	l.runs.WithLabelValues("differences").Inc()
	for _, c := range r.Checks {
		if c.Differences > 0 {
			l.Log.Error("reconciliation found differences", zap.String("check", c.Name),
				zap.Int("differences", c.Differences), zap.Any("examples", c.Examples), zap.Any("positions", r.Positions))
		}
	}
	return r, nil
}
