package postgres_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var t0 = time.Date(2025, 4, 1, 9, 0, 0, 0, time.UTC)

// newKeyStore returns a key store on a fresh migrated database holding the
// miner "qaz" with the accounts qaz-2 and qaz-1, and the database.
func newKeyStore(t *testing.T) (*postgres.KeyStore, *pgxpool.Pool) {
	t.Helper()
	db := testenv.PG(t)
	_, err := db.Exec(context.Background(), `
		INSERT INTO miners (id, name, bin, entity_kind) VALUES ('qaz', 'Qaz Miner LLP', '230140000001', 'legal_entity');
		INSERT INTO miner_accounts (account, miner_id) VALUES ('qaz-2', 'qaz'), ('qaz-1', 'qaz');`)
	if err != nil {
		t.Fatal(err)
	}
	return postgres.NewKeyStore(db), db
}

func wantCode(t *testing.T, what string, err error, want apperr.Code) {
	t.Helper()
	if got := apperr.CodeOf(err); got != want {
		t.Fatalf("%s: %v; want %s", what, err, want)
	}
}

func TestKeysCreateAndAuthenticateEachRole(t *testing.T) {
	s, _ := newKeyStore(t)
	ctx := context.Background()
	for _, c := range []struct {
		req  postgres.CreateRequest
		want access.Principal
	}{
		{postgres.CreateRequest{Role: access.RoleMiner, Miner: "qaz", Label: "Qaz treasury"},
			access.Principal{Role: access.RoleMiner, Miner: "qaz", Accounts: []string{"qaz-1", "qaz-2"}}},
		{postgres.CreateRequest{Role: access.RoleTrader, Account: "buyer-1", Label: "Buyer Co desk"},
			access.Principal{Role: access.RoleTrader, Accounts: []string{"buyer-1"}}},
		{postgres.CreateRequest{Role: access.RoleMarketMaker, Account: "mm-1", Label: "MM quoting bot"},
			access.Principal{Role: access.RoleMarketMaker, Accounts: []string{"mm-1"}}},
		{postgres.CreateRequest{Role: access.RoleOperator, Label: "ops console"},
			access.Principal{Role: access.RoleOperator}},
		{postgres.CreateRequest{Role: access.RoleRegulator, Label: "ARDFM supervision"},
			access.Principal{Role: access.RoleRegulator}},
	} {
		tok, err := s.Create(ctx, c.req, t0)
		if err != nil {
			t.Fatalf("Create(%+v): %v", c.req, err)
		}
		p, err := s.Authenticate(ctx, tok.String())
		if err != nil {
			t.Fatalf("Authenticate(%s key): %v", c.req.Role, err)
		}
		c.want.KeyID = tok.ID
		if p.KeyID != c.want.KeyID || p.Role != c.want.Role || p.Miner != c.want.Miner || !slices.Equal(p.Accounts, c.want.Accounts) {
			t.Errorf("%s key authenticates as %+v; want %+v", c.req.Role, p, c.want)
		}
	}
}

// TestKeysRefused: a wrong secret, an unknown id and a revoked key all get
// the same UNAUTHENTICATED answer; a malformed key gets its own.
func TestKeysRefused(t *testing.T) {
	s, _ := newKeyStore(t)
	ctx := context.Background()
	tok, err := s.Create(ctx, postgres.CreateRequest{Role: access.RoleTrader, Account: "buyer-1", Label: "desk"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := access.NewToken(strings.NewReader(strings.Repeat("x", 40)))
	if err != nil {
		t.Fatal(err)
	}
	for name, presented := range map[string]string{
		"wrong secret": access.Token{ID: tok.ID, Secret: other.Secret}.String(),
		"unknown id":   access.Token{ID: other.ID, Secret: tok.Secret}.String(),
	} {
		_, err := s.Authenticate(ctx, presented)
		wantCode(t, name, err, apperr.Unauthenticated)
		if apperr.MessageOf(err) != "invalid API key" || strings.Contains(err.Error(), tok.Secret) || strings.Contains(err.Error(), other.Secret) {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err = s.Authenticate(ctx, "satu_"+tok.ID+"_short")
	wantCode(t, "malformed", err, apperr.Unauthenticated)
	if apperr.MessageOf(err) != "malformed API key" {
		t.Errorf("malformed: %v", err)
	}

	must(t, s.Revoke(ctx, tok.ID, t0.Add(time.Hour)))
	_, err = s.Authenticate(ctx, tok.String())
	wantCode(t, "revoked", err, apperr.Unauthenticated)
	if apperr.MessageOf(err) != "invalid API key" {
		t.Errorf("revoked: %v", err)
	}
	wantCode(t, "revoking twice", s.Revoke(ctx, tok.ID, t0.Add(2*time.Hour)), apperr.Conflict)
	wantCode(t, "revoking an unknown key", s.Revoke(ctx, other.ID, t0), apperr.InvalidParameter)
}

func TestKeysCreateValidates(t *testing.T) {
	s, db := newKeyStore(t)
	ctx := context.Background()
	long := strings.Repeat("é", 101)
	for name, c := range map[string]struct {
		req  postgres.CreateRequest
		want apperr.Code
	}{
		"unknown role":              {postgres.CreateRequest{Role: "admin", Label: "x"}, apperr.InvalidParameter},
		"miner without miner id":    {postgres.CreateRequest{Role: access.RoleMiner, Label: "x"}, apperr.InvalidParameter},
		"unknown miner":             {postgres.CreateRequest{Role: access.RoleMiner, Miner: "nobody", Label: "x"}, apperr.UnknownMiner},
		"miner with an account":     {postgres.CreateRequest{Role: access.RoleMiner, Miner: "qaz", Account: "qaz-1", Label: "x"}, apperr.InvalidParameter},
		"trader without account":    {postgres.CreateRequest{Role: access.RoleTrader, Label: "x"}, apperr.InvalidParameter},
		"market maker, no account":  {postgres.CreateRequest{Role: access.RoleMarketMaker, Label: "x"}, apperr.InvalidParameter},
		"trader, bad account":       {postgres.CreateRequest{Role: access.RoleTrader, Account: "Buyer_1", Label: "x"}, apperr.InvalidParameter},
		"trader, hyphen first":      {postgres.CreateRequest{Role: access.RoleTrader, Account: "-buyer", Label: "x"}, apperr.InvalidParameter},
		"trader, 65-char account":   {postgres.CreateRequest{Role: access.RoleTrader, Account: strings.Repeat("a", 65), Label: "x"}, apperr.InvalidParameter},
		"trader with a miner":       {postgres.CreateRequest{Role: access.RoleTrader, Account: "b-1", Miner: "qaz", Label: "x"}, apperr.InvalidParameter},
		"operator with a miner":     {postgres.CreateRequest{Role: access.RoleOperator, Miner: "qaz", Label: "x"}, apperr.InvalidParameter},
		"regulator with an account": {postgres.CreateRequest{Role: access.RoleRegulator, Account: "b-1", Label: "x"}, apperr.InvalidParameter},
		"no label":                  {postgres.CreateRequest{Role: access.RoleOperator}, apperr.InvalidParameter},
		"blank label":               {postgres.CreateRequest{Role: access.RoleOperator, Label: "  "}, apperr.InvalidParameter},
		"label over 100 chars":      {postgres.CreateRequest{Role: access.RoleOperator, Label: long}, apperr.InvalidParameter},
		"label with a newline":      {postgres.CreateRequest{Role: access.RoleOperator, Label: "a\nb"}, apperr.InvalidParameter},
	} {
		_, err := s.Create(ctx, c.req, t0)
		wantCode(t, name, err, c.want)
	}
	var n int
	must(t, db.QueryRow(ctx, `SELECT count(*) FROM api_keys`).Scan(&n))
	if n != 0 {
		t.Fatalf("%d keys stored from refused requests", n)
	}
	// The limits themselves are accepted.
	for _, req := range []postgres.CreateRequest{
		{Role: access.RoleOperator, Label: long[2:]},
		{Role: access.RoleTrader, Account: strings.Repeat("a", 64), Label: "x"},
		{Role: access.RoleTrader, Account: "0", Label: "x"},
	} {
		if _, err := s.Create(ctx, req, t0); err != nil {
			t.Errorf("Create(%+v): %v", req, err)
		}
	}
}

// TestKeysListAndSecrets: the database and the list hold only hashes; two
// keys never share an id or a secret.
func TestKeysListAndSecrets(t *testing.T) {
	s, db := newKeyStore(t)
	ctx := context.Background()
	a, err := s.Create(ctx, postgres.CreateRequest{Role: access.RoleMiner, Miner: "qaz", Label: "Qaz treasury"}, t0)
	must(t, err)
	b, err := s.Create(ctx, postgres.CreateRequest{Role: access.RoleTrader, Account: "buyer-1", Label: "Buyer desk"}, t0.Add(time.Minute))
	must(t, err)
	if a.ID == b.ID || a.Secret == b.Secret {
		t.Fatalf("two keys share a part: %+v %+v", a, b)
	}
	must(t, s.Revoke(ctx, a.ID, t0.Add(time.Hour)))

	keys, err := s.List(ctx)
	must(t, err)
	if len(keys) != 2 {
		t.Fatalf("List = %+v", keys)
	}
	ka, kb := keys[0], keys[1]
	if ka.ID != a.ID || ka.Role != access.RoleMiner || ka.Miner != "qaz" || ka.Account != "" || ka.Label != "Qaz treasury" ||
		!ka.Created.Equal(t0) || ka.Revoked == nil || !ka.Revoked.Equal(t0.Add(time.Hour)) {
		t.Errorf("first key = %+v", ka)
	}
	if kb.ID != b.ID || kb.Role != access.RoleTrader || kb.Miner != "" || kb.Account != "buyer-1" || kb.Revoked != nil {
		t.Errorf("second key = %+v", kb)
	}
	listed := fmt.Sprintf("%+v %#v", keys, keys)
	for _, tok := range []access.Token{a, b} {
		hash := access.HashSecret(tok.Secret)
		if strings.Contains(listed, tok.Secret) || strings.Contains(listed, hex.EncodeToString(hash)) || strings.Contains(listed, fmt.Sprint(hash)) {
			t.Errorf("List shows the secret or its hash of %s: %s", tok.ID, listed)
		}
	}

	var stored []byte
	must(t, db.QueryRow(ctx, `SELECT secret_hash FROM api_keys WHERE id = $1`, b.ID).Scan(&stored))
	if !b.Matches(stored) || strings.Contains(string(stored), b.Secret) {
		t.Fatalf("stored %x is not the hash of the secret", stored)
	}
	// No column of any row holds a secret.
	var rows int
	must(t, db.QueryRow(ctx, `SELECT count(*) FROM api_keys k WHERE position($1 in k::text) > 0 OR position($2 in k::text) > 0`,
		a.Secret, b.Secret).Scan(&rows))
	if rows != 0 {
		t.Fatal("a secret is stored")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSigningKeys(t *testing.T) {
	s, db := newKeyStore(t)
	ctx := context.Background()
	pub, priv, err := ed25519.GenerateKey(nil)
	must(t, err)
	edTok, err := s.Create(ctx, postgres.CreateRequest{Role: access.RoleMiner, Miner: "qaz", Label: "qaz bot",
		Signing: access.SigningEd25519, Ed25519PublicKey: pub}, t0)
	must(t, err)
	if edTok.HMACSecret != "" {
		t.Fatal("an ed25519 key was issued an HMAC secret")
	}
	hmTok, err := s.Create(ctx, postgres.CreateRequest{Role: access.RoleTrader, Account: "buyer-1", Label: "buyer bot",
		Signing: access.SigningHMAC}, t0)
	must(t, err)
	if len(hmTok.HMACSecret) != 43 {
		t.Fatalf("HMAC secret %q", hmTok.HMACSecret)
	}
	bearer, err := s.Create(ctx, postgres.CreateRequest{Role: access.RoleTrader, Account: "buyer-1", Label: "buyer REST"}, t0)
	must(t, err)

	// Each signs a request that checks against what the store returns.
	now := time.UnixMilli(1_763_800_000_000)
	for _, c := range []struct {
		signer access.Signer
		want   access.Principal
	}{
		{access.Signer{APIKey: edTok.ID, Kind: access.SigningEd25519, Ed25519: priv},
			access.Principal{KeyID: edTok.ID, Role: access.RoleMiner, Miner: "qaz", Accounts: []string{"qaz-1", "qaz-2"}}},
		{access.Signer{APIKey: hmTok.ID, Kind: access.SigningHMAC, HMACSecret: []byte(hmTok.HMACSecret)},
			access.Principal{KeyID: hmTok.ID, Role: access.RoleTrader, Accounts: []string{"buyer-1"}}},
	} {
		signed, err := c.signer.Sign("depth", map[string]string{"symbol": "BTCKZT"}, now)
		must(t, err)
		sig, payload, _, _, err := access.SplitSigned("depth", signed)
		must(t, err)
		k, err := s.SigningKey(ctx, sig.APIKey)
		must(t, err)
		if fmt.Sprint(k.Principal) != fmt.Sprint(c.want) || k.Kind != c.signer.Kind {
			t.Errorf("signing key %+v, want %+v", k, c.want)
		}
		must(t, k.Check(sig, payload, now))
	}
	// Only the public key of an Ed25519 key is stored.
	var stored []byte
	must(t, db.QueryRow(ctx, `SELECT verify_key FROM api_keys WHERE id = $1`, edTok.ID).Scan(&stored))
	if !slices.Equal(stored, pub) {
		t.Fatal("the stored verify key is not the public key")
	}
	// A bearer key is found but cannot sign; unknown and revoked are alike.
	k, err := s.SigningKey(ctx, bearer.ID)
	must(t, err)
	if k.Kind != access.SigningNone {
		t.Fatalf("bearer key signs with %q", k.Kind)
	}
	must(t, s.Revoke(ctx, hmTok.ID, t0))
	for _, id := range []string{hmTok.ID, "0123456789abcdef"} {
		_, err := s.SigningKey(ctx, id)
		wantCode(t, "signing key "+id, err, apperr.Unauthenticated)
		if !strings.Contains(err.Error(), "invalid API key") {
			t.Fatalf("message %v", err)
		}
	}
	keys, err := s.List(ctx)
	must(t, err)
	kinds := map[string]access.SigningKind{}
	for _, k := range keys {
		kinds[k.ID] = k.Signing
	}
	if kinds[edTok.ID] != access.SigningEd25519 || kinds[hmTok.ID] != access.SigningHMAC || kinds[bearer.ID] != access.SigningNone {
		t.Fatalf("listed signing kinds %v", kinds)
	}
}

func TestSigningKeysRefused(t *testing.T) {
	s, db := newKeyStore(t)
	ctx := context.Background()
	pub, _, err := ed25519.GenerateKey(nil)
	must(t, err)
	for name, c := range map[string]struct {
		req  postgres.CreateRequest
		want string
	}{
		"ErrNoPublicKey":    {postgres.CreateRequest{Role: access.RoleTrader, Account: "a-1", Label: "x", Signing: access.SigningEd25519}, "needs its 32-byte public key"},
		"ErrShortPublicKey": {postgres.CreateRequest{Role: access.RoleTrader, Account: "a-1", Label: "x", Signing: access.SigningEd25519, Ed25519PublicKey: pub[:31]}, "not 31 bytes"},
		"ErrSmallOrderKey":  {postgres.CreateRequest{Role: access.RoleTrader, Account: "a-1", Label: "x", Signing: access.SigningEd25519, Ed25519PublicKey: make([]byte, 32)}, "small order"},
		"ErrKeyForHMAC":     {postgres.CreateRequest{Role: access.RoleTrader, Account: "a-1", Label: "x", Signing: access.SigningHMAC, Ed25519PublicKey: pub}, "only for an ed25519"},
		"ErrUnknownKind":    {postgres.CreateRequest{Role: access.RoleTrader, Account: "a-1", Label: "x", Signing: "rsa"}, `signing "rsa"`},
		"ErrRegulatorSigns": {postgres.CreateRequest{Role: access.RoleRegulator, Label: "x", Signing: access.SigningHMAC}, "cannot sign websocket requests"},
	} {
		_, err := s.Create(ctx, c.req, t0)
		wantCode(t, name, err, apperr.InvalidParameter)
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	var n int
	must(t, db.QueryRow(ctx, `SELECT count(*) FROM api_keys`).Scan(&n))
	if n != 0 {
		t.Fatalf("%d keys stored by refused requests", n)
	}
}
