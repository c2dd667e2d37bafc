package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// TestCannotRunExitsTwo: reconcile (0 clean, 1 differences), witness (1 an
// alarm) and verify (1 invalid) keep exit code 1 for their findings; a
// command that could not run at all — flags, configuration, a file it
// needs, a connection — exits 2 with the reason, and changes nothing.
func TestCannotRunExitsTwo(t *testing.T) {
	dir := t.TempDir()
	_, vkey, err := note.GenerateKey(rand.Reader, logOrigin)
	must(t, err)
	pub := filepath.Join(dir, "log.pub")
	must(t, os.WriteFile(pub, []byte(vkey+"\n"), 0o644))
	notKey := filepath.Join(dir, "not.pub")
	must(t, os.WriteFile(notKey, []byte("hello\n"), 0o644))
	aFile := filepath.Join(dir, "a-file")
	must(t, os.WriteFile(aFile, nil, 0o644))
	badState := filepath.Join(dir, "bad-state")
	must(t, os.MkdirAll(badState, 0o700))
	must(t, os.WriteFile(filepath.Join(badState, "witness.json"), []byte(`{"checkpoint":`), 0o600))
	// Nothing listens on port 1 of loopback.
	const noPG = "postgres://postgres@127.0.0.1:1/satu?sslmode=disable&connect_timeout=5"

	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string // in stderr
	}{
		{"ReconcileUnknownFlag", []string{"reconcile", "-no-such-flag"}, nil, "flag provided but not defined: -no-such-flag"},
		{"ReconcileBadVariable", []string{"reconcile"}, map[string]string{"SATU_PG_MAX_CONNS": "many"}, `SATU_PG_MAX_CONNS="many": want a positive integer`},
		{"ReconcileStrayArgument", []string{"reconcile", "now"}, nil, "unexpected arguments: now"},
		{"ReconcileNoDatabase", []string{"reconcile", "-pg-url", noPG}, nil, "satu reconcile: postgres"},
		{"WitnessUnknownFlag", []string{"witness", "-no-such-flag"}, nil, "flag provided but not defined: -no-such-flag"},
		{"WitnessNoKeyFlag", []string{"witness", "-state", filepath.Join(dir, "s1")}, nil, "-key: the exchange's log verifier key file (log.pub) is required"},
		{"WitnessMissingKey", []string{"witness", "-key", filepath.Join(dir, "missing.pub"), "-state", filepath.Join(dir, "s2")}, nil, "public key: open "},
		{"WitnessNotAKey", []string{"witness", "-key", notKey, "-state", filepath.Join(dir, "s3")}, nil, "public key " + notKey + ": malformed verifier id"},
		{"WitnessUnwritableState", []string{"witness", "-key", pub, "-state", filepath.Join(aFile, "state")}, nil, "state: mkdir "},
		{"WitnessCorruptState", []string{"witness", "-key", pub, "-state", badState, "-once"}, nil, "state " + filepath.Join(badState, "witness.json") + ": unexpected end of JSON input"},
		{"WitnessZeroInterval", []string{"witness", "-key", pub, "-state", filepath.Join(dir, "s4"), "-interval", "0"}, nil, "-interval 0s: want a positive duration such as 1m"},
		{"WitnessNegativeInterval", []string{"witness", "-key", pub, "-state", filepath.Join(dir, "s5"), "-interval", "-5s"}, nil, "-interval -5s: want a positive duration such as 1m"},
		{"WitnessStrayArgument", []string{"witness", "-key", pub, "-state", filepath.Join(dir, "s6"), "now"}, nil, "unexpected arguments: now"},
		{"VerifyUnknownFlag", []string{"verify", "cert.json", "-no-such-flag"}, nil, "flag provided but not defined: -no-such-flag"},
		{"VerifyMissingKey", []string{"verify", aFile, "-key", filepath.Join(dir, "missing.pub")}, nil, "public key: open "},
		{"VerifyMissingCertificate", []string{"verify", filepath.Join(dir, "missing.json"), "-key", pub}, nil, "certificate: open "},
		{"CertificateUnknownFlag", []string{"certificate", "-no-such-flag"}, nil, "flag provided but not defined: -no-such-flag"},
		{"CertificateNoDatabase", []string{"certificate", "-obligation", "1", "-pg-url", noPG}, nil, "satu certificate: postgres"},
		{"CertificateNoObligation", []string{"certificate", "-pg-url", noPG}, nil, "-obligation: the obligation's ID, a positive number, is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Bounded: a witness that took -interval 0 would poll forever.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var out, errOut strings.Builder
			code := run(ctx, tc.args, &out, &errOut, func(k string) string { return tc.env[k] })
			if code != 2 || !strings.Contains(errOut.String(), tc.want) || out.Len() != 0 {
				t.Fatalf("satu %q: exit %d\nstdout %q\nstderr %q\nwant exit 2, nothing on stdout and %q", tc.args, code, out.String(), errOut.String(), tc.want)
			}
		})
	}
	// A witness that could not run created no state directory.
	for _, s := range []string{"s1", "s2", "s3", "s4", "s5", "s6"} {
		if _, err := os.Stat(filepath.Join(dir, s)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("state directory %s: %v; want none", s, err)
		}
	}
	// -h is not an error.
	for _, cmd := range []string{"reconcile", "witness", "verify", "certificate"} {
		var out, errOut strings.Builder
		if code := run(t.Context(), []string{cmd, "-h"}, &out, &errOut, func(string) string { return "" }); code != 0 {
			t.Errorf("satu %s -h: exit %d", cmd, code)
		}
	}
}

// TestSecondSignalEndsShutdown: the first SIGINT starts the graceful
// shutdown; a second one ends the process even while that shutdown hangs.
// The test runs itself as the process (SATU_TEST_SIGNAL_CHILD).
func TestSecondSignalEndsShutdown(t *testing.T) {
	if os.Getenv("SATU_TEST_SIGNAL_CHILD") == "1" {
		ctx, stop := signalContext()
		defer stop()
		fmt.Println("ready")
		<-ctx.Done()
		fmt.Println("shutting down")
		time.Sleep(time.Minute) // a shutdown that hangs
		os.Exit(0)
	}
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondSignalEndsShutdown$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SATU_TEST_SIGNAL_CHILD=1")
	cmd.Stdout = w
	must(t, cmd.Start())
	w.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()
	lines := bufio.NewScanner(r)
	expect := func(line string) {
		t.Helper()
		for lines.Scan() {
			if lines.Text() == line {
				return
			}
		}
		t.Fatalf("the process did not print %q: %v", line, lines.Err())
	}
	expect("ready")
	must(t, cmd.Process.Signal(os.Interrupt))
	expect("shutting down")
	// The default action comes back just after the first signal is
	// handled: signal until the process ends.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-done:
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the process ended with %v; want killed by SIGINT", err)
			}
			if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
				t.Fatalf("the process ended with %v; want killed by SIGINT", err)
			}
			return
		case <-tick.C:
			_ = cmd.Process.Signal(os.Interrupt)
		case <-deadline:
			t.Fatal("a second SIGINT did not end a hanging shutdown in 10 s")
		}
	}
}
