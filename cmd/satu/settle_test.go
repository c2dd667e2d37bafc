package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/migrations"
)

// TestReadOnlyCommandsDoNotMigrate: reconcile and certificate never change
// the schema. On a database one migration behind this binary they refuse
// (exit 2) with the versions, and the database stays where it was; on one
// without any migration they create nothing, not even goose's table; on a
// current one reconcile runs.
func TestReadOnlyCommandsDoNotMigrate(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	commands := [][]string{{"reconcile"}, {"certificate", "-obligation", "1"}}
	runWith := func(url string, args []string) (int, string, string) {
		var out, errOut strings.Builder
		code := run(ctx, args, &out, &errOut, func(k string) string { return map[string]string{"SATU_PG_URL": url}[k] })
		return code, out.String(), errOut.String()
	}

	url := testenv.PGURL(t)
	pool, err := pgxpool.New(ctx, url)
	must(t, err)
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := migrations.NewProvider(db)
	must(t, err)
	sources := p.ListSources()
	last, prev := sources[len(sources)-1].Version, sources[len(sources)-2].Version
	_, err = p.DownTo(ctx, prev)
	must(t, err)
	for _, args := range commands {
		code, out, errOut := runWith(url, args)
		want := fmt.Sprintf("the database's schema (version %d) is older than this satu's (version %d): migration(s) %d not applied", prev, last, last)
		if code != 2 || out != "" || !strings.Contains(errOut, want) || !strings.Contains(errOut, "never migrates") {
			t.Errorf("satu %q one migration behind: exit %d\nstdout %q\nstderr %q\nwant exit 2 and %q", args, code, out, errOut, want)
		}
		if v, err := p.GetDBVersion(ctx); err != nil || v != prev {
			t.Fatalf("after satu %q the database is at version %d (%v); want %d, untouched", args, v, err, prev)
		}
	}

	// A database no migration ever ran on.
	empty, drop, err := scratchDatabase(ctx, url, fmt.Sprintf("satu_empty_%d", time.Now().UnixNano()))
	must(t, err)
	defer drop()
	for _, args := range commands {
		code, _, errOut := runWith(empty, args)
		if code != 2 || !strings.Contains(errOut, "the database's schema (version 0) is older than this satu's") {
			t.Errorf("satu %q on an empty database: exit %d: %s", args, code, errOut)
		}
	}
	emptyDB, err := sql.Open("pgx", empty)
	must(t, err)
	defer emptyDB.Close()
	var tables int
	must(t, emptyDB.QueryRowContext(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables))
	if tables != 0 {
		t.Errorf("the read-only commands created %d tables in an empty database", tables)
	}
	must(t, emptyDB.Close())

	// Current again: reconcile reads it.
	_, err = p.Up(ctx)
	must(t, err)
	if code, out, errOut := runWith(url, []string{"reconcile"}); code != 0 || !strings.HasSuffix(out, "clean\n") {
		t.Fatalf("satu reconcile on a current database: exit %d\n%s%s", code, out, errOut)
	}
}
