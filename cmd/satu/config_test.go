package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/satu-exchange/satu/compliance"
	"github.com/satu-exchange/satu/internal/testenv"
	"github.com/satu-exchange/satu/matching"
)

// TestConfigDocumented keeps docs/configuration.md in step with the options.
func TestConfigDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	must(t, err)
	var c Config
	for _, o := range c.options() {
		row := fmt.Sprintf("| `-%s` | `%s` | `%s` |", o.name, o.env, o.value.String())
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/configuration.md lacks %q", row)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	env := map[string]string{"SATU_ADDR": "127.0.0.1:9000", "SATU_SHARD": "s7", "SATU_SHUTDOWN_GRACE": "3s"}
	c, err := parseConfig("test", []string{"-shard", "s9"}, func(k string) string { return env[k] })
	must(t, err)
	if c.Addr != "127.0.0.1:9000" || c.Shard != "s9" || c.ShutdownGrace != 3*time.Second || c.RuleSet != "kz-law-193" {
		t.Fatalf("config = %+v", c)
	}
	if _, err := parseConfig("test", nil, func(k string) string { return map[string]string{"SATU_PG_MAX_CONNS": "many"}[k] }); err == nil {
		t.Fatal("a bad SATU_PG_MAX_CONNS was accepted")
	}
	if _, err := parseConfig("test", []string{"extra"}, func(string) string { return "" }); err == nil {
		t.Fatal("a stray argument was accepted")
	}
}

// TestDemoCommandPrintsReadmeTable runs `satu demo` and compares its table
// with the one the README shows.
func TestDemoCommandPrintsReadmeTable(t *testing.T) {
	env := map[string]string{"SATU_PG_URL": testenv.PGURL(t), "SATU_REDIS_ADDR": testenv.RedisAddr(t)}
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"demo"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("satu demo exited %d: %s", code, errOut.String())
	}
	wantReadmeTable(t, out.String())
}

// wantReadmeTable fails t unless printed shows the demo table the README
// shows. The demo is relative to the month it runs in; the README's table
// was run in the month it names.
func wantReadmeTable(t *testing.T, printed string) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	must(t, err)
	text := string(readme)
	start := strings.Index(text, "             miner   period")
	if start < 0 {
		t.Fatal("README shows no demo table")
	}
	table := text[start : start+strings.Index(text[start:], "```")]
	m := regexp.MustCompile(`run in (\d{4}-\d{2})`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("README does not say which month its demo table was run in")
	}
	shown, err := time.Parse("2006-01", m[1])
	must(t, err)
	today := compliance.DayOf(time.Now())
	if got, want := monthsAgo(printed, today), monthsAgo(table, shown); !strings.Contains(got, want) {
		t.Fatalf("printed:\n%s\nREADME shows:\n%s", got, want)
	}
}

// monthsAgo writes every YYYY-MM in s as "M-k", k months before ref's month.
func monthsAgo(s string, ref time.Time) string {
	return regexp.MustCompile(`\b\d{4}-\d{2}\b`).ReplaceAllStringFunc(s, func(v string) string {
		t, err := time.Parse("2006-01", v)
		if err != nil {
			return v
		}
		return fmt.Sprintf("M-%d", (ref.Year()-t.Year())*12+int(ref.Month()-t.Month()))
	})
}

// TestSymbolsFile: the example session-model file loads and is valid; a
// file with an unknown field, a bad symbol or an asset the ledger lacks is
// refused with the reason.
func TestSymbolsFile(t *testing.T) {
	syms, err := loadSymbols("../../deploy/symbols/session-example.json")
	must(t, err)
	if len(syms) != 2 || len(syms[0].Schedule) != 7 || syms[0].Schedule[2].Phase != matching.PhaseContinuous || syms[1].PriceBandBps != 500 {
		t.Fatalf("symbols = %+v", syms)
	}
	ledger := map[string]int{"BTC": 8, "ETH": 9, "USDT": 6, "KZT": 2}
	scale := func(a string) (int, error) {
		if s, ok := ledger[a]; ok {
			return s, nil
		}
		return 0, fmt.Errorf("unknown asset %q", a)
	}
	must(t, checkSymbolAssets(syms, scale))
	must(t, checkSymbolAssets(matching.DefaultSymbols(), scale))
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown-field": `[{"name":"BTCKZT","colour":"red"}]`,
		"invalid":       `[{"name":"BTCKZT","base":"BTC","quote":"KZT","baseScale":8,"quoteScale":2,"tickSize":0,"lotSize":1,"minQty":1,"maxQty":10}]`,
		"empty":         `[]`,
	} {
		p := filepath.Join(dir, name+".json")
		must(t, os.WriteFile(p, []byte(body), 0o600))
		if _, err := loadSymbols(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	doge := []matching.Symbol{{Name: "DOGEKZT", Base: "DOGE", Quote: "KZT", BaseScale: 8, QuoteScale: 2}}
	if err := checkSymbolAssets(doge, scale); err == nil || !strings.Contains(err.Error(), "DOGE is not in the ledger") {
		t.Errorf("unknown asset: %v", err)
	}
	wrong := []matching.Symbol{{Name: "BTCKZT", Base: "BTC", Quote: "KZT", BaseScale: 6, QuoteScale: 2}}
	if err := checkSymbolAssets(wrong, scale); err == nil || !strings.Contains(err.Error(), "scale 6 in the symbol but 8") {
		t.Errorf("wrong scale: %v", err)
	}
}

// TestUnknownRuleSetRefusedAtStart: a rule set Satu does not ship stops the
// process before it touches anything, naming the ones it knows.
func TestUnknownRuleSetRefusedAtStart(t *testing.T) {
	env := map[string]string{"SATU_PG_URL": testenv.PGURL(t), "SATU_REDIS_ADDR": testenv.RedisAddr(t), "SATU_RULESET": "kz-law-999"}
	var out, errOut strings.Builder
	code := run(t.Context(), []string{"settle"}, &out, &errOut, func(k string) string { return env[k] })
	if code == 0 || !strings.Contains(errOut.String(), `unknown rule set "kz-law-999" (known: kz-law-193, kz-paper-2024)`) {
		t.Fatalf("satu settle with an unknown rule set: exit %d, %s", code, errOut.String())
	}
}

// TestConfigUsageShowsNoEnvironment: -h and a flag error print the usage
// with the built-in defaults, never the environment's values — which hold
// the log's signing key and the database password — while the variables
// still apply.
func TestConfigUsageShowsNoEnvironment(t *testing.T) {
	skey, _, err := note.GenerateKey(rand.Reader, logOrigin)
	must(t, err)
	const password = "pg-pa55word-7f3a"
	env := map[string]string{"SATU_LOG_KEY": skey, "SATU_PG_URL": "postgres://satu:" + password + "@db.internal:5432/satu",
		"SATU_ADDR": "10.1.2.3:9999", "SATU_SHUTDOWN_GRACE": "3s", "SATU_KEYS_DIR": "/srv/satu/keys"}
	getenv := func(k string) string { return env[k] }
	secrets := []string{skey, password, "10.1.2.3:9999", "/srv/satu/keys", "(default 3s)"}
	defaults := []string{"(default 127.0.0.1:8080)", "(default postgres://postgres@127.0.0.1:25432/satu?sslmode=disable)", "(default 10s)"}
	wantUsage := func(t *testing.T, usage string) {
		t.Helper()
		if !strings.Contains(usage, "-log-key") || !strings.Contains(usage, "-pg-url") {
			t.Fatalf("no usage printed:\n%s", usage)
		}
		for _, s := range secrets {
			if strings.Contains(usage, s) {
				t.Errorf("the usage shows the environment's %q:\n%s", s, usage)
			}
		}
		for _, d := range defaults {
			if !strings.Contains(usage, d) {
				t.Errorf("the usage lacks the built-in %q:\n%s", d, usage)
			}
		}
	}
	for name, args := range map[string][]string{"Help": {"-h"}, "UnknownFlag": {"-no-such-flag"}, "BadFlagValue": {"-pg-max-conns", "many"}} {
		t.Run(name, func(t *testing.T) {
			var out strings.Builder
			if _, err := parseConfigTo(&out, "satu serve", args, getenv); err == nil {
				t.Fatalf("parse %q: no error", args)
			}
			wantUsage(t, out.String())
		})
	}
	t.Run("EnvironmentApplies", func(t *testing.T) {
		c, err := parseConfigTo(io.Discard, "satu serve", nil, getenv)
		must(t, err)
		if c.LogKey != skey || c.PGURL != env["SATU_PG_URL"] || c.Addr != "10.1.2.3:9999" || c.ShutdownGrace != 3*time.Second {
			t.Fatalf("config = %+v", c)
		}
	})
	// The commands print their usage where run is told to.
	for _, cmd := range []string{"reconcile", "certificate", "demo"} {
		t.Run("Run/"+cmd, func(t *testing.T) {
			var out, errOut strings.Builder
			if code := run(t.Context(), []string{cmd, "-no-such-flag"}, &out, &errOut, getenv); code != 2 {
				t.Errorf("satu %s -no-such-flag: exit %d; want 2", cmd, code)
			}
			wantUsage(t, errOut.String())
			if out.Len() != 0 {
				t.Errorf("stdout: %q", out.String())
			}
		})
	}
}
