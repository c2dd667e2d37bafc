package testenv

// Internal tests (package testenv, not testenv_test) so that they can check
// that cleanup leaves no process and no directory behind. They run in the
// testenv_test binary, whose TestMain is testenv.Run.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

func TestPGServerRestart(t *testing.T) {
	var root string
	var pid int
	t.Run("restart", func(t *testing.T) {
		ctx := context.Background()
		shared := PG(t) // the binary's shared server: must not be disturbed
		began := time.Now()
		s := NewPGServer(t)
		t.Logf("NewPGServer: %v", time.Since(began).Round(time.Millisecond))
		root, pid = s.srv.root, s.srv.proc.cmd.Process.Pid
		if !strings.HasPrefix(s.URL(), "postgres://postgres@127.0.0.1:") || !strings.HasSuffix(s.URL(), "/satu?sslmode=disable") {
			t.Errorf("URL = %s", s.URL())
		}

		cfg, err := pgxpool.ParseConfig(s.URL())
		if err != nil {
			t.Fatal(err)
		}
		cfg.MaxConns = 2
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var assets int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM assets").Scan(&assets); err != nil || assets == 0 {
			t.Fatalf("migrated database: %d assets, %v", assets, err)
		}
		// Open both of the pool's connections, so both go stale.
		c1, err1 := pool.Acquire(ctx)
		c2, err2 := pool.Acquire(ctx)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		c1.Release()
		c2.Release()
		if _, err := pool.Exec(ctx, "CREATE TABLE restart_probe (id int PRIMARY KEY, note text NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, "INSERT INTO restart_probe VALUES (1, 'before stop')"); err != nil {
			t.Fatal(err)
		}

		began = time.Now()
		s.Stop(t)
		t.Logf("Stop: %v", time.Since(began).Round(time.Millisecond))
		mustNotConnect(t, s.URL())
		began = time.Now()
		s.Start(t)
		t.Logf("Start after Stop: %v", time.Since(began).Round(time.Millisecond))
		wantNotes(t, s.URL(), "before stop")
		poolExec(t, pool, "INSERT INTO restart_probe VALUES (2, 'before kill')")

		s.Kill(t)
		mustNotConnect(t, s.URL())
		began = time.Now()
		s.Start(t)
		t.Logf("Start after Kill (crash recovery): %v", time.Since(began).Round(time.Millisecond))
		wantNotes(t, s.URL(), "before stop", "before kill")
		poolExec(t, pool, "INSERT INTO restart_probe VALUES (3, 'after crash')")
		wantNotes(t, s.URL(), "before stop", "before kill", "after crash")

		// Another process takes the port while the server is down.
		s.Stop(t)
		l, err := net.Listen("tcp", strings.TrimPrefix(strings.Split(s.URL(), "/")[2], "postgres@"))
		if err != nil {
			t.Fatalf("take the port: %v", err)
		}
		began = time.Now()
		msg := fatalOf(t, s.Start)
		_ = l.Close()
		t.Logf("Start on a taken port: failed in %v: %s", time.Since(began).Round(time.Millisecond), strings.SplitN(msg, "\n", 2)[0])
		if !strings.Contains(msg, "is taken by another process") {
			t.Errorf("Start on a taken port: fatal %q, want it to say the port is taken", msg)
		}
		s.Start(t) // the port is free again
		wantNotes(t, s.URL(), "before stop", "before kill", "after crash")

		if err := shared.Ping(ctx); err != nil {
			t.Errorf("the shared server after the private one's restarts: %v", err)
		}
	})
	checkGone(t, root, pid, true)
}

func TestRedisServerRestart(t *testing.T) {
	var root string
	var pid int
	t.Run("restart", func(t *testing.T) {
		ctx := context.Background()
		shared, _ := Redis(t) // the binary's shared server: must not be disturbed
		began := time.Now()
		s := NewRedisServer(t, true)
		t.Logf("NewRedisServer: %v", time.Since(began).Round(time.Millisecond))
		root, pid = s.srv.root, s.srv.proc.cmd.Process.Pid
		c := redis.NewClient(&redis.Options{Addr: s.Addr()})
		defer c.Close()
		wantConfig(t, c, map[string]string{"appendonly": "yes", "appendfsync": "always", "save": ""})

		var ids []string
		for i := range 100 {
			id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: "events", Values: []any{"n", i}}).Result()
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}

		s.Kill(t)
		if conn, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
			_ = conn.Close()
			t.Fatal("redis-server still listening after Kill")
		}
		began = time.Now()
		s.Start(t)
		t.Logf("Start after Kill: %v", time.Since(began).Round(time.Millisecond))
		wantStream(t, c, ids) // the client from before the restart

		id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: "events", Values: []any{"n", 100}}).Result()
		if err != nil {
			t.Fatalf("XADD after the restart: %v", err)
		}
		ids = append(ids, id)
		s.Stop(t)
		began = time.Now()
		s.Start(t)
		t.Logf("Start after Stop: %v", time.Since(began).Round(time.Millisecond))
		wantStream(t, c, ids)

		// Another process takes the port while the server is down.
		s.Kill(t)
		l, err := net.Listen("tcp", s.Addr())
		if err != nil {
			t.Fatalf("take the port: %v", err)
		}
		began = time.Now()
		msg := fatalOf(t, s.Start)
		_ = l.Close()
		t.Logf("Start on a taken port: failed in %v: %s", time.Since(began).Round(time.Millisecond), strings.SplitN(msg, "\n", 2)[0])
		if !strings.Contains(msg, "is taken by another process") {
			t.Errorf("Start on a taken port: fatal %q, want it to say the port is taken", msg)
		}
		s.Start(t) // the port is free again
		wantStream(t, c, ids)

		if err := shared.Ping(ctx).Err(); err != nil {
			t.Errorf("the shared server after the private one's restarts: %v", err)
		}
	})
	checkGone(t, root, pid, false)
}

func TestRedisServerWithoutAppendonly(t *testing.T) {
	ctx := context.Background()
	s := NewRedisServer(t, false)
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	wantConfig(t, c, map[string]string{"appendonly": "no", "save": ""})
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Stop(t)
	s.Start(t)
	if err := c.Get(ctx, "k").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET after a restart without persistence: err = %v, want redis.Nil", err)
	}
	if _, err := os.Stat(s.srv.root + "/dump.rdb"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dump.rdb written although snapshots are off (stat: %v)", err)
	}
}

func mustNotConnect(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, url); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a server that is down")
	}
}

// wantNotes checks restart_probe's rows on a new connection.
func wantNotes(t *testing.T, url string, want ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect after the restart: %v", err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, "SELECT note FROM restart_probe ORDER BY id")
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restart_probe notes = %q, want %q", got, want)
	}
}

// poolExec runs a statement on a pool whose connections a restart broke:
// each broken connection may fail one attempt before the pool drops it.
func poolExec(t *testing.T, pool *pgxpool.Pool, sql string) {
	t.Helper()
	var errs []error
	for range pool.Config().MaxConns + 1 {
		_, err := pool.Exec(context.Background(), sql)
		if err == nil {
			t.Logf("pool after the restart: %d failed attempt(s) %v", len(errs), errs)
			return
		}
		errs = append(errs, err)
	}
	t.Fatalf("pool does not recover after the restart: %v", errs)
}

func wantConfig(t *testing.T, c *redis.Client, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, err := c.ConfigGet(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got[k] != v {
			t.Errorf("CONFIG GET %s = %q, want %q", k, got[k], v)
		}
	}
}

func wantStream(t *testing.T, c *redis.Client, ids []string) {
	t.Helper()
	msgs, err := c.XRange(context.Background(), "events", "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE after the restart: %v", err)
	}
	if len(msgs) != len(ids) {
		t.Fatalf("%d stream entries after the restart, want %d", len(msgs), len(ids))
	}
	for i, m := range msgs {
		if m.ID != ids[i] || m.Values["n"] != fmt.Sprint(i) {
			t.Fatalf("entry %d = %s %v, want %s n=%d", i, m.ID, m.Values, ids[i], i)
		}
	}
}

// checkGone checks that cleanup removed the server's directory and that
// its process (with group, its whole process group) is gone.
func checkGone(t *testing.T, root string, pid int, group bool) {
	t.Helper()
	if root == "" {
		return // skipped
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after cleanup (stat: %v)", root, err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still there after cleanup (kill 0: %v)", pid, err)
	}
	if group {
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still there after cleanup (kill 0: %v)", pid, err)
		}
	}
}

// fatalOf runs f with a testing.TB whose Fatal ends f alone, and returns
// the fatal message ("" if there was none).
func fatalOf(t *testing.T, f func(testing.TB)) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}
