package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
	"github.com/satu-exchange/satu/settlement/postgres"
)

var satuBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "satu-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	satuBin = filepath.Join(dir, "satu")
	build := exec.Command("go", "build", "-o", satuBin, "github.com/satu-exchange/satu/cmd/satu")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build satu: %v\n%s", err, out)
		os.Exit(1)
	}
	code := testenv.Run(m)
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// world is one shard's services, engine and settlement process.
type world struct {
	t     *testing.T
	pg    *testenv.PGServer
	redis *testenv.RedisServer
	db    *pgxpool.Pool
	rdb   *redis.Client
	keys  redisbus.Keys

	engineMu sync.Mutex
	engine   *matching.Engine // the running engine; replaced when it restarts
	restarts int

	settleMu  sync.Mutex
	settle    *exec.Cmd
	settleLog *os.File
	kills     int
	keysDir   string // satu serve's bootstrap API keys
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, pg: testenv.NewPGServer(t), redis: testenv.NewRedisServer(t, true), keys: redisbus.KeysFor("s1"),
		keysDir: t.TempDir()}
	var err error
	if w.db, err = pgxpool.New(context.Background(), w.pg.URL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.db.Close)
	w.rdb = redis.NewClient(&redis.Options{Addr: w.redis.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = w.rdb.Close() })
	if w.settleLog, err = os.Create(filepath.Join(t.TempDir(), "settle.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.stopSettle()
		if t.Failed() {
			out, _ := os.ReadFile(w.settleLog.Name())
			t.Logf("satu settle log (last 4 KiB):\n%s", tail(out, 4096))
		}
		_ = w.settleLog.Close()
	})
	return w
}

// operatorKey is the operator API key the first `satu serve` wrote.
func (w *world) operatorKey() string {
	b, err := os.ReadFile(filepath.Join(w.keysDir, "operator.token"))
	if err != nil {
		w.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// runEngine runs the shard's engine until ctx ends, restarting it — a fresh
// engine replaying the inbox — whenever it stops on an error (Redis gone).
func (w *world) runEngine(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			e, err := matching.New(matching.DefaultSymbols())
			if err != nil {
				w.t.Error(err)
				return
			}
			w.engineMu.Lock()
			w.engine = e
			w.engineMu.Unlock()
			err = redisbus.NewRunner(w.rdb, w.keys, e, zap.NewNop(), nil).Run(ctx)
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, redisbus.ErrStale) {
				w.t.Errorf("engine: %v", err)
				return
			}
			w.engineMu.Lock()
			w.restarts++
			w.engineMu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return done
}

// startSettle starts `satu settle` for the shard as a child process.
func (w *world) startSettle() {
	w.settleMu.Lock()
	defer w.settleMu.Unlock()
	cmd := exec.Command(satuBin, "settle")
	cmd.Env = append(os.Environ(), "SATU_PG_URL="+w.pg.URL(), "SATU_REDIS_ADDR="+w.redis.Addr(), "SATU_SHARD=s1",
		"SATU_RECONCILE_INTERVAL=0", "SATU_LOG_FORMAT=json", "SATU_PG_MAX_CONNS=4")
	cmd.Stdout, cmd.Stderr = w.settleLog, w.settleLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.settle = cmd
}

// killSettle sends SIGKILL to the settlement process and reaps it.
func (w *world) killSettle() {
	if w.signalSettle(syscall.SIGKILL) {
		w.kills++
	}
}

// stopSettle stops the settlement process cleanly.
func (w *world) stopSettle() { w.signalSettle(syscall.SIGTERM) }

// signalSettle signals the settlement process, if one runs, and reaps it.
func (w *world) signalSettle(sig syscall.Signal) bool {
	w.settleMu.Lock()
	defer w.settleMu.Unlock()
	if w.settle == nil {
		return false
	}
	_ = w.settle.Process.Signal(sig)
	_ = w.settle.Wait()
	w.settle = nil
	return true
}

// load appends a random flow of commands to the inbox until ctx ends,
// retrying while Redis is away; it returns how many it appended.
func (w *world) load(ctx context.Context, accounts int) <-chan int {
	out := make(chan int, 1)
	go func() {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
		var setup []matching.Command
		for i := range accounts {
			id := fmt.Sprintf("c%02d", i)
			setup = append(setup,
				matching.Command{Kind: matching.CmdOpenAccount, Account: id, Owner: id, AccountKind: matching.KindTrader},
				matching.Command{Kind: matching.CmdDeposit, Account: id, Asset: "BTC", Amount: 1_000 * 100_000_000, ExtRef: "btc-" + id},
				matching.Command{Kind: matching.CmdDeposit, Account: id, Asset: "KZT", Amount: 1_000_000_000_000_00, ExtRef: "kzt-" + id})
		}
		sent := 0
		send := func(cmds []matching.Command) bool {
			for ctx.Err() == nil {
				if err := redisbus.Append(ctx, w.rdb, w.keys, cmds); err == nil {
					sent += len(cmds)
					return true
				}
				time.Sleep(50 * time.Millisecond) // Redis restarting; a partial append only repeats refusable commands
			}
			return false
		}
		send(setup)
		orders := 0
		for ctx.Err() == nil {
			cmds := make([]matching.Command, 0, 40)
			for range 40 {
				acct := fmt.Sprintf("c%02d", rng.IntN(accounts))
				switch r := rng.IntN(100); {
				case r < 90:
					orders++
					side := matching.Buy
					if rng.IntN(2) == 0 {
						side = matching.Sell
					}
					cmds = append(cmds, matching.Command{Kind: matching.CmdPlaceOrder, Account: acct, Symbol: "BTCKZT",
						ClientID: "o" + strconv.Itoa(orders), Side: side, Type: matching.Limit, TIF: matching.GTC,
						Price: int64(30_000_000_00 + (rng.IntN(5)-2)*100_000), Quantity: int64(1_000 + rng.IntN(1_000_000))})
				case r < 95:
					cmds = append(cmds, matching.Command{Kind: matching.CmdCancelOrder, Account: acct, Symbol: "BTCKZT",
						ClientID: "o" + strconv.Itoa(1+rng.IntN(orders+1))})
				default:
					cmds = append(cmds, matching.Command{Kind: matching.CmdWithdraw, Account: acct, Asset: "BTC",
						Amount: int64(1 + rng.IntN(10_000)), ExtRef: fmt.Sprintf("wd-%d-%d", orders, r)})
				}
			}
			if !send(cmds) {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
		out <- sent
	}()
	return out
}

// positions reads the engine's written sequence and the settled one.
func (w *world) positions(ctx context.Context) (engine, settled uint64, err error) {
	s, err := w.rdb.HGet(ctx, w.keys.Engine, "seq").Result()
	if err != nil {
		return 0, 0, err
	}
	if engine, err = strconv.ParseUint(s, 10, 64); err != nil {
		return 0, 0, err
	}
	var seq int64
	err = w.db.QueryRow(ctx, `SELECT coalesce((SELECT seq FROM settlement_positions WHERE shard = 's1'), 0)`).Scan(&seq)
	return engine, uint64(seq), err
}

// waitSettled waits until settlement has reached the engine's position.
func (w *world) waitSettled(ctx context.Context) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		e, s, err := w.positions(ctx)
		if err == nil && e > 0 && s == e {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("settlement did not catch up: engine %d, settled %d (%v)", e, s, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verify checks the settled ledger against the events stream and the
// engine: every trade event settled exactly once, nothing else; ledger
// balances = the engine's free + held; reconciliation clean.
func (w *world) verify(ctx context.Context) {
	t := w.t
	want := map[string]bool{}
	after, events := "0", 0
	for {
		envs, err := redisbus.ReadEvents(ctx, w.rdb, w.keys, after, 10_000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) == 0 {
			break
		}
		for _, env := range envs {
			if env.Event.Kind == matching.EvTrade {
				want[env.Event.ID()] = true
			}
			after = env.StreamID
			events++
		}
	}
	rows, err := w.db.Query(ctx, `SELECT id FROM fills WHERE shard = 's1'`)
	if err != nil {
		t.Fatal(err)
	}
	got, dup := map[string]bool{}, 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if got[id] {
			dup++
		}
		got[id] = true
	}
	missing := 0
	for id := range want {
		if !got[id] {
			missing++
		}
	}
	extra := len(got) - (len(want) - missing)
	if len(want) < 500 || missing != 0 || dup != 0 || extra != 0 {
		t.Fatalf("trade events %d, fills %d: %d missing, %d duplicated, %d not in the stream", len(want), len(got), missing, dup, extra)
	}

	w.engineMu.Lock()
	e := w.engine
	w.engineMu.Unlock()
	store, err := postgres.NewStore(ctx, w.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	diffs, compared, err := store.CompareWithEngine(ctx, e.Balance)
	if err != nil || len(diffs) != 0 || compared < 13 {
		t.Fatalf("compared %d balances with the engine: %+v (%v)", compared, diffs, err)
	}
	r, err := store.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Clean() {
		t.Fatalf("reconciliation:\n%s", r)
	}
	// And against an engine rebuilt from the inbox alone.
	replayed, err := store.ReplayCheck(ctx, "s1", func(ctx context.Context, seq uint64) (func(string, string) (int64, int64), error) {
		fresh, err := matching.New(matching.DefaultSymbols())
		if err != nil {
			return nil, err
		}
		return fresh.Balance, redisbus.Replay(ctx, w.rdb, w.keys, fresh, seq)
	})
	if err != nil || replayed.Differences != 0 {
		t.Fatalf("replay check: %+v (%v)", replayed, err)
	}
	t.Logf("%d events, %d fills settled exactly once; %d balances equal the running engine's and a replayed one's; reconciliation clean",
		events, len(want), compared)
}

// run drives the load for d while disrupt acts, then lets settlement catch
// up and verifies.
func (w *world) run(d time.Duration, disrupt func(ctx context.Context)) {
	ctx := context.Background()
	engineCtx, stopEngine := context.WithCancel(ctx)
	engineDone := w.runEngine(engineCtx)
	w.startSettle()
	loadCtx, stopLoad := context.WithTimeout(ctx, d)
	sent := w.load(loadCtx, 12)
	disrupt(loadCtx)
	<-loadCtx.Done()
	stopLoad()
	w.t.Logf("%d commands appended", <-sent)
	w.settleMu.Lock()
	running := w.settle != nil
	w.settleMu.Unlock()
	if !running {
		w.startSettle()
	}
	w.waitSettled(ctx)
	stopEngine()
	<-engineDone
	w.stopSettle()
	w.verify(ctx)
}

// TestSettlementKilledMidBatch kills the settlement process with SIGKILL
// again and again while the engine produces fills, restarting it each time.
func TestSettlementKilledMidBatch(t *testing.T) {
	w := newWorld(t)
	busy := 0
	w.run(6*time.Second, func(ctx context.Context) {
		rng := rand.New(rand.NewPCG(7, 7))
		for ctx.Err() == nil {
			time.Sleep(time.Duration(150+rng.IntN(350)) * time.Millisecond)
			if e, s, err := w.positions(context.Background()); err == nil && s < e {
				busy++ // it had work in hand when it died
			}
			w.killSettle()
			w.startSettle()
		}
	})
	t.Logf("settlement killed %d times, %d of them with events not yet settled", w.kills, busy)
	if w.kills < 5 || busy == 0 {
		t.Fatalf("killed %d times, %d while busy: the test wants several kills under load", w.kills, busy)
	}
}

// TestSettlementSurvivesPostgresRestart stops PostgreSQL mid-run (a clean
// stop, then a crash) and starts it again; settlement resumes on its own.
func TestSettlementSurvivesPostgresRestart(t *testing.T) {
	w := newWorld(t)
	w.run(6*time.Second, func(ctx context.Context) {
		time.Sleep(1500 * time.Millisecond)
		w.pg.Stop(t)
		time.Sleep(time.Second)
		w.pg.Start(t)
		time.Sleep(1500 * time.Millisecond)
		w.pg.Kill(t)
		time.Sleep(500 * time.Millisecond)
		w.pg.Start(t)
	})
}

// TestSettlementSurvivesRedisRestart kills redis-server (AOF, fsync always)
// mid-run and starts it again: the engine restarts by replaying the inbox,
// the load generator retries, settlement resumes from its stored position.
func TestSettlementSurvivesRedisRestart(t *testing.T) {
	w := newWorld(t)
	w.run(6*time.Second, func(ctx context.Context) {
		time.Sleep(2 * time.Second)
		w.redis.Kill(t)
		time.Sleep(time.Second)
		w.redis.Start(t)
	})
	w.engineMu.Lock()
	defer w.engineMu.Unlock()
	if w.restarts == 0 {
		t.Fatal("the engine never noticed Redis going away")
	}
}
