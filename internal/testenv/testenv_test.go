package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

func TestPGDatabasesAreIsolated(t *testing.T) {
	ctx := context.Background()
	a, b := testenv.PG(t), testenv.PG(t)

	if _, err := a.Exec(ctx, "CREATE TABLE only_in_a (id int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "INSERT INTO assets (code, scale, kind) VALUES ('ZZZ', 3, 'digital')"); err != nil {
		t.Fatal(err)
	}

	var exists bool
	if err := b.QueryRow(ctx, "SELECT to_regclass('only_in_a') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Error("table created in one database is visible in the other")
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM assets WHERE code = 'ZZZ'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("row inserted in one database is visible in the other")
	}

	var dbA, dbB string
	if err := a.QueryRow(ctx, "SELECT current_database()").Scan(&dbA); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow(ctx, "SELECT current_database()").Scan(&dbB); err != nil {
		t.Fatal(err)
	}
	if dbA == dbB {
		t.Errorf("both pools are on database %s", dbA)
	}
}

func TestPGTemplateIsMigrated(t *testing.T) {
	pool := testenv.PG(t)
	var scale int
	err := pool.QueryRow(context.Background(), "SELECT scale FROM assets WHERE code = 'BTC'").Scan(&scale)
	if err != nil {
		t.Fatalf("assets row for BTC: %v", err)
	}
	if scale != 8 {
		t.Errorf("BTC scale = %d, want 8", scale)
	}
	if got := pool.Config().MaxConns; got != 8 {
		t.Errorf("MaxConns = %d, want 8", got)
	}
}

func TestPGParallel(t *testing.T) {
	testenv.PGURL(t) // skips the whole test when PostgreSQL is not installed
	var mu sync.Mutex
	seen := map[string]string{}
	// The subtests run in parallel inside this group; the checks run after.
	t.Run("group", func(t *testing.T) {
		for i := range 8 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				pool := testenv.PG(t)
				var db string
				if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
					t.Fatal(err)
				}
				// The same table name in every database: no clash.
				if _, err := pool.Exec(ctx, "CREATE TABLE scratch (id int PRIMARY KEY)"); err != nil {
					t.Fatal(err)
				}
				if _, err := pool.Exec(ctx, "INSERT INTO scratch VALUES (1)"); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if other, dup := seen[db]; dup {
					t.Errorf("subtests %s and %s share database %s", other, t.Name(), db)
				}
				seen[db] = t.Name()
			})
		}
	})
	if len(seen) != 8 {
		t.Errorf("got %d distinct databases, want 8", len(seen))
	}
}

func TestPGDatabaseDroppedAtCleanup(t *testing.T) {
	var url string
	t.Run("inner", func(t *testing.T) { url = testenv.PGURL(t) })
	if url == "" {
		t.Skip("no database (PostgreSQL not installed)")
	}
	_, err := pgx.Connect(context.Background(), url)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		t.Errorf("connect to a cleaned-up database: err = %v, want 3D000 (does not exist)", err)
	}
}

func TestPGURL(t *testing.T) {
	ctx := context.Background()
	url := testenv.PGURL(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM assets").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("assets is empty in the PGURL database")
	}
}

func TestRedis(t *testing.T) {
	ctx := context.Background()
	c1, ns1 := testenv.Redis(t)
	c2, ns2 := testenv.Redis(t)
	if ns1 == ns2 || ns1 == "" {
		t.Fatalf("namespaces %q and %q, want distinct non-empty", ns1, ns2)
	}
	if err := c1.Set(ctx, ns1+":k", "one", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Set(ctx, ns2+":k", "two", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c2.Get(ctx, ns1+":k").Result(); err != nil || got != "one" {
		t.Errorf("GET %s:k = %q, %v; want \"one\"", ns1, got, err)
	}
	if got, err := c1.Get(ctx, ns2+":k").Result(); err != nil || got != "two" {
		t.Errorf("GET %s:k = %q, %v; want \"two\"", ns2, got, err)
	}
	if _, err := c1.Get(ctx, ns1+":missing").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET missing key: err = %v, want redis.Nil", err)
	}
	if addr, want := testenv.RedisAddr(t), c1.Options().Addr; addr != want {
		t.Errorf("RedisAddr = %s, client on %s", addr, want)
	}
}

func TestRedisParallelNamespaces(t *testing.T) {
	testenv.RedisAddr(t) // skips the whole test when redis-server is not installed
	var mu sync.Mutex
	seen := map[string]bool{}
	t.Run("group", func(t *testing.T) {
		for i := range 16 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				c, ns := testenv.Redis(t)
				if err := c.Incr(context.Background(), ns+":n").Err(); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if seen[ns] {
					t.Errorf("namespace %s handed out twice", ns)
				}
				seen[ns] = true
			})
		}
	})
	if len(seen) != 16 {
		t.Errorf("got %d distinct namespaces, want 16", len(seen))
	}
}
