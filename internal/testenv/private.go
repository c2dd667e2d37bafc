package testenv

// Dedicated, restartable servers for failure tests. The servers behind PG,
// PGURL and Redis are shared by every test of the binary, so a test must
// never stop or kill them; a test that needs to (crash recovery, reconnect
// logic) gets servers of its own here.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

const privateDB = "satu"

// PGServer is a PostgreSQL cluster of its own for one test: its own data directory and port.
//
// Stop, Kill and Start let a test take the server down and bring it back on
// the same address, so clients created before (pgxpool, child processes
// given URL) reconnect to it. Commits are synchronous: every commit the
// server acknowledged survives Stop and Kill. (fsync is off, which only
// matters if the machine itself crashes.)
//
// A pooled connection that was open across a restart is dead; pgxpool
// discards it at its next use, which may fail once (pgxpool pings a
// connection before reuse only when it has been idle for over a second).
//
// The methods are safe for concurrent use. The server is removed at test
// cleanup; do not use it after that.
type PGServer struct {
	mu     sync.Mutex
	srv    *pgServer // root, port and the current postmaster (proc); its admin pool is unused
	bin    pgBinaries
	cred   *syscall.Credential // nil unless the test binary runs as root
	data   string
	starts int // numbers the log files: postgres.1.log, postgres.2.log, …
	closed bool
}

// NewPGServer initdb's a new cluster, starts it, creates database "satu" with all migrations
// applied (migrations.Up, as the template behind PG is), and registers cleanup (stop + remove).
//
// The test is skipped when the PostgreSQL binaries are missing (a failure
// when CI is set); any other error fails it. As with PG, when the test
// binary runs as root the server runs as the "postgres" OS user. The
// postmaster gets SIGKILL if the test binary dies.
//
// A new cluster costs about a second (initdb, start-up, migrations); use
// PG for tests that do not stop the server.
func NewPGServer(tb testing.TB) *PGServer {
	tb.Helper()
	s, err := newPGServer()
	if err != nil {
		fail(tb, err)
	}
	tb.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		for _, err := range s.srv.close() {
			tb.Errorf("testenv: PGServer cleanup: %v", err)
		}
	})
	return s
}

// URL returns the URL of database "satu": postgres://postgres@127.0.0.1:PORT/satu?sslmode=disable.
// It stays the same across Stop, Kill and Start.
func (s *PGServer) URL() string { return s.srv.url(privateDB) }

// Stop shuts the server down cleanly (a "fast" shutdown: open sessions are
// ended, a checkpoint is written) and waits for it to exit; the data is
// kept for Start. Stopping a server that is not running does nothing.
func (s *PGServer) Stop(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv.proc == nil || s.srv.proc.exited() {
		return
	}
	if err := s.srv.proc.stop(); err != nil {
		tb.Fatalf("testenv: PGServer.Stop: %v", err)
	}
}

// Kill crashes the server: SIGKILL to the postmaster and, at the same
// instant, to every process it started (they form a process group of their
// own), as a crash of the machine would; it waits until the postmaster is
// gone. The data is kept: Start runs crash recovery. Killing a server that
// is not running does nothing.
func (s *PGServer) Kill(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.srv.proc
	if p == nil || p.exited() {
		return
	}
	if pid := p.cmd.Process.Pid; pid > 1 {
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			_ = p.cmd.Process.Kill()
		}
	}
	<-p.done
}

// Start starts the server again on the same port with the same data and
// waits until it accepts connections, crash recovery included. It fails the
// test if the server is running, or if another process took the port while
// the server was down.
func (s *PGServer) Start(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		tb.Fatalf("testenv: PGServer.Start after the test's cleanup removed the server")
	case s.srv.proc != nil && !s.srv.proc.exited():
		tb.Fatalf("testenv: PGServer.Start: PostgreSQL on port %d is already running", s.srv.port)
	}
	if err := s.launch(); err != nil {
		tb.Fatalf("testenv: PGServer.Start: restart PostgreSQL on port %d: %v", s.srv.port, err)
	}
}

func newPGServer() (s *PGServer, err error) {
	bin, err := findPostgres()
	if err != nil {
		return nil, err
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	root, err := makeTempDir("private-pg", pgTempBases(), cred)
	if err != nil {
		return nil, err
	}
	s = &PGServer{srv: &pgServer{root: root}, bin: bin, cred: cred, data: filepath.Join(root, "data")}
	defer func() {
		if err != nil {
			s.srv.close()
			s = nil
		}
	}()
	if err := initCluster(bin, root, s.data, cred); err != nil {
		return s, err
	}
	// The port is free when picked but may be taken before postgres binds
	// it: pick another one when that happens (only Start must keep it).
	for attempt := 1; ; attempt++ {
		if s.srv.port, err = restartablePort(); err != nil {
			return s, err
		}
		err = s.launch()
		var taken *portTakenError
		if err == nil {
			break
		}
		if attempt == 3 || !errors.As(err, &taken) {
			return s, err
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.srv.url("postgres"))
	if err != nil {
		return s, err
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+privateDB)
	_ = conn.Close(ctx)
	if err != nil {
		return s, fmt.Errorf("create database %s: %w", privateDB, err)
	}
	if err := migrate(ctx, s.URL()); err != nil {
		return s, fmt.Errorf("migrate %s: %w", privateDB, err)
	}
	return s, nil
}

// launch starts the postmaster on s.srv.port and waits until it accepts
// connections. Just after a Kill, processes of the killed server may still
// be attached to its shared memory for a moment, which makes postgres
// refuse to start: it is retried until startTimeout.
func (s *PGServer) launch() error {
	deadline := time.Now().Add(startTimeout)
	for {
		s.starts++
		p, err := startProcess("postgres", s.srv.root,
			filepath.Join(s.srv.root, "postgres."+strconv.Itoa(s.starts)+".log"),
			s.cred, syscall.SIGINT /* fast shutdown */, true, s.bin.postgres,
			"-D", s.data, "-p", strconv.Itoa(s.srv.port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories="+s.srv.root,
			// Commits stay synchronous (synchronous_commit=on, the
			// default): an acknowledged commit is in the WAL, in the
			// kernel's page cache, which a killed server does not lose.
			"-c", "fsync=off",
			"-c", "max_connections=100")
		if err != nil {
			return err
		}
		s.srv.proc = p
		err = p.waitReady(func(ctx context.Context) error {
			ctx, cancel := p.untilExit(ctx)
			defer cancel()
			return s.srv.probe(ctx, s.data)
		})
		if err == nil {
			return nil
		}
		if p.exited() {
			log := p.logTail()
			if strings.Contains(log, "Address already in use") {
				return &portTakenError{"PostgreSQL", s.srv.port, log}
			}
			if strings.Contains(log, "pre-existing shared memory block") && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
		}
		return err
	}
}

// RedisServer is a redis-server of its own for one test.
//
// Stop, Kill and Start let a test take it down and bring it back on the
// same address, so go-redis clients created before reconnect to it (a
// command on a connection the restart broke is retried on a new one, under
// the client's MaxRetries). With appendonly, every write the server
// acknowledged survives Kill and Stop; without it, a restart starts empty.
//
// The methods are safe for concurrent use. The server is removed at test
// cleanup; do not use it after that.
type RedisServer struct {
	mu         sync.Mutex
	srv        *redisServer // root, port and the current process (proc)
	bin        string
	appendonly bool
	cluster    bool
	starts     int // numbers the log files: redis.1.log, redis.2.log, …
	closed     bool
}

// NewRedisServer starts redis-server on a free port in a temp dir. With appendonly true it runs
// with --appendonly yes --appendfsync always (so a restart keeps every acknowledged write); else
// --appendonly no. RDB snapshots are off either way (--save "").
//
// The test is skipped when redis-server is missing (a failure when CI is
// set); any other error fails it. The server gets SIGKILL if the test
// binary dies, and is stopped and removed at test cleanup.
func NewRedisServer(tb testing.TB, appendonly bool) *RedisServer {
	tb.Helper()
	return newRedisServerT(tb, appendonly, false)
}

func newRedisServerT(tb testing.TB, appendonly, cluster bool) *RedisServer {
	tb.Helper()
	s, err := newRedisServer(appendonly, cluster)
	if err != nil {
		fail(tb, err)
	}
	tb.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		for _, err := range s.srv.close() {
			tb.Errorf("testenv: RedisServer cleanup: %v", err)
		}
	})
	return s
}

// Addr returns "127.0.0.1:PORT"; it stays the same across Stop, Kill and Start.
func (s *RedisServer) Addr() string { return s.srv.addr() }

// Kill sends SIGKILL to redis-server and waits until it is gone. Killing a
// server that is not running does nothing.
func (s *RedisServer) Kill(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.srv.proc
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM to redis-server (which flushes the append-only file)
// and waits until it is gone. Stopping a server that is not running does
// nothing.
func (s *RedisServer) Stop(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv.proc == nil || s.srv.proc.exited() {
		return
	}
	if err := s.srv.proc.stop(); err != nil {
		tb.Fatalf("testenv: RedisServer.Stop: %v", err)
	}
}

// Start starts redis-server again on the same port in the same directory
// (so the append-only file is reloaded) and waits until PING answers, that
// is until loading is done. It fails the test if the server is running, or
// if another process took the port while the server was down.
func (s *RedisServer) Start(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		tb.Fatalf("testenv: RedisServer.Start after the test's cleanup removed the server")
	case s.srv.proc != nil && !s.srv.proc.exited():
		tb.Fatalf("testenv: RedisServer.Start: redis-server on port %d is already running", s.srv.port)
	}
	if err := s.launch(); err != nil {
		tb.Fatalf("testenv: RedisServer.Start: restart redis-server on port %d: %v", s.srv.port, err)
	}
}

func newRedisServer(appendonly, cluster bool) (s *RedisServer, err error) {
	bin, err := findRedis()
	if err != nil {
		return nil, err
	}
	root, err := makeTempDir("private-redis", []string{os.TempDir()}, nil)
	if err != nil {
		return nil, err
	}
	s = &RedisServer{srv: &redisServer{root: root}, bin: bin, appendonly: appendonly, cluster: cluster}
	for attempt := 1; ; attempt++ {
		if s.srv.port, err = restartablePort(); err != nil {
			break
		}
		err = s.launch()
		var taken *portTakenError
		if err == nil || attempt == 3 || !errors.As(err, &taken) {
			break
		}
	}
	if err != nil {
		s.srv.close()
		return nil, err
	}
	return s, nil
}

// launch starts redis-server on s.srv.port and waits until it answers PING.
func (s *RedisServer) launch() error {
	args := []string{"--port", strconv.Itoa(s.srv.port), "--bind", "127.0.0.1",
		"--daemonize", "no", "--dir", s.srv.root, "--save", ""}
	if s.appendonly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
	}
	s.starts++
	p, err := startProcess("redis-server", s.srv.root,
		filepath.Join(s.srv.root, "redis."+strconv.Itoa(s.starts)+".log"),
		nil, syscall.SIGTERM, false, s.bin, args...)
	if err != nil {
		return err
	}
	s.srv.proc = p
	err = p.waitReady(s.probe)
	if err != nil && p.exited() && strings.Contains(p.logTail(), "Address already in use") {
		return &portTakenError{"redis-server", s.srv.port, p.logTail()}
	}
	return err
}

// probe checks that the server answering is ours (like redisServer.probe)
// and has loaded its data (until then PING answers LOADING). It gives up as
// soon as the process exits or ctx is done: the connection is closed then,
// as go-redis does not interrupt a blocking read when ctx is cancelled.
func (s *RedisServer) probe(ctx context.Context) error {
	ctx, cancel := s.srv.proc.untilExit(ctx)
	defer cancel()
	dial := func(ctx2 context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx2, network, addr)
		if err == nil {
			context.AfterFunc(ctx, func() { _ = conn.Close() })
		}
		return conn, err
	}
	// Not listening yet is the common case: find it out without go-redis,
	// which logs every failed dial.
	conn, err := dial(ctx, "tcp", s.Addr())
	if err != nil {
		return err
	}
	_ = conn.Close()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), Dialer: dial, MaxRetries: -1, DialerRetries: 1,
		ContextTimeoutEnabled: true, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return err
	}
	if !strings.Contains(info, "\nprocess_id:"+strconv.Itoa(s.srv.proc.cmd.Process.Pid)+"\r\n") {
		return fmt.Errorf("port %d is served by another redis-server", s.srv.port)
	}
	return c.Ping(ctx).Err()
}

// untilExit returns a context that is also done when p exits: a probe must
// not wait for an answer from whatever holds the port once the server
// failed to take it.
func (p *process) untilExit(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// portTakenError reports that a server could not listen on its port.
type portTakenError struct {
	server string
	port   int
	log    string
}

func (e *portTakenError) Error() string {
	return fmt.Sprintf("port %d is taken by another process, so %s cannot listen on it "+
		"(a restarted server must keep its address, which its clients reconnect to); its log ends:\n%s",
		e.port, e.server, e.log)
}

// restartablePort picks a free port for a server that will be restarted on
// it. It is chosen below the kernel's ephemeral port range, where neither
// the local end of an outgoing connection nor a freePort (port 0) listener
// can take it while the server is down; freePort is the fallback.
func restartablePort() (int, error) {
	const low = 10000
	high := 32768 // the first ephemeral port, by default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				high = n
			}
		}
	}
	if high-low >= 1000 {
		for range 50 {
			port := low + rand.IntN(high-low)
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err == nil {
				_ = l.Close()
				return port, nil
			}
		}
	}
	return freePort()
}

// NewRedisCluster starts n redis-servers with cluster mode on (no
// persistence), splits the 16,384 hash slots between them, joins them
// into one cluster (CLUSTER ADDSLOTSRANGE and MEET, as redis-cli --cluster
// create does), waits until every node reports the cluster ok, and returns
// the nodes' addresses. Cleanup stops them.
func NewRedisCluster(tb testing.TB, n int) []string {
	tb.Helper()
	var addrs []string
	var clients []*redis.Client
	for range n {
		s := newRedisServerT(tb, false, true)
		addrs = append(addrs, s.Addr())
		c := redis.NewClient(&redis.Options{Addr: s.Addr()})
		tb.Cleanup(func() { _ = c.Close() })
		clients = append(clients, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	const slots = 16384
	for i, c := range clients {
		from, to := i*slots/n, (i+1)*slots/n-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", from, to).Err(); err != nil {
			tb.Fatalf("testenv: cluster slots %d-%d on %s: %v", from, to, addrs[i], err)
		}
	}
	for _, a := range addrs[1:] {
		host, port, _ := strings.Cut(a, ":")
		if err := clients[0].ClusterMeet(ctx, host, port).Err(); err != nil {
			tb.Fatalf("testenv: cluster meet %s: %v", a, err)
		}
	}
	for _, c := range clients {
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			if ctx.Err() != nil {
				tb.Fatalf("testenv: the cluster did not form: %v %q", err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return addrs
}
