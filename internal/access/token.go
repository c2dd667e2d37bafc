package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/satu-exchange/satu/internal/apperr"
)

// An API key is "satu_<id>_<secret>". The prefix makes a leaked key easy to
// recognise (and to scan for in repositories); the id is public and names
// the key in logs and in the database; the secret is 256 random bits, of
// which only the SHA-256 is stored. A fast hash is enough: the secret is
// random, not a password, so there is nothing to brute-force.
const (
	tokenPrefix = "satu_"
	idBytes     = 8
	secretBytes = 32
	idLen       = 2 * idBytes                              // lower-case hex
	secretLen   = (secretBytes*8 + 5) / 6                  // base64url without padding: 43
	tokenLen    = len(tokenPrefix) + idLen + 1 + secretLen // 65
)

// Token is an API key split into its public ID and its Secret.
//
// String returns the whole key, secret included: print it only to the one
// person it is issued to, never to a log.
type Token struct {
	ID     string
	Secret string
	// HMACSecret is the secret of a key issued for HMAC request signing
	// (empty otherwise): the HMAC-SHA256 key is its bytes as written. Like
	// Secret it is shown once; unlike Secret the exchange stores it, since
	// it needs it to check a signature.
	HMACSecret string
}

// NewHMACSecret draws an HMAC signing secret: 256 random bits, base64url.
func NewHMACSecret(rand io.Reader) (string, error) {
	var b [secretBytes]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("new HMAC secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// NewToken draws a new key from rand (crypto/rand.Reader in production; a
// fixed reader makes tests deterministic).
func NewToken(rand io.Reader) (Token, error) {
	var b [idBytes + secretBytes]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return Token{}, fmt.Errorf("new API key: %w", err)
	}
	return Token{
		ID:     hex.EncodeToString(b[:idBytes]),
		Secret: base64.RawURLEncoding.EncodeToString(b[idBytes:]),
	}, nil
}

// String is the key as the client sends it: "satu_" + ID + "_" + Secret.
func (t Token) String() string { return tokenPrefix + t.ID + "_" + t.Secret }

// ParseToken splits a key into ID and secret. It accepts exactly the form
// NewToken produces and nothing else, so that a key has one spelling and a
// typo fails here rather than as a database miss. The error never repeats
// the input: it holds a secret.
func ParseToken(s string) (Token, error) {
	malformed := apperr.New(apperr.Unauthenticated, "malformed API key")
	// The secret's alphabet includes '_', so the key is split by position,
	// not by separator.
	if len(s) != tokenLen || !strings.HasPrefix(s, tokenPrefix) || s[len(tokenPrefix)+idLen] != '_' {
		return Token{}, malformed
	}
	id := s[len(tokenPrefix) : len(tokenPrefix)+idLen]
	secret := s[len(tokenPrefix)+idLen+1:]
	for i := range len(id) {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return Token{}, malformed
		}
	}
	// Strict decoding refuses non-zero trailing bits, the only other
	// spelling of the same 32 bytes.
	if b, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil || len(b) != secretBytes {
		return Token{}, malformed
	}
	return Token{ID: id, Secret: secret}, nil
}

// HashSecret is what is stored for a secret: its SHA-256.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Matches reports whether t's secret is the one whose hash is stored. The
// comparison takes the same time wherever the hashes differ, so response
// times tell an attacker nothing about how close a guess was.
func (t Token) Matches(hash []byte) bool {
	return subtle.ConstantTimeCompare(HashSecret(t.Secret), hash) == 1
}
