package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration. Every field has a flag and a SATU_*
// environment variable; a flag given on the command line wins over the
// variable, which wins over the default. The table in docs/configuration.md
// lists them; TestConfigDocumented keeps it in step.
type Config struct {
	Addr             string
	PGURL            string
	PGMaxConns       int
	RedisAddr        string
	Shard            string
	RuleSet          string
	LogFormat        string
	LogLevel         string
	Demo             bool
	AllowedOrigins   string
	ShutdownGrace    time.Duration
	Symbols          string
	Settle           bool
	Engine           bool
	Reconcile        time.Duration
	MetricsAddr      string
	SnapshotEvery    int
	SnapshotStandby  bool
	SnapshotInterval time.Duration
	SnapshotSpacing  int
	SnapshotReplay   int
	LeaseTTL         time.Duration
	WaitReplicas     int
	KeysDir          string
	ComplianceSweep  time.Duration
	LogKey           string
	LogKeyFile       string
	CheckpointEvery  time.Duration
	WSMaxConns       int
	WSIPRequests     int
	WSKeyOrders      int
	PprofAddr        string
}

// option binds one Config field to its flag and variable.
type option struct {
	name, env, usage string
	value            flag.Value
}

func (c *Config) options() []option {
	return []option{
		{"addr", "SATU_ADDR", "HTTP and websocket listen address", stringVar(&c.Addr, "127.0.0.1:8080")},
		{"pg-url", "SATU_PG_URL", "PostgreSQL connection URL", stringVar(&c.PGURL, "postgres://postgres@127.0.0.1:25432/satu?sslmode=disable")},
		{"pg-max-conns", "SATU_PG_MAX_CONNS", "PostgreSQL pool size", intVar(&c.PGMaxConns, 16)},
		{"redis-addr", "SATU_REDIS_ADDR", "Redis address host:port", stringVar(&c.RedisAddr, "127.0.0.1:26379")},
		{"shard", "SATU_SHARD", "shard name: the {hash tag} of its Redis keys", stringVar(&c.Shard, "s1")},
		{"ruleset", "SATU_RULESET", "rule set for new obligations (kz-law-193, kz-paper-2024)", stringVar(&c.RuleSet, "kz-law-193")},
		{"log-format", "SATU_LOG_FORMAT", "log format: console (development) or json (production)", stringVar(&c.LogFormat, "console")},
		{"log-level", "SATU_LOG_LEVEL", "log level: debug, info, warn, error", stringVar(&c.LogLevel, "info")},
		{"demo", "SATU_DEMO", "serve: seed the demo market at start (skipped if already seeded)", boolVar(&c.Demo, false)},
		{"allowed-origins", "SATU_ALLOWED_ORIGINS", "comma-separated browser origins allowed on /ws (\"*\" for any)", stringVar(&c.AllowedOrigins, "http://127.0.0.1:8080,http://localhost:8080")},
		{"shutdown-grace", "SATU_SHUTDOWN_GRACE", "how long shutdown waits for requests to drain and every part to stop (past it, satu exits non-zero)", durationVar(&c.ShutdownGrace, 10*time.Second)},
		{"symbols", "SATU_SYMBOLS", "JSON file of the markets (empty: the built-in BTCKZT, ETHKZT, USDTKZT)", stringVar(&c.Symbols, "")},
		{"settle", "SATU_SETTLE", "serve: run the shard's settlement writer in this process (false when `satu settle` runs it)", boolVar(&c.Settle, true)},
		{"engine", "SATU_ENGINE", "serve: run the shard's engine in this process (false when `satu engine` runs it)", boolVar(&c.Engine, true)},
		{"reconcile-interval", "SATU_RECONCILE_INTERVAL", "serve, settle: how often to reconcile engine and ledger (0: never)", durationVar(&c.Reconcile, time.Minute)},
		{"metrics-addr", "SATU_METRICS_ADDR", "settle, engine: listen address of /metrics (empty: none)", stringVar(&c.MetricsAddr, "")},
		{"snapshot-every", "SATU_SNAPSHOT_EVERY", "serve, engine: snapshot the engine to Redis after this many commands", intVar(&c.SnapshotEvery, 100_000)},
		{"wait-replicas", "SATU_WAIT_REPLICAS", "serve, engine, settle: answer a command, and settle it, only once this many Redis replicas hold its events (0: do not wait)", countVar(&c.WaitReplicas, 0)},
		{"lease-ttl", "SATU_LEASE_TTL", "serve, engine: the engine's lease on its shard; a standby takes over this long after the leader stops renewing", durationVar(&c.LeaseTTL, 5*time.Second)},
		{"keys-dir", "SATU_KEYS_DIR", "serve: directory of the bootstrap operator and regulator API keys (created at first start, mode 0600; empty: keys of the process's own, revoked when it stops)", stringVar(&c.KeysDir, "")},
		{"compliance-sweep", "SATU_COMPLIANCE_SWEEP", "serve: how often overdue obligations become violations and licence changes reach the engine (0: only on demand)", durationVar(&c.ComplianceSweep, time.Minute)},
		{"log-key", "SATU_LOG_KEY", "the transparency log's signing key (a note private key; prefer -log-key-file)", stringVar(&c.LogKey, "")},
		{"log-key-file", "SATU_LOG_KEY_FILE", "file holding the transparency log's signing key (satu logkey makes one; empty: no checkpoints are signed)", stringVar(&c.LogKeyFile, "")},
		{"checkpoint-interval", "SATU_CHECKPOINT_INTERVAL", "serve: how often to sign a checkpoint of the transparency log when it has grown (0: only on demand)", durationVar(&c.CheckpointEvery, time.Minute)},
		{"ws-max-conns", "SATU_WS_MAX_CONNS", "serve: most websocket connections one gateway holds (0: no limit)", countVar(&c.WSMaxConns, 20000)},
		{"ws-ip-requests", "SATU_WS_IP_REQUESTS", "serve: websocket requests per second one IP address may send (0: no limit)", countVar(&c.WSIPRequests, 1000)},
		{"ws-key-orders", "SATU_WS_KEY_ORDERS", "serve: order requests per second one API key may send over websockets, a batch counting each of its orders (0: no limit)", countVar(&c.WSKeyOrders, 500)},
		{"pprof-addr", "SATU_PPROF_ADDR", "serve: listen address of Go's /debug/pprof profiles (empty: none; keep it on loopback)", stringVar(&c.PprofAddr, "")},
		{"snapshot-interval", "SATU_SNAPSHOT_INTERVAL", "serve, engine: and at least this often while commands arrive (0: by count only)", durationVar(&c.SnapshotInterval, 5*time.Minute)},
		{"snapshot-spacing", "SATU_SNAPSHOT_SPACING", "serve, engine: start a snapshot only once this many times the last one's cost has passed since it started, so snapshots take at most about 1/N of the time however large the state (0: no spacing)", countVar(&c.SnapshotSpacing, 20)},
		{"snapshot-max-replay", "SATU_SNAPSHOT_MAX_REPLAY", "serve, engine: take a snapshot due by the counts regardless of -snapshot-spacing once this many commands have passed since the last, which bounds the replay after a restart (0: no bound)", countVar(&c.SnapshotReplay, 500_000)},
		{"snapshot-standby", "SATU_SNAPSHOT_STANDBY", "serve, engine: the standby takes the snapshots, so the leader never pauses for one (it takes one only when none was stored for three times the counts); set it on every engine of a shard that runs a standby", boolVar(&c.SnapshotStandby, false)},
	}
}

// parseConfig reads defaults, then SATU_* variables, then flags; usage and
// flag errors go to standard error. A command's own flags (not
// configuration) are added by extra.
func parseConfig(name string, args []string, getenv func(string) string, extra ...func(*flag.FlagSet)) (Config, error) {
	return parseConfigTo(os.Stderr, name, args, getenv, extra...)
}

// parseConfigTo is parseConfig printing usage and flag errors to out.
//
// Every flag is registered before any variable is applied: the flag package
// shows as a flag's "(default …)" its value at registration, and the
// environment holds secrets — SATU_LOG_KEY, a password in SATU_PG_URL —
// that -h or a mistyped flag would otherwise print. So the usage shows the
// built-in defaults, never the environment.
func parseConfigTo(out io.Writer, name string, args []string, getenv func(string) string, extra ...func(*flag.FlagSet)) (Config, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	for _, add := range extra {
		add(fs)
	}
	opts := c.options()
	for _, o := range opts {
		fs.Var(o.value, o.name, o.usage+" (env "+o.env+")")
	}
	for _, o := range opts {
		if v := getenv(o.env); v != "" {
			if err := o.value.Set(v); err != nil {
				return c, fmt.Errorf("%s=%q: %w", o.env, v, err)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return c, nil
}

type stringValue struct{ p *string }

func stringVar(p *string, def string) flag.Value { *p = def; return stringValue{p} }
func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v stringValue) Set(s string) error { *v.p = s; return nil }

type intValue struct{ p *int }

func intVar(p *int, def int) flag.Value { *p = def; return intValue{p} }
func (v intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}
func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return fmt.Errorf("want a positive integer")
	}
	*v.p = n
	return nil
}

type countValue struct{ p *int }

func countVar(p *int, def int) flag.Value { *p = def; return countValue{p} }
func (v countValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}
func (v countValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("want a whole number, 0 or more")
	}
	*v.p = n
	return nil
}

type boolValue struct{ p *bool }

func boolVar(p *bool, def bool) flag.Value { *p = def; return boolValue{p} }
func (v boolValue) String() string         { return strconv.FormatBool(v.p != nil && *v.p) }
func (v boolValue) IsBoolFlag() bool       { return true }
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	*v.p = b
	return nil
}

type durationValue struct{ p *time.Duration }

func durationVar(p *time.Duration, def time.Duration) flag.Value { *p = def; return durationValue{p} }
func (v durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return v.p.String()
}
func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("want a duration such as 10s")
	}
	*v.p = d
	return nil
}
