package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/satu-exchange/satu/internal/testenv"
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
	readme, err := os.ReadFile("../../README.md")
	must(t, err)
	text := string(readme)
	start := strings.Index(text, "             miner   period")
	if start < 0 {
		t.Fatal("README shows no demo table")
	}
	table := text[start : start+strings.Index(text[start:], "```")]
	env := map[string]string{"SATU_PG_URL": testenv.PGURL(t), "SATU_REDIS_ADDR": testenv.RedisAddr(t)}
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"demo"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("satu demo exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), table) {
		t.Fatalf("satu demo printed:\n%s\nREADME shows:\n%s", out.String(), table)
	}
}
