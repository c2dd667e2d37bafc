package access

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/edwards25519"

	"github.com/satu-exchange/satu/internal/apperr"
)

// Signed requests. A websocket request is signed by adding four parameters
// to its params, as in the Binance WebSocket API: apiKey (the key's ID),
// timestamp (Unix milliseconds), recvWindow (optional, milliseconds) and
// signature. The signature covers the canonical payload of every other
// parameter, and the method (SignedPayload). An Ed25519 key signs with the holder's private key,
// of which the exchange knows only the public half; an HMAC key signs with
// a secret the exchange issued and stores.

// SigningKind is how a key signs requests.
type SigningKind string

// The signing kinds. The values are stored in api_keys.signing.
const (
	// SigningNone: a bearer key for REST only; it cannot sign.
	SigningNone SigningKind = "none"
	// SigningEd25519: Ed25519 over the payload, the signature in base64.
	SigningEd25519 SigningKind = "ed25519"
	// SigningHMAC: HMAC-SHA256 over the payload, the signature in hex.
	SigningHMAC SigningKind = "hmac"
)

// The parameters a signed request adds.
const (
	ParamAPIKey     = "apiKey"
	ParamTimestamp  = "timestamp"
	ParamRecvWindow = "recvWindow"
	ParamSignature  = "signature"
)

// Time limits of a signed request.
const (
	DefaultRecvWindow = 5 * time.Second
	MaxRecvWindow     = 60 * time.Second
	// MaxClockAhead is how far a client's clock may run ahead of the
	// server's (Binance allows one second as well).
	MaxClockAhead = time.Second
)

// SigningKey is a key able to sign requests and the principal it stands for.
type SigningKey struct {
	Principal Principal
	Kind      SigningKind
	// Key is the Ed25519 public key or the HMAC secret.
	Key []byte
}

// CheckEd25519PublicKey refuses a public key no one should sign with: not
// a point of the curve, not in its canonical encoding, or of small order.
// ed25519.Verify accepts a small-order point (32 zero bytes, say) as a key,
// and with one anybody can forge a signature in a few tries: a key
// registered so — by a tool's placeholder, or by its holder, who could
// then deny its orders — would sign for everyone.
func CheckEd25519PublicKey(pub []byte) error {
	bad := func(why string) error {
		return apperr.New(apperr.InvalidParameter, "the ed25519 public key is %s: generate a key pair (satu signer does)", why)
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	switch {
	case err != nil:
		return bad("not a point of the curve")
	case !bytes.Equal(p.Bytes(), pub):
		return bad("not canonically encoded")
	case new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1:
		return bad("of small order (anyone could sign with it)")
	}
	return nil
}

// Signature is what a signed request carries besides its own parameters.
type Signature struct {
	APIKey     string
	Timestamp  time.Time
	RecvWindow time.Duration
	Value      string // the signature, as sent
}

// SplitSigned separates a signed request's params (a JSON object) into its
// signature and the canonical payload the signature covers (SignedPayload:
// the method, then every parameter but the signature, the apiKey, timestamp
// and recvWindow included), and returns the request's own parameters —
// without the four — for decoding. ok is false when params carry no
// signature: the request is not signed.
func SplitSigned(method string, params json.RawMessage) (sig Signature, payload string, rest json.RawMessage, ok bool, err error) {
	if !bytes.Contains(params, []byte(`"`+ParamSignature+`"`)) {
		return Signature{}, "", params, false, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(params, &m); err != nil {
		return Signature{}, "", nil, true, apperr.New(apperr.MalformedJSON, "params must be a JSON object: %v", err)
	}
	raw, ok := m[ParamSignature]
	if !ok { // "signature" appeared only inside a value
		return Signature{}, "", params, false, nil
	}
	if err := json.Unmarshal(raw, &sig.Value); err != nil || sig.Value == "" {
		return Signature{}, "", nil, true, apperr.New(apperr.InvalidParameter, "signature must be a non-empty string")
	}
	delete(m, ParamSignature)
	if payload, err = SignedPayload(method, m); err != nil {
		return Signature{}, "", nil, true, err
	}
	if err := json.Unmarshal(m[ParamAPIKey], &sig.APIKey); err != nil || sig.APIKey == "" {
		return Signature{}, "", nil, true, apperr.New(apperr.InvalidParameter, "a signed request needs apiKey, the key's ID")
	}
	var ts, window int64
	if err := json.Unmarshal(m[ParamTimestamp], &ts); err != nil || ts <= 0 {
		return Signature{}, "", nil, true, apperr.New(apperr.InvalidParameter, "a signed request needs timestamp, Unix milliseconds")
	}
	sig.Timestamp = time.UnixMilli(ts)
	sig.RecvWindow = DefaultRecvWindow
	if w, ok := m[ParamRecvWindow]; ok {
		if err := json.Unmarshal(w, &window); err != nil || window <= 0 || window > MaxRecvWindow.Milliseconds() {
			return Signature{}, "", nil, true, apperr.New(apperr.InvalidParameter,
				"recvWindow must be whole milliseconds from 1 to %d", MaxRecvWindow.Milliseconds())
		}
		sig.RecvWindow = time.Duration(window) * time.Millisecond
	}
	delete(m, ParamAPIKey)
	delete(m, ParamTimestamp)
	delete(m, ParamRecvWindow)
	if rest, err = json.Marshal(m); err != nil {
		return Signature{}, "", nil, true, err
	}
	return sig, payload, rest, true, nil
}

// SignedPayload is the text a signature covers: the request's method, '?',
// and its parameters' Payload — "order.place?apiKey=…&price=…". The method
// is covered so that a signed request cannot be sent as another method with
// the same parameters (a signed account.status, whose parameters are those
// of a session.logon, sent as one). The method is escaped like a value, and
// '?' is never the output of an escape: the two parts cannot be confused.
func SignedPayload(method string, params map[string]json.RawMessage) (string, error) {
	p, err := Payload(params)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(method) + 1 + len(p))
	escape(&b, method)
	b.WriteByte('?')
	b.WriteString(p)
	return b.String(), nil
}

// Payload is the canonical text of a request's parameters: the parameters sorted
// by name, each as name=value joined by '&', where a string's value is its
// content and a number's or boolean's is its JSON text, names and values
// percent-encoded except for RFC 3986's unreserved characters
// (A–Z a–z 0–9 - . _ ~), so that no value can pose as a separator. Nested
// objects, arrays and null are refused: a signed request is flat.
func Payload(params map[string]json.RawMessage) (string, error) {
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for i, n := range names {
		raw := bytes.TrimSpace(params[n])
		var v string
		switch {
		case len(raw) > 0 && raw[0] == '"':
			if err := json.Unmarshal(raw, &v); err != nil {
				return "", apperr.New(apperr.MalformedJSON, "parameter %s: %v", n, err)
			}
		case bytes.Equal(raw, []byte("true")) || bytes.Equal(raw, []byte("false")):
			v = string(raw)
		case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
			v = string(raw)
		default:
			return "", apperr.New(apperr.InvalidParameter, "parameter %s: a signed request's parameters must be strings, numbers or booleans", n)
		}
		if i > 0 {
			b.WriteByte('&')
		}
		escape(&b, n)
		b.WriteByte('=')
		escape(&b, v)
	}
	return b.String(), nil
}

func escape(b *strings.Builder, s string) {
	const hexDigits = "0123456789ABCDEF"
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
}

// Check verifies a signed request at time now: its timestamp lies within
// its recvWindow before now (and at most MaxClockAhead after), and the
// signature over payload is k's. It says nothing about replays: the caller
// remembers each accepted signature for ReplayTTL.
func (k SigningKey) Check(sig Signature, payload string, now time.Time) error {
	if age := now.Sub(sig.Timestamp); age > sig.RecvWindow || age < -MaxClockAhead {
		return apperr.New(apperr.StaleRequest, "timestamp %d is outside the recvWindow of %d ms around the server's time %d",
			sig.Timestamp.UnixMilli(), sig.RecvWindow.Milliseconds(), now.UnixMilli())
	}
	bad := apperr.New(apperr.BadSignature, "the signature does not match the request's parameters and the key %s", sig.APIKey)
	switch k.Kind {
	case SigningEd25519:
		// A key registered before small-order keys were refused is checked
		// here too: with one, anybody's signature would verify.
		s, err := base64.StdEncoding.DecodeString(sig.Value)
		if err != nil || len(s) != ed25519.SignatureSize || len(k.Key) != ed25519.PublicKeySize ||
			CheckEd25519PublicKey(k.Key) != nil || !ed25519.Verify(ed25519.PublicKey(k.Key), []byte(payload), s) {
			return bad
		}
	case SigningHMAC:
		s, err := hex.DecodeString(sig.Value)
		if err != nil || !hmac.Equal(s, hmacSHA256(k.Key, payload)) {
			return bad
		}
	default:
		return apperr.New(apperr.Unauthenticated, "API key %s cannot sign requests: it is a REST bearer key", sig.APIKey)
	}
	return nil
}

// MaxGatewaySkew is how far the clocks of two gateways sharing the replay
// memory may disagree and a replay still be refused: a gateway whose clock
// is behind takes a timestamp for fresh for that much longer.
const MaxGatewaySkew = 30 * time.Second

// ReplayTTL is how long a signature accepted at now must be remembered to
// refuse its replay: until its timestamp is stale on every gateway — its
// recvWindow after the timestamp, on a clock up to MaxGatewaySkew behind
// now's — and at least recvWindow + MaxClockAhead from now.
func (sig Signature) ReplayTTL(now time.Time) time.Duration {
	return max(sig.Timestamp.Add(sig.RecvWindow+MaxGatewaySkew).Sub(now), sig.RecvWindow+MaxClockAhead)
}

// ReplayID names a signature k accepted (Check) for the replay memory: the
// key and a hash of the signature's bytes — decoded, not as sent, since the
// decoders take several spellings of the same bytes (base64 ignores line
// breaks and the unused bits of its last character, hex takes either
// case), and each spelling would otherwise be a first use. An HMAC
// signature is deterministic, so the same request signed twice is the same
// request.
func (k SigningKey) ReplayID(sig Signature) string {
	b, err := []byte(sig.Value), error(nil)
	switch k.Kind {
	case SigningEd25519:
		b, err = base64.StdEncoding.DecodeString(sig.Value)
	case SigningHMAC:
		b, err = hex.DecodeString(sig.Value)
	}
	if err != nil { // not a signature Check accepts: named as sent
		b = []byte(sig.Value)
	}
	h := sha256.Sum256(b)
	return sig.APIKey + ":" + hex.EncodeToString(h[:16])
}

func hmacSHA256(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Signer signs requests for one key: the client's half of SplitSigned.
type Signer struct {
	APIKey     string
	Kind       SigningKind
	Ed25519    ed25519.PrivateKey // for SigningEd25519
	HMACSecret []byte             // for SigningHMAC
	RecvWindow time.Duration      // 0: the server's default
}

// Sign adds apiKey, timestamp, recvWindow and signature to params (a flat
// JSON object, or nil for none) of a request of method at time now and
// returns the signed params.
func (s Signer) Sign(method string, params any, now time.Time) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
	}
	m[ParamAPIKey], _ = json.Marshal(s.APIKey)
	m[ParamTimestamp] = json.RawMessage(strconv.FormatInt(now.UnixMilli(), 10))
	if s.RecvWindow > 0 {
		m[ParamRecvWindow] = json.RawMessage(strconv.FormatInt(s.RecvWindow.Milliseconds(), 10))
	}
	payload, err := SignedPayload(method, m)
	if err != nil {
		return nil, err
	}
	var sig string
	switch s.Kind {
	case SigningEd25519:
		sig = base64.StdEncoding.EncodeToString(ed25519.Sign(s.Ed25519, []byte(payload)))
	case SigningHMAC:
		sig = hex.EncodeToString(hmacSHA256(s.HMACSecret, payload))
	default:
		return nil, apperr.New(apperr.InvalidParameter, "signer: unknown signing kind %q", s.Kind)
	}
	m[ParamSignature], _ = json.Marshal(sig)
	return json.Marshal(m)
}

// signerFile is a Signer as `satu signer` writes it (mode 0600): the key's
// ID and the private half — an Ed25519 seed or the HMAC secret.
type signerFile struct {
	APIKey     string      `json:"apiKey"`
	Signing    SigningKind `json:"signing"`
	PrivateKey string      `json:"privateKey,omitempty"` // Ed25519 seed, base64
	Secret     string      `json:"secret,omitempty"`     // HMAC secret
}

// MarshalFile encodes the signer for its holder's key file. The result
// holds a private key: write it with mode 0600 and never log it.
func (s Signer) MarshalFile() ([]byte, error) {
	f := signerFile{APIKey: s.APIKey, Signing: s.Kind}
	switch s.Kind {
	case SigningEd25519:
		f.PrivateKey = base64.StdEncoding.EncodeToString(s.Ed25519.Seed())
	case SigningHMAC:
		f.Secret = string(s.HMACSecret)
	default:
		return nil, apperr.New(apperr.InvalidParameter, "signer: unknown signing kind %q", s.Kind)
	}
	b, err := json.MarshalIndent(f, "", "  ")
	return append(b, '\n'), err
}

// ParseSignerFile reads what MarshalFile wrote. Errors never repeat the
// file's content: it holds a private key.
func ParseSignerFile(b []byte) (Signer, error) {
	var f signerFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil || f.APIKey == "" {
		return Signer{}, apperr.New(apperr.InvalidParameter, "signer file: want {\"apiKey\", \"signing\", \"privateKey\" or \"secret\"}")
	}
	s := Signer{APIKey: f.APIKey, Kind: f.Signing}
	switch f.Signing {
	case SigningEd25519:
		seed, err := base64.StdEncoding.DecodeString(f.PrivateKey)
		if err != nil || len(seed) != ed25519.SeedSize {
			return Signer{}, apperr.New(apperr.InvalidParameter, "signer file: privateKey must be a base64 Ed25519 seed of %d bytes", ed25519.SeedSize)
		}
		s.Ed25519 = ed25519.NewKeyFromSeed(seed)
	case SigningHMAC:
		if len(f.Secret) < 32 {
			return Signer{}, apperr.New(apperr.InvalidParameter, "signer file: secret must be the HMAC secret the exchange issued")
		}
		s.HMACSecret = []byte(f.Secret)
	default:
		return Signer{}, apperr.New(apperr.InvalidParameter, "signer file: signing must be ed25519 or hmac")
	}
	return s, nil
}
