package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/mod/sumdb/note"

	"github.com/satu-exchange/satu/compliance"
	compliancepg "github.com/satu-exchange/satu/compliance/postgres"
	"github.com/satu-exchange/satu/internal/access"
	accesspg "github.com/satu-exchange/satu/internal/access/postgres"
	"github.com/satu-exchange/satu/internal/apperr"
	"github.com/satu-exchange/satu/internal/httpapi"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsgateway"
	"github.com/satu-exchange/satu/migrations"
	"github.com/satu-exchange/satu/settlement"
	settlementpg "github.com/satu-exchange/satu/settlement/postgres"
)

// App is one running Satu process: engine, settlement writer, gateway and
// HTTP API for one shard. Start it, read Addr, Close it. Tests start the real
// App on port 0 and drive it over HTTP and websockets.
type App struct {
	Config Config
	Log    *zap.Logger
	Audit  *zap.Logger

	db       *pgxpool.Pool
	rdb      *redis.Client
	gateway  *wsgateway.Gateway
	http     *http.Server
	pprof    *http.Server // nil unless -pprof-addr
	listener net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errs     chan error
	closed   sync.Once
	api      *httpapi.Server
	keys     *accesspg.KeyStore
	tokens   map[access.Role]string
	// processKeys are the IDs of bootstrap keys made for this process
	// alone (no -keys-dir): Close revokes them.
	processKeys []string

	partsMu sync.Mutex
	running map[string]int // parts started by goRun and not yet returned, by name
}

// openPG opens a pool and checks that PostgreSQL answers (it migrates
// nothing: migrate and checkSchema are for that).
func openPG(ctx context.Context, url string, maxConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres url: %w", err)
	}
	cfg.MaxConns = int32(maxConns)
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres at %s: %w (is it running? make run starts one)", cfg.ConnConfig.Host, err)
	}
	return db, nil
}

func migrate(ctx context.Context, db *pgxpool.Pool) error {
	sqlDB := stdlib.OpenDBFromPool(db)
	defer sqlDB.Close()
	return migrations.Up(ctx, sqlDB)
}

func pending(ctx context.Context, db *pgxpool.Pool) (bool, error) {
	sqlDB := stdlib.OpenDBFromPool(db)
	defer sqlDB.Close()
	return migrations.Pending(ctx, sqlDB)
}

// checkSchema refuses a database that lacks a migration this binary
// embeds, for the commands that only read and so must not migrate. It reads
// goose's version table itself: every goose call that looks at the
// database creates that table when it is missing, which a read-only
// command must not do. A database with migrations this binary does not
// know passes, as it does for `satu serve` (a migration keeps the code
// before it working).
func checkSchema(ctx context.Context, db *pgxpool.Pool) error {
	sqlDB := stdlib.OpenDBFromPool(db)
	defer sqlDB.Close()
	p, err := migrations.NewProvider(sqlDB) // reads the embedded files only
	if err != nil {
		return err
	}
	var want []int64
	for _, src := range p.ListSources() {
		want = append(want, src.Version)
	}
	applied := map[int64]bool{}
	var at int64
	var exists bool
	if err := db.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	if exists {
		// goose records a migration's undoing as a newer row or by deleting
		// its row: a version's newest row says whether it is applied.
		rows, err := db.Query(ctx, `SELECT version_id FROM (
				SELECT DISTINCT ON (version_id) version_id, is_applied FROM goose_db_version ORDER BY version_id, id DESC) v
			WHERE is_applied`)
		if err != nil {
			return fmt.Errorf("read the schema version: %w", err)
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("read the schema version: %w", err)
		}
		for _, v := range versions {
			applied[v] = true
			at = max(at, v)
		}
	}
	var missing []string
	for _, v := range want {
		if !applied[v] {
			missing = append(missing, strconv.FormatInt(v, 10))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the database's schema (version %d) is older than this satu's (version %d): migration(s) %s not applied. "+
			"This command only reads and never migrates: run the satu the servers run, or this one after `satu migrate` has upgraded the database",
			at, want[len(want)-1], strings.Join(missing, ", "))
	}
	return nil
}

// Start connects, migrates and starts every part; it returns once the HTTP
// listener is open.
func (a *App) Start(ctx context.Context) error {
	c := a.Config
	symbols, err := loadSymbols(c.Symbols)
	if err != nil {
		return err
	}
	engine, err := matching.New(symbols)
	if err != nil {
		return err
	}
	db, registry, ledger, err := openLedger(ctx, c)
	if err != nil {
		return err
	}
	a.db = db
	a.rdb = redis.NewClient(&redis.Options{Addr: c.RedisAddr, MaxRetries: -1})
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w (is it running? make run starts one)", c.RedisAddr, err)
	}
	if err := checkSymbolAssets(symbols, registry.Scale); err != nil {
		return err
	}

	metrics := newMetricsRegistry()
	keys := redisbus.KeysFor(c.Shard)
	runner := newRunner(c, a.rdb, engine, a.Log.Named("engine"), metrics)
	client := redisbus.NewClient(a.rdb, keys, a.Log.Named("bus"))
	client.Durable = c.WaitReplicas > 0
	consumer := newConsumer(c.Shard, a.rdb, ledger, a.Log.Named("settlement"), metrics, c.WaitReplicas)
	a.keys = accesspg.NewKeyStore(db)
	a.gateway = wsgateway.New(client, wsgateway.Auth{Keys: a.keys, Replays: redisbus.NewReplays(a.rdb)},
		gatewayReads(a.rdb, keys, registry, ledger), symbols, splitList(c.AllowedOrigins), a.Log.Named("ws"), metrics)
	a.gateway.SetLimits(wsgateway.Limits{MaxConnections: c.WSMaxConns, IPRequests: c.WSIPRequests, KeyOrders: c.WSKeyOrders})

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.errs = make(chan error, 4)
	if c.Engine {
		a.goRun("engine", func() error { return runner.Run(runCtx) })
	}
	a.goRun("event client", func() error { return client.Run(runCtx) })
	a.goRun("stream hub", func() error { return a.gateway.Run(runCtx) })
	if c.Settle {
		a.goRun("settlement", func() error { return consumer.Run(runCtx) })
	}
	if c.Reconcile > 0 {
		loop := settlement.NewReconcileLoop(ledger, c.Reconcile, a.Log.Named("reconcile"), metrics)
		a.goRun("reconciliation", func() error { return loop.Run(runCtx) })
	}

	if a.tokens, err = bootstrapKeys(ctx, a.keys, c.KeysDir); err != nil {
		cancel()
		return err
	}
	if c.KeysDir == "" {
		for _, tok := range a.tokens {
			if t, err := access.ParseToken(tok); err == nil {
				a.processKeys = append(a.processKeys, t.ID)
			}
		}
	}
	signer, err := loadLogSigner(c)
	if err != nil {
		cancel()
		return err
	}
	if signer == nil {
		a.Log.Warn("no transparency-log key (SATU_LOG_KEY_FILE): the log is written but no checkpoint is signed")
	}
	api := &httpapi.Server{Engine: client, Registry: registry, Keys: a.keys, Proofs: registry, LogSigner: signer, Ledger: ledger, Book: redisbus.Book{RDB: a.rdb, Keys: keys},
		Symbols: symbols, Markets: redisbus.Book{RDB: a.rdb, Keys: keys}.Markets, WebSocket: a.gateway, Streams: a.gateway.Streams(),
		Now: time.Now, Log: a.Log.Named("http"), Audit: a.Audit, Metrics: metrics,
		Ready: func(ctx context.Context) error {
			if err := a.db.Ping(ctx); err != nil {
				return fmt.Errorf("postgres: %w", err)
			}
			if err := a.rdb.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis: %w", err)
			}
			if p, err := pending(ctx, a.db); err != nil || p {
				return fmt.Errorf("migrations not current (pending=%v): %v", p, err)
			}
			return nil
		},
		SettlementStatus: func(ctx context.Context) (uint64, uint64, error) {
			return settlementStatus(ctx, a.rdb, keys, a.db, c.Shard)
		},
	}
	a.api = api
	if c.CheckpointEvery > 0 && signer != nil {
		a.goRun("checkpoints", func() error {
			return checkpointLoop(runCtx, registry, signer, c.CheckpointEvery, a.Log.Named("proof"))
		})
	}
	if c.ComplianceSweep > 0 {
		a.goRun("compliance sweep", func() error { return sweepLoop(runCtx, api, c.ComplianceSweep, a.Log.Named("compliance")) })
	}
	a.listener, err = net.Listen("tcp", c.Addr)
	if err != nil {
		cancel()
		return fmt.Errorf("listen %s: %w", c.Addr, err)
	}
	a.http = &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	a.goRun("http", func() error {
		if err := a.http.Serve(a.listener); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if c.PprofAddr != "" {
		ln, err := net.Listen("tcp", c.PprofAddr)
		if err != nil {
			cancel()
			return fmt.Errorf("listen %s: %w", c.PprofAddr, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		a.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = a.pprof.Serve(ln) }()
		a.Log.Info("profiling served", zap.String("addr", ln.Addr().String()))
	}
	a.Log.Info("satu serving", zap.String("addr", a.Addr()), zap.String("shard", c.Shard), zap.String("ruleSet", c.RuleSet))
	return nil
}

// leaseOwner names this process in the shard's lease: host, pid and a
// random part, so that a restarted process is never mistaken for its
// predecessor.
func leaseOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%x", host, os.Getpid(), b)
}

// settlementStatus reads the engine's written sequence and the settled one.
func settlementStatus(ctx context.Context, rdb *redis.Client, keys redisbus.Keys, db *pgxpool.Pool, shard string) (engine, settled uint64, err error) {
	s, err := rdb.HGet(ctx, keys.Engine, "seq").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, 0, err
	}
	if s != "" {
		if engine, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, err
		}
	}
	var seq int64
	err = db.QueryRow(ctx, `SELECT COALESCE((SELECT seq FROM settlement_positions WHERE shard = $1), 0)`, shard).Scan(&seq)
	return engine, uint64(seq), err
}

func (a *App) goRun(name string, f func() error) {
	a.partsMu.Lock()
	if a.running == nil {
		a.running = map[string]int{}
	}
	a.running[name]++
	a.partsMu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer a.partStopped(name)
		if err := f(); err != nil {
			a.Log.Error(name+" stopped", zap.Error(err))
			// Err delivers the first failure; the others are logged. A
			// blocking send would hold the part, and so Close, forever.
			select {
			case a.errs <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	}()
}

func (a *App) partStopped(name string) {
	a.partsMu.Lock()
	defer a.partsMu.Unlock()
	if a.running[name]--; a.running[name] == 0 {
		delete(a.running, name)
	}
}

// stillRunning names the parts that have not returned, sorted.
func (a *App) stillRunning() []string {
	a.partsMu.Lock()
	defer a.partsMu.Unlock()
	names := make([]string, 0, len(a.running))
	for name := range a.running {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Addr is the listening address, e.g. 127.0.0.1:8080.
func (a *App) Addr() string { return a.listener.Addr().String() }

// Err delivers the first failure of a background part.
func (a *App) Err() <-chan error { return a.errs }

// Close shuts down gracefully: stop accepting, close websockets with 1001,
// drain HTTP requests, revoke this process's own bootstrap keys, stop the
// engine, settlement and the other parts, and only then close Redis and
// PostgreSQL. Config.ShutdownGrace (when positive) and ctx bound all of it:
// once the first of them ends, Close stops waiting, logs the parts still
// running and returns an error naming them; it then leaves Redis and
// PostgreSQL open under those parts, for the process's exit to close.
func (a *App) Close(ctx context.Context) error {
	var err error
	a.closed.Do(func() { err = a.close(ctx) })
	return err
}

func (a *App) close(ctx context.Context) error {
	if grace := a.Config.ShutdownGrace; grace > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, grace)
		defer cancel()
	}
	var errs []error
	if a.http != nil {
		a.gateway.Shutdown()
		if err := a.http.Shutdown(ctx); err != nil {
			// Requests still in flight at the end of the grace are cut off.
			_ = a.http.Close()
			errs = append(errs, fmt.Errorf("drain HTTP requests: %w", err))
		}
	}
	if a.pprof != nil {
		_ = a.pprof.Close()
	}
	a.revokeProcessKeys(ctx)
	if a.cancel != nil {
		a.cancel()
	}
	if !waitUntil(ctx, a.wg.Wait) {
		running := a.stillRunning()
		a.Log.Error("shutdown: parts still running at the end of the grace; Redis and PostgreSQL are left open under them",
			zap.Strings("running", running), zap.Duration("grace", a.Config.ShutdownGrace))
		return errors.Join(append(errs, fmt.Errorf("shutdown: still running when the grace ended: %s", strings.Join(running, ", ")))...)
	}
	closeClients := func() {
		if a.rdb != nil {
			a.rdb.Close()
		}
		if a.db != nil {
			a.db.Close() // waits for every connection to be released
		}
	}
	if !waitUntil(ctx, closeClients) {
		a.Log.Error("shutdown: PostgreSQL connections still in use at the end of the grace")
		errs = append(errs, fmt.Errorf("shutdown: PostgreSQL connections still in use when the grace ended"))
	}
	return errors.Join(errs...)
}

// waitUntil runs f and waits until it returns or ctx ends, whichever is
// first; it reports whether f returned. (f goes on running if not.)
func waitUntil(ctx context.Context, f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		select { // f may have returned just as ctx ended
		case <-done:
			return true
		default:
			return false
		}
	}
}

// revokeProcessKeys revokes the bootstrap keys made for this process alone
// (no -keys-dir), so that they live only as long as the process, as
// documented; it runs once HTTP requests are drained, as nothing else uses
// them. Best effort: a failure is logged with the key's ID, and a process
// that dies without Close leaves its keys unrevoked — unusable all the
// same, as their secrets were never written anywhere, but listed as active
// by `satu keys list` until `satu keys revoke` revokes them.
func (a *App) revokeProcessKeys(ctx context.Context) {
	for _, id := range a.processKeys {
		if err := a.keys.Revoke(ctx, id, time.Now()); err != nil {
			a.Log.Warn("could not revoke this process's bootstrap API key (satu keys revoke ID does)", zap.String("key", id), zap.Error(err))
		}
	}
	a.processKeys = nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Token returns the bootstrap API key of an operator or a regulator.
func (a *App) Token(role access.Role) string { return a.tokens[role] }

// keyIssuer is what bootstrapKeys needs of the key store.
type keyIssuer interface {
	Authenticate(ctx context.Context, token string) (access.Principal, error)
	Create(ctx context.Context, req accesspg.CreateRequest, now time.Time) (access.Token, error)
}

// bootstrapKeys makes sure an operator and a regulator key exist and hands
// them to whoever runs the process: in dir as <role>.token (the key) and
// <role>.header (an Authorization header line for curl -H @file), mode 0600.
// A key file is replaced only when the database answers that it does not
// know its key (a new database, a revoked key): any other failure to check
// it fails the start, so a passing PostgreSQL error never throws away a good
// key. Without dir the keys are the process's own, and Close revokes them.
func bootstrapKeys(ctx context.Context, keys keyIssuer, dir string) (map[access.Role]string, error) {
	out := map[access.Role]string{}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("keys dir: %w", err)
		}
	}
	for _, role := range []access.Role{access.RoleOperator, access.RoleRegulator} {
		path := filepath.Join(dir, string(role)+".token")
		if dir != "" {
			tok, err := storedKey(ctx, keys, path)
			if err != nil {
				return nil, fmt.Errorf("bootstrap %s key: %w", role, err)
			}
			if tok != "" {
				out[role] = tok
				continue
			}
		}
		tok, err := keys.Create(ctx, accesspg.CreateRequest{Role: role, Label: "bootstrap " + string(role)}, time.Now())
		if err != nil {
			return nil, fmt.Errorf("bootstrap %s key: %w", role, err)
		}
		out[role] = tok.String()
		if dir == "" {
			continue
		}
		// The header first: a token file whose key works then always has
		// its header beside it, even after a crash between the two.
		if err := writeKeyFile(filepath.Join(dir, string(role)+".header"), "Authorization: Bearer "+tok.String()+"\n"); err != nil {
			return nil, fmt.Errorf("bootstrap %s key: %w", role, err)
		}
		if err := writeKeyFile(path, tok.String()+"\n"); err != nil {
			return nil, fmt.Errorf("bootstrap %s key: %w", role, err)
		}
	}
	return out, nil
}

// storedKey returns the key in the token file at path if the database
// knows it, and "" when the file is to be made: there is none, or the
// database answered that its key is unknown, revoked or malformed. Any
// other failure — the file unreadable, PostgreSQL unreachable, ctx
// cancelled — is an error.
func storedKey(ctx context.Context, keys keyIssuer, path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	_, err = keys.Authenticate(ctx, tok)
	switch {
	case err == nil:
		return tok, nil
	case apperr.CodeOf(err) == apperr.Unauthenticated:
		return "", nil
	default:
		return "", fmt.Errorf("check the key in %s: %w", path, err)
	}
}

// writeKeyFile replaces path with content, mode 0600 whatever the mode of
// a file it replaces: the content goes to a new file (created 0600) that is
// renamed over path, so a secret is never in a file others may read.
func writeKeyFile(path, content string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(content)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// sweepLoop runs the compliance sweep every interval until ctx ends. A
// failed sweep is logged and retried next time: it changes nothing
// half-way (each step is its own transaction and repeatable).
func sweepLoop(ctx context.Context, api *httpapi.Server, every time.Duration, log *zap.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		res, err := api.SweepCompliance(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("compliance sweep failed", zap.Error(err))
		case len(res.Violations)+len(res.Permissions) > 0:
			log.Info("compliance sweep", zap.Int("violations", len(res.Violations)), zap.Int("permissions", len(res.Permissions)))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// checkpointLoop signs a checkpoint of the log every interval (Checkpoint
// skips one when the log has not grown).
func checkpointLoop(ctx context.Context, registry *compliancepg.Store, signer note.Signer, every time.Duration, log *zap.Logger) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := registry.Checkpoint(ctx, signer); err != nil && ctx.Err() == nil {
			log.Warn("checkpoint failed", zap.Error(err))
		}
	}
}

// gatewayReads wires the websocket gateway's read paths: the Redis order
// book, the engine's balances as settled, a miner's obligations.
func gatewayReads(rdb redis.UniversalClient, keys redisbus.Keys, registry *compliancepg.Store, ledger *settlementpg.Store) wsgateway.Reads {
	return wsgateway.Reads{
		Book:    redisbus.Book{RDB: rdb, Keys: keys},
		Markets: redisbus.Book{RDB: rdb, Keys: keys}.Markets,
		Events:  redisbus.EventReader{RDB: rdb, Keys: keys},
		Balances: func(ctx context.Context, account string) (uint64, []wsapi.Balance, error) {
			seq, bs, err := ledger.EngineBalances(ctx, keys.Shard, account)
			out := make([]wsapi.Balance, len(bs))
			for i, b := range bs {
				out[i] = wsapi.Balance(b)
			}
			return seq, out, err
		},
		Obligations: func(ctx context.Context, miner string) ([]compliance.ObligationView, error) {
			return registry.Obligations(ctx, compliancepg.ObligationFilter{Miner: miner})
		},
	}
}
