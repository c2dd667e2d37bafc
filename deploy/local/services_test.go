// Package local_test checks the private services script (services.sh):
// its Redis settings reach the generated redis.conf, and bad ones are
// refused before anything starts.
package local_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// services runs services.sh with a private SATU_HOME and ports of its own.
func services(t *testing.T, home string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"services.sh"}, args...)...)
	cmd.Env = append(os.Environ(), "SATU_HOME="+home, "SATU_PG_PORT=25498", "SATU_REDIS_PORT=26398")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestServicesRefuseBadRedisSettings(t *testing.T) {
	for _, tc := range []struct{ env, msg string }{
		{"SATU_REDIS_APPENDFSYNC=sometimes", `SATU_REDIS_APPENDFSYNC must be always, everysec or no, not "sometimes"`},
		{"SATU_REDIS_AOF_REWRITE_PERCENTAGE=-1", `SATU_REDIS_AOF_REWRITE_PERCENTAGE must be a whole number`},
		{"SATU_REDIS_AOF_REWRITE_PERCENTAGE=4x", `not "4x"`},
	} {
		home := filepath.Join(t.TempDir(), "home")
		out, err := services(t, home, []string{tc.env}, "start")
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("%s: exit %v, want 1; output:\n%s", tc.env, err, out)
		}
		if !strings.Contains(out, tc.msg) {
			t.Errorf("%s: output %q lacks %q", tc.env, out, tc.msg)
		}
		if _, err := os.Stat(home); !os.IsNotExist(err) {
			t.Errorf("%s: %s was created (%v): a refused start must change nothing", tc.env, home, err)
		}
	}
}

func TestServicesWriteRedisSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and Redis")
	}
	home := filepath.Join(t.TempDir(), "home")
	t.Cleanup(func() {
		if out, err := services(t, home, nil, "stop"); err != nil {
			t.Errorf("stop: %v\n%s", err, out)
		}
	})
	if out, err := services(t, home, []string{"SATU_REDIS_APPENDFSYNC=always", "SATU_REDIS_AOF_REWRITE_PERCENTAGE=250"}, "start"); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	conf, err := os.ReadFile(filepath.Join(home, "redis", "redis.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"appendonly yes\n", "appendfsync always\n", "auto-aof-rewrite-percentage 250\n", "save \"\"\n"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("redis.conf lacks %q:\n%s", want, conf)
		}
	}
	for setting, want := range map[string]string{"appendfsync": "always", "auto-aof-rewrite-percentage": "250"} {
		out, err := exec.Command("redis-cli", "-p", "26398", "config", "get", setting).Output()
		if err != nil {
			t.Fatalf("redis-cli config get %s: %v", setting, err)
		}
		if got := strings.Fields(string(out)); len(got) != 2 || got[1] != want {
			t.Errorf("running redis-server: %s = %q, want %q", setting, got, want)
		}
	}
}
