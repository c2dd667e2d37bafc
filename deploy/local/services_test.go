// Package local_test checks the private services script (services.sh):
// its Redis settings reach the generated redis.conf, and bad ones are
// refused before anything starts; purge and a removed SATU_HOME leave no
// data behind (and none comes back); package installs wait for another
// apt and never leave their policy-rc.d behind.
package local_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const pgPort, redisPort = "25498", "26398"

// services runs services.sh with SATU_HOME home and ports of its own.
func services(t *testing.T, home string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"services.sh"}, args...)...)
	cmd.Env = append(os.Environ(), "SATU_HOME="+home, "SATU_PG_PORT="+pgPort, "SATU_REDIS_PORT="+redisPort)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sharedHome returns the SATU_HOME of the tests that start the services.
// It is the same path in every run (one per user), so that what a run
// interrupted before its cleanup (Ctrl-C, -timeout) left running on the
// fixed ports is found as this home's own, and purged, by the next run;
// a home of its own would find them in its way ("port taken"). The
// directory stays locked until the test ends, so two runs at once take
// turns instead of purging each other's services. It is mode 0700: as root
// the postgres user cannot reach it, and the data dir goes to /var/tmp.
func sharedHome(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("satu-services-test-%d", os.Getuid()))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		t.Fatal(err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || !fi.IsDir() || int(st.Uid) != os.Getuid() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("%s is not a directory of mode 0700 owned by uid %d: remove it", dir, os.Getuid())
	}
	lock, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() }) // runs last: unlocks
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	discard(t, home) // an interrupted earlier run's
	t.Cleanup(func() { discard(t, home) })
	return home
}

// discard stops home's services, deletes their data (purge), then home.
func discard(t *testing.T, home string) {
	t.Helper()
	if out, err := services(t, home, nil, "purge"); err != nil {
		t.Errorf("purge: %v\n%s", err, out)
	}
	if err := os.RemoveAll(home); err != nil {
		t.Error(err)
	}
}

// relocatedBase is where services.sh puts home's PostgreSQL as root when
// the postgres user cannot reach home.
func relocatedBase(home string) string {
	sum := sha256.Sum256([]byte(home))
	return "/var/tmp/satu-" + hex.EncodeToString(sum[:])[:12]
}

func listening(port string) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
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
	home := sharedHome(t)
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
		out, err := exec.Command("redis-cli", "-p", redisPort, "config", "get", setting).Output()
		if err != nil {
			t.Fatalf("redis-cli config get %s: %v", setting, err)
		}
		if got := strings.Fields(string(out)); len(got) != 2 || got[1] != want {
			t.Errorf("running redis-server: %s = %q, want %q", setting, got, want)
		}
	}
}

// TestServicesDiscardedHome: a home removed by hand (`make stop && rm -rf
// .satu`, or without the stop) starts afresh rather than with the
// relocated PostgreSQL data dir and the Redis of before; and purge stops
// what a home runs (as an interrupted run leaves it) and deletes its data
// wherever it lies, leaving nothing under /var/tmp.
func TestServicesDiscardedHome(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and Redis")
	}
	home := sharedHome(t)
	root := os.Getuid() == 0
	base := relocatedBase(home)
	start := func() string {
		t.Helper()
		out, err := services(t, home, nil, "start")
		if err != nil {
			t.Fatalf("start: %v\n%s", err, out)
		}
		for _, port := range []string{pgPort, redisPort} {
			if !listening(port) {
				t.Fatalf("start: nothing listens on %s:\n%s", port, out)
			}
		}
		if root {
			loc, err := os.ReadFile(filepath.Join(home, "pgdata-location"))
			if err != nil || string(loc) != base+"/pg\n" {
				t.Fatalf("as root with %s unreachable to postgres: pgdata-location = %q (%v), want %s/pg", home, loc, err, base)
			}
		}
		return out
	}
	redis := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("redis-cli", append([]string{"-p", redisPort}, args...)...).Output()
		if err != nil {
			t.Fatalf("redis-cli %s: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	mark := func() {
		t.Helper()
		if root {
			if err := os.WriteFile(filepath.Join(base, "marker"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		redis("set", "satu-test-marker", "1")
	}
	fresh := func(out string) {
		t.Helper()
		if root {
			if !strings.Contains(out, "removing "+base) {
				t.Errorf("start after rm -rf %s does not say it removes %s:\n%s", home, base, out)
			}
			if exists(t, filepath.Join(base, "marker")) {
				t.Errorf("start after rm -rf %s reused %s", home, base)
			}
			if !exists(t, filepath.Join(base, "pg", "PG_VERSION")) {
				t.Errorf("no new data dir in %s/pg", base)
			}
		}
		if got := redis("get", "satu-test-marker"); got != "" {
			t.Errorf("start after rm -rf %s: Redis still holds the earlier data (marker = %q)", home, got)
		}
	}

	start()
	mark()
	if out, err := services(t, home, nil, "stop"); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if err := os.RemoveAll(home); err != nil {
		t.Fatal(err)
	}
	fresh(start())
	mark()

	// Without the stop, both still run from the removed home.
	if err := os.RemoveAll(home); err != nil {
		t.Fatal(err)
	}
	out := start()
	fresh(out)
	if root && !strings.Contains(out, "stopped the server running from "+base+"/pg") {
		t.Errorf("start after rm -rf %s does not say it stopped the earlier postgres:\n%s", home, out)
	}
	if !strings.Contains(out, "stopping the instance an earlier one left running") {
		t.Errorf("start after rm -rf %s does not say it stopped the earlier redis:\n%s", home, out)
	}

	// Both running, as a run interrupted before its cleanup leaves them:
	// purge stops them and leaves no data, here or under /var/tmp.
	if out, err := services(t, home, nil, "purge"); err != nil {
		t.Fatalf("purge: %v\n%s", err, out)
	}
	for _, port := range []string{pgPort, redisPort} {
		if listening(port) {
			t.Errorf("purge: %s still listens", port)
		}
	}
	for _, p := range []string{base, filepath.Join(home, "pg"), filepath.Join(home, "redis"), filepath.Join(home, "pgdata-location")} {
		if exists(t, p) {
			t.Errorf("purge left %s", p)
		}
	}
}

// ensure runs services.sh's cmd_ensure as root would when PostgreSQL is
// missing, with a fake apt-get (stub, see below) and policy-rc.d under dir;
// setup is bash run before it. It returns the command, started.
func ensure(t *testing.T, dir, setup string, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	script := `source ./services.sh
is_root() { true; }
pg_bindir() { [[ -e $STUB/installed ]] && echo "$STUB" || return 1; }
redis_server_bin() { echo /bin/true; }
POLICY_RC=$STUB/policy-rc.d
APT_RETRY_INTERVAL=0.1
` + setup + `
cmd_ensure`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "STUB="+dir, "PATH="+dir+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// stub is the fake apt-get: it logs its arguments; `update` fails on the
// package lists' lock APT_LOCKED times, then with APT_FAIL if set;
// `install` notes policy-rc.d, hangs if APT_HANG is set, and "installs".
const stub = `#!/bin/bash
echo "$*" >>"$STUB/log"
case " $* " in
*" update "*)
	n=$(cat "$STUB/updates" 2>/dev/null || echo 0)
	echo $((n + 1)) >"$STUB/updates"
	if ((n < ${APT_LOCKED:-0})); then
		echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)" >&2
		echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
		exit 100
	fi
	if [[ -n ${APT_FAIL:-} ]]; then
		echo "E: $APT_FAIL" >&2
		exit 100
	fi
	;;
*" install "*)
	cat "$STUB/policy-rc.d" >"$STUB/policy-at-install" 2>/dev/null || true
	if [[ -n ${APT_HANG:-} ]]; then
		touch "$STUB/installing"
		sleep 60
	fi
	touch "$STUB/installed"
	;;
esac
`

func stubDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "apt-get"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestServicesEnsureWaitsForAptAndRemovesItsPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, setup string
		env         []string
		ok          bool
		updates     string // apt-get update calls
		say         string
	}{
		{"lock released", "", []string{"APT_LOCKED=2"}, true, "3", "waiting up to 300 s"},
		{"lock held", "APT_LOCK_TIMEOUT=1", []string{"APT_LOCKED=1000"}, false, "", "Could not get lock /var/lib/apt/lists/lock"},
		{"other failure", "", []string{"APT_FAIL=Failed to fetch"}, false, "1", "E: Failed to fetch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := stubDir(t)
			cmd, out := ensure(t, dir, tc.setup, tc.env...)
			err := cmd.Wait()
			if (err == nil) != tc.ok {
				t.Fatalf("ensure: %v, want success %v; output:\n%s", err, tc.ok, out)
			}
			if !strings.Contains(out.String(), tc.say) {
				t.Errorf("output lacks %q:\n%s", tc.say, out)
			}
			if exists(t, filepath.Join(dir, "policy-rc.d")) {
				t.Error("policy-rc.d left behind")
			}
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			updates, _ := os.ReadFile(filepath.Join(dir, "updates"))
			if tc.updates != "" && strings.TrimSpace(string(updates)) != tc.updates {
				t.Errorf("apt-get update ran %s times, want %s; log:\n%s", bytes.TrimSpace(updates), tc.updates, log)
			}
			if !tc.ok {
				if strings.Contains(string(log), "install") {
					t.Errorf("apt-get install ran after a failed update; log:\n%s", log)
				}
				return
			}
			if !strings.Contains(string(log), "install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 postgresql\n") {
				t.Errorf("apt-get install without the lock timeout; log:\n%s", log)
			}
			if policy, _ := os.ReadFile(filepath.Join(dir, "policy-at-install")); !strings.Contains(string(policy), "exit 101") {
				t.Errorf("policy-rc.d during the install: %q, want one that exits 101", policy)
			}
		})
	}
}

// TestServicesEnsureInterrupted: killed during apt-get install (as by
// Ctrl-C or a timeout), the script still removes its policy-rc.d.
func TestServicesEnsureInterrupted(t *testing.T) {
	dir := stubDir(t)
	cmd, out := ensure(t, dir, "", "APT_HANG=1")
	deadline := time.Now().Add(10 * time.Second)
	for !exists(t, filepath.Join(dir, "installing")) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
			t.Fatalf("apt-get install did not start; output:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !exists(t, filepath.Join(dir, "policy-rc.d")) {
		t.Fatal("no policy-rc.d during the install")
	}
	// SIGTERM to the process group, as a terminal's Ctrl-C sends SIGINT
	// (which a non-interactive shell's background jobs would ignore).
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatalf("ensure succeeded after SIGTERM; output:\n%s", out)
	}
	if exists(t, filepath.Join(dir, "policy-rc.d")) {
		t.Errorf("policy-rc.d left behind after SIGTERM; output:\n%s", out)
	}
}
