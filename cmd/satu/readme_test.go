package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// tourStep is one command of the README's quick tour and what it prints.
type tourStep struct {
	command, output string
}

// readmeTour extracts the quick tour's (sh, json) block pairs.
func readmeTour(t *testing.T) []tourStep {
	t.Helper()
	text := docSection(t, "README.md", "## Quick tour")
	var steps []tourStep
	for {
		i := strings.Index(text, "```sh\n")
		if i < 0 {
			break
		}
		text = text[i+len("```sh\n"):]
		j := strings.Index(text, "```")
		cmd := strings.TrimSpace(text[:j])
		text = text[j+3:]
		k := strings.Index(text, "```json\n")
		if k < 0 || strings.TrimSpace(text[:k]) != "" {
			t.Fatalf("command %q is not followed by its output", cmd)
		}
		text = text[k+len("```json\n"):]
		l := strings.Index(text, "```")
		steps = append(steps, tourStep{command: cmd, output: text[:l]})
		text = text[l+3:]
	}
	return steps
}

// shellWords splits a command line the way sh would for the README's
// commands: words separated by spaces, '...' quoting.
func shellWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// runStep runs one README command against the server at addr, as the shell
// would: curl through net/http, "go run ./cmd/satu" through run().
func runStep(t *testing.T, app *App, command string) string {
	t.Helper()
	addr := app.Addr()
	command = strings.ReplaceAll(command, "127.0.0.1:8080", addr)
	command = strings.ReplaceAll(command, ".satu/keys/", app.Config.KeysDir+"/")
	words, err := shellWords(command)
	must(t, err)
	switch {
	case len(words) > 0 && words[0] == "curl":
		method, url, body := "GET", "", ""
		var headers []string
		for i := 1; i < len(words); i++ {
			switch words[i] {
			case "-H":
				i++
				h := words[i]
				if file, ok := strings.CutPrefix(h, "@"); ok {
					b, err := os.ReadFile(file)
					must(t, err)
					h = strings.TrimSpace(string(b))
				}
				headers = append(headers, h)
			case "-s":
			case "-X":
				i++
				method = words[i]
			case "-d":
				i++
				body = words[i]
			default:
				url = words[i]
			}
		}
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		must(t, err)
		for _, h := range headers {
			name, value, _ := strings.Cut(h, ":")
			req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		must(t, err)
		return string(out)
	case len(words) > 3 && strings.Join(words[:3], " ") == "go run ./cmd/satu":
		var stdout, stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args := append([]string{words[3], "-addr", addr}, words[4:]...)
		if code := run(ctx, args, &stdout, &stderr, func(string) string { return "" }); code != 0 {
			t.Fatalf("%s: exit %d: %s", command, code, stderr.String())
		}
		return stdout.String()
	}
	t.Fatalf("the README test cannot run %q", command)
	return ""
}

// TestReadmeQuickTour runs every command of the README's quick tour against
// a real server seeded with the demo market and compares its output.
func TestReadmeQuickTour(t *testing.T) {
	app, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, c.Seed(ctx, time.Now().UTC()))
	steps := readmeTour(t)
	if len(steps) < 8 {
		t.Fatalf("found %d tour steps; the README has more", len(steps))
	}
	for i, s := range steps {
		got := runStep(t, app, s.command)
		var want, have any
		if err := json.Unmarshal([]byte(s.output), &want); err != nil {
			t.Fatalf("step %d: README output is not JSON: %v", i+1, err)
		}
		if err := json.Unmarshal([]byte(got), &have); err != nil || !matchJSON(want, have) {
			t.Fatalf("step %d: %s\nREADME says:\n%s\nSatu printed:\n%s", i+1, s.command, s.output, got)
		}
	}
}

// matchJSON compares decoded JSON values; a README string "…" stands for any
// value (an ID or an instant that differs from run to run).
func matchJSON(want, have any) bool {
	switch w := want.(type) {
	case string:
		return w == "…" || w == have
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for k, v := range w {
			if hv, ok := h[k]; !ok || !matchJSON(v, hv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !matchJSON(w[i], h[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, have)
}

// TestReadmeLoad runs the README's `satu load` command against a real
// server with the demo market and checks that it prints what the README
// shows, line by line: the same labels, numbers aside.
func TestReadmeLoad(t *testing.T) {
	app, c := startApp(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, c.Seed(ctx, time.Now().UTC()))
	text := docSection(t, "README.md", "## Measuring it")
	i := strings.Index(text, "```sh\n")
	j := strings.Index(text, "```text\n")
	if i < 0 || j < i {
		t.Fatal("the Measuring it section has no command and output")
	}
	command := strings.TrimSpace(text[i+len("```sh\n") : i+strings.Index(text[i+3:], "```")+3])
	want := text[j+len("```text\n"):]
	want = want[:strings.Index(want, "```")]
	got := runStep(t, app, command)
	t.Logf("%s printed:\n%s", command, got)
	// The same lines, numbers and IDs aside; error lines vary with how
	// the run went, but the only error may be a cancel of an order that
	// traded first.
	wantLines, gotLines := labels(want), labels(got)
	for l := range wantLines {
		if !gotLines[l] && !strings.HasPrefix(l, "error:") {
			t.Errorf("satu load printed no line like %q", l)
		}
	}
	for l := range gotLines {
		if !wantLines[l] && !strings.HasPrefix(l, "error:") {
			t.Errorf("satu load printed %q, which the README does not show", l)
		}
		if strings.HasPrefix(l, "error:") && l != "error: UNKNOWN_ORDER #" {
			t.Errorf("satu load met an error: %q", l)
		}
	}
}

// labels reduces output lines to their words, every word with a digit in
// it (a number, an ID, a duration) replaced by #.
func labels(s string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		words := strings.Fields(line)
		for i, w := range words {
			// Numbers, and the run's ID (base 36: all letters one time in
			// fourteen), are not labels.
			if strings.ContainsAny(w, "0123456789") || i > 0 && words[i-1] == "(run" {
				words[i] = "#"
			}
		}
		out[strings.Join(words, " ")] = true
	}
	return out
}
