package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/satu-exchange/satu/internal/access"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/testenv"
)

// TestKeysCommand issues a key with `satu keys create`, authenticates what
// it printed, lists it without its secret and revokes it.
func TestKeysCommand(t *testing.T) {
	ctx := t.Context()
	url := testenv.PGURL(t)
	env := map[string]string{"SATU_PG_URL": url}
	keys := func(args ...string) (int, string, string) {
		var out, errOut strings.Builder
		code := run(ctx, append([]string{"keys"}, args...), &out, &errOut, func(k string) string { return env[k] })
		return code, out.String(), errOut.String()
	}

	code, out, errOut := keys("create", "-role", "trader", "-account", "buyer-1", "-label", "Buyer Co desk")
	if code != 0 || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 ||
		!strings.Contains(errOut, "shown only this once") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("keys create: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	token := strings.TrimSuffix(out, "\n")
	tok, err := access.ParseToken(token)
	must(t, err)
	if strings.Contains(errOut, tok.Secret) {
		t.Fatalf("the warning shows the secret: %q", errOut)
	}

	db, err := pgxpool.New(ctx, url)
	must(t, err)
	defer db.Close()
	store := accesspg.NewKeyStore(db)
	p, err := store.Authenticate(ctx, token)
	must(t, err)
	if p.KeyID != tok.ID || p.Role != access.RoleTrader || !p.ActsForAccount("buyer-1") || p.CanReadAll() {
		t.Fatalf("the printed key authenticates as %+v", p)
	}

	// Flags from the environment, the database URL from -pg-url.
	env = map[string]string{}
	code, out, errOut = keys("create", "-pg-url", url, "-role", "operator", "-label", "ops console")
	if code != 0 {
		t.Fatalf("keys create -pg-url: exit %d: %s", code, errOut)
	}
	op, err := store.Authenticate(ctx, strings.TrimSpace(out))
	must(t, err)
	if op.Role != access.RoleOperator || op.KeyID == tok.ID {
		t.Fatalf("operator key authenticates as %+v", op)
	}
	env = map[string]string{"SATU_PG_URL": url}

	// Signing keys: an HMAC secret is printed once on a second line; an
	// Ed25519 key stores the public key given.
	code, out, errOut = keys("create", "-role", "trader", "-account", "bot-1", "-label", "bot", "-signing", "hmac")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || len(lines[1]) != 43 {
		t.Fatalf("keys create -signing hmac: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	hk, err := access.ParseToken(lines[0])
	must(t, err)
	sk, err := store.SigningKey(ctx, hk.ID)
	must(t, err)
	if sk.Kind != access.SigningHMAC || string(sk.Key) != lines[1] {
		t.Fatalf("the HMAC key is stored as %s", sk.Kind)
	}
	pub, _, err := ed25519.GenerateKey(nil)
	must(t, err)
	code, out, errOut = keys("create", "-role", "trader", "-account", "bot-1", "-label", "bot", "-signing", "ed25519",
		"-public-key", base64.StdEncoding.EncodeToString(pub))
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("keys create -signing ed25519: exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	ek, err := access.ParseToken(strings.TrimSpace(out))
	must(t, err)
	if sk, err = store.SigningKey(ctx, ek.ID); err != nil || sk.Kind != access.SigningEd25519 || !bytes.Equal(sk.Key, pub) {
		t.Fatalf("the Ed25519 key is stored as %+v, %v", sk, err)
	}

	// Refusals print nothing on stdout.
	for _, args := range [][]string{
		{"create", "-role", "admin", "-label", "x"},
		{"create", "-role", "trader", "-label", "no account"},
		{"create", "-role", "miner", "-miner", "nobody", "-label", "x"},
		{"create", "-role", "operator"},
		{"create", "-role", "trader", "-account", "a", "-label", "x", "-signing", "ed25519"},
		{"create", "-role", "trader", "-account", "a", "-label", "x", "-signing", "ed25519", "-public-key", "!!"},
		{"create", "-role", "regulator", "-label", "x", "-signing", "hmac"},
		{"revoke", "0000000000000000"},
		{"revoke"},
	} {
		if code, out, errOut := keys(args...); code != 1 || out != "" || !strings.HasPrefix(errOut, "satu keys: ") {
			t.Errorf("keys %q: exit %d\nstdout %q\nstderr %q", args, code, out, errOut)
		}
	}
	if code, _, _ := keys("rotate"); code != 2 {
		t.Errorf("unknown subcommand: exit %d", code)
	}
	if code, _, _ := keys(); code != 2 {
		t.Errorf("no subcommand: exit %d", code)
	}

	code, out, errOut = keys("list")
	if code != 0 || !strings.HasPrefix(out, "ID ") || strings.Count(out, "\n") != 5 || strings.Count(out, " hmac ") != 1 ||
		!strings.Contains(out, tok.ID) || !strings.Contains(out, "buyer-1") || !strings.Contains(out, "Buyer Co desk") ||
		!strings.Contains(out, op.KeyID) || strings.Contains(out, tok.Secret) {
		t.Fatalf("keys list: exit %d\n%s%s", code, out, errOut)
	}

	// The ID after the flags works as well as before them.
	code, out, errOut = keys("revoke", "-pg-url", url, tok.ID)
	if code != 0 || out != "API key "+tok.ID+" revoked\n" {
		t.Fatalf("keys revoke: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := store.Authenticate(ctx, token); apperr.CodeOf(err) != apperr.Unauthenticated {
		t.Fatalf("a revoked key authenticates: %v", err)
	}
	if code, _, errOut := keys("revoke", tok.ID); code != 1 || !strings.Contains(errOut, "CONFLICT") {
		t.Fatalf("revoking twice: exit %d: %s", code, errOut)
	}
	code, out, _ = keys("list")
	revoked := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 8 {
			revoked[f[0]] = f[6]
		}
	}
	if code != 0 || revoked[tok.ID] == "-" || revoked[tok.ID] == "" || revoked[op.KeyID] != "-" {
		t.Fatalf("keys list after revoking:\n%s", out)
	}
}
