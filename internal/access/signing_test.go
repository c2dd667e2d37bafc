package access_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/apperr"
)

func TestPayloadIsCanonical(t *testing.T) {
	for _, c := range []struct{ params, want string }{
		{`{}`, ``},
		// Sorted by name; strings by content, numbers and booleans as written.
		{`{"symbol":"BTCKZT","quantity":"0.3","timestamp":1700000000000,"mandatory":true}`,
			`mandatory=true&quantity=0.3&symbol=BTCKZT&timestamp=1700000000000`},
		// A value cannot pose as a separator: '&' and '=' are escaped.
		{`{"a":"1&b=2"}`, `a=1%26b%3D2`},
		{`{"a":"1","b":"2"}`, `a=1&b=2`},
		// Unicode and escapes are by their UTF-8 bytes.
		{`{"label":"Алтай \u0041"}`, `label=%D0%90%D0%BB%D1%82%D0%B0%D0%B9%20A`},
	} {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c.params), &m); err != nil {
			t.Fatal(err)
		}
		got, err := access.Payload(m)
		if err != nil || got != c.want {
			t.Errorf("Payload(%s) = %q, %v; want %q", c.params, got, err, c.want)
		}
	}
	for _, bad := range []string{`{"a":{"b":1}}`, `{"a":[1]}`, `{"a":null}`} {
		var m map[string]json.RawMessage
		_ = json.Unmarshal([]byte(bad), &m)
		if _, err := access.Payload(m); apperr.CodeOf(err) != apperr.InvalidParameter {
			t.Errorf("Payload(%s): %v, want INVALID_PARAMETER", bad, err)
		}
	}
}

// signers returns an Ed25519 and an HMAC signer with their server-side keys.
func signers(t *testing.T) map[access.SigningKind]struct {
	s access.Signer
	k access.SigningKey
} {
	pub, priv, err := ed25519.GenerateKey(strings.NewReader(strings.Repeat("seed", 16)))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	p := access.Principal{KeyID: "k1", Role: access.RoleTrader, Accounts: []string{"t-1"}}
	return map[access.SigningKind]struct {
		s access.Signer
		k access.SigningKey
	}{
		access.SigningEd25519: {access.Signer{APIKey: "k1", Kind: access.SigningEd25519, Ed25519: priv},
			access.SigningKey{Principal: p, Kind: access.SigningEd25519, Key: pub}},
		access.SigningHMAC: {access.Signer{APIKey: "k1", Kind: access.SigningHMAC, HMACSecret: secret},
			access.SigningKey{Principal: p, Kind: access.SigningHMAC, Key: secret}},
	}
}

func TestSignedRequests(t *testing.T) {
	now := time.UnixMilli(1_763_800_000_000)
	params := map[string]any{"symbol": "BTCKZT", "side": "SELL", "quantity": "0.3", "mandatory": true}
	for kind, sk := range signers(t) {
		t.Run(string(kind), func(t *testing.T) {
			signed, err := sk.s.Sign("order.place", params, now)
			if err != nil {
				t.Fatal(err)
			}
			sig, payload, rest, ok, err := access.SplitSigned("order.place", signed)
			if err != nil || !ok {
				t.Fatalf("SplitSigned: %v %v", ok, err)
			}
			if err := sk.k.Check(sig, payload, now.Add(4*time.Second)); err != nil {
				t.Fatalf("a fresh signed request: %v", err)
			}
			var got map[string]any
			if err := json.Unmarshal(rest, &got); err != nil || len(got) != 4 || got["symbol"] != "BTCKZT" {
				t.Fatalf("the request's own params: %s %v", rest, err)
			}
			if sig.APIKey != "k1" || sig.RecvWindow != access.DefaultRecvWindow {
				t.Fatalf("signature %+v", sig)
			}
			// Remembered until the timestamp is stale on a gateway whose
			// clock is up to 30 s behind: to the timestamp + 5 s + 30 s.
			for at, want := range map[time.Duration]time.Duration{0: 35 * time.Second, 5 * time.Second: 30 * time.Second,
				-time.Second: 36 * time.Second, 40 * time.Second: 6 * time.Second} {
				if got := sig.ReplayTTL(now.Add(at)); got != want {
					t.Errorf("ReplayTTL at the timestamp %+v = %v; want %v", at, got, want)
				}
			}
			for name, c := range map[string]struct {
				edit func(map[string]json.RawMessage)
				at   time.Time
				want apperr.Code
			}{
				"ErrStale":        {nil, now.Add(5*time.Second + time.Millisecond), apperr.StaleRequest},
				"ErrAhead":        {nil, now.Add(-time.Second - time.Millisecond), apperr.StaleRequest},
				"ErrEditedValue":  {func(m map[string]json.RawMessage) { m["quantity"] = json.RawMessage(`"3"`) }, now, apperr.BadSignature},
				"ErrAddedParam":   {func(m map[string]json.RawMessage) { m["price"] = json.RawMessage(`"1"`) }, now, apperr.BadSignature},
				"ErrDroppedParam": {func(m map[string]json.RawMessage) { delete(m, "mandatory") }, now, apperr.BadSignature},
				"ErrWiderWindow":  {func(m map[string]json.RawMessage) { m["recvWindow"] = json.RawMessage(`60000`) }, now.Add(10 * time.Second), apperr.BadSignature},
				"ErrGarbledSig":   {func(m map[string]json.RawMessage) { m["signature"] = json.RawMessage(`"!!"`) }, now, apperr.BadSignature},
			} {
				var m map[string]json.RawMessage
				_ = json.Unmarshal(signed, &m)
				if c.edit != nil {
					c.edit(m)
				}
				b, _ := json.Marshal(m)
				sig, payload, _, _, err := access.SplitSigned("order.place", b)
				if err == nil {
					err = sk.k.Check(sig, payload, c.at)
				}
				if apperr.CodeOf(err) != c.want {
					t.Errorf("%s: %v, want %s", name, err, c.want)
				}
			}
		})
	}
	// A signature covers the method: the same parameters sent as another
	// method do not verify.
	for kind, sk := range signers(t) {
		signed, _ := sk.s.Sign("account.status", nil, now)
		sig, payload, _, _, err := access.SplitSigned("session.logon", signed)
		if err == nil {
			err = sk.k.Check(sig, payload, now)
		}
		if apperr.CodeOf(err) != apperr.BadSignature {
			t.Errorf("%s: a signed account.status sent as session.logon: %v, want BAD_SIGNATURE", kind, err)
		}
	}
	// A signature of one kind does not pass as the other's; a bearer key cannot sign.
	all := signers(t)
	signed, _ := all[access.SigningEd25519].s.Sign("order.place", params, now)
	sig, payload, _, _, _ := access.SplitSigned("order.place", signed)
	if err := all[access.SigningHMAC].k.Check(sig, payload, now); apperr.CodeOf(err) != apperr.BadSignature {
		t.Errorf("an Ed25519 signature checked as HMAC: %v", err)
	}
	bearer := access.SigningKey{Kind: access.SigningNone}
	if err := bearer.Check(sig, payload, now); apperr.CodeOf(err) != apperr.Unauthenticated {
		t.Errorf("a bearer key: %v", err)
	}
}

func TestSplitSignedRefusals(t *testing.T) {
	for params, want := range map[string]apperr.Code{
		`{"signature":"x","timestamp":1}`:                                 apperr.InvalidParameter, // no apiKey
		`{"signature":"x","apiKey":"k"}`:                                  apperr.InvalidParameter, // no timestamp
		`{"signature":"x","apiKey":"k","timestamp":"1"}`:                  apperr.InvalidParameter,
		`{"signature":"x","apiKey":"k","timestamp":1,"recvWindow":60001}`: apperr.InvalidParameter,
		`{"signature":"x","apiKey":"k","timestamp":1,"recvWindow":0}`:     apperr.InvalidParameter,
		`{"signature":"","apiKey":"k","timestamp":1}`:                     apperr.InvalidParameter,
		`{"signature":1,"apiKey":"k","timestamp":1}`:                      apperr.InvalidParameter,
		`{"signature":"x","apiKey":"k","timestamp":1,"o":{"a":1}}`:        apperr.InvalidParameter,
		`["signature"]`: apperr.MalformedJSON,
	} {
		if _, _, _, _, err := access.SplitSigned("order.place", json.RawMessage(params)); apperr.CodeOf(err) != want {
			t.Errorf("SplitSigned(%s): %v, want %s", params, err, want)
		}
	}
	// Unsigned: passed through untouched, even with "signature" in a value.
	for _, p := range []string{`{"symbol":"BTCKZT"}`, `{"label":"signature"}`} {
		if _, _, rest, ok, err := access.SplitSigned("depth", json.RawMessage(p)); ok || err != nil || string(rest) != p {
			t.Errorf("SplitSigned(%s) = %s, %v, %v", p, rest, ok, err)
		}
	}
}

func TestSignerFiles(t *testing.T) {
	now := time.UnixMilli(1_763_800_000_000)
	for kind, sk := range signers(t) {
		b, err := sk.s.MarshalFile()
		if err != nil {
			t.Fatal(err)
		}
		s, err := access.ParseSignerFile(b)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		signed, err := s.Sign("depth", map[string]string{"a": "b"}, now)
		if err != nil {
			t.Fatal(err)
		}
		sig, payload, _, _, _ := access.SplitSigned("depth", signed)
		if err := sk.k.Check(sig, payload, now); err != nil {
			t.Fatalf("%s: a signer read from its file: %v", kind, err)
		}
	}
	for _, bad := range []string{`{}`, `{"apiKey":"k","signing":"ed25519","privateKey":"AAAA"}`,
		`{"apiKey":"k","signing":"hmac","secret":"short"}`, `{"apiKey":"k","signing":"rsa"}`, `{"apiKey":"k","extra":1}`} {
		if _, err := access.ParseSignerFile([]byte(bad)); apperr.CodeOf(err) != apperr.InvalidParameter {
			t.Errorf("ParseSignerFile(%s): %v", bad, err)
		}
	}
}

// TestDocumentedPayload: docs/api.md's example payload.
func TestDocumentedPayload(t *testing.T) {
	m := map[string]json.RawMessage{"apiKey": json.RawMessage(`"3f1c0a9b7d2e4c68"`),
		"timestamp": json.RawMessage(`1763800000000`), "account": json.RawMessage(`"tour-miner-1"`)}
	const doc = "session.logon?account=tour-miner-1&apiKey=3f1c0a9b7d2e4c68&timestamp=1763800000000"
	if got, err := access.SignedPayload("session.logon", m); err != nil || got != doc {
		t.Fatalf("payload %q, %v; docs/api.md says %q", got, err, doc)
	}
	b, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "`"+doc+"`") {
		t.Fatal("docs/api.md no longer shows the example payload")
	}
}

// TestReplayIDIsTheSignaturesBytes: the spellings of one signature that
// its decoder takes — a line break inside the base64, another last
// character differing only in the unused bits, upper-case hex — all pass
// Check and all name the same replay, so a replay cannot pass as a first
// use by re-spelling the signature.
func TestReplayIDIsTheSignaturesBytes(t *testing.T) {
	now := time.UnixMilli(1_763_800_000_000)
	params := map[string]any{"symbol": "BTCKZT", "side": "SELL", "quantity": "0.3"}
	for kind, sk := range signers(t) {
		signed, err := sk.s.Sign("order.place", params, now)
		if err != nil {
			t.Fatal(err)
		}
		sig, payload, _, _, err := access.SplitSigned("order.place", signed)
		if err != nil {
			t.Fatal(err)
		}
		v := sig.Value
		var respelt []string
		switch kind {
		case access.SigningEd25519:
			// 64 bytes are 88 characters ending in "==": the last data
			// character carries 4 unused bits.
			last := strings.IndexByte(base64Alphabet, v[85])
			respelt = []string{v[:40] + "\n" + v[40:], v[:85] + string(base64Alphabet[last^1]) + v[86:]}
		case access.SigningHMAC:
			respelt = []string{strings.ToUpper(v)}
		}
		want := sk.k.ReplayID(sig)
		for _, r := range respelt {
			s := sig
			s.Value = r
			if err := sk.k.Check(s, payload, now); err != nil {
				t.Fatalf("%s: the re-spelt signature %q: %v (the decoder takes it)", kind, r, err)
			}
			if got := sk.k.ReplayID(s); got != want {
				t.Errorf("%s: the re-spelt signature %q names replay %s; the original %s", kind, r, got, want)
			}
		}
	}
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// TestEd25519PublicKeyChecked: a key pair's public key passes; a key of
// small order (with which anyone can sign), one not on the curve and one
// not canonically encoded are refused.
func TestEd25519PublicKeyChecked(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := access.CheckEd25519PublicKey(pub); err != nil {
		t.Fatalf("a generated key: %v", err)
	}
	identity := make([]byte, 32)
	identity[0] = 1 // y = 1: the neutral point
	nonCanonical := make([]byte, 32)
	for i := range nonCanonical {
		nonCanonical[i] = 0xff
	}
	nonCanonical[0], nonCanonical[31] = 0xed, 0x7f // y = p: the encoding of 0, not reduced
	for name, key := range map[string][]byte{
		"zero bytes (order 4)": make([]byte, 32),
		"the neutral point":    identity,
		"not reduced":          nonCanonical,
	} {
		if err := access.CheckEd25519PublicKey(key); apperr.CodeOf(err) != apperr.InvalidParameter {
			t.Errorf("%s: %v; want INVALID_PARAMETER", name, err)
		}
	}
	// The point of the check: ed25519.Verify takes the 32 zero bytes as a
	// key, and the signature R = the neutral point, S = 0 verifies for
	// about one payload in four (whenever the hash is a multiple of the
	// key's order, 4) — a forgery that needs no private key.
	sig := make([]byte, 64)
	sig[0] = 1
	forged := 0
	for i := range 64 {
		if ed25519.Verify(make([]byte, 32), []byte("order.cancel?orderId="+strconv.Itoa(i)), sig) {
			forged++
		}
	}
	if forged == 0 {
		t.Fatal("no payload forged against the small-order key: the check's reason is gone (ed25519.Verify refuses such keys now)")
	}
	// A key registered before the check: its forged signatures are refused.
	k := access.SigningKey{Principal: access.Principal{KeyID: "old", Role: access.RoleTrader, Accounts: []string{"t-1"}},
		Kind: access.SigningEd25519, Key: make([]byte, 32)}
	now := time.UnixMilli(1_763_800_000_000)
	for i := range 64 {
		payload := "order.cancel?orderId=" + strconv.Itoa(i)
		sig := access.Signature{APIKey: "old", Timestamp: now, RecvWindow: time.Second, Value: base64.StdEncoding.EncodeToString(sig)}
		if err := k.Check(sig, payload, now); apperr.CodeOf(err) != apperr.BadSignature {
			t.Fatalf("a forged signature of a small-order key, payload %q: %v; want BAD_SIGNATURE", payload, err)
		}
	}
}
