// Package testenv is Satu's integration-test harness: it runs a private
// PostgreSQL server and a private redis-server per test binary, started
// lazily on first use and stopped when the binary's tests are done.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
//
// and in tests:
//
//	pool := testenv.PG(t)         // a brand-new, migrated database
//	rdb, ns := testenv.Redis(t)   // the shared redis-server and a unique namespace
//
// Every PG/PGURL call clones a new database from a template that has all
// migrations applied (CREATE DATABASE … TEMPLATE, a few milliseconds), so
// tests, including parallel ones, never see each other's rows. Redis is one
// server per binary; tests isolate their keys with the namespace they get.
//
// These servers are shared: a test must never stop or kill them. Failure
// tests get servers of their own, which they may stop, kill and restart on
// the same address, from NewPGServer and NewRedisServer.
//
// Binaries are looked up on PATH, then under /usr/lib/postgresql/*/bin (the
// highest version) and /usr/bin, /usr/local/bin for redis-server. When one is
// missing the test is skipped, except when the environment variable CI is
// "true" or "1", where it fails: CI must never silently skip. `make test`
// installs them (apt-get install -y postgresql redis-server).
//
// When the test binary runs as root, initdb and postgres (which refuse root)
// run as the "postgres" OS user. Both servers get SIGKILL if the test binary
// dies (Pdeathsig); temporary directories left behind by a killed binary are
// removed by the next binary that starts the same service.
package testenv

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for migrations.Up
	"github.com/redis/go-redis/v9"

	"github.com/satu-exchange/satu/migrations"
)

const (
	templateDB   = "satu_template"
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	opTimeout    = 60 * time.Second // CREATE/DROP DATABASE, migrations
	poolMaxConns = 8
	tempPrefix   = "satu-testenv-"
	ownerFile    = "owner.pid"
	installHint  = "to fix, run `make test` (it installs what is missing) or: apt-get install -y postgresql redis-server"
)

// env is the single environment the harness owns: at most one PostgreSQL
// and one redis-server per test binary, each started once, on first use.
var env harness

type harness struct {
	pgOnce sync.Once
	pg     *pgServer
	pgErr  error

	redisOnce sync.Once
	redis     *redisServer
	redisErr  error

	stopped atomic.Bool
}

// Run runs the tests of a test binary and stops any service it started; use from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
//
// It returns m.Run's exit code.
func Run(m *testing.M) int {
	code := m.Run()
	for _, err := range env.stop() {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
	}
	return code
}

// PG returns a pool on a brand-new database cloned from the migrated template; dropped at test cleanup.
//
// The pool has at most 8 connections. The test is skipped when the
// PostgreSQL binaries are missing (a failure when CI is set); a server or
// database that cannot be created fails the test.
func PG(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	s := env.postgres(tb)
	name := s.newDatabase(tb)
	cfg, err := pgxpool.ParseConfig(s.url(name))
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	cfg.MaxConns = poolMaxConns
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatalf("testenv: pool on %s: %v", name, err)
	}
	tb.Cleanup(pool.Close) // runs before the DROP registered by newDatabase
	if err := pool.Ping(ctx); err != nil {
		tb.Fatalf("testenv: ping %s: %v", name, err)
	}
	return pool
}

// PGURL is like PG but returns the connection URL of a fresh cloned database (for child processes); dropped at cleanup.
//
// The URL has the form postgres://postgres@127.0.0.1:PORT/t_N?sslmode=disable.
// Connections still open at cleanup are terminated by the DROP.
func PGURL(tb testing.TB) string {
	tb.Helper()
	s := env.postgres(tb)
	return s.url(s.newDatabase(tb))
}

// Redis returns a client on the binary's redis-server and a namespace unique to this test
// (e.g. "t17"); tests isolate their keys by using it as the shard name / key prefix.
//
// The client is closed at test cleanup. Namespaces are unique within the
// test binary (safe for parallel tests); keys are not deleted afterwards.
func Redis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	s := env.redisServer(tb)
	c := redis.NewClient(&redis.Options{Addr: s.addr()})
	tb.Cleanup(func() { _ = c.Close() })
	return c, "t" + strconv.FormatUint(s.nsSeq.Add(1), 10)
}

// RedisAddr returns "127.0.0.1:port" of the binary's redis-server (starting it if needed).
func RedisAddr(tb testing.TB) string {
	tb.Helper()
	return env.redisServer(tb).addr()
}

// ---------------------------------------------------------------------------
// harness

// missingError reports a service binary that is not installed: a skip
// outside CI, a failure in CI. Every other error is a failure.
type missingError struct{ msg string }

func (e *missingError) Error() string { return e.msg }

func inCI() bool {
	v := strings.TrimSpace(os.Getenv("CI"))
	return strings.EqualFold(v, "true") || v == "1"
}

func fail(tb testing.TB, err error) {
	tb.Helper()
	var missing *missingError
	if errors.As(err, &missing) && !inCI() {
		tb.Skipf("testenv: %v (skipped; with CI=true this is a failure)", err)
	}
	tb.Fatalf("testenv: %v", err)
}

func (h *harness) postgres(tb testing.TB) *pgServer {
	tb.Helper()
	h.pgOnce.Do(func() { h.pg, h.pgErr = startPostgres() })
	if h.pgErr != nil {
		fail(tb, h.pgErr)
	}
	if h.stopped.Load() {
		tb.Fatalf("testenv: PG used after testenv.Run stopped the services")
	}
	return h.pg
}

func (h *harness) redisServer(tb testing.TB) *redisServer {
	tb.Helper()
	h.redisOnce.Do(func() { h.redis, h.redisErr = startRedis() })
	if h.redisErr != nil {
		fail(tb, h.redisErr)
	}
	if h.stopped.Load() {
		tb.Fatalf("testenv: Redis used after testenv.Run stopped the services")
	}
	return h.redis
}

// stop stops whatever was started. Marking the Onces as done first means a
// service never starts after (or while) Run tears the environment down.
func (h *harness) stop() []error {
	h.stopped.Store(true)
	h.pgOnce.Do(func() {})
	h.redisOnce.Do(func() {})
	var errs []error
	if h.pg != nil {
		errs = append(errs, h.pg.close()...)
	}
	if h.redis != nil {
		errs = append(errs, h.redis.close()...)
	}
	return errs
}

// ---------------------------------------------------------------------------
// PostgreSQL

type pgServer struct {
	proc  *process
	root  string // temp dir: data/, the unix socket, postgres.log
	port  int
	admin *pgxpool.Pool // on database "postgres"

	cloneMu sync.Mutex // concurrent clones of one template fail
	dbSeq   atomic.Uint64
}

func (s *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// newDatabase clones the template into a new database and registers its
// DROP at test cleanup.
func (s *pgServer) newDatabase(tb testing.TB) string {
	tb.Helper()
	name := "t_" + strconv.FormatUint(s.dbSeq.Add(1), 10)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s.cloneMu.Lock()
	_, err := s.admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateDB)
	s.cloneMu.Unlock()
	if err != nil {
		tb.Fatalf("testenv: create database %s from %s: %v", name, templateDB, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	return name
}

type pgBinaries struct{ initdb, postgres string }

func startPostgres() (s *pgServer, err error) {
	bin, err := findPostgres()
	if err != nil {
		return nil, err
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	root, err := makeTempDir("pg", pgTempBases(), cred)
	if err != nil {
		return nil, err
	}
	s = &pgServer{root: root}
	defer func() {
		if err != nil {
			s.close()
			s = nil
		}
	}()

	data := filepath.Join(root, "data")
	if err := initCluster(bin, root, data, cred); err != nil {
		return s, err
	}

	// The port is free when picked but may be taken before postgres binds
	// it: retry with another port when that happens.
	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			return s, err
		}
		s.proc, err = startProcess("postgres", root, filepath.Join(root, "postgres.log"),
			cred, syscall.SIGINT /* fast shutdown */, false, bin.postgres,
			"-D", data, "-p", strconv.Itoa(s.port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories="+root,
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
			"-c", "max_connections=300")
		if err != nil {
			return s, err
		}
		err = s.proc.waitReady(func(ctx context.Context) error { return s.probe(ctx, data) })
		if err == nil {
			break
		}
		if attempt == 3 || !s.proc.exited() || !strings.Contains(s.proc.logTail(), "Address already in use") {
			return s, err
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(s.url("postgres"))
	if err != nil {
		return s, err
	}
	cfg.MaxConns = 4
	if s.admin, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return s, fmt.Errorf("postgres admin pool: %w", err)
	}
	return s, s.createTemplate(ctx)
}

// probe connects and checks that the server answering is ours (another
// process may have grabbed the port).
func (s *pgServer) probe(ctx context.Context, data string) error {
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var dir string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err != nil {
		return err
	}
	if !samePath(dir, data) {
		return fmt.Errorf("port %d is served by another PostgreSQL (data directory %s)", s.port, dir)
	}
	return nil
}

// createTemplate creates the template database with every migration
// applied, then closes all connections to it (CREATE DATABASE … TEMPLATE
// fails while any is open) and forbids new ones.
func (s *pgServer) createTemplate(ctx context.Context) error {
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+templateDB); err != nil {
		return fmt.Errorf("create %s: %w", templateDB, err)
	}
	if err := migrate(ctx, s.url(templateDB)); err != nil {
		return fmt.Errorf("migrate %s: %w", templateDB, err)
	}
	// The server ends a closed connection's backend asynchronously.
	for {
		var n int
		err := s.admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", templateDB).Scan(&n)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connections to %s still open after migrating: %w", templateDB, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	_, err := s.admin.Exec(ctx, "ALTER DATABASE "+templateDB+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
	return err
}

// initCluster runs initdb: a new cluster in data (trust authentication,
// superuser "postgres"), as cred's user if not nil.
func initCluster(bin pgBinaries, root, data string, cred *syscall.Credential) error {
	initdb := exec.Command(bin.initdb, "-D", data, "-A", "trust", "-U", "postgres",
		"--no-sync", "-E", "UTF8", "--locale=C")
	initdb.Dir = root
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb (%s) failed: %v\n%s", bin.initdb, err, tail(out))
	}
	return nil
}

// migrate applies every migration to the database at url (migrations.Up)
// and closes its connections.
func migrate(ctx context.Context, url string) error {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return err
	}
	err = migrations.Up(ctx, db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *pgServer) close() []error {
	var errs []error
	if s.admin != nil {
		s.admin.Close()
	}
	if s.proc != nil {
		if err := s.proc.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(s.root); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// findPostgres finds initdb and postgres of one installation: on PATH
// (postgres next to initdb, following a symlink such as
// /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb), else the
// highest version under /usr/lib/postgresql/*/bin.
func findPostgres() (pgBinaries, error) {
	if initdb, err := exec.LookPath("initdb"); err == nil {
		dirs := []string{filepath.Dir(initdb)}
		if real, err := filepath.EvalSymlinks(initdb); err == nil {
			dirs = append([]string{filepath.Dir(real)}, dirs...)
		}
		for _, d := range dirs {
			if isExecutable(filepath.Join(d, "postgres")) {
				return pgBinaries{filepath.Join(d, "initdb"), filepath.Join(d, "postgres")}, nil
			}
		}
		if pg, err := exec.LookPath("postgres"); err == nil {
			return pgBinaries{initdb, pg}, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		return slices.Compare(versionOf(b), versionOf(a)) // highest first
	})
	for _, d := range dirs {
		b := pgBinaries{filepath.Join(d, "initdb"), filepath.Join(d, "postgres")}
		if isExecutable(b.initdb) && isExecutable(b.postgres) {
			return b, nil
		}
	}
	return pgBinaries{}, &missingError{"PostgreSQL server binaries (initdb, postgres) not found " +
		"on PATH or under /usr/lib/postgresql/*/bin; " + installHint}
}

// versionOf turns "/usr/lib/postgresql/9.6/bin" into [9 6].
func versionOf(binDir string) []int {
	var v []int
	for _, f := range strings.Split(filepath.Base(filepath.Dir(binDir)), ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil
		}
		v = append(v, n)
	}
	return v
}

// postgresCredential returns nil when not root; as root, the credential of
// the "postgres" OS user (initdb and postgres refuse to run as root).
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses to run as root, "+
			"but there is no \"postgres\" OS user to run it as (%v); the postgresql package creates it", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// ---------------------------------------------------------------------------
// Redis

type redisServer struct {
	proc  *process
	root  string
	port  int
	nsSeq atomic.Uint64
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func startRedis() (s *redisServer, err error) {
	bin, err := findRedis()
	if err != nil {
		return nil, err
	}
	root, err := makeTempDir("redis", []string{os.TempDir()}, nil)
	if err != nil {
		return nil, err
	}
	s = &redisServer{root: root}
	defer func() {
		if err != nil {
			s.close()
			s = nil
		}
	}()
	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			return s, err
		}
		s.proc, err = startProcess("redis-server", root, filepath.Join(root, "redis.log"),
			nil, syscall.SIGTERM, false, bin,
			"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", root)
		if err != nil {
			return s, err
		}
		err = s.proc.waitReady(s.probe)
		if err == nil {
			return s, nil
		}
		if attempt == 3 || !s.proc.exited() || !strings.Contains(s.proc.logTail(), "Address already in use") {
			return s, err
		}
	}
}

// probe pings and checks that the server answering is ours.
func (s *redisServer) probe(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1, DialTimeout: time.Second, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return err
	}
	want := "process_id:" + strconv.Itoa(s.proc.cmd.Process.Pid)
	for _, line := range strings.Split(info, "\n") {
		if strings.TrimSpace(line) == want {
			return nil
		}
	}
	return fmt.Errorf("port %d is served by another redis-server", s.port)
}

func (s *redisServer) close() []error {
	var errs []error
	if s.proc != nil {
		if err := s.proc.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(s.root); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func findRedis() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server"} {
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", &missingError{"redis-server not found on PATH, in /usr/bin or /usr/local/bin; " + installHint}
}

// ---------------------------------------------------------------------------
// processes

// process is a server running as a child of the test binary.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	stopSig syscall.Signal
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done
}

// startProcess starts path as a child that gets SIGKILL when the test
// binary dies, with stdout and stderr in logPath, as cred's user if not nil;
// with ownGroup, as the leader of a new process group (so that the child
// and all its own children can be signalled at once).
func startProcess(name, dir, logPath string, cred *syscall.Credential, stopSig syscall.Signal,
	ownGroup bool, path string, args ...string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: ownGroup}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, stopSig: stopSig, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady polls probe until it succeeds, the process exits, or
// startTimeout passes; errors carry the tail of the server's log.
func (p *process) waitReady(probe func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := probe(pctx)
		pcancel()
		if err == nil && !p.exited() {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start-up (%v); its log ends:\n%s", p.name, p.waitErr, p.logTail())
		case <-ctx.Done():
			p.stop()
			return fmt.Errorf("%s not ready after %v (last error: %v); its log ends:\n%s", p.name, startTimeout, err, p.logTail())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// stop sends the stop signal, waits up to stopTimeout, then kills.
func (p *process) stop() error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(p.stopSig)
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s did not stop within %v of %v; killed", p.name, stopTimeout, p.stopSig)
}

func (p *process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tail(b)
}

// tail returns the last 20 lines of b.
func tail(b []byte) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// ---------------------------------------------------------------------------
// files and ports

// makeTempDir creates a fresh temp dir for a service in the first of bases
// that works, owned by cred's user if not nil (as root, skipping bases that
// user cannot reach: TMPDIR may be under /root), after removing the dirs of
// dead test binaries.
func makeTempDir(service string, bases []string, cred *syscall.Credential) (string, error) {
	prefix := tempPrefix + service + "-"
	var errs []error
	for _, base := range bases {
		if cred != nil && !traversable(base, cred) {
			errs = append(errs, fmt.Errorf("%s: not reachable by uid %d", base, cred.Uid))
			continue
		}
		removeStale(base, prefix)
		dir, err := os.MkdirTemp(base, prefix)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
		if err == nil && cred != nil {
			err = os.Chown(dir, int(cred.Uid), int(cred.Gid))
		}
		if err != nil {
			_ = os.RemoveAll(dir)
			errs = append(errs, err)
			continue
		}
		return dir, nil
	}
	return "", fmt.Errorf("no usable temp dir for %s: %w", service, errors.Join(errs...))
}

// pgTempBases lists where the PostgreSQL data dir may go, best first:
// /dev/shm when it is a tmpfs with room to spare (creating a database
// creates ~600 files, which takes ~300 ms on a disk-backed ext4 but ~15 ms
// on tmpfs), then the usual temp dirs.
func pgTempBases() []string {
	var bases []string
	var st syscall.Statfs_t
	const tmpfsMagic = 0x01021994
	if syscall.Statfs("/dev/shm", &st) == nil && st.Type == tmpfsMagic &&
		uint64(st.Bavail)*uint64(st.Bsize) >= 1<<30 {
		bases = append(bases, "/dev/shm")
	}
	return append(bases, os.TempDir(), "/tmp", "/var/tmp")
}

// removeStale removes temp dirs whose owning test binary is gone (killed by
// a -timeout panic or a signal before Run could clean up).
func removeStale(base, prefix string) {
	dirs, _ := filepath.Glob(filepath.Join(base, prefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

// traversable reports whether cred's user can search every directory on
// the way to dir (by mode bits; supplementary groups are ignored).
func traversable(dir string, cred *syscall.Credential) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			return false
		}
		var bit uint32 = 0o001
		switch {
		case st.Uid == cred.Uid:
			bit = 0o100
		case st.Gid == cred.Gid:
			bit = 0o010
		}
		if st.Mode&bit == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}
