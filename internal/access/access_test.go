package access_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/apperr"
)

func TestAccessParseRole(t *testing.T) {
	for _, r := range []access.Role{access.RoleMiner, access.RoleTrader, access.RoleMarketMaker, access.RoleOperator, access.RoleRegulator} {
		got, err := access.ParseRole(string(r))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "Operator", "admin", "market-maker", " miner"} {
		if _, err := access.ParseRole(s); apperr.CodeOf(err) != apperr.InvalidParameter {
			t.Errorf("ParseRole(%q): %v; want %s", s, err, apperr.InvalidParameter)
		}
	}
}

// TestAccessPermissions checks every role against every permission, for the
// principal's own miner and account and for someone else's.
func TestAccessPermissions(t *testing.T) {
	principals := map[access.Role]access.Principal{
		access.RoleMiner:       {KeyID: "k1", Role: access.RoleMiner, Miner: "qaz", Accounts: []string{"qaz-1", "qaz-2"}},
		access.RoleTrader:      {KeyID: "k2", Role: access.RoleTrader, Accounts: []string{"buyer-1"}},
		access.RoleMarketMaker: {KeyID: "k3", Role: access.RoleMarketMaker, Accounts: []string{"mm-1"}},
		access.RoleOperator:    {KeyID: "k4", Role: access.RoleOperator},
		access.RoleRegulator:   {KeyID: "k5", Role: access.RoleRegulator},
		"":                     {},
	}
	type perms struct {
		writeRegistry, readAll                    bool
		actsForQaz, readQaz, readOtherMiner       bool
		actsForOwn, readOwn, actsOther, readOther bool
	}
	// own is the principal's own account (qaz-2 for the miner, its second one).
	own := map[access.Role]string{access.RoleMiner: "qaz-2", access.RoleTrader: "buyer-1", access.RoleMarketMaker: "mm-1",
		access.RoleOperator: "buyer-1", access.RoleRegulator: "buyer-1", "": "buyer-1"}
	want := map[access.Role]perms{
		access.RoleMiner:       {actsForQaz: true, readQaz: true, actsForOwn: true, readOwn: true},
		access.RoleTrader:      {actsForOwn: true, readOwn: true},
		access.RoleMarketMaker: {actsForOwn: true, readOwn: true},
		access.RoleOperator:    {writeRegistry: true, readAll: true, readQaz: true, readOtherMiner: true, readOwn: true, readOther: true},
		access.RoleRegulator:   {readAll: true, readQaz: true, readOtherMiner: true, readOwn: true, readOther: true},
		"":                     {},
	}
	for role, p := range principals {
		got := perms{
			writeRegistry:  p.CanWriteRegistry(),
			readAll:        p.CanReadAll(),
			actsForQaz:     p.ActsForMiner("qaz"),
			readQaz:        p.CanReadMiner("qaz"),
			readOtherMiner: p.CanReadMiner("other") || p.ActsForMiner("other"),
			actsForOwn:     p.ActsForAccount(own[role]),
			readOwn:        p.CanReadAccount(own[role]),
			actsOther:      p.ActsForAccount("other-1"),
			readOther:      p.CanReadAccount("other-1"),
		}
		if got != want[role] {
			t.Errorf("role %q: permissions %+v; want %+v", role, got, want[role])
		}
	}
}

// TestAccessEmptyIDs: an empty miner or account never matches, even for a
// principal whose own fields are empty.
func TestAccessEmptyIDs(t *testing.T) {
	p := access.Principal{Role: access.RoleMiner, Accounts: []string{""}}
	if p.ActsForMiner("") || p.ActsForAccount("") || p.CanReadMiner("") || p.CanReadAccount("") {
		t.Fatal("an empty id matched")
	}
}

func TestAccessContext(t *testing.T) {
	if _, ok := access.FromContext(context.Background()); ok {
		t.Fatal("a principal in an empty context")
	}
	accounts := []string{"buyer-1"}
	ctx := access.WithPrincipal(context.Background(), access.Principal{KeyID: "k", Role: access.RoleTrader, Accounts: accounts})
	accounts[0] = "someone-else"
	p, ok := access.FromContext(ctx)
	if !ok || p.KeyID != "k" || p.Role != access.RoleTrader || !p.ActsForAccount("buyer-1") || p.ActsForAccount("someone-else") {
		t.Fatalf("FromContext = %+v, %v", p, ok)
	}
	p.Accounts[0] = "changed"
	if again, _ := access.FromContext(ctx); !again.ActsForAccount("buyer-1") {
		t.Fatal("a handler changed the context's principal")
	}
}

func TestAccessTokenRoundTrip(t *testing.T) {
	// A fixed reader: bytes 0, 1, 2, …
	seq := make([]byte, 40)
	for i := range seq {
		seq[i] = byte(i)
	}
	tok, err := access.NewToken(bytes.NewReader(seq))
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID != "0001020304050607" || tok.Secret != "CAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJic" {
		t.Fatalf("token = %+v", tok)
	}
	s := tok.String()
	if s != "satu_0001020304050607_CAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJic" {
		t.Fatalf("String() = %q", s)
	}
	back, err := access.ParseToken(s)
	if err != nil || back != tok {
		t.Fatalf("ParseToken(String()) = %+v, %v", back, err)
	}
	if _, err := access.NewToken(bytes.NewReader(seq[:39])); err == nil {
		t.Fatal("a short random source gave a token")
	}
	// Random tokens: right shape, round trip, all different.
	seen := map[string]bool{}
	for range 100 {
		tok, err := access.NewToken(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok.ID) != 16 || len(tok.Secret) != 43 || seen[tok.ID] || seen[tok.Secret] {
			t.Fatalf("token %+v", tok)
		}
		seen[tok.ID], seen[tok.Secret] = true, true
		if back, err := access.ParseToken(tok.String()); err != nil || back != tok {
			t.Fatalf("ParseToken(%q) = %+v, %v", tok, back, err)
		}
	}
}

func TestAccessMalformedTokens(t *testing.T) {
	const id, secret = "0001020304050607", "CAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJic"
	for name, s := range map[string]string{
		"empty":                  "",
		"no prefix":              id + "_" + secret,
		"wrong prefix":           "sato_" + id + "_" + secret,
		"upper-case prefix":      "SATU_" + id + "_" + secret,
		"short id":               "satu_" + id[:15] + "_" + secret,
		"long id":                "satu_" + id + "0_" + secret,
		"non-hex id":             "satu_000102030405060g_" + secret,
		"upper-case hex id":      "satu_00010203040506AB_" + secret,
		"short secret":           "satu_" + id + "_" + secret[:42],
		"long secret":            "satu_" + id + "_" + secret + "A",
		"padded secret":          "satu_" + id + "_" + secret + "=",
		"bad base64":             "satu_" + id + "_" + "CAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJi!",
		"standard base64":        "satu_" + id + "_" + "CAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJi+",
		"non-zero trailing bits": "satu_" + id + "_" + secret[:42] + "d",
		"extra underscore":       "satu__" + id + "_" + secret[:42],
		"extra underscores":      "satu_" + id + "__" + secret,
		"trailing underscore":    "satu_" + id + "_" + secret + "_",
		"missing separator":      "satu_" + id + secret + "A",
		"space":                  " satu_" + id + "_" + secret,
		"newline":                "satu_" + id + "_" + secret + "\n",
	} {
		_, err := access.ParseToken(s)
		if apperr.CodeOf(err) != apperr.Unauthenticated || apperr.MessageOf(err) != "malformed API key" {
			t.Errorf("%s: ParseToken(%q) = %v; want UNAUTHENTICATED malformed API key", name, s, err)
		}
		if len(s) > 20 && strings.Contains(err.Error(), s[len(s)-20:]) {
			t.Errorf("%s: the error repeats the secret: %v", name, err)
		}
	}
}

func TestAccessTokenMatches(t *testing.T) {
	tok, err := access.NewToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := access.NewToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hash := access.HashSecret(tok.Secret)
	if len(hash) != 32 || bytes.Contains(hash, []byte(tok.Secret)) {
		t.Fatalf("hash = %x", hash)
	}
	for name, c := range map[string]struct {
		tok  access.Token
		hash []byte
		want bool
	}{
		"own hash":         {tok, hash, true},
		"other's hash":     {other, hash, false},
		"same id":          {access.Token{ID: tok.ID, Secret: other.Secret}, hash, false},
		"truncated hash":   {tok, hash[:31], false},
		"empty hash":       {tok, nil, false},
		"hash of the hash": {tok, access.HashSecret(string(hash)), false},
	} {
		if got := c.tok.Matches(c.hash); got != c.want {
			t.Errorf("%s: Matches = %v; want %v", name, got, c.want)
		}
	}
}
