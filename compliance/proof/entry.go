package proof

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Version is the encoding version of every entry this package writes.
const Version = "satu-log/v1"

// Entry kinds.
const (
	KindFill        = "fill"
	KindReport      = "report"
	KindComputation = "computation"
	KindAttribution = "attribution"
	KindState       = "state"
	KindLicence     = "licence"
)

// Fill is a settled trade.
type Fill struct {
	Shard       string `json:"shard"`
	ID          string `json:"id"`
	Seq         uint64 `json:"seq"`
	Symbol      string `json:"symbol"`
	Base        string `json:"base"`
	Quote       string `json:"quote"`
	Price       string `json:"price"`
	Quantity    string `json:"quantity"`
	QuoteAmount string `json:"quoteAmount"`
	Buyer       string `json:"buyer"`
	Seller      string `json:"seller"`
	Mandatory   bool   `json:"mandatory"`
	ExecutedAt  string `json:"executedAt"`
}

// Report is one version of a mined-volume report.
type Report struct {
	Miner   string   `json:"miner"`
	Asset   string   `json:"asset"`
	Period  string   `json:"period"`
	Version int      `json:"version"`
	Mined   string   `json:"mined"`
	Wallets []string `json:"wallets"`
	Source  string   `json:"source"`
	Pool    string   `json:"pool"`
	Reason  string   `json:"reason"`
}

// Computation is one computation of an obligation from a report version.
type Computation struct {
	Obligation     int64  `json:"obligation"`
	Version        int    `json:"version"`
	Miner          string `json:"miner"`
	Asset          string `json:"asset"`
	Period         string `json:"period"`
	Deadline       string `json:"deadline"`
	ReportVersion  int    `json:"reportVersion"`
	Mined          string `json:"mined"`
	Share          string `json:"share"`
	RuleSet        string `json:"ruleSet"`
	RuleSetVersion int    `json:"ruleSetVersion"`
	Required       string `json:"required"`
}

// Attribution is how much of a miner's sale counted towards an obligation,
// or that it counted towards nothing and why.
type Attribution struct {
	Shard      string `json:"shard"`
	Fill       string `json:"fill"`
	Miner      string `json:"miner"`
	Obligation int64  `json:"obligation"` // 0 when excluded
	Quantity   string `json:"quantity"`
	Counted    bool   `json:"counted"`
	Reason     string `json:"reason"` // exclusion reason; "" when counted
	Reference  string `json:"reference"`
	Basis      string `json:"basis"`
}

// State is an obligation's change of status (met, overdue).
type State struct {
	Obligation int64  `json:"obligation"`
	Status     string `json:"status"`
	Sold       string `json:"sold"`
	At         string `json:"at"`
}

// Licence is a licence event: registered, suspended, reinstated, revoked.
type Licence struct {
	Miner   string `json:"miner"`
	Number  string `json:"number"`
	Event   string `json:"event"`
	Subtype string `json:"subtype"`
	From    string `json:"from"`
	Until   string `json:"until"`
	Reason  string `json:"reason"`
}

// Encode returns the canonical leaf data of an entry.
func Encode(kind string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("proof: encode %s: %w", kind, err)
	}
	return append([]byte(Version+" "+kind+"\n"), b...), nil
}

// MustEncode is Encode for the package's own entry types, which always
// marshal.
func MustEncode(kind string, v any) []byte {
	b, err := Encode(kind, v)
	if err != nil {
		panic(err) // impossible: the entry types are plain structs of strings and numbers
	}
	return b
}

// LeafHash is the Merkle leaf hash of entry data.
func LeafHash(data []byte) tlog.Hash { return tlog.RecordHash(data) }

// Decode reads leaf data strictly into the entry type of its kind and
// returns the kind. The data must be exactly what Encode writes for that
// value, so two different texts never claim one entry.
func Decode(data []byte) (string, any, error) {
	header, body, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return "", nil, fmt.Errorf("entry has no header line")
	}
	version, kind, _ := strings.Cut(string(header), " ")
	if version != Version {
		return "", nil, fmt.Errorf("entry version %q is not %q", version, Version)
	}
	var v any
	switch kind {
	case KindFill:
		v = new(Fill)
	case KindReport:
		v = new(Report)
	case KindComputation:
		v = new(Computation)
	case KindAttribution:
		v = new(Attribution)
	case KindState:
		v = new(State)
	case KindLicence:
		v = new(Licence)
	default:
		return "", nil, fmt.Errorf("entry kind %q is unknown", kind)
	}
	if parseCanonical(body, v) != nil {
		// Not the canonical layout: encoding/json says what is wrong (or
		// reads it, and the comparison below refuses it).
		reflect.ValueOf(v).Elem().SetZero()
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return "", nil, fmt.Errorf("%s entry: %w", kind, err)
		}
	}
	if again, err := Encode(kind, v); err != nil || !bytes.Equal(again, data) {
		return "", nil, fmt.Errorf("%s entry is not in canonical form", kind)
	}
	return kind, v, nil
}
