package postgres

import (
	"context"

	"github.com/satu-exchange/satu/compliance"
)

// Summary is one miner's compliance at a glance, for the regulator and the
// miner itself.
type Summary struct {
	Miner compliance.Miner `json:"miner"`
	// Licensed says a licence is active today; MandatorySell what the engine
	// was last told about the miner's permission to place mandatory orders.
	Licensed      bool          `json:"licensedToday"`
	MandatorySell *bool         `json:"mandatorySell"`
	Licences      []LicenceView `json:"licences"`
	// Obligations counts the miner's obligations by status; Outstanding is
	// the volume still to sell per asset over open and overdue obligations.
	Obligations map[compliance.Status]int `json:"obligations"`
	Outstanding map[string]string         `json:"outstanding"`
	Violations  []Violation               `json:"violations"`
	// FinesMCI sums the violations' fines; SuspensionRecommended is set when
	// any violation recommends a suspension.
	FinesMCI              int64           `json:"finesMci"`
	SuspensionRecommended bool            `json:"suspensionRecommended"`
	PoolMismatches        int             `json:"poolMismatches"`
	QuotaOverruns         int             `json:"quotaOverruns"`
	Fees                  []FeeAssessment `json:"fees"`
}

// Summary returns a miner's compliance summary, or UNKNOWN_MINER.
func (s *Store) Summary(ctx context.Context, minerID string) (Summary, error) {
	m, err := s.Miner(ctx, minerID)
	if err != nil {
		return Summary{}, err
	}
	out := Summary{Miner: m, Obligations: map[compliance.Status]int{}, Outstanding: map[string]string{}}
	if out.Licences, err = s.LicenceViews(ctx, minerID); err != nil {
		return Summary{}, err
	}
	for _, l := range out.Licences {
		out.Licensed = out.Licensed || l.StatusToday == compliance.LicenceActive
	}
	if err := s.db.QueryRow(ctx, `SELECT mandatory_sell FROM miners WHERE id = $1`, minerID).Scan(&out.MandatorySell); err != nil {
		return Summary{}, err
	}
	obs, err := s.Obligations(ctx, ObligationFilter{Miner: minerID})
	if err != nil {
		return Summary{}, err
	}
	outstanding := map[string]int64{}
	for _, o := range obs {
		out.Obligations[o.Status]++
		if o.Status != compliance.StatusMet {
			rem, err := s.parse(o.Asset, o.Remaining)
			if err != nil {
				return Summary{}, err
			}
			outstanding[o.Asset] += rem
		}
	}
	for asset, v := range outstanding {
		out.Outstanding[asset] = s.numeric(asset, v)
	}
	if out.Violations, err = s.Violations(ctx, minerID); err != nil {
		return Summary{}, err
	}
	for _, v := range out.Violations {
		out.FinesMCI += v.FineMCI
		out.SuspensionRecommended = out.SuspensionRecommended || v.SuspensionMonths > 0
	}
	reports, err := s.Reports(ctx, ReportFilter{Miner: minerID})
	if err != nil {
		return Summary{}, err
	}
	for _, r := range reports {
		if r.PoolMismatch {
			out.PoolMismatches++
		}
	}
	energy, err := s.Energy(ctx, minerID)
	if err != nil {
		return Summary{}, err
	}
	for _, e := range energy {
		if e.Overrun {
			out.QuotaOverruns++
		}
	}
	if out.Fees, err = s.FeeAssessments(ctx, minerID); err != nil {
		return Summary{}, err
	}
	return out, nil
}
