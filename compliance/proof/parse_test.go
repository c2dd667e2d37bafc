package proof

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// parseSeeds are canonical bodies of every kind, including the escapes and
// nulls encoding/json writes.
var parseSeeds = []struct {
	kind string
	v    any
}{
	{KindFill, &Fill{Shard: "s1", ID: "7-1", Seq: 7, Symbol: "BTC-KZT", Price: "1.00", Quantity: "0.1", Mandatory: true, ExecutedAt: "t"}},
	{KindReport, &Report{Miner: "a<b>&\"c\\", Asset: "BTC", Version: 2, Wallets: []string{"w1", "ü\u2028", ""}}},
	{KindReport, &Report{Miner: "alpha", Wallets: nil}},
	{KindComputation, &Computation{Obligation: -3, Version: 1, RuleSetVersion: 2}},
	{KindAttribution, &Attribution{Shard: "s1", Fill: "8-0", Counted: false, Reason: "not_mandatory"}},
	{KindState, &State{Obligation: 1 << 62, Status: "met"}},
	{KindLicence, &Licence{Miner: "alpha", Reason: "tab\there"}},
}

// TestParseCanonicalTakesCanonicalBodies: every canonical body is read by
// the fast parser itself (no fall-back) into exactly the value encoded.
func TestParseCanonicalTakesCanonicalBodies(t *testing.T) {
	for _, s := range parseSeeds {
		data := MustEncode(s.kind, s.v)
		_, body, _ := bytes.Cut(data, []byte("\n"))
		got := reflect.New(reflect.TypeOf(s.v).Elem()).Interface()
		if err := parseCanonical(body, got); err != nil {
			t.Fatalf("%s %s: %v", s.kind, body, err)
		}
		if !reflect.DeepEqual(got, s.v) {
			t.Fatalf("%s: read %+v, encoded %+v", s.kind, got, s.v)
		}
	}
}

// FuzzParseCanonical: whatever body the fast parser accepts, encoding/json
// reads to the same value — so the parser can only be faster, never read
// an entry differently.
func FuzzParseCanonical(f *testing.F) {
	for i, s := range parseSeeds {
		_, body, _ := bytes.Cut(MustEncode(s.kind, s.v), []byte("\n"))
		f.Add(i, body)
	}
	f.Fuzz(func(t *testing.T, i int, body []byte) {
		if i < 0 {
			i = -i
		}
		typ := reflect.TypeOf(parseSeeds[i%len(parseSeeds)].v).Elem()
		fast := reflect.New(typ).Interface()
		if parseCanonical(body, fast) != nil {
			return
		}
		slow := reflect.New(typ).Interface()
		if err := json.Unmarshal(body, slow); err != nil {
			t.Fatalf("fast parser read %q, encoding/json refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast parser read %+v, encoding/json %+v", body, fast, slow)
		}
	})
}
