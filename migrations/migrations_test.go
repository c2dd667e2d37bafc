package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/migrations"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// openDB returns a database/sql handle on a fresh migrated database. The
// handle is closed at cleanup, never through a goose Provider: Provider.Close
// closes the *sql.DB it was given.
func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db := stdlib.OpenDBFromPool(testenv.PG(t))
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func pending(t *testing.T, db *sql.DB) bool {
	t.Helper()
	p, err := migrations.Pending(context.Background(), db)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return p
}

// provider returns a goose provider over the embedded migrations.
func provider(t *testing.T, db *sql.DB) *goose.Provider {
	t.Helper()
	p, err := migrations.NewProvider(db)
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return p
}

func dbVersion(t *testing.T, p *goose.Provider) int64 {
	t.Helper()
	v, err := p.GetDBVersion(context.Background())
	if err != nil {
		t.Fatalf("GetDBVersion: %v", err)
	}
	return v
}

// schema describes the public schema — columns, constraints, indexes,
// triggers, functions — one sorted line per item, so two states can be
// compared. goose's own version table is left out.
func schema(t *testing.T, db *sql.DB) []string {
	t.Helper()
	return lines(t, db,
		`SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' null=' || is_nullable ||
				' default=' || coalesce(column_default, '')
			FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'goose_db_version'`,
		`SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
			FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid <> 'goose_db_version'::regclass`,
		`SELECT 'index ' || indexname || ' ' || indexdef
			FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'goose_db_version'`,
		`SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal`,
		`SELECT 'function ' || pg_get_functiondef(oid) FROM pg_proc WHERE pronamespace = 'public'::regnamespace`)
}

// seeds returns the rows the migrations seed, one sorted line per row.
func seeds(t *testing.T, db *sql.DB) []string {
	t.Helper()
	return lines(t, db,
		`SELECT 'asset ' || code || ' ' || scale FROM assets`,
		`SELECT 'account ' || id || ' ' || owner || ' ' || kind || ' ' || opened_seq FROM accounts`)
}

// lines runs queries that each return one text column and returns all
// their rows, sorted.
func lines(t *testing.T, db *sql.DB, queries ...string) []string {
	t.Helper()
	var out []string
	for _, q := range queries {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			out = append(out, line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	slices.Sort(out)
	return out
}

// appTables lists the tables in the public schema other than goose's.
func appTables(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPending(t *testing.T) {
	t.Run("OKMigrated", func(t *testing.T) {
		db := openDB(t)
		if pending(t, db) {
			t.Error("Pending = true on a freshly migrated database, want false")
		}
		p := provider(t, db)
		sources := p.ListSources()
		if len(sources) == 0 {
			t.Fatal("no embedded migrations")
		}
		if got, want := dbVersion(t, p), sources[len(sources)-1].Version; got != want {
			t.Errorf("database version = %d, want the last migration's %d", got, want)
		}
	})
}

// TestSources checks that every .sql file of the package is embedded and
// that each one can be undone.
func TestSources(t *testing.T) {
	files, err := filepath.Glob("*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var embedded []string
	for _, s := range provider(t, openDB(t)).ListSources() {
		embedded = append(embedded, filepath.Base(s.Path))
	}
	if !slices.Equal(embedded, files) {
		t.Errorf("embedded migrations = %v, want the package's .sql files %v", embedded, files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "-- +goose Down") {
			t.Errorf("%s has no -- +goose Down section", f)
		}
	}
}

// TestDownUp takes a migrated database all the way down and up again and
// checks that the schema and its seed rows come back exactly.
func TestDownUp(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	wantSchema := schema(t, db)
	wantSeeds := []string{"account custody-external satu custody_external 0", "account exchange-fees satu fee 0",
		"asset BTC 8", "asset ETH 9", "asset KZT 2", "asset USDT 6"}
	if got := seeds(t, db); !slices.Equal(got, wantSeeds) {
		t.Fatalf("seed rows of a migrated database = %q, want %q", got, wantSeeds)
	}
	if len(wantSchema) < 100 {
		t.Fatalf("schema of a migrated database has only %d items: %q", len(wantSchema), wantSchema)
	}
	p := provider(t, db)
	n := len(p.ListSources())

	down, err := p.DownTo(ctx, 0)
	if err != nil {
		t.Fatalf("DownTo(0): %v", err)
	}
	if len(down) != n {
		t.Errorf("DownTo(0) ran %d migrations, want %d", len(down), n)
	}
	for _, r := range down {
		if r.Direction != "down" || r.Error != nil || r.Empty {
			t.Errorf("DownTo(0): %v (direction %s, error %v, empty %v)", r, r.Direction, r.Error, r.Empty)
		}
	}
	if got := appTables(t, db); len(got) != 0 {
		t.Errorf("tables left after DownTo(0): %v", got)
	}
	if got := schema(t, db); len(got) != 0 {
		t.Errorf("schema left after DownTo(0): %q", got)
	}
	if v := dbVersion(t, p); v != 0 {
		t.Errorf("database version after DownTo(0) = %d, want 0", v)
	}
	if !pending(t, db) {
		t.Error("Pending = false after DownTo(0), want true")
	}

	up, err := p.Up(ctx)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if len(up) != n {
		t.Errorf("Up ran %d migrations, want %d", len(up), n)
	}
	if pending(t, db) {
		t.Error("Pending = true after Up, want false")
	}
	if got := schema(t, db); !slices.Equal(got, wantSchema) {
		t.Errorf("schema after down and up differs:\n got %q\nwant %q", got, wantSchema)
	}
	if got := seeds(t, db); !slices.Equal(got, wantSeeds) {
		t.Errorf("seed rows after down and up = %q, want %q", got, wantSeeds)
	}
	var scale int
	if err := db.QueryRowContext(ctx, `SELECT scale FROM assets WHERE code = 'BTC'`).Scan(&scale); err != nil || scale != 8 {
		t.Errorf("BTC scale = %d (%v), want 8", scale, err)
	}
	var kind string
	if err := db.QueryRowContext(ctx, `SELECT kind FROM accounts WHERE id = 'custody-external'`).Scan(&kind); err != nil ||
		kind != "custody_external" {
		t.Errorf("custody-external account kind = %q (%v), want custody_external", kind, err)
	}

	// The append-only trigger came back with the table.
	if _, err := db.ExecContext(ctx, `INSERT INTO settlement_batches (shard, first_seq, last_seq, last_stream_id, events, fills, postings)
		VALUES ('s1', 1, 1, '1-0', 1, 0, 2)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO ledger_entries (batch_id, shard, event_id, seq, leg, booked_at, kind, account, asset, amount)
		SELECT id, 's1', '1-0', 1, 0, now(), 'deposit', 'custody-external', 'BTC', -1 FROM settlement_batches`); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`UPDATE ledger_entries SET amount = -2`, `DELETE FROM settlement_batches`,
		`UPDATE settlement_batches SET events = 2`, `TRUNCATE fills CASCADE`} {
		_, err = db.ExecContext(ctx, stmt)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s after down and up: %v, want insufficient_privilege (42501)", stmt, err)
		}
	}

	// Up again is a no-op, through the package's own entry point too.
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatalf("migrations.Up on an up-to-date database: %v", err)
	}
	again, err := p.Up(ctx)
	if err != nil || len(again) != 0 {
		t.Errorf("Up on an up-to-date database ran %d migrations (%v), want 0", len(again), err)
	}
}

// TestSettlementMigrationBackfills settles a deposit and a trade under the
// schema of version 2, then migrates to version 3: the postings learn their
// sequence, engine time and kind from the rows already there.
func TestSettlementMigrationBackfills(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	p := provider(t, db)
	if _, err := p.DownTo(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO accounts (id, owner, kind, opened_seq) VALUES ('a', 'a', 'trader', 1), ('b', 'b', 'trader', 2)`,
		`INSERT INTO settlement_batches (id, shard, first_seq, last_seq, last_stream_id, events, fills, postings)
			VALUES (1, 's1', 3, 9, '9-0', 2, 1, 7)`,
		`INSERT INTO fills (shard, id, seq, batch_id, symbol, base_asset, quote_asset, price, quantity, quote_amount,
			buyer_account, seller_account, buy_order_id, sell_order_id, taker_side, mandatory, executed_at, buyer_fee, seller_fee)
			VALUES ('s1', '9-1', 9, 1, 'BTCKZT', 'BTC', 'KZT', 100, 1, 100, 'b', 'a', 1, 2, 'buy', false,
			'2025-03-04 05:06:07+00', 0.2, 0.1)`,
		`INSERT INTO ledger_entries (batch_id, shard, event_id, account, asset, amount) VALUES
			(1, 's1', '3-0', 'custody-external', 'BTC', -1), (1, 's1', '3-0', 'a', 'BTC', 1),
			(1, 's1', '9-1', 'a', 'BTC', -1), (1, 's1', '9-1', 'b', 'BTC', 1),
			(1, 's1', '9-1', 'b', 'KZT', -100.2), (1, 's1', '9-1', 'a', 'KZT', 99.9),
			(1, 's1', '9-1', 'exchange-fees', 'KZT', 0.3)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if _, err := p.UpTo(ctx, 3); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.QueryRowContext(ctx, `SELECT string_agg(event_id || ' ' || seq || ' ' || kind || ' ' || account || ' ' ||
		CASE WHEN event_id = '9-1' THEN to_char(booked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') ELSE 'commit' END,
		'; ' ORDER BY id) FROM ledger_entries`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	want := "3-0 3 deposit custody-external commit; 3-0 3 deposit a commit; " +
		"9-1 9 trade a 2025-03-04 05:06:07; 9-1 9 trade b 2025-03-04 05:06:07; " +
		"9-1 9 trade b 2025-03-04 05:06:07; 9-1 9 trade a 2025-03-04 05:06:07; " +
		"9-1 9 fee exchange-fees 2025-03-04 05:06:07"
	if got != want {
		t.Errorf("back-filled postings:\n got %s\nwant %s", got, want)
	}

	// Version 7 makes the fill its trade's journal entry: the fill learns
	// its fee account, the five trade postings — checked equal to the
	// fill's legs — leave ledger_entries, and the view postings shows the
	// same postings as before, each with its leg.
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT string_agg(event_id || ' ' || leg || ' ' || kind || ' ' || account || ' ' || amount,
		'; ' ORDER BY seq, event_id, leg) FROM postings`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	want = "3-0 0 deposit custody-external -1; 3-0 1 deposit a 1; " +
		"9-1 0 trade a -1; 9-1 1 trade b 1; 9-1 2 trade b -100.2; 9-1 3 trade a 99.9; 9-1 4 fee exchange-fees 0.3"
	if got != want {
		t.Errorf("postings after the journal migration:\n got %s\nwant %s", got, want)
	}
	var stored int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM ledger_entries`).Scan(&stored); err != nil || stored != 2 {
		t.Errorf("ledger_entries holds %d rows (%v); want the deposit's 2", stored, err)
	}
}

// TestJournalMigrationRefusesDifferences: a trade posting that is not what
// its fill says stops the journal migration, which changes nothing.
func TestJournalMigrationRefusesDifferences(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	p := provider(t, db)
	if _, err := p.DownTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO accounts (id, owner, kind, opened_seq) VALUES ('a', 'a', 'trader', 1), ('b', 'b', 'trader', 2)`,
		`INSERT INTO settlement_batches (id, shard, first_seq, last_seq, last_stream_id, events, fills, postings)
			VALUES (1, 's1', 9, 9, '9-0', 1, 1, 4)`,
		`INSERT INTO fills (shard, id, seq, batch_id, symbol, base_asset, quote_asset, price, quantity, quote_amount,
			buyer_account, seller_account, buy_order_id, sell_order_id, taker_side, mandatory, executed_at)
			VALUES ('s1', '9-1', 9, 1, 'BTCKZT', 'BTC', 'KZT', 100, 1, 100, 'b', 'a', 1, 2, 'buy', false, '2025-03-04 05:06:07+00')`,
		`INSERT INTO ledger_entries (batch_id, shard, event_id, seq, booked_at, kind, account, asset, amount) VALUES
			(1, 's1', '9-1', 9, '2025-03-04 05:06:07+00', 'trade', 'a', 'BTC', -1),
			(1, 's1', '9-1', 9, '2025-03-04 05:06:07+00', 'trade', 'b', 'BTC', 1),
			(1, 's1', '9-1', 9, '2025-03-04 05:06:07+00', 'trade', 'b', 'KZT', -100),
			(1, 's1', '9-1', 9, '2025-03-04 05:06:07+00', 'trade', 'a', 'KZT', 99)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	_, err := p.Up(ctx)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "22000" || !strings.Contains(pe.Message, "differ from their fills") {
		t.Fatalf("Up over a posting that differs from its fill: %v; want data_exception", err)
	}
	if v := dbVersion(t, p); v != 6 {
		t.Errorf("database version after the refused migration = %d, want 6", v)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM ledger_entries`).Scan(&n); err != nil || n != 4 {
		t.Errorf("ledger_entries holds %d rows (%v) after the refused migration; want the 4 it had", n, err)
	}
}
