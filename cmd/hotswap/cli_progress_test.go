package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/cli"
)

// lineClock is a writer that notes when each line arrived.
type lineClock struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []string
	at    []time.Time
}

func (w *lineClock) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.Reset()
			w.buf.WriteString(line) // the start of the next line
			return len(p), nil
		}
		w.lines = append(w.lines, strings.TrimSuffix(line, "\n"))
		w.at = append(w.at, time.Now())
	}
}

func (w *lineClock) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// slowStart turns the handler of package dir into one that sleeps d before
// it starts.
func slowStart(t testing.TB, dir string, d time.Duration) {
	t.Helper()
	if err := os.Rename(filepath.Join(dir, "handler"), filepath.Join(dir, "handler.bin")); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nsleep " + strings.TrimSuffix(d.String(), "s") + "\nexec \"$(dirname \"$0\")/handler.bin\" \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "handler"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runCLI runs the hotswap CLI against s with stdout to out.
func runCLI(t testing.TB, s *server, out *lineClock, args ...string) (code int, stderr string) {
	t.Helper()
	var errb bytes.Buffer
	code = cli.Run(context.Background(), append([]string{"--server", s.api, "--token", s.token}, args...),
		cli.Env{Stdout: out, Stderr: &errb, Getenv: func(string) string { return "" }, WorkDir: t.TempDir()})
	return code, errb.String()
}

var phaseLine = regexp.MustCompile(`^ +(\d+\.\d)s  (\S+)`)

// phaseAt returns the index of the first line of phase name and its
// elapsed seconds, or -1.
func phaseAt(lines []string, name string) (int, float64) {
	for i, l := range lines {
		if m := phaseLine.FindStringSubmatch(l); m != nil && m[2] == name {
			var secs float64
			for _, c := range m[1] {
				if c != '.' {
					secs = secs*10 + float64(c-'0')
				}
			}
			return i, secs / 10
		}
	}
	return -1, 0
}

// TestCLIDeployPhases: a deploy whose handler takes seconds to start
// prints its phases as they happen, each with the operation's elapsed
// time, and then the result as before (issue 12, item 1).
func TestCLIDeployPhases(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	dir := copyPackage(t, "goforward")
	slowStart(t, dir, 4*time.Second)

	var out lineClock
	if code, stderr := runCLI(t, s, &out, "deploy", "orders", dir, "--message", "slow"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s%s", code, out.String(), stderr)
	}
	t.Logf("hotswap deploy printed:\n%s", out.String())
	out.mu.Lock()
	lines, at := out.lines, out.at
	out.mu.Unlock()
	start, startSecs := phaseAt(lines, "starting")
	done, doneSecs := phaseAt(lines, "done")
	if start < 0 || done < start {
		t.Fatalf("no starting and done phase lines:\n%s", out.String())
	}
	if v, _ := phaseAt(lines, "validating"); v < 0 || v > start {
		t.Errorf("no validating line before starting:\n%s", out.String())
	}
	if doneSecs-startSecs < 3.5 {
		t.Errorf("done at %.1fs, starting at %.1fs: want the handler's 4s between them:\n%s", doneSecs, startSecs, out.String())
	}
	// Printed as they happened, not all at the end.
	if gap := at[start+1].Sub(at[start]); gap < 3*time.Second {
		t.Errorf("the line after starting came %s after it, want the handler's start (4s) between:\n%s", gap, out.String())
	}
	if last := lines[len(lines)-2]; !strings.HasPrefix(last, "deployed d-") || !strings.HasPrefix(lines[len(lines)-1], "http://orders.localhost:") {
		t.Errorf("output does not end with the result:\n%s", out.String())
	}
}

// TestCLINoWaitAndWatch: deploy --no-wait prints the operation at once;
// operation watch follows it to its end, exit 0 when it succeeded and 1
// when it failed; a deploy to a missing slot fails before the upload.
func TestCLINoWaitAndWatch(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	slow := copyPackage(t, "goforward")
	slowStart(t, slow, 5*time.Second)

	var out lineClock
	if code, stderr := runCLI(t, s, &out, "deploy", "orders", slow, "--slot", "staging", "--no-wait"); code != 0 {
		t.Fatalf("deploy --no-wait: exit %d\n%s%s", code, out.String(), stderr)
	}
	// Back while the handler still takes its 5s to start.
	var ops struct {
		Operations []struct{ ID, State string }
	}
	s.must(200, "GET", "/api/v1/apps/orders/operations", nil, &ops)
	if len(ops.Operations) == 0 || ops.Operations[0].State != "running" {
		t.Errorf("after deploy --no-wait the operations are %+v, want the deploy running", ops.Operations)
	}
	m := regexp.MustCompile(`(?m)^deploy to orders/staging started: operation (op-\S+) \(deployment d-\S+\)\nfollow it with: hotswap operation watch (op-\S+)$`).FindStringSubmatch(out.String())
	if m == nil || m[1] != m[2] {
		t.Fatalf("deploy --no-wait printed:\n%s", out.String())
	}
	if len(ops.Operations) > 0 && ops.Operations[0].ID != m[1] {
		t.Errorf("deploy --no-wait printed operation %s, the server runs %s", m[1], ops.Operations[0].ID)
	}
	var watch lineClock
	if code, stderr := runCLI(t, s, &watch, "operation", "watch", m[1]); code != 0 {
		t.Fatalf("operation watch: exit %d\n%s%s", code, watch.String(), stderr)
	}
	t.Logf("hotswap operation watch printed:\n%s", watch.String())
	if i, _ := phaseAt(watch.lines, "starting"); i < 0 || !strings.HasPrefix(watch.lines[len(watch.lines)-1], "deploy "+m[1]+" of orders/staging succeeded in ") {
		t.Errorf("operation watch printed:\n%s", watch.String())
	}
	var slot struct{ DeploymentID string }
	s.must(200, "GET", "/api/v1/apps/orders/slots/staging", nil, &slot)
	if slot.DeploymentID == "" {
		t.Errorf("staging serves nothing after the watched deploy succeeded")
	}

	failing := copyPackage(t, "goforward")
	if err := os.WriteFile(filepath.Join(failing, "handler"), []byte("#!/bin/sh\necho broken on purpose >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out = lineClock{}
	if code, stderr := runCLI(t, s, &out, "deploy", "orders", failing, "--slot", "staging", "--no-wait"); code != 0 {
		t.Fatalf("deploy --no-wait of a failing handler: exit %d\n%s%s", code, out.String(), stderr)
	}
	m = regexp.MustCompile(`operation watch (op-\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("deploy --no-wait printed:\n%s", out.String())
	}
	watch = lineClock{}
	code, stderr := runCLI(t, s, &watch, "operation", "watch", m[1])
	if i, _ := phaseAt(watch.lines, "failed"); code != 1 || i < 0 || !strings.HasPrefix(stderr, "hotswap: deploy "+m[1]+" of orders/staging failed after ") {
		t.Errorf("operation watch of a failing deploy: exit %d, stderr %q\n%s", code, stderr, watch.String())
	}

	// A mistyped slot fails on the check before the upload: no deployment.
	var before, after struct{ Deployments []struct{ ID string } }
	s.must(200, "GET", "/api/v1/apps/orders/deployments", nil, &before)
	out = lineClock{}
	code, stderr = runCLI(t, s, &out, "deploy", "orders", slow, "--slot", "stagin")
	if code != 1 || !strings.Contains(stderr, "stagin") || !strings.Contains(stderr, "not found") || out.String() != "" {
		t.Errorf("deploy to a missing slot: exit %d, stdout %q, stderr %q; want 1 and not found", code, out.String(), stderr)
	}
	s.must(200, "GET", "/api/v1/apps/orders/deployments", nil, &after)
	if len(after.Deployments) != len(before.Deployments) {
		t.Errorf("a deploy to a missing slot made a deployment: %d before, %d after", len(before.Deployments), len(after.Deployments))
	}
}
