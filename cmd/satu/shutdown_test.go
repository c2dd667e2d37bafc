package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/access"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/testenv"
)

// closeWithin runs app.Close(ctx) and fails t if it has not returned after limit.
func closeWithin(t *testing.T, app *App, ctx context.Context, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- app.Close(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("Close has not returned after %s", limit)
		return nil
	}
}

// TestCloseBoundedByGrace: a part that does not stop holds Close no longer
// than the shutdown grace or the caller's deadline; Close then names the
// part, and leaves Redis and PostgreSQL open under it.
func TestCloseBoundedByGrace(t *testing.T) {
	t.Run("CallersDeadline", func(t *testing.T) {
		app := &App{Config: Config{ShutdownGrace: time.Hour}, Log: zap.NewNop()}
		release := make(chan struct{})
		defer close(release)
		app.goRun("stuck part", func() error { <-release; return nil })
		app.goRun("quick part", func() error { return nil })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := closeWithin(t, app, ctx, 5*time.Second)
		if err == nil || err.Error() != "shutdown: still running when the grace ended: stuck part" {
			t.Fatalf("Close: %v", err)
		}
	})
	t.Run("Grace", func(t *testing.T) {
		app := &App{Config: Config{ShutdownGrace: 200 * time.Millisecond}, Log: zap.NewNop()}
		release := make(chan struct{})
		defer close(release)
		app.goRun("stuck part", func() error { <-release; return nil })
		if err := closeWithin(t, app, context.Background(), 5*time.Second); err == nil || !strings.Contains(err.Error(), "stuck part") {
			t.Fatalf("Close: %v", err)
		}
	})
	t.Run("FailingParts", func(t *testing.T) {
		// More parts fail than Err holds: none of them blocks Close.
		app := &App{Config: Config{ShutdownGrace: time.Hour}, Log: zap.NewNop(), errs: make(chan error, 1)}
		for i := range 6 {
			app.goRun(fmt.Sprintf("part %d", i), func() error { return errors.New("broken") })
		}
		if err := closeWithin(t, app, context.Background(), 5*time.Second); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := <-app.Err(); !strings.Contains(err.Error(), "broken") {
			t.Fatalf("Err: %v", err)
		}
	})
	t.Run("ClientsStayOpenUnderRunningParts", func(t *testing.T) {
		_, ns := testenv.Redis(t)
		app, _ := startAppWith(t, func(c *Config) { c.Shard, c.ShutdownGrace = ns, 500*time.Millisecond })
		release := make(chan struct{})
		app.goRun("stuck part", func() error { <-release; return nil })
		start := time.Now()
		err := closeWithin(t, app, context.Background(), 10*time.Second)
		if err == nil || err.Error() != "shutdown: still running when the grace ended: stuck part" {
			t.Fatalf("Close: %v", err)
		}
		if d := time.Since(start); d < 500*time.Millisecond || d > 5*time.Second {
			t.Errorf("Close took %s with a grace of 500ms", d)
		}
		// Every other part stopped; Redis and PostgreSQL are still open.
		ctx := context.Background()
		if err := app.db.Ping(ctx); err != nil {
			t.Errorf("PostgreSQL after Close with a part running: %v", err)
		}
		if err := app.rdb.Ping(ctx).Err(); err != nil {
			t.Errorf("Redis after Close with a part running: %v", err)
		}
		close(release)
		app.wg.Wait()
		app.rdb.Close()
		app.db.Close()
	})
}

// fakeKeys is a key store that answers Authenticate with authErr.
type fakeKeys struct {
	authErr error
	created int
}

func (f *fakeKeys) Authenticate(context.Context, string) (access.Principal, error) {
	return access.Principal{Role: access.RoleOperator}, f.authErr
}

func (f *fakeKeys) Create(context.Context, accesspg.CreateRequest, time.Time) (access.Token, error) {
	f.created++
	return access.NewToken(rand.Reader)
}

// TestBootstrapKeysFiles: a key file is replaced only when the database
// says its key is unknown or revoked, and then mode 0600 whatever the old
// file's; any other failure to check it fails and leaves the files alone.
func TestBootstrapKeysFiles(t *testing.T) {
	roles := []string{"operator", "regulator"}
	setup := func(t *testing.T, mode os.FileMode) string {
		dir := t.TempDir()
		for _, r := range roles {
			must(t, os.WriteFile(filepath.Join(dir, r+".token"), []byte("old "+r+" key\n"), mode))
			must(t, os.WriteFile(filepath.Join(dir, r+".header"), []byte("old "+r+" header\n"), mode))
			must(t, os.Chmod(filepath.Join(dir, r+".token"), mode)) // past the umask
			must(t, os.Chmod(filepath.Join(dir, r+".header"), mode))
		}
		return dir
	}
	unchanged := func(t *testing.T, dir string) {
		t.Helper()
		for _, r := range roles {
			for _, f := range []string{r + ".token", r + ".header"} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil || !strings.HasPrefix(string(b), "old ") {
					t.Errorf("%s = %q (%v); want it untouched", f, b, err)
				}
			}
		}
	}
	for name, authErr := range map[string]error{
		"PostgreSQLError": fmt.Errorf("authenticate: %w", errors.New("dial tcp 127.0.0.1:25432: connect: connection refused")),
		"Cancelled":       fmt.Errorf("authenticate: %w", context.Canceled),
	} {
		t.Run(name, func(t *testing.T) {
			dir := setup(t, 0o600)
			keys := &fakeKeys{authErr: authErr}
			if _, err := bootstrapKeys(context.Background(), keys, dir); err == nil || !errors.Is(err, errors.Unwrap(authErr)) ||
				!strings.Contains(err.Error(), "check the key in "+filepath.Join(dir, "operator.token")) {
				t.Fatalf("bootstrapKeys: %v", err)
			}
			if keys.created != 0 {
				t.Errorf("%d keys created", keys.created)
			}
			unchanged(t, dir)
		})
	}
	t.Run("Unreadable", func(t *testing.T) {
		dir := setup(t, 0o600)
		must(t, os.Remove(filepath.Join(dir, "operator.token")))
		must(t, os.Mkdir(filepath.Join(dir, "operator.token"), 0o700))
		keys := &fakeKeys{}
		if _, err := bootstrapKeys(context.Background(), keys, dir); err == nil || keys.created != 0 {
			t.Fatalf("bootstrapKeys over a directory named operator.token: %v, %d keys created", err, keys.created)
		}
	})
	t.Run("Known", func(t *testing.T) {
		dir := setup(t, 0o600)
		keys := &fakeKeys{}
		got, err := bootstrapKeys(context.Background(), keys, dir)
		must(t, err)
		if keys.created != 0 || got[access.RoleOperator] != "old operator key" || got[access.RoleRegulator] != "old regulator key" {
			t.Fatalf("keys %v, %d created", got, keys.created)
		}
		unchanged(t, dir)
	})
	t.Run("UnknownReplacedMode0600", func(t *testing.T) {
		dir := setup(t, 0o644)
		keys := &fakeKeys{authErr: fmt.Errorf("authenticate: %w", apperr.New(apperr.Unauthenticated, "invalid API key"))}
		got, err := bootstrapKeys(context.Background(), keys, dir)
		must(t, err)
		if keys.created != 2 {
			t.Fatalf("%d keys created; want 2", keys.created)
		}
		for _, r := range roles {
			tok := got[access.Role(r)]
			for f, want := range map[string]string{r + ".token": tok + "\n", r + ".header": "Authorization: Bearer " + tok + "\n"} {
				path := filepath.Join(dir, f)
				b, err := os.ReadFile(path)
				must(t, err)
				st, err := os.Stat(path)
				must(t, err)
				if string(b) != want || st.Mode().Perm() != 0o600 {
					t.Errorf("%s = %q, mode %v; want %q, mode 0600", f, b, st.Mode().Perm(), want)
				}
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 4 {
			t.Errorf("the keys directory holds %d files; want 4", len(entries))
		}
	})
}

// TestProcessKeysRevokedAtClose: the bootstrap keys of a server without a
// keys directory are revoked when it stops; those written to a keys
// directory stay valid for the next start.
func TestProcessKeysRevokedAtClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	authenticate := func(url, token string) error {
		pool, err := pgxpool.New(ctx, url)
		must(t, err)
		defer pool.Close()
		_, err = accesspg.NewKeyStore(pool).Authenticate(ctx, token)
		return err
	}
	for _, tc := range []struct {
		name        string
		keysDir     bool
		wantRevoked bool
	}{{"NoKeysDir", false, true}, {"KeysDir", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			_, ns := testenv.Redis(t)
			cfg, err := parseConfig("test", nil, func(string) string { return "" })
			must(t, err)
			cfg.Addr, cfg.PGURL, cfg.RedisAddr, cfg.Shard = "127.0.0.1:0", testenv.PGURL(t), testenv.RedisAddr(t), ns
			if tc.keysDir {
				cfg.KeysDir = t.TempDir()
			}
			app := &App{Config: cfg, Log: zap.NewNop(), Audit: zap.NewNop()}
			must(t, app.Start(ctx))
			tokens := []string{app.Token(access.RoleOperator), app.Token(access.RoleRegulator)}
			for _, tok := range tokens {
				must(t, authenticate(cfg.PGURL, tok))
			}
			must(t, app.Close(ctx))
			for _, tok := range tokens {
				err := authenticate(cfg.PGURL, tok)
				if revoked := apperr.CodeOf(err) == apperr.Unauthenticated; revoked != tc.wantRevoked || !revoked && err != nil {
					t.Errorf("a bootstrap key after Close: %v; want revoked %v", err, tc.wantRevoked)
				}
			}
		})
	}
}
