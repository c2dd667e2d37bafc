package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/satu-exchange/satu/internal/testenv"
)

// TestDemoConfigIgnoresServerSettings: the demo's scratch server takes the
// settings it shares with a real one (Redis, pool size, rule set, grace)
// from the environment and ignores those about the real server.
func TestDemoConfigIgnoresServerSettings(t *testing.T) {
	kept := map[string]string{"SATU_REDIS_ADDR": "10.0.0.5:6379", "SATU_PG_MAX_CONNS": "7", "SATU_RULESET": "kz-paper-2024",
		"SATU_SHUTDOWN_GRACE": "3s", "SATU_LEASE_TTL": "2s", "SATU_SNAPSHOT_EVERY": "50"}
	ignored := map[string]string{"SATU_PG_URL": "postgres://satu@db.internal/satu", "SATU_SHARD": "s1", "SATU_ADDR": "0.0.0.0:8080",
		"SATU_KEYS_DIR": "/srv/satu/keys", "SATU_ENGINE": "false", "SATU_SETTLE": "false", "SATU_PPROF_ADDR": "127.0.0.1:6060",
		"SATU_LOG_KEY": "PRIVATE+KEY+satu/compliance-log+x", "SATU_LOG_KEY_FILE": "/srv/satu/log.key", "SATU_WAIT_REPLICAS": "2",
		"SATU_SNAPSHOT_STANDBY": "true", "SATU_WS_MAX_CONNS": "1", "SATU_WS_IP_REQUESTS": "1", "SATU_WS_KEY_ORDERS": "1",
		"SATU_COMPLIANCE_SWEEP": "1s", "SATU_RECONCILE_INTERVAL": "1s", "SATU_SYMBOLS": "/srv/satu/symbols.json"}
	all := map[string]string{}
	for k, v := range kept {
		all[k] = v
	}
	for k, v := range ignored {
		all[k] = v
	}
	cfg, err := parseConfig("test", nil, func(k string) string { return all[k] })
	must(t, err)
	got := demoConfig(cfg, "postgres://postgres@127.0.0.1:25432/satu_demo_1", "demo-1")

	want, err := parseConfig("test", nil, func(k string) string { return kept[k] })
	must(t, err)
	want.PGURL, want.Shard, want.Addr = "postgres://postgres@127.0.0.1:25432/satu_demo_1", "demo-1", "127.0.0.1:0"
	want.WSMaxConns, want.WSIPRequests, want.WSKeyOrders = 0, 0, 0
	want.ComplianceSweep, want.Reconcile = 0, 0
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("demo config:\n got %+v\nwant %+v", got, want)
	}
}

// TestDemoCommandIgnoresServerSettings runs `satu demo` in the environment
// of a running server — its keys directory, engine and settlement in other
// processes, its profiling address taken, its log key — and checks that the
// demo prints the README's table and leaves the server's key files alone.
func TestDemoCommandIgnoresServerSettings(t *testing.T) {
	keys := t.TempDir()
	files := map[string]string{"operator.token": "the running server's operator key\n",
		"operator.header":  "Authorization: Bearer the running server's operator key\n",
		"regulator.token":  "the running server's regulator key\n",
		"regulator.header": "Authorization: Bearer the running server's regulator key\n"}
	for name, content := range files {
		must(t, os.WriteFile(filepath.Join(keys, name), []byte(content), 0o600))
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer busy.Close()
	env := map[string]string{"SATU_PG_URL": testenv.PGURL(t), "SATU_REDIS_ADDR": testenv.RedisAddr(t),
		"SATU_KEYS_DIR": keys, "SATU_ENGINE": "false", "SATU_SETTLE": "false", "SATU_PPROF_ADDR": busy.Addr().String(),
		"SATU_LOG_KEY_FILE": filepath.Join(t.TempDir(), "log.key"), "SATU_WS_KEY_ORDERS": "1"}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var out, errOut strings.Builder
	if code := run(ctx, []string{"demo"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("satu demo exited %d: %s", code, errOut.String())
	}
	wantReadmeTable(t, out.String())
	entries, err := os.ReadDir(keys)
	must(t, err)
	if len(entries) != len(files) {
		t.Errorf("the keys directory holds %d files; want the server's %d", len(entries), len(files))
	}
	for name, content := range files {
		if b, err := os.ReadFile(filepath.Join(keys, name)); err != nil || string(b) != content {
			t.Errorf("%s = %q (%v); want the server's %q", name, b, err, content)
		}
	}
}
