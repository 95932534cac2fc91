package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// withoutDeployChecks checks that each deploy request in reqs comes after
// the two requests deploy makes before its upload (GET whoami, GET the
// slot) and returns reqs without those two.
func withoutDeployChecks(t testing.TB, reqs []request) []request {
	t.Helper()
	var out []request
	for i, r := range reqs {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/deploy") {
			slot := strings.TrimSuffix(r.Path, "/deploy")
			if i < 2 || reqs[i-2].Method != "GET" || reqs[i-2].Path != "/api/v1/whoami" || reqs[i-1].Method != "GET" || reqs[i-1].Path != slot {
				t.Errorf("deploy %s was not preceded by GET /api/v1/whoami and GET %s: %+v", r.Path, slot, reqs[:i])
			} else {
				out = out[:len(out)-2]
			}
		}
		out = append(out, r)
	}
	return out
}

func TestReadEvents(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // name + "|" + data
	}{
		{
			name: "named events",
			in:   "event: phase\ndata: {\"phase\":\"validating\"}\n\nevent: result\ndata: {}\n\n",
			want: []string{`phase|{"phase":"validating"}`, "result|{}"},
		},
		{
			name: "comments, CRLF, no space, id and retry",
			in:   ": keep-alive\r\nid: 7\r\nretry: 100\r\nevent:end\r\ndata:x\r\n\r\n",
			want: []string{"end|x"},
		},
		{
			name: "multi-line data and the default name",
			in:   "data: a\ndata: b\n\n",
			want: []string{"message|a\nb"},
		},
		{
			name: "an event without data is not dispatched",
			in:   "event: phase\n\nevent: result\ndata: 1\n\n",
			want: []string{"result|1"},
		},
		{
			name: "an event cut off by the end is dropped",
			in:   "event: phase\ndata: 1\n\nevent: result\ndata: 2\n",
			want: []string{"phase|1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := readEvents(strings.NewReader(tc.in), func(e sseEvent) error {
				got = append(got, e.name+"|"+string(e.data))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("events (-got +want):\n%s", diff)
			}
		})
	}
	stop := errors.New("stop")
	n := 0
	err := readEvents(strings.NewReader("data: 1\n\ndata: 2\n\n"), func(sseEvent) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("readEvents = %v after %d events, want stop after 1", err, n)
	}
}

func FuzzReadEvents(f *testing.F) {
	f.Add("event: phase\ndata: {}\n\n")
	f.Add(": c\r\ndata:a\r\ndata\r\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		// Data lines join with "\n" (the SSE spec): empty data lines may
		// leave newlines at the end, but never more data than was sent.
		_ = readEvents(strings.NewReader(in), func(e sseEvent) error {
			if e.name == "" || len(e.data) > len(in) {
				t.Errorf("event %q %q from %d bytes", e.name, e.data, len(in))
			}
			return nil
		})
	})
}

// sseServer plays a server that streams progress: each request whose Accept
// asks for events gets events, written with a pause between them; a
// request that does not gets answer as plain JSON.
type sseServer struct {
	*httptest.Server
	mu      sync.Mutex
	accepts []string
	queries []string
}

func newSSEServer(t testing.TB, pause time.Duration, events []string, answer string) *sseServer {
	t.Helper()
	s := &sseServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.accepts = append(s.accepts, r.Header.Get("Accept"))
		s.queries = append(s.queries, r.URL.RawQuery)
		s.mu.Unlock()
		if r.Method == "GET" && r.URL.Path != "/api/v1/operations/op-1/events" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"name":"admin","role":"admin"}`)
			return
		}
		if r.Header.Get("Accept") != "text/event-stream" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, answer)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			io.WriteString(w, e)
			w.(http.Flusher).Flush()
			select {
			case <-time.After(pause):
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func phaseEvent(kind, phase, detail string, elapsedMs int64) string {
	return fmt.Sprintf("event: phase\ndata: {\"opId\":\"op-1\",\"app\":\"orders\",\"slot\":\"staging\",\"kind\":%q,\"phase\":%q,\"detail\":%q,\"elapsedMs\":%d,\"state\":\"running\"}\n\n", kind, phase, detail, elapsedMs)
}

// TestPhaseLines: deploy, swap, rollback and settings set ask for events
// and print one line per phase, then the result as without events.
func TestPhaseLines(t *testing.T) {
	zipPath := filepath.Join(t.TempDir(), "app.zip")
	writeFile(t, zipPath, "PK\x05\x06 not really a zip")
	deployEvents := []string{
		phaseEvent("deploy", "validating", "", 10),
		": keep-alive\n\n",
		phaseEvent("deploy", "starting", "handler", 300),
		"event: end\ndata: {\"opId\":\"op-1\",\"kind\":\"deploy\",\"phase\":\"done\",\"end\":true,\"state\":\"succeeded\",\"elapsedMs\":12400}\n\n",
		phaseEvent("swap", "warming", "", 65000),
		"event: result\ndata: " + deployAnswerJS + "\n\n",
	}
	swapEvents := []string{phaseEvent("swap", "preparing staging", "", 0), phaseEvent("swap", "switching", "", 2000), "event: result\ndata: " + swapAnswer + "\n\n"}
	tests := []struct {
		name    string
		args    []string
		events  []string
		wantOut string
	}{
		{
			name:   "deploy",
			args:   []string{"deploy", "orders", zipPath, "--slot", "staging"},
			events: deployEvents,
			wantOut: "     0.0s  validating\n     0.3s  starting handler\n    12.4s  done\n    1m05s  swap: warming\n" +
				"deployed d-7 to orders/staging\nhttp://orders-staging.localhost:8080\n",
		},
		{
			name:    "swap",
			args:    []string{"swap", "orders", "--slot", "staging"},
			events:  swapEvents,
			wantOut: "     0.0s  preparing staging\n     2.0s  switching\n" + describeSwap(mustSwap(t)) + "\n",
		},
		{
			name:    "rollback",
			args:    []string{"rollback", "orders", "--slot", "staging", "--to", "d-7"},
			events:  []string{phaseEvent("rollback", "starting", "", 5), "event: result\ndata: " + deployAnswerJS + "\n\n"},
			wantOut: "     0.0s  starting\nrolled back orders/staging to d-7\nhttp://orders-staging.localhost:8080\n",
		},
		{
			name:    "settings set",
			args:    []string{"settings", "set", "orders", "A=1", "--slot", "staging"},
			events:  []string{phaseEvent("settings", "restarting", "", 0), "event: result\ndata: " + settingsAnswer + "\n\n"},
			wantOut: "     0.0s  restarting\nNAME  VALUE  SLOT-SETTING\nA     1      true\nB     x=y    false\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSSEServer(t, 0, tc.events, "")
			code, stdout, stderr := run(t, append(tc.args, "--server", srv.URL, "--token", testToken), nil, "")
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0", code, stderr)
			}
			if diff := cmp.Diff(stdout, tc.wantOut); diff != "" {
				t.Errorf("stdout (-got +want):\n%s", diff)
			}
			if got := srv.accepts[len(srv.accepts)-1]; got != "text/event-stream" {
				t.Errorf("Accept = %q, want text/event-stream", got)
			}
		})
	}

	t.Run("-o json prints the phases on stderr", func(t *testing.T) {
		srv := newSSEServer(t, 0, swapEvents, "")
		code, stdout, stderr := run(t, []string{"swap", "orders", "--slot", "staging", "-o", "json", "--server", srv.URL, "--token", testToken}, nil, "")
		if code != 0 || !strings.HasPrefix(stdout, "{\n") || stderr != "     0.0s  preparing staging\n     2.0s  switching\n" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0, the JSON answer, the phases", code, stdout, stderr)
		}
	})
	t.Run("-o yaml and --query apply to the streamed answer", func(t *testing.T) {
		srv := newSSEServer(t, 0, swapEvents, "")
		code, stdout, stderr := run(t, []string{"swap", "orders", "--slot", "staging", "-o", "yaml", "--server", srv.URL, "--token", testToken}, nil, "")
		if code != 0 || !strings.Contains(stdout, "target: production\n") || !strings.Contains(stderr, "switching") {
			t.Errorf("-o yaml: exit %d, stdout %q, stderr %q; want 0, YAML, the phases", code, stdout, stderr)
		}
		code, stdout, stderr = run(t, []string{"swap", "orders", "--slot", "staging", "--query", "target", "--server", srv.URL, "--token", testToken}, nil, "")
		if code != 0 || stdout != "production\n" || !strings.Contains(stderr, "switching") {
			t.Errorf("--query: exit %d, stdout %q, stderr %q; want 0, production, the phases", code, stdout, stderr)
		}
	})
	t.Run("an error event fails with its message", func(t *testing.T) {
		srv := newSSEServer(t, 0, []string{phaseEvent("deploy", "starting", "", 5), "event: end\ndata: {\"kind\":\"deploy\",\"phase\":\"failed\",\"detail\":\"handler exited: status 1\",\"end\":true,\"state\":\"failed\",\"elapsedMs\":900}\n\n",
			"event: error\ndata: {\"error\":{\"kind\":\"failed_precondition\",\"message\":\"handler exited: status 1\"}}\n\n"}, "")
		code, stdout, stderr := run(t, []string{"deploy", "orders", zipPath, "--server", srv.URL, "--token", testToken}, nil, "")
		if code != 1 || stdout != "     0.0s  starting\n     0.9s  failed\n" || stderr != "hotswap: handler exited: status 1\n" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1, the phase, the error", code, stdout, stderr)
		}
	})
	t.Run("a stream without the result fails", func(t *testing.T) {
		srv := newSSEServer(t, 0, []string{phaseEvent("deploy", "starting", "", 5)}, "")
		code, _, stderr := run(t, []string{"deploy", "orders", zipPath, "--server", srv.URL, "--token", testToken}, nil, "")
		if code != 1 || !strings.Contains(stderr, "without the result") {
			t.Errorf("exit %d, stderr %q; want 1 and no result", code, stderr)
		}
	})
}

func mustSwap(t testing.TB) swapResult {
	t.Helper()
	var r swapResult
	if err := json.Unmarshal([]byte(swapAnswer), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestProgressOnTerminal: on a terminal the running phase is a live line
// with a spinner and a running clock, replaced by a plain line when the
// next phase begins.
func TestProgressOnTerminal(t *testing.T) {
	var out syncBuffer
	p := &progress{w: &out, tty: true}
	p.phase(opEvent{Kind: "deploy", Phase: "starting", Detail: "handler", ElapsedMs: 300})
	time.Sleep(5 * spinnerEvery)
	p.phase(opEvent{Kind: "deploy", Phase: "done", ElapsedMs: 4000})
	p.close()
	p.close()
	got := out.String()
	if !strings.HasPrefix(got, "\r\033[K"+spinnerFrames[0]+"    0.3s  starting handler") {
		t.Errorf("output starts %q, want the live line of starting", got)
	}
	if !strings.Contains(got, spinnerFrames[1]) {
		t.Errorf("the spinner did not turn: %q", got)
	}
	if !regexp.MustCompile(`\r\033\[K     0\.3s  starting handler\n(\r\033\[K. +4\.\ds  done)+\r\033\[K     4\.0s  done\n$`).MatchString(got) {
		t.Errorf("output ends %q, want plain lines for both phases", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// countingServer answers GET whoami with role, GET a slot with slotStatus,
// and counts the bytes of every upload it receives.
type countingServer struct {
	*httptest.Server
	uploaded atomic.Int64
	posts    atomic.Int64
}

func newCountingServer(t testing.TB, role string, slotStatus int) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "GET" && r.URL.Path == "/api/v1/whoami":
			fmt.Fprintf(w, `{"name":"bob","role":%q}`, role)
		case r.Method == "GET":
			w.WriteHeader(slotStatus)
			if slotStatus == 404 {
				io.WriteString(w, `{"error":{"kind":"not_found","message":"slot \"orders/stagin\" not found"}}`)
			} else {
				io.WriteString(w, slotAnswer)
			}
		default:
			s.posts.Add(1)
			n, _ := io.Copy(io.Discard, r.Body)
			s.uploaded.Add(n)
			io.WriteString(w, deployAnswerJS)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func bigZip(t testing.TB, size int) string {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "big.zip")
	writeFile(t, path, string(data))
	return path
}

// TestDeployChecksBeforeUpload: a missing slot or a role that may not
// deploy fails before any byte of the package is sent.
func TestDeployChecksBeforeUpload(t *testing.T) {
	zipPath := bigZip(t, 5<<20)
	tests := []struct {
		name       string
		role       string
		slotStatus int
		wantStderr string
	}{
		{name: "missing slot", role: "deployer", slotStatus: 404, wantStderr: "hotswap: slot \"orders/stagin\" not found\n"},
		{name: "approver", role: "approver", slotStatus: 200, wantStderr: "hotswap: deploy to orders/stagin needs the deployer or admin role; the token is bob's, whose role is approver\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCountingServer(t, tc.role, tc.slotStatus)
			code, stdout, stderr := run(t, []string{"deploy", "orders", zipPath, "--slot", "stagin", "--server", srv.URL, "--token", testToken}, nil, "")
			if code != 1 || stdout != "" || stderr != tc.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, %q", code, stdout, stderr, tc.wantStderr)
			}
			if n, b := srv.posts.Load(), srv.uploaded.Load(); n != 0 || b != 0 {
				t.Errorf("server got %d uploads, %d bytes; want none", n, b)
			}
		})
	}
	t.Run("deployer uploads", func(t *testing.T) {
		srv := newCountingServer(t, "deployer", 200)
		code, _, stderr := run(t, []string{"deploy", "orders", zipPath, "--slot", "staging", "--server", srv.URL, "--token", testToken}, nil, "")
		if code != 0 || srv.uploaded.Load() != 5<<20 {
			t.Errorf("exit %d (%s), %d bytes uploaded; want 0, %d", code, stderr, srv.uploaded.Load(), 5<<20)
		}
	})
}

// TestUploadProgress: a package over 4 MB prints a line at each quarter of
// its upload and one when it is sent, with the rate; a smaller one none.
func TestUploadProgress(t *testing.T) {
	srv := newCountingServer(t, "admin", 200)
	code, stdout, stderr := run(t, []string{"deploy", "orders", bigZip(t, 6_000_000), "--server", srv.URL, "--token", testToken}, nil, "")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	re := regexp.MustCompile(`^  uploading 1\.[5-9] MB of 6\.0 MB \(2\d%\), [\d.]+ MB/s\n` +
		`  uploading [3-4]\.\d MB of 6\.0 MB \(5\d%\), [\d.]+ MB/s\n` +
		`  uploading [4-5]\.\d MB of 6\.0 MB \(7\d%\), [\d.]+ MB/s\n` +
		`  uploaded 6\.0 MB in \d+\.\ds, [\d.]+ MB/s\n` +
		`deployed d-7 to orders/production\n`)
	if !re.MatchString(stdout) {
		t.Errorf("stdout = %q, want the upload's quarters, then the result", stdout)
	}

	code, stdout, _ = run(t, []string{"deploy", "orders", bigZip(t, uploadProgressMin-1), "--server", srv.URL, "--token", testToken}, nil, "")
	if code != 0 || strings.Contains(stdout, "upload") {
		t.Errorf("a package under 4 MiB: exit %d, stdout %q; want no upload progress", code, stdout)
	}
}

// TestNoWait: --no-wait asks the server not to wait and prints the
// operation to follow; a server that waited anyway answers the result.
func TestNoWait(t *testing.T) {
	zipPath := filepath.Join(t.TempDir(), "app.zip")
	writeFile(t, zipPath, "PK\x05\x06 not really a zip")
	started := `{"operation":"op-1","deployment":{"id":"d-7"}}`
	tests := []struct {
		name    string
		args    []string
		answer  string
		wantOut string
	}{
		{
			name:    "deploy",
			args:    []string{"deploy", "orders", zipPath, "--slot", "staging", "--no-wait", "--message", "m"},
			answer:  started,
			wantOut: "deploy to orders/staging started: operation op-1 (deployment d-7)\nfollow it with: hotswap operation watch op-1\n",
		},
		{
			name:    "swap",
			args:    []string{"swap", "orders", "--slot", "staging", "--no-wait"},
			answer:  `{"operation":{"id":"op-1"}}`,
			wantOut: "swap of orders/staging into production started: operation op-1\nfollow it with: hotswap operation watch op-1\n",
		},
		{
			name:    "an old server waits",
			args:    []string{"deploy", "orders", zipPath, "--slot", "staging", "--no-wait"},
			answer:  deployAnswerJS,
			wantOut: "deployed d-7 to orders/staging\nhttp://orders-staging.localhost:8080\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSSEServer(t, 0, nil, tc.answer)
			code, stdout, stderr := run(t, append(tc.args, "--server", srv.URL, "--token", testToken), nil, "")
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0", code, stderr)
			}
			if diff := cmp.Diff(stdout, tc.wantOut); diff != "" {
				t.Errorf("stdout (-got +want):\n%s", diff)
			}
			if q := srv.queries[len(srv.queries)-1]; !strings.Contains(q, "wait=false") {
				t.Errorf("query %q lacks wait=false", q)
			}
		})
	}
}

// TestOperationWatch: operation watch prints the phases until the end:
// exit 0 when the operation succeeded, 1 when it failed.
func TestOperationWatch(t *testing.T) {
	phases := []string{phaseEvent("deploy", "starting", "handler", 100), phaseEvent("deploy", "warming", "", 4100)}
	tests := []struct {
		name       string
		end        string
		wantCode   int
		wantOut    string
		wantStderr string
	}{
		{
			name:     "succeeded",
			end:      `{"opId":"op-1","app":"orders","slot":"staging","kind":"deploy","phase":"done","end":true,"state":"succeeded","elapsedMs":4500}`,
			wantOut:  "     0.1s  starting handler\n     4.1s  warming\n     4.5s  done\ndeploy op-1 of orders/staging succeeded in 4.5s\n",
			wantCode: 0,
		},
		{
			name:       "failed",
			end:        `{"opId":"op-1","app":"orders","slot":"staging","kind":"deploy","phase":"failed","end":true,"state":"failed","detail":"warm-up: GET / answered 500","elapsedMs":4500}`,
			wantOut:    "     0.1s  starting handler\n     4.1s  warming\n     4.5s  failed\n",
			wantCode:   1,
			wantStderr: "hotswap: deploy op-1 of orders/staging failed after 4.5s: warm-up: GET / answered 500\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSSEServer(t, 10*time.Millisecond, append(phases, "event: end\ndata: "+tc.end+"\n\n"), "")
			code, stdout, stderr := run(t, []string{"operation", "watch", "op-1", "--server", srv.URL, "--token", testToken}, nil, "")
			if code != tc.wantCode || stdout != tc.wantOut || stderr != tc.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout, stderr, tc.wantCode, tc.wantOut, tc.wantStderr)
			}
		})
	}
	t.Run("stream ends early", func(t *testing.T) {
		srv := newSSEServer(t, 0, phases, "")
		code, _, stderr := run(t, []string{"operation", "watch", "op-1", "--server", srv.URL, "--token", testToken}, nil, "")
		if code != 1 || !strings.Contains(stderr, "before the operation ended") {
			t.Errorf("exit %d, stderr %q; want 1", code, stderr)
		}
	})
	t.Run("-o json", func(t *testing.T) {
		srv := newSSEServer(t, 0, append(phases, "event: end\ndata: {\"opId\":\"op-1\",\"state\":\"succeeded\"}\n\n"), "")
		code, stdout, _ := run(t, []string{"operation", "watch", "op-1", "-o", "json", "--server", srv.URL, "--token", testToken}, nil, "")
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if code != 0 || len(lines) != 3 || !strings.Contains(lines[0], `"phase":"starting"`) || !strings.Contains(lines[2], `"end":true`) {
			t.Errorf("exit %d, stdout %q; want 0 and three JSON lines", code, stdout)
		}
	})
	t.Run("unknown operation", func(t *testing.T) {
		srv := newAPIServer(t, 404, `{"error":{"kind":"not_found","message":"operation \"op-9\" not found"}}`)
		code, _, stderr := run(t, []string{"operation", "watch", "op-9", "--server", srv.URL, "--token", testToken}, nil, "")
		if code != 1 || stderr != "hotswap: operation \"op-9\" not found\n" {
			t.Errorf("exit %d, stderr %q; want 1, not found", code, stderr)
		}
	})
}

// TestInterruptedStream: interrupted while it follows an operation, the
// CLI says which operation goes on and how to follow it.
func TestInterruptedStream(t *testing.T) {
	srv := newSSEServer(t, 5*time.Second, []string{phaseEvent("swap", "warming", "", 100), phaseEvent("swap", "switching", "", 200)}, "")
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	go func() {
		for !strings.Contains(out.String(), "warming") {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	var errb bytes.Buffer
	code := Run(ctx, []string{"swap", "orders", "--slot", "staging", "--server", srv.URL, "--token", testToken}, Env{Stdout: out, Stderr: &errb})
	if want := "hotswap: context canceled: operation op-1 goes on; follow it with hotswap operation watch op-1\n"; code != 1 || errb.String() != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", code, errb.String(), want)
	}
}
