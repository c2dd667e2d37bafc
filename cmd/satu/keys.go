package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/satu-exchange/satu/internal/access"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
)

const keysUsage = `usage: satu keys <subcommand> [flags]

subcommands:
  create -role R [-miner M] [-account A] -label L [-signing ed25519 -public-key B64 | -signing hmac]
         issue an API key and print it on stdout: it is shown only this once
         (roles: miner needs -miner; trader and market_maker need -account;
         operator and regulator take neither). With -signing the key also
         signs websocket requests: ed25519 with the holder's public key, or
         hmac, whose secret is printed on a second line, also only once
  list   print every key (never a secret), revoked ones included
  revoke ID
         make key ID unusable from now on

'satu keys <subcommand> -h' lists the database flags.
`

// keysCmd manages the REST API's keys. It talks to PostgreSQL only, so an
// operator can issue the first operator key before anything else runs.
func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return exitCode(2)
	}
	switch args[0] {
	case "create":
		return keysCreate(ctx, args[1:], stdout, stderr, getenv)
	case "list":
		return keysList(ctx, args[1:], stdout, getenv)
	case "revoke":
		return keysRevoke(ctx, args[1:], stdout, getenv)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "satu keys: unknown subcommand %q\n\n%s", args[0], keysUsage)
		return exitCode(2)
	}
}

// openKeyStore connects PostgreSQL (migrating it, as openLedger does, so
// that keys can be issued on a fresh database) and builds the key store.
func openKeyStore(ctx context.Context, cfg Config) (*pgxpool.Pool, *accesspg.KeyStore, error) {
	db, err := openPG(ctx, cfg.PGURL, cfg.PGMaxConns)
	if err != nil {
		return nil, nil, err
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, accesspg.NewKeyStore(db), nil
}

// keysCreate issues a key. The key alone goes to stdout, so that
// TOKEN=$(satu keys create ...) captures it; the warning goes to stderr.
func keysCreate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var role, miner, account, label, signing, publicKey *string
	cfg, err := parseConfig("satu keys create", args, getenv, func(fs *flag.FlagSet) {
		role = fs.String("role", "", "the key's role: miner, trader, market_maker, operator or regulator")
		miner = fs.String("miner", "", "miner keys: the registered miner the key acts for")
		account = fs.String("account", "", "trader and market_maker keys: the exchange account the key acts for")
		label = fs.String("label", "", "whose key it is and what for (at most 100 characters)")
		signing = fs.String("signing", "none", "websocket signing: none, ed25519 (with -public-key) or hmac (the secret is printed on a second line)")
		publicKey = fs.String("public-key", "", "ed25519: the holder's public key, base64 (32 bytes)")
	})
	if err != nil {
		return err
	}
	// Refuse a mistyped role before connecting anywhere.
	r, err := access.ParseRole(*role)
	if err != nil {
		return err
	}
	req := accesspg.CreateRequest{Role: r, Miner: *miner, Account: *account, Label: *label, Signing: access.SigningKind(*signing)}
	if *publicKey != "" {
		if req.Ed25519PublicKey, err = base64.StdEncoding.DecodeString(*publicKey); err != nil {
			return fmt.Errorf("-public-key: want the Ed25519 public key in base64")
		}
	}
	cfg.PGMaxConns = 2
	db, keys, err := openKeyStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	tok, err := keys.Create(ctx, req, time.Now())
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(stdout, tok.String()); err != nil {
		return fmt.Errorf("print the key: %w", err)
	}
	if tok.HMACSecret != "" {
		if _, err := fmt.Fprintln(stdout, tok.HMACSecret); err != nil {
			return fmt.Errorf("print the HMAC secret: %w", err)
		}
	}
	fmt.Fprintf(stderr, "satu keys: %s key %s created; it is shown only this once and cannot be recovered: store it now\n", r, tok.ID)
	return nil
}

// keysList prints every key as a table; the label is last because it may
// contain spaces.
func keysList(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	cfg, err := parseConfig("satu keys list", args, getenv)
	if err != nil {
		return err
	}
	cfg.PGMaxConns = 2
	db, keys, err := openKeyStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	list, err := keys.List(ctx)
	if err != nil {
		return err
	}
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tROLE\tMINER\tACCOUNT\tSIGNING\tCREATED\tREVOKED\tLABEL")
	for _, k := range list {
		revoked := "-"
		if k.Revoked != nil {
			revoked = k.Revoked.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Role, orDash(k.Miner), orDash(k.Account), k.Signing,
			k.Created.UTC().Format(time.RFC3339), revoked, k.Label)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("print the keys: %w", err)
	}
	return nil
}

// keysRevoke revokes one key: `satu keys revoke ID [flags]` (or the ID
// after the flags, as flag-style commands usually take it).
func keysRevoke(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	var id string
	switch {
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		id, args = args[0], args[1:]
	case len(args) > 1 && !strings.HasPrefix(args[len(args)-1], "-"):
		id, args = args[len(args)-1], args[:len(args)-1]
	}
	cfg, err := parseConfig("satu keys revoke", args, getenv)
	if err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("usage: satu keys revoke ID [flags]")
	}
	cfg.PGMaxConns = 2
	db, keys, err := openKeyStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := keys.Revoke(ctx, id, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API key %s revoked\n", id)
	return nil
}
