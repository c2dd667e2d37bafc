package wsapi

import "github.com/satu-exchange/satu/compliance"

// ObligationUpdate is a user-data event for a miner's key: one of its
// obligations after its sold or remaining quantity, its required quantity
// (an amended report) or its status changed. It follows settlement, which
// counts mandatory fills towards obligations, by up to a poll interval.
type ObligationUpdate struct {
	Event      string                    `json:"e"` // "obligationUpdate"
	Time       int64                     `json:"E"` // when the gateway saw the change, Unix ms
	Obligation compliance.ObligationView `json:"obligation"`
}
