package chaos_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/satu-exchange/satu/internal/access"
	"github.com/satu-exchange/satu/internal/demo"
	"github.com/satu-exchange/satu/matching"
	"github.com/satu-exchange/satu/matching/redisbus"
	"github.com/satu-exchange/satu/matching/wsapi"
	"github.com/satu-exchange/satu/matching/wsclient"
	"github.com/satu-exchange/satu/settlement/postgres"
)

// serve runs `satu serve` for the world's services on addr.
type serve struct {
	t   *testing.T
	w   *world
	cmd *exec.Cmd
}

func (w *world) startServe(addr string) *serve {
	cmd := exec.Command(satuBin, "serve")
	cmd.Env = append(os.Environ(), "SATU_PG_URL="+w.pg.URL(), "SATU_REDIS_ADDR="+w.redis.Addr(), "SATU_SHARD=s1",
		"SATU_ADDR="+addr, "SATU_LEASE_TTL=1s", "SATU_RECONCILE_INTERVAL=0", "SATU_LOG_FORMAT=json", "SATU_KEYS_DIR="+w.keysDir)
	cmd.Stdout, cmd.Stderr = w.settleLog, w.settleLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	s := &serve{t: w.t, w: w, cmd: cmd}
	w.t.Cleanup(func() { s.signal(syscall.SIGKILL) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("satu serve not ready on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *serve) signal(sig syscall.Signal) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	_ = s.cmd.Wait()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestEngineKilledMidStream: clients place orders over websockets while
// `satu serve` — engine, gateway and settlement — is killed with SIGKILL;
// a new process takes over (the dead one's lease lapses after a second).
// Every order a client saw acknowledged is in the events stream exactly
// once, with the order ID it was told; nothing is accepted twice; the
// engine's state after the restart, written as the final snapshot of a
// clean stop, equals a clean replay of the inbox; and the ledger
// reconciles with it.
func TestEngineKilledMidStream(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	addr := freeAddr(t)
	first := w.startServe(addr)
	c := demo.NewClient(addr, w.operatorKey())
	const clients = 4
	for i := range clients {
		a := fmt.Sprintf("k%d", i)
		for _, call := range []struct {
			path string
			body map[string]string
		}{
			{"/v1/operator/accounts", map[string]string{"account": a, "owner": a, "kind": "trader"}},
			{"/v1/operator/deposits", map[string]string{"account": a, "asset": "BTC", "amount": "100.00000000", "extRef": "b" + a}},
			{"/v1/operator/deposits", map[string]string{"account": a, "asset": "KZT", "amount": "10000000000.00", "extRef": "k" + a}},
		} {
			if err := c.Call(ctx, "POST", call.path, call.body, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	signers := make([]access.Signer, clients)
	for i := range clients {
		a := fmt.Sprintf("k%d", i)
		var err error
		if signers[i], err = c.NewSigner(ctx, demo.KeyRequest{Role: "trader", Account: a, Label: "chaos " + a}); err != nil {
			t.Fatal(err)
		}
	}

	type ack struct {
		account, clientID string
		orderID           uint64
	}
	var mu sync.Mutex
	var acked []ack
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := fmt.Sprintf("k%d", i)
			conn, err := wsclient.Dial(ctx, "ws://"+addr+"/ws/api")
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			if _, err := conn.Logon(ctx, signers[i], ""); err != nil {
				t.Error(err)
				return
			}
			for n := 0; ; n++ {
				side, price := "BUY", 30_000_000+(n%5)*1_000
				if (n+i)%2 == 0 {
					side = "SELL"
				}
				cid := a + "-" + strconv.Itoa(n)
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				r, err := conn.Place(cctx, wsapi.PlaceParams{Symbol: "BTCKZT", Side: side, Type: "LIMIT", TimeInForce: "GTC",
					Price: strconv.Itoa(price) + ".00", Quantity: "0.01000000", NewClientOrderID: cid})
				cancel()
				if err != nil {
					return // the server died under us
				}
				mu.Lock()
				acked = append(acked, ack{a, cid, r.OrderID})
				mu.Unlock()
			}
		}()
	}
	// Kill once a good number of orders went through (or after 20 s).
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 500 {
			break
		}
	}
	first.signal(syscall.SIGKILL)
	wg.Wait()
	if len(acked) < 100 {
		t.Fatalf("only %d orders acknowledged before the kill", len(acked))
	}

	second := w.startServe(addr)
	// Wait until the new process holds the lease (the dead one's lapses
	// after its TTL; taking it moves the fencing epoch to 2) and has
	// applied and written the whole inbox.
	for deadline := time.Now().Add(30 * time.Second); ; {
		n, _ := redisbus.InboxCommands(ctx, w.rdb, w.keys)
		seq, _ := w.rdb.HGet(ctx, w.keys.Engine, "seq").Int64()
		epoch, _ := w.rdb.HGet(ctx, w.keys.Engine, "epoch").Int64()
		if epoch == 2 && seq == n && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine at %d of %d inbox entries, lease epoch %d", seq, n, epoch)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// One more command answered means the new engine has applied all before it.
	if err := c.Call(ctx, "POST", "/v1/operator/deposits", map[string]string{"account": "k0", "asset": "KZT",
		"amount": "1.00", "extRef": "after-restart"}, nil); err != nil {
		t.Fatal(err)
	}

	accepted := map[string][]uint64{}
	for after := "0"; ; {
		envs, err := redisbus.ReadEvents(ctx, w.rdb, w.keys, after, 10_000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) == 0 {
			break
		}
		for _, env := range envs {
			if env.Event.Kind == matching.EvOrderAccepted {
				k := env.Event.Account + "/" + env.Event.ClientID
				accepted[k] = append(accepted[k], env.Event.OrderID)
			}
			after = env.StreamID
		}
	}
	for k, ids := range accepted {
		if len(ids) != 1 {
			t.Errorf("%s accepted %d times", k, len(ids))
		}
	}
	for _, a := range acked {
		if ids := accepted[a.account+"/"+a.clientID]; len(ids) != 1 || ids[0] != a.orderID {
			t.Errorf("acknowledged order %s/%s (ID %d): accepted as %v", a.account, a.clientID, a.orderID, ids)
		}
	}

	w.waitSettled(ctx)
	second.signal(syscall.SIGTERM) // a clean stop writes the final snapshot
	metas, err := redisbus.Snapshots(ctx, w.rdb, w.keys)
	if err != nil || len(metas) == 0 {
		t.Fatalf("no snapshot after a clean stop: %v", err)
	}
	final := metas[0]
	engineSeq, _ := w.rdb.HGet(ctx, w.keys.Engine, "seq").Uint64()
	fresh, _ := matching.New(matching.DefaultSymbols())
	if err := redisbus.Replay(ctx, w.rdb, w.keys, fresh, final.Seq); err != nil {
		t.Fatal(err)
	}
	if final.Seq != engineSeq || fresh.StateHash() != final.SHA256 {
		t.Fatalf("final snapshot at %d (engine %d): state %s; a clean replay gives %s", final.Seq, engineSeq, final.SHA256, fresh.StateHash())
	}

	store, err := postgres.NewStore(ctx, w.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := store.Reconcile(ctx); err != nil || !r.Clean() {
		t.Fatalf("reconciliation (%v):\n%s", err, r)
	}
	diffs, n, err := store.CompareWithEngine(ctx, fresh.Balance)
	if err != nil || len(diffs) != 0 || n < clients*2 {
		t.Fatalf("ledger against the replayed engine: %d compared, %+v (%v)", n, diffs, err)
	}
	t.Logf("%d orders acknowledged before the kill, each accepted exactly once among %d; state hash after restart = clean replay's at %d",
		len(acked), len(accepted), final.Seq)
}
