package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/azurite"
)

// blobInPackage builds the blobinapp test handler (functions with a blob
// input binding) into a new folder.
func blobInPackage(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "blobinapp")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repoRoot(), "cmd/hotswap/testdata/blobinapp"))); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "handler"), "./cmd/hotswap/testdata/blobinapp")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build blobinapp: %v\n%s", err, out)
	}
	if err := os.Remove(filepath.Join(dir, "main.go")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBlobInputBindings: against a real Azurite, an HTTP function
// GET /api/doc/{name} gets the blob docs/{name} through its blob input
// binding (null when there is no such blob); a path may use the query
// ({Query.file}) and %settings%; a blob that cannot be read (a wrong
// account key) or a path whose name has no value fails the invocation with
// 500 and a slot-log line, without calling the handler; a timer function
// gets its blob input too (null, then the text once uploaded).
func TestBlobInputBindings(t *testing.T) {
	t.Parallel()
	st := startStorage(t)
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "docs"}, nil)
	const badKey = "QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5"
	s.setSettings("docs", "production", false,
		"Storage", st.conn,
		"BadStore", strings.Replace(st.conn, azurite.Key, badKey, 1),
		"Folder", "docs")
	s.deploy("docs", "production", zipDir(t, blobInPackage(t)))

	get := func(path string, wantStatus int, wantBody string) {
		t.Helper()
		resp, b := s.fn("GET", "docs.localhost", path, nil, nil)
		if resp.StatusCode != wantStatus || !strings.Contains(string(b), wantBody) {
			t.Errorf("GET %s = %d %q, want %d with %q", path, resp.StatusCode, b, wantStatus, wantBody)
		}
	}
	// No container yet, then no such blob: the handler gets null.
	get("/api/doc/a.txt", http.StatusOK, "null")
	st.upload("docs", "a.txt", "hello <a> \"doc\"")
	st.upload("docs", "other.txt", "other")
	get("/api/doc/a.txt", http.StatusOK, `"hello \u003ca\u003e \"doc\""`)
	get("/api/doc/b.txt", http.StatusOK, "null")
	get("/api/pick?file=other.txt", http.StatusOK, `"other"`)

	get("/api/down", http.StatusInternalServerError, "input bindings could not be read")
	if ok, lines := s.logHas("docs", "production", "host", func(text string) bool {
		return strings.Contains(text, "of down failed") && strings.Contains(text, `input binding "doc" (type blob)`) && strings.Contains(text, "403")
	}); !ok {
		t.Errorf("no slot-log line says why down failed: %+v", lines)
	}
	get("/api/pick", http.StatusInternalServerError, "input bindings could not be read")
	if ok, lines := s.logHas("docs", "production", "host", func(text string) bool {
		return strings.Contains(text, "of pick failed") && strings.Contains(text, "no value for {Query.file}")
	}); !ok {
		t.Errorf("no slot-log line says why pick failed: %+v", lines)
	}

	// The timer read docs/tick.txt: null before it exists, its text after.
	eventually(t, "the timer to log tick read null", 60*time.Second, func() bool {
		ok, _ := s.logHas("docs", "production", "tick", func(text string) bool { return text == "tick read null" })
		return ok
	})
	st.upload("docs", "tick.txt", "tock")
	eventually(t, `the timer to log tick read "tock"`, 60*time.Second, func() bool {
		ok, _ := s.logHas("docs", "production", "tick", func(text string) bool { return text == `tick read "tock"` })
		return ok
	})
}
