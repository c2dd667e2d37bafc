package proof_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/satu-exchange/satu/compliance/proof"
)

// golden is one entry of each kind with its canonical leaf data written out
// by hand: the field order and names are the log's format, which every
// leaf already in a log depends on — a change here is a new Version.
var golden = []struct {
	name string
	kind string
	v    any
	data string
}{
	{"fill", proof.KindFill, proof.Fill{Shard: "s1", ID: "7-1", Seq: 7, Symbol: "BTC-KZT", Base: "BTC", Quote: "KZT", Price: "30000000.00",
		Quantity: "0.40000000", QuoteAmount: "12000000.00", Buyer: "buyer-1", Seller: "alpha-1", Mandatory: true,
		ExecutedAt: "2024-02-10T06:00:00.000Z"},
		"satu-log/v1 fill\n" + `{"shard":"s1","id":"7-1","seq":7,"symbol":"BTC-KZT","base":"BTC","quote":"KZT","price":"30000000.00",` +
			`"quantity":"0.40000000","quoteAmount":"12000000.00","buyer":"buyer-1","seller":"alpha-1","mandatory":true,` +
			`"executedAt":"2024-02-10T06:00:00.000Z"}`},
	{"report", proof.KindReport, proof.Report{Miner: "alpha", Asset: "BTC", Period: "2024-01", Version: 2, Mined: "2.00000000",
		Wallets: []string{"w1", "w2"}, Source: "miner", Pool: "", Reason: "corrected"},
		"satu-log/v1 report\n" + `{"miner":"alpha","asset":"BTC","period":"2024-01","version":2,"mined":"2.00000000",` +
			`"wallets":["w1","w2"],"source":"miner","pool":"","reason":"corrected"}`},
	{"computation", proof.KindComputation, proof.Computation{Obligation: 3, Version: 1, Miner: "alpha", Asset: "BTC", Period: "2024-01",
		Deadline: "2024-03-01", ReportVersion: 1, Mined: "2.00000000", Share: "0.5", RuleSet: "kz-law-193", RuleSetVersion: 2,
		Required: "1.00000000"},
		"satu-log/v1 computation\n" + `{"obligation":3,"version":1,"miner":"alpha","asset":"BTC","period":"2024-01",` +
			`"deadline":"2024-03-01","reportVersion":1,"mined":"2.00000000","share":"0.5","ruleSet":"kz-law-193",` +
			`"ruleSetVersion":2,"required":"1.00000000"}`},
	{"attribution/counted", proof.KindAttribution, proof.Attribution{Shard: "s1", Fill: "7-1", Miner: "alpha", Obligation: 3, Quantity: "0.40000000",
		Counted: true, Reason: "", Reference: "30000000.00", Basis: "vwap"},
		"satu-log/v1 attribution\n" + `{"shard":"s1","fill":"7-1","miner":"alpha","obligation":3,"quantity":"0.40000000",` +
			`"counted":true,"reason":"","reference":"30000000.00","basis":"vwap"}`},
	{"attribution/excluded", proof.KindAttribution, proof.Attribution{Shard: "s1", Fill: "8-0", Miner: "alpha", Quantity: "0.05000000",
		Reason: "not_mandatory", Basis: "none"},
		"satu-log/v1 attribution\n" + `{"shard":"s1","fill":"8-0","miner":"alpha","obligation":0,"quantity":"0.05000000",` +
			`"counted":false,"reason":"not_mandatory","reference":"","basis":"none"}`},
	{"state", proof.KindState, proof.State{Obligation: 3, Status: "met", Sold: "1.00000000", At: "2024-02-20T05:00:00.000Z"},
		"satu-log/v1 state\n" + `{"obligation":3,"status":"met","sold":"1.00000000","at":"2024-02-20T05:00:00.000Z"}`},
	{"licence", proof.KindLicence, proof.Licence{Miner: "alpha", Number: "KZ-DM-alpha", Event: "suspend", From: "2024-04-01",
		Until: "2024-05-01", Reason: "inspection"},
		"satu-log/v1 licence\n" + `{"miner":"alpha","number":"KZ-DM-alpha","event":"suspend","subtype":"","from":"2024-04-01",` +
			`"until":"2024-05-01","reason":"inspection"}`},
}

func TestEncodeDecode(t *testing.T) {
	for _, g := range golden {
		t.Run("OK/"+g.name, func(t *testing.T) {
			data, err := proof.Encode(g.kind, g.v)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if string(data) != g.data {
				t.Fatalf("Encode =\n%s\nwant\n%s", data, g.data)
			}
			if !bytes.Equal(proof.MustEncode(g.kind, g.v), data) {
				t.Errorf("MustEncode differs from Encode")
			}
			kind, v, err := proof.Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			// Decode returns a pointer to the kind's entry type.
			if got := reflect.ValueOf(v); kind != g.kind || got.Kind() != reflect.Pointer || !reflect.DeepEqual(got.Elem().Interface(), g.v) {
				t.Errorf("Decode = %s %#v, want %s %#v", kind, v, g.kind, g.v)
			}
			// RFC 6962 leaf hash: SHA-256 of 0x00 and the data.
			if want := sha256.Sum256(append([]byte{0}, data...)); proof.LeafHash(data) != tlog.Hash(want) {
				t.Errorf("LeafHash = %x, want SHA-256(0x00 ‖ data) = %x", proof.LeafHash(data), want)
			}
		})
		t.Run("ErrSpaced/"+g.name, func(t *testing.T) {
			spaced := strings.Replace(g.data, `":`, `": `, 1)
			wantDecodeErr(t, spaced, g.kind+" entry is not in canonical form")
		})
	}
}

func TestDecode_NotCanonical(t *testing.T) {
	fill := golden[0].data
	header, body, _ := strings.Cut(fill, "\n")
	for _, tc := range []struct {
		name, data, want string
	}{
		{"ErrSpaceAfterColon", strings.Replace(fill, `"seq":7`, `"seq": 7`, 1), "fill entry is not in canonical form"},
		{"ErrSpaceBeforeBrace", header + "\n " + body, "fill entry is not in canonical form"},
		{"ErrTrailingNewline", fill + "\n", "fill entry is not in canonical form"},
		{"ErrIndented", header + "\n" + strings.ReplaceAll(body, ",", ",\n  "), "fill entry is not in canonical form"},
		{"ErrReordered", strings.Replace(fill, `"shard":"s1","id":"7-1"`, `"id":"7-1","shard":"s1"`, 1), "fill entry is not in canonical form"},
		{"ErrMissingField", strings.Replace(fill, `"mandatory":true,`, ``, 1), "fill entry is not in canonical form"},
		{"ErrDuplicateField", strings.Replace(fill, `"shard":"s1"`, `"shard":"s2","shard":"s1"`, 1), "fill entry is not in canonical form"},
		{"ErrEscapedCharacter", strings.Replace(fill, `"buyer-1"`, `"buyer\u002d1"`, 1), "fill entry is not in canonical form"},
		{"ErrTwoValues", fill + body, "fill entry is not in canonical form"},
		{"ErrUnknownField", strings.Replace(fill, `}`, `,"fee":"0.01"}`, 1), `fill entry: json: unknown field "fee"`},
		{"ErrWrongType", strings.Replace(fill, `"seq":7`, `"seq":"7"`, 1), "fill entry: json: cannot unmarshal string"},
		{"ErrNegativeSeq", strings.Replace(fill, `"seq":7`, `"seq":-7`, 1), "fill entry: json: cannot unmarshal number -7"},
		{"ErrNotJSON", header + "\nfill 7-1", "fill entry: invalid character"},
		{"ErrEmptyBody", header + "\n", "fill entry: EOF"},
		{"ErrWrongVersion", strings.Replace(fill, "satu-log/v1", "satu-log/v2", 1), `entry version "satu-log/v2" is not "satu-log/v1"`},
		{"ErrNoVersion", "fill\n" + body, `entry version "fill" is not "satu-log/v1"`},
		{"ErrUnknownKind", strings.Replace(fill, "v1 fill", "v1 trade", 1), `entry kind "trade" is unknown`},
		{"ErrKindCase", strings.Replace(fill, "v1 fill", "v1 Fill", 1), `entry kind "Fill" is unknown`},
		{"ErrDoubleSpaceInHeader", strings.Replace(fill, "v1 fill", "v1  fill", 1), `entry kind " fill" is unknown`},
		{"ErrCRLF", strings.Replace(fill, "fill\n", "fill\r\n", 1), `entry kind "fill\r" is unknown`},
		{"ErrNoHeader", body, "entry has no header line"},
		// A fill's body under another kind's header.
		{"ErrBodyOfAnotherKind", "satu-log/v1 report\n" + body, `report entry: json: unknown field "shard"`},
	} {
		t.Run(tc.name, func(t *testing.T) { wantDecodeErr(t, tc.data, tc.want) })
	}
}

func wantDecodeErr(t *testing.T, data, want string) {
	t.Helper()
	kind, v, err := proof.Decode([]byte(data))
	if err == nil {
		t.Fatalf("Decode(%q) = %s %+v, want an error", data, kind, v)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("Decode(%q) error = %q, want it to contain %q", data, err, want)
	}
}

// origin is the log's name and its signing key's.
const origin = "satu/compliance-log"

func newKey(t *testing.T, name string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return signer, vkey
}

func TestCheckpoint(t *testing.T) {
	signer, vkey := newKey(t, origin)
	root := tlog.RecordHash([]byte("a leaf"))
	b64 := base64.StdEncoding.EncodeToString(root[:])
	cp := proof.Checkpoint{Origin: origin, Size: 12345, Root: root}
	signed, err := proof.Sign(cp, signer)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	// signBody signs any text with the log's key, bypassing Sign's checks.
	signBody := func(t *testing.T, text string) string {
		t.Helper()
		msg, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			t.Fatal(err)
		}
		return string(msg)
	}

	t.Run("OK/RoundTrip", func(t *testing.T) {
		if want := origin + "\n12345\n" + b64 + "\n"; cp.Text() != want {
			t.Errorf("Text = %q, want %q", cp.Text(), want)
		}
		// The signed note is the body, a blank line and the signature line.
		if !strings.HasPrefix(signed, cp.Text()+"\n— "+origin+" ") {
			t.Errorf("signed checkpoint = %q, want the body then a signature by %s", signed, origin)
		}
		got, err := proof.OpenCheckpoint(signed, vkey)
		if err != nil || got != cp {
			t.Errorf("OpenCheckpoint = %+v, %v; want %+v", got, err, cp)
		}
	})
	t.Run("OK/KeyWithNewline", func(t *testing.T) {
		if got, err := proof.OpenCheckpoint(signed, "  "+vkey+"\n"); err != nil || got != cp {
			t.Errorf("OpenCheckpoint = %+v, %v; want %+v", got, err, cp)
		}
	})
	t.Run("OK/Empty", func(t *testing.T) {
		empty := proof.Checkpoint{Origin: origin}
		s, err := proof.Sign(empty, signer)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := proof.OpenCheckpoint(s, vkey); err != nil || got != empty {
			t.Errorf("OpenCheckpoint = %+v, %v; want %+v", got, err, empty)
		}
	})
	t.Run("ErrSignOtherOrigin", func(t *testing.T) {
		_, err := proof.Sign(proof.Checkpoint{Origin: "other/log", Size: 1, Root: root}, signer)
		wantErr(t, err, `key "satu/compliance-log" cannot sign the checkpoint of "other/log"`)
	})

	sameName, _ := newKey(t, origin)
	otherName, _ := newKey(t, "evil/log")
	for _, tc := range []struct {
		name, signed, vkey, want string
	}{
		// Another key under the log's very name: its key hash differs.
		{"ErrOtherKeySameName", must(proof.Sign(cp, sameName)), vkey, "checkpoint signature: note has no verifiable signatures"},
		{"ErrOtherKey", must(proof.Sign(proof.Checkpoint{Origin: "evil/log", Size: 12345, Root: root}, otherName)), vkey,
			"checkpoint signature: note has no verifiable signatures"},
		{"ErrEditedSize", strings.Replace(signed, "\n12345\n", "\n12346\n", 1), vkey,
			"checkpoint signature: invalid signature for key " + origin + "+"},
		{"ErrEditedRoot", strings.Replace(signed, b64, base64.StdEncoding.EncodeToString(make([]byte, 32)), 1), vkey,
			"checkpoint signature: invalid signature for key " + origin + "+"},
		{"ErrNotANote", "just text", vkey, "checkpoint signature: malformed note"},
		{"ErrBadVerifierKey", signed, "satu/compliance-log+00000000+AQ", "public key: "},
		{"ErrOriginNotKeyName", signBody(t, "other/log\n12345\n"+b64+"\n"), vkey,
			`checkpoint: origin "other/log" is not the key's "satu/compliance-log"`},
		{"ErrMissingRoot", signBody(t, origin+"\n12345\n"), vkey, "checkpoint: want origin, size and root, one per line"},
		{"ErrExtraLine", signBody(t, origin+"\n12345\n"+b64+"\nextension\n"), vkey, "checkpoint: want origin, size and root, one per line"},
		{"ErrNegativeSize", signBody(t, origin+"\n-1\n"+b64+"\n"), vkey, `checkpoint: size "-1" is not a number`},
		{"ErrLeadingZeroSize", signBody(t, origin+"\n012345\n"+b64+"\n"), vkey, `checkpoint: size "012345" is not a number`},
		{"ErrPlusSize", signBody(t, origin+"\n+12345\n"+b64+"\n"), vkey, `checkpoint: size "+12345" is not a number`},
		{"ErrShortRoot", signBody(t, origin+"\n12345\n"+base64.StdEncoding.EncodeToString(root[:31])+"\n"), vkey,
			"is not a base64 SHA-256 hash"},
		{"ErrRootNotBase64", signBody(t, origin+"\n12345\n"+strings.ReplaceAll(b64, "=", "")+"!\n"), vkey,
			"is not a base64 SHA-256 hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := proof.OpenCheckpoint(tc.signed, tc.vkey)
			if err == nil {
				t.Fatalf("OpenCheckpoint = %+v, want an error", got)
			}
			wantErr(t, err, tc.want)
		})
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v, want it to contain %q", err, want)
	}
}
