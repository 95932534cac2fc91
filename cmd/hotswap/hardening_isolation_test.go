package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/runtime"
)

// requireRoot skips a test that needs root, except in CI, which runs as
// root: there it fails, so the test cannot silently stop running.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root, and CI runs as root")
		}
		t.Skip("needs root: handlers run as another user only when the server is root")
	}
}

// shareTempDir lets other users pass through the directories above dir that
// the tests made (a test's temporary directories are 0700), so handlers
// running as the handler user can reach the packages in a data directory
// dir. It changes nothing outside os.TempDir.
func shareTempDir(t testing.TB, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return // handlers run as this user
	}
	tmp, err := filepath.Abs(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for p := filepath.Dir(abs); strings.HasPrefix(p, tmp+string(filepath.Separator)); p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, fi.Mode().Perm()|0o111); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	probeOnce sync.Once
	probeBin  []byte
	probeErr  error
)

// probePackage returns a new folder holding the probeapp test handler, ready
// to zip; a non-empty variant adds a file, so the package gets its own
// digest.
func probePackage(t testing.TB, variant string) string {
	t.Helper()
	probeOnce.Do(func() {
		var dir string
		if dir, probeErr = os.MkdirTemp("", "hotswap-probeapp-"); probeErr != nil {
			return
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "handler"), "./cmd/hotswap/testdata/probeapp")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("build probeapp: %v\n%s", err, out)
			return
		}
		probeBin, probeErr = os.ReadFile(filepath.Join(dir, "handler"))
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	dst := filepath.Join(t.TempDir(), "probeapp")
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(repoRoot(), "cmd/hotswap/testdata/probeapp"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dst, "main.go")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "handler"), probeBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if variant != "" {
		if err := os.WriteFile(filepath.Join(dst, "variant.txt"), []byte(variant), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// probeReport is what probeapp's GET /api/probe answers.
type probeReport struct {
	Root, WD, Home, TmpDir, UID string
	Results                     map[string]string
}

func (s *server) probe(host, other string) probeReport {
	s.t.Helper()
	resp, body := s.fn("GET", host, "/api/probe?other="+url.QueryEscape(other), nil, nil)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("probe on %s: %d %s", host, resp.StatusCode, body)
	}
	var r probeReport
	if err := json.Unmarshal(body, &r); err != nil {
		s.t.Fatalf("probe on %s: %v: %s", host, err, body)
	}
	return r
}

// TestHandlerIsolation: a handler of a root server runs as the handler
// user, in its read-only package, and cannot read the admin token or the
// database, list the data directory, or write its own package, its working
// directory or another app's package; it can write in its private HOME and
// TMPDIR. The data directory, the database files and the admin token get
// private modes even when they existed with loose ones.
func TestHandlerIsolation(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	dir := t.TempDir()
	// A data directory left with loose modes: the server tightens them.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"admin-token", "hotswap.db"} {
		body := ""
		if name == "admin-token" {
			body = "hs_loose-token-for-the-isolation-test\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, dir)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "probe"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "other"}, nil)
	s.deploy("other", "production", zipDir(t, probePackage(t, "other")))
	s.deploy("probe", "production", zipDir(t, probePackage(t, "")))

	other := s.probe("other.localhost", "")
	r := s.probe("probe.localhost", other.Root)

	u, err := runtime.LookupUser(defaultHandlerUser)
	if err != nil {
		t.Fatal(err)
	}
	if r.UID != strconv.Itoa(int(u.UID)) {
		t.Errorf("handler uid %s, want %d (%s)", r.UID, u.UID, defaultHandlerUser)
	}
	if r.WD != r.Root || !strings.HasPrefix(r.Root, filepath.Join(dir, "packages")+"/") {
		t.Errorf("working directory %q, package %q: want the package folder under %s/packages", r.WD, r.Root, dir)
	}
	denied := []string{
		"read admin-token", "read hotswap.db", "read hotswap.db-wal", "read lock", "list data", "list packages",
		"write package", "write package subfolder", "change package file", "chmod package file",
		"write working directory", "write other package", "change other package file",
	}
	for _, name := range denied {
		got, ok := r.Results[name]
		if !ok {
			t.Errorf("%s: not tried", name)
		} else if !strings.Contains(got, "permission denied") && !strings.Contains(got, "operation not permitted") {
			t.Errorf("%s: %q, want it denied", name, got)
		}
	}
	for _, name := range []string{"write home", "write tmpdir"} {
		if got := r.Results[name]; got != "ok" {
			t.Errorf("%s: %q, want ok", name, got)
		}
	}
	if filepath.Dir(r.Home) != filepath.Join(dir, "homes") || r.TmpDir != r.Home || r.Home == other.Home {
		t.Errorf("HOME %q, TMPDIR %q (other app's HOME %q): want one private folder in %s/homes", r.Home, r.TmpDir, other.Home, dir)
	}

	wantModes := map[string]fs.FileMode{
		"":            0o711, // traverse only: no listing
		"admin-token": 0o600,
		"hotswap.db":  0o600,
		"lock":        0o600,
		"packages":    0o711,
		"homes":       0o711,
	}
	for _, name := range []string{"hotswap.db-wal", "hotswap.db-shm"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			wantModes[name] = 0o600
		}
	}
	for name, want := range wantModes {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s/%s = %v, want %v", dir, name, got, want)
		}
	}
	fi, err := os.Stat(r.Home)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o700 || st.Uid != u.UID {
		t.Errorf("home %s: mode %v owner %d, want 0700 owned by %d", r.Home, fi.Mode().Perm(), st.Uid, u.UID)
	}

	// A stopped set's home goes with it.
	s.must(http.StatusNoContent, "DELETE", "/api/v1/apps/other", nil, nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := os.Stat(other.Home)
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("home of a deleted app's handler: %v, want it removed", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRollbackRefusesTamperedPackage: when the sealed (read-only, the
// server is root) content of a deployment changed after it was stored, a
// rollback to it is refused with a message naming the deployment and the
// changed file, and the slot keeps serving what it served. A deploy of the
// same zip is not refused: it replaces the changed content, and the
// rollback works again.
func TestRollbackRefusesTamperedPackage(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	dir := t.TempDir()
	s := startServer(t, dir)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "web"}, nil)
	v1 := zipDir(t, probePackage(t, "v1"))
	d1 := s.deploy("web", "production", v1)
	s.deploy("web", "production", zipDir(t, probePackage(t, "v2")))
	served := s.probe("web.localhost", "").Root

	sum := sha256.Sum256(v1)
	digest := hex.EncodeToString(sum[:])
	// Content that still loads and runs, so only the check can refuse it.
	f := filepath.Join(dir, "packages", digest, "variant.txt")
	fi, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte("changed by someone"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}

	var rb struct{ Error struct{ Message string } }
	if code := s.call("POST", "/api/v1/apps/web/slots/production/rollback", map[string]string{"deployment": d1}, &rb); code != http.StatusPreconditionFailed {
		t.Errorf("rollback to a tampered deployment: %d %q, want %d", code, rb.Error.Message, http.StatusPreconditionFailed)
	}
	for _, want := range []string{d1, "variant.txt was changed"} {
		if !strings.Contains(rb.Error.Message, want) {
			t.Errorf("rollback message %q does not name %q", rb.Error.Message, want)
		}
	}
	if got := s.probe("web.localhost", "").Root; got != served {
		t.Errorf("after the refused rollback the slot serves %s, want %s", got, served)
	}

	var dep struct{ Error struct{ Message string } }
	if code := s.call("POST", "/api/v1/apps/web/slots/production/deploy?message=again", v1, &dep); code != http.StatusOK {
		t.Fatalf("deploy of the same zip over tampered content: %d %q, want 200", code, dep.Error.Message)
	}
	if b, err := os.ReadFile(f); err != nil || string(b) != "v1" {
		t.Errorf("variant.txt after the deploy of the same zip: %q, %v; want the zip's %q", b, err, "v1")
	}
	if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("variant.txt after the deploy of the same zip: %v; want it sealed again (0444)", err)
	}
	s.must(http.StatusOK, "POST", "/api/v1/apps/web/slots/production/rollback", map[string]string{"deployment": d1}, nil)
	if got := s.probe("web.localhost", "").Root; got != filepath.Dir(f) {
		t.Errorf("after the rollback the slot serves %s, want %s", got, filepath.Dir(f))
	}
}
