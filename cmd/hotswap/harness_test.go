package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/pgtest"
)

// TestMain lets the test binary act as the hotswap binary, so tests can run
// the real server as a separate process and kill it. The cluster tests'
// PostgreSQL server (pgtest) is stopped after the tests.
func TestMain(m *testing.M) {
	if os.Getenv("HOTSWAP_TEST_MAIN") == "1" {
		main()
		return
	}
	pgtest.Main(m)
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// examplePackage returns a folder holding the named example with its handler
// built, ready to zip and deploy. The Go examples are built once per run.
func examplePackage(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "hotswap-examples-")
		if buildErr != nil {
			return
		}
		for _, ex := range []string{"examples/goforward", "examples/gopayload", "examples/node", "cmd/hotswap/testdata/envapp"} {
			dst := filepath.Join(buildDir, filepath.Base(ex))
			if buildErr = os.CopyFS(dst, os.DirFS(filepath.Join(repoRoot(), ex))); buildErr != nil {
				return
			}
			if filepath.Base(ex) == "node" {
				continue
			}
			cmd := exec.Command("go", "build", "-o", filepath.Join(dst, "handler"), "./"+ex)
			cmd.Dir = repoRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", ex, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, name)
}

// copyPackage copies an example into a new temporary folder that the test
// may change.
func copyPackage(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(examplePackage(t, name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func zipDir(t testing.TB, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := artifact.ZipDir(dir, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// server is a hotswap server under test, in this process.
type server struct {
	t      testing.TB
	main   *Main
	fnAddr string
	api    string // http://127.0.0.1:port
	token  string
	client *http.Client
}

// startServer runs Main on port 0 with its data in dir (a new temp dir when
// empty).
func startServer(t testing.TB, dir string) *server {
	t.Helper()
	return startServerWith(t, dir, nil)
}

// startServerWith is startServer with a change to the configuration.
func startServerWith(t testing.TB, dir string, configure func(*Main)) *server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	shareTempDir(t, dir)
	m := NewMain()
	m.Stdout = io.Discard
	m.Config.DataDir = dir
	m.Config.Listen = "127.0.0.1:0"
	m.Config.Admin = "127.0.0.1:0"
	m.Config.LogLevel = "error"
	m.Config.StartTimeout = 20 * time.Second
	m.Config.DrainGrace = 5 * time.Second
	m.Config.ShutdownGrace = 5 * time.Second
	if configure != nil {
		configure(m)
	}
	if err := m.Run(context.Background()); err != nil {
		m.Close()
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, main: m, fnAddr: m.FunctionsAddr(), api: "http://" + m.AdminAddr(), token: strings.TrimSpace(string(tok)), client: &http.Client{Timeout: 60 * time.Second}}
	t.Cleanup(func() { m.Close() })
	return s
}

// call sends a control-plane API request and decodes a JSON answer into out
// (when not nil). It returns the status.
func (s *server) call(method, path string, body any, out any) int {
	s.t.Helper()
	var r io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		r, ctype = bytes.NewReader(b), "application/zip"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.api+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", ctype)
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: answer %d is not JSON: %v\n%s", method, path, resp.StatusCode, err, data)
		}
	}
	return resp.StatusCode
}

// must is call that fails the test unless the status is want.
func (s *server) must(want int, method, path string, body any, out any) {
	s.t.Helper()
	var raw json.RawMessage
	if got := s.call(method, path, body, &raw); got != want {
		s.t.Fatalf("%s %s = %d, want %d: %s", method, path, got, want, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatal(err)
		}
	}
}

type deployResult struct {
	Deployment struct {
		ID     string `json:"id"`
		Status string `json:"status"` // success, failed...
	} `json:"deployment"`
	URL string `json:"url"`
}

func (s *server) deploy(app, slot string, zip []byte) string {
	s.t.Helper()
	var res deployResult
	s.must(http.StatusOK, "POST", "/api/v1/apps/"+app+"/slots/"+slot+"/deploy?message=test", zip, &res)
	return res.Deployment.ID
}

type keyJSON struct {
	Scope, Function, Name, Value string
}

func (s *server) keys(app, slot string) []keyJSON {
	s.t.Helper()
	var res struct{ Keys []keyJSON }
	s.must(http.StatusOK, "GET", "/api/v1/apps/"+app+"/slots/"+slot+"/keys", nil, &res)
	return res.Keys
}

func findKey(keys []keyJSON, scope, fn, name string) string {
	for _, k := range keys {
		if k.Scope == scope && k.Function == fn && k.Name == name {
			return k.Value
		}
	}
	return ""
}

// fn sends a request to the functions listener for host.
func (s *server) fn(method, host, path string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	s.t.Helper()
	return fnRequest(s.t, s.client, s.fnAddr, method, host, path, hdr, body)
}

func fnRequest(t testing.TB, c *http.Client, addr, method, host, path string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: read body: %v", method, host, path, err)
	}
	return resp, data
}

// logLine is one line of a slot's log, as the API returns it.
type logLine struct{ Stream, Text string }

// logHas reports whether the last 1000 lines of app/slot's log hold a line
// of stream that match says yes to, and returns the lines read.
func (s *server) logHas(app, slot, stream string, match func(text string) bool) (bool, []logLine) {
	var res struct{ Lines []logLine }
	s.must(http.StatusOK, "GET", "/api/v1/apps/"+app+"/slots/"+slot+"/log?tail=1000", nil, &res)
	for _, l := range res.Lines {
		if l.Stream == stream && match(l.Text) {
			return true, res.Lines
		}
	}
	return false, res.Lines
}
