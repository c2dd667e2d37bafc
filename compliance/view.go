package compliance

// ObligationView is an obligation with its progress, amounts as decimal
// strings in whole units of the asset.
type ObligationView struct {
	ID             int64  `json:"id"`
	Miner          string `json:"miner"`
	Asset          string `json:"asset"`
	Period         string `json:"period"` // "2025-01"
	PeriodStart    string `json:"periodStart"`
	PeriodEnd      string `json:"periodEnd"`
	Deadline       string `json:"deadline"`
	Mined          string `json:"mined"`
	Share          string `json:"share"`
	RuleSet        string `json:"ruleSet"`
	RuleSetVersion int    `json:"ruleSetVersion"`
	ReportVersion  int    `json:"reportVersion"`
	Required       string `json:"required"`
	Sold           string `json:"sold"`
	Remaining      string `json:"remaining"`
	Status         Status `json:"status"`
}
