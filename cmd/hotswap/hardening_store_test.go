package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/sqlite"
)

// listSpool returns the names in the data directory's upload spool (the
// package store's tmp directory).
func listSpool(t testing.TB, dataDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dataDir, "packages", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// kuduPost sends a zipdeploy with the admin token; a nil length hides the
// body's size, so it goes chunked.
func kuduPost(t testing.TB, s *server, path string, body io.Reader, size int64) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", s.api+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.SetBasicAuth("x", s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// TestAsyncZipDeployIsBoundedAndSpooledInData: an asynchronous zipdeploy
// over the package limit is refused with 413 whether or not it declares its
// size, leaves nothing on disk and records no deployment; a normal one is
// spooled inside the data directory, not the system's temporary directory.
func TestAsyncZipDeployIsBoundedAndSpooledInData(t *testing.T) {
	t.Parallel()
	pkg := zipDir(t, examplePackage(t, "goforward"))
	limit := int64(len(pkg)) + 4096
	dir := t.TempDir()
	s := startServerWith(t, dir, func(m *Main) { m.Config.MaxPackageBytes = limit })
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "big"}, nil)
	const deployPath = "/kudu/big/production/api/zipdeploy?isAsync=true"

	big := make([]byte, limit+1<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	for _, tc := range []struct {
		name string
		size int64
	}{{"declared size", int64(len(big))}, {"chunked", -1}} {
		resp, body := kuduPost(t, s, deployPath, bytes.NewReader(big), tc.size)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "larger than the limit") {
			t.Fatalf("%s: async zipdeploy of %d bytes over a limit of %d = %d %s, want 413 saying so", tc.name, len(big), limit, resp.StatusCode, body)
		}
		if got := listSpool(t, dir); len(got) != 0 {
			t.Errorf("%s: spool holds %q after a refused upload", tc.name, got)
		}
	}
	var hist struct{ Deployments []json.RawMessage }
	s.must(http.StatusOK, "GET", "/api/v1/apps/big/deployments", nil, &hist)
	if len(hist.Deployments) != 0 {
		t.Errorf("refused uploads recorded %d deployments, want none", len(hist.Deployments))
	}

	// A normal async deploy, sent slowly: while it is read, its bytes are
	// in the data directory's spool.
	pr, pw := io.Pipe()
	type answer struct {
		resp *http.Response
		body []byte
	}
	done := make(chan answer, 1)
	go func() {
		resp, body := kuduPost(t, s, deployPath, pr, -1)
		done <- answer{resp, body}
	}()
	if _, err := pw.Write(pkg[:len(pkg)/2]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(listSpool(t, dir)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("half an async upload was sent, but nothing is spooled in the data directory")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := pw.Write(pkg[len(pkg)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	a := <-done
	if a.resp.StatusCode != http.StatusAccepted {
		t.Fatalf("async zipdeploy within the limit = %d %s, want 202", a.resp.StatusCode, a.body)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		var d struct {
			Status   int  `json:"status"`
			Complete bool `json:"complete"`
		}
		st := s.call("GET", "/kudu/big/production/api/deployments/latest", nil, &d)
		if st == http.StatusOK {
			if d.Status != 4 {
				t.Fatalf("async deploy ended with status %d, want 4 (success)", d.Status)
			}
			break
		}
		if st != http.StatusAccepted || time.Now().After(deadline) {
			t.Fatalf("deployments/latest = %d %+v", st, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, body := s.fn("GET", "big.localhost", "/api/health", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("the app after an async deploy = %d %s", resp.StatusCode, body)
	}
	deadline = time.Now().Add(10 * time.Second)
	for got := listSpool(t, dir); len(got) != 0; got = listSpool(t, dir) {
		if time.Now().After(deadline) {
			t.Fatalf("spool still holds %q after the deploy ended", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// storeDB opens a second connection to a server's store, for a test to
// make it refuse writes the way a full disk would.
func storeDB(t testing.TB, dataDir string) *sql.DB {
	t.Helper()
	path := filepath.Join(dataDir, "hotswap.db")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestRefusedOperationEndDoesNotLockApp: when the store refuses to record
// the end of an operation for a moment, the app is not locked for good:
// the next operation says why it must wait, and once the store takes
// writes again the end is recorded and deploys work.
func TestRefusedOperationEndDoesNotLockApp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "locked"}, nil)
	pkg := zipDir(t, examplePackage(t, "goforward"))
	raw := storeDB(t, dir)
	if _, err := raw.Exec(`CREATE TRIGGER refuse_end BEFORE UPDATE OF state ON operations
		WHEN NEW.state <> 'running' BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END`); err != nil {
		t.Fatal(err)
	}
	settings := map[string]any{"set": []map[string]any{{"name": "COLOR", "value": "blue"}}}
	s.must(http.StatusOK, "PATCH", "/api/v1/apps/locked/slots/production/settings", settings, nil)

	var ops struct{ Operations []hotswap.Operation }
	s.must(http.StatusOK, "GET", "/api/v1/apps/locked/operations", nil, &ops)
	if len(ops.Operations) == 0 || ops.Operations[0].State != hotswap.OpSucceeded {
		t.Errorf("operations = %+v, want the settings change listed as succeeded", ops.Operations)
	}
	var refused struct {
		Error struct{ Message string }
	}
	if got := s.call("POST", "/api/v1/apps/locked/slots/production/deploy", pkg, &refused); got != http.StatusServiceUnavailable || !strings.Contains(refused.Error.Message, "try again shortly") {
		t.Fatalf("deploy while the store refuses the last end = %d %q, want 503 saying to try again", got, refused.Error.Message)
	}

	if _, err := raw.Exec("DROP TRIGGER refuse_end"); err != nil {
		t.Fatal(err)
	}
	// The server's own retry records the end, without another request.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := raw.QueryRow("SELECT count(*) FROM operations WHERE app = 'locked' AND state = 'running'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("30s after the store recovered it still records a running operation")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.deploy("locked", "production", pkg)
	s.must(http.StatusOK, "PATCH", "/api/v1/apps/locked/slots/production/settings", settings, nil)
}

// garbleMiddle overwrites two pages in the middle of a database file with
// random bytes: data pages that nothing reads at start, so only a check of
// the whole file notices.
func garbleMiddle(t testing.TB, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	pages := len(data) / page
	if pages < 8 {
		t.Fatalf("%s has only %d pages", path, pages)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for i := pages / 2 * page; i < (pages/2+2)*page; i++ {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runMain runs a server on dir and returns Run's error, closing it if it
// started.
func runMain(t testing.TB, dir string, configure func(*Main)) error {
	t.Helper()
	m := NewMain()
	m.Stdout = io.Discard
	m.Config.DataDir = dir
	m.Config.Listen = "127.0.0.1:0"
	m.Config.Admin = "127.0.0.1:0"
	m.Config.LogLevel = "error"
	m.Config.ShutdownGrace = 5 * time.Second
	if configure != nil {
		configure(m)
	}
	err := m.Run(context.Background())
	m.Close()
	return err
}

// populated starts a server on a new data directory, creates an app with a
// deployment and some history, stops it and returns the directory.
func populated(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	s := startServer(t, dir)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "kept"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/kept/slots", map[string]string{"name": "staging"}, nil)
	s.deploy("kept", "staging", zipDir(t, examplePackage(t, "goforward")))
	for i := range 40 {
		s.must(http.StatusOK, "PATCH", "/api/v1/apps/kept/slots/staging/settings",
			map[string]any{"set": []map[string]any{{"name": "SETTING_" + strings.Repeat("X", i), "value": strings.Repeat("v", 400)}}}, nil)
	}
	if err := s.main.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCorruptStoreRefused: a database with damaged pages is refused at
// start with a message naming the file and what to do.
func TestCorruptStoreRefused(t *testing.T) {
	t.Parallel()
	dir := populated(t)
	db := filepath.Join(dir, "hotswap.db")
	garbleMiddle(t, db)
	err := runMain(t, dir, nil)
	var ce *sqlite.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("Run on a corrupt database = %v, want a *sqlite.CorruptError", err)
	}
	abs, _ := filepath.Abs(db)
	for _, want := range []string{"corrupt", "restore the file from a backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !strings.Contains(err.Error(), db) && !strings.Contains(err.Error(), abs) {
		t.Errorf("error %q does not name %s", err, db)
	}
}

// TestLostStoreRefused: a deleted database beside stored packages is
// refused, again on a second try, until --allow-empty-store is given.
func TestLostStoreRefused(t *testing.T) {
	t.Parallel()
	dir := populated(t)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(filepath.Join(dir, "hotswap.db"+suffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	for try := 1; try <= 2; try++ {
		err := runMain(t, dir, nil)
		if err == nil {
			t.Fatalf("start %d with the database deleted beside stored packages succeeded", try)
		}
		for _, want := range []string{"--allow-empty-store", filepath.Join(dir, "packages"), filepath.Join(dir, "hotswap.db")} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("start %d: error %q does not say %q", try, err, want)
			}
		}
	}
	s := startServerWith(t, dir, func(m *Main) { m.Config.AllowEmptyStore = true })
	var res struct{ Apps []json.RawMessage }
	s.must(http.StatusOK, "GET", "/api/v1/apps", nil, &res)
	if len(res.Apps) != 0 {
		t.Errorf("apps = %s, want none", res.Apps)
	}
	if err := s.main.Close(); err != nil {
		t.Fatal(err)
	}
	// Once started on, the empty store is the platform's: no flag needed.
	if err := runMain(t, dir, nil); err != nil {
		t.Fatalf("restart after starting once with --allow-empty-store = %v", err)
	}
}

// TestRetentionCountsOnlySuccessfulDeployments: with a retention of N, N
// good deploys, N+2 failing ones and one more good one leave every good one
// but the oldest.
func TestRetentionCountsOnlySuccessfulDeployments(t *testing.T) {
	t.Parallel()
	const n = 2
	s := startServerWith(t, "", func(m *Main) {
		m.Config.Retention = n
		m.Config.RevertWindow = -1 // nothing kept warm: only the policy keeps deployments
	})
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "ret"}, nil)
	good := zipDir(t, examplePackage(t, "goforward"))
	broken := copyPackage(t, "goforward")
	if err := os.Remove(filepath.Join(broken, "host.json")); err != nil {
		t.Fatal(err)
	}
	bad := zipDir(t, broken)

	var goods, fails []string
	for range n {
		goods = append(goods, s.deploy("ret", "production", good))
	}
	for range n + 2 {
		var raw json.RawMessage
		if st := s.call("POST", "/api/v1/apps/ret/slots/production/deploy", bad, &raw); st != http.StatusBadRequest {
			t.Fatalf("deploy without host.json = %d %s, want 400", st, raw)
		}
		var hist struct {
			Deployments []struct{ ID string }
		}
		s.must(http.StatusOK, "GET", "/api/v1/apps/ret/deployments", nil, &hist)
		fails = append(fails, hist.Deployments[0].ID) // newest first
	}
	goods = append(goods, s.deploy("ret", "production", good))

	var hist struct {
		Deployments []struct {
			ID     string
			Status string
		}
	}
	s.must(http.StatusOK, "GET", "/api/v1/apps/ret/deployments", nil, &hist)
	var have []string
	for _, d := range hist.Deployments {
		have = append(have, d.ID)
	}
	want := append(append([]string(nil), goods[1:]...), fails...)
	for _, id := range want {
		if !slices.Contains(have, id) {
			t.Errorf("deployment %s was pruned; have %q", id, have)
		}
	}
	if slices.Contains(have, goods[0]) {
		t.Errorf("the oldest good deployment %s, beyond the %d newest good ones, was kept", goods[0], n)
	}
}
