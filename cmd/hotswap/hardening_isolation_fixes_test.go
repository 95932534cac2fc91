package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeFile writes body to dir/name with mode, whatever the umask.
func writeFile(t testing.TB, dir, name, body string, mode fs.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// modeOf returns the permission bits of p.
func modeOf(t testing.TB, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestHandlerUserOptOut: a root server started with an empty --handler-user
// starts (logging a warning that handlers run as root and can read the
// control plane's secrets), runs handlers as root, and does not refuse a
// redeploy of, or a rollback to, a package its handler wrote into. Only
// the files hotswap owns in the data directory get private modes.
func TestHandlerUserOptOut(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	dir := t.TempDir()
	readme := writeFile(t, dir, "README.md", "not hotswap's\n", 0o644)
	wal := writeFile(t, dir, "hotswap.db-wal", "", 0o644)
	s := startServerWith(t, dir, func(m *Main) { m.Config.HandlerUser = "" })
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "web"}, nil)
	v1 := zipDir(t, probePackage(t, "v1"))
	d1 := s.deploy("web", "production", v1)
	r := s.probe("web.localhost", "") // writes probe-written into its package
	if r.UID != "0" || r.Results["write package"] != "ok" {
		t.Fatalf("handler uid %s, write package %q: want root, allowed", r.UID, r.Results["write package"])
	}
	s.deploy("web", "production", v1)
	s.deploy("web", "production", zipDir(t, probePackage(t, "v2")))
	s.must(http.StatusOK, "POST", "/api/v1/apps/web/slots/production/rollback", map[string]string{"deployment": d1}, nil)
	if got := s.probe("web.localhost", "").Root; got != r.Root {
		t.Errorf("after the rollback the slot serves %s, want %s", got, r.Root)
	}
	if got := modeOf(t, readme); got != 0o644 {
		t.Errorf("mode of %s = %v, want it left 0644", readme, got)
	}
	if got := modeOf(t, wal); got != 0o600 {
		t.Errorf("mode of %s = %v, want 0600", wal, got)
	}
}

// TestIsolateWarnsWithoutHandlerUser: the warning of an empty
// --handler-user says that handlers run as root and what they can read.
func TestIsolateWarnsWithoutHandlerUser(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	var log bytes.Buffer
	m := NewMain()
	m.Config.DataDir = t.TempDir()
	m.Config.HandlerUser = ""
	m.logger = slog.New(slog.NewTextHandler(&log, nil))
	u, homes, err := m.isolate(context.Background())
	if err != nil || u != nil || homes != filepath.Join(m.Config.DataDir, "homes") {
		t.Fatalf("isolate = %v, %q, %v; want no user, the homes folder, no error", u, homes, err)
	}
	for _, want := range []string{"level=WARN", "handlers run as root", "secrets"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log %q does not contain %q", log.String(), want)
		}
	}
}

// TestDeployRefusesUnreachableRuntime: when the handler user cannot run the
// interpreter a package's executable names (a runtime installed in root's
// home), the deploy fails with a message naming the interpreter, the
// handler user and the ways out, instead of a bare "permission denied".
func TestDeployRefusesUnreachableRuntime(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	private := filepath.Join(t.TempDir(), "root-home")
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	interp := writeFile(t, private, ".pyenv/shims/sh", string(sh), 0o755)
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	pkg := probePackage(t, "")
	writeFile(t, pkg, "run.sh", "#!"+interp+"\nexec ./handler\n", 0o755)
	writeFile(t, pkg, "host.json", `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"run.sh"},"enableForwardingHttpRequest":true}}`, 0o644)

	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "py"}, nil)
	var res struct{ Error struct{ Message string } }
	code := s.call("POST", "/api/v1/apps/py/slots/production/deploy", zipDir(t, pkg), &res)
	if code == http.StatusOK {
		t.Fatal("deploy of a handler whose interpreter the handler user cannot reach succeeded")
	}
	for _, want := range []string{interp, private, defaultHandlerUser, "system-wide", "--handler-user"} {
		if !strings.Contains(res.Error.Message, want) {
			t.Errorf("deploy: %d %q does not name %q", code, res.Error.Message, want)
		}
	}
}

// TestNonRootServerKeepsWorking runs the server as an unprivileged user
// (nobody), as the server runs when not started by root: handlers run as
// that user and may write into their package folder. A redeploy of the
// same zip and a rollback to the package still work, and read-only folders
// a handler killed with the server left in its home (a Go module cache) do
// not stop the next start.
func TestNonRootServerKeepsWorking(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	top := t.TempDir()
	data := filepath.Join(top, "data")
	writeFile(t, data, "homes/s-left/go/pkg/mod/example.com/m@v1/go.mod", "module m\n", 0o444)
	for _, d := range []string{"go/pkg/mod/example.com/m@v1", "go/pkg/mod/example.com", "go/pkg/mod"} {
		if err := os.Chmod(filepath.Join(data, "homes/s-left", d), 0o555); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(top, "bin")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := writeFile(t, bin, "hotswap", string(self), 0o755)
	for _, d := range []string{top, bin} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	err = filepath.WalkDir(data, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
	shareTempDir(t, data)

	cmd := exec.Command(exe, "serve", "--data", data, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-level", "warn", "--drain-grace", "2s", "--shutdown-grace", "3s")
	cmd.Dir = bin
	cmd.Env = append(os.Environ(), "HOTSWAP_TEST_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &proc{cmd: cmd}
	banner := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if m := fnRe.FindStringSubmatch(line); m != nil {
				p.fnAddr = "127.0.0.1" + m[1]
			}
			if m := apiRe.FindStringSubmatch(line); m != nil {
				p.api = "http://" + m[1]
			}
			if strings.Contains(line, "admin token") {
				banner <- nil
				io.Copy(io.Discard, out)
				return
			}
		}
		banner <- io.ErrUnexpectedEOF
	}()
	select {
	case err := <-banner:
		if err != nil {
			cmd.Wait()
			t.Fatalf("the server run as nobody did not start: %s", stderr.Bytes())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the server run as nobody did not start within 60s: %s", stderr.Bytes())
	}
	if _, err := os.Stat(filepath.Join(data, "homes/s-left")); !os.IsNotExist(err) {
		t.Errorf("a home left by an earlier run: %v, want it removed", err)
	}
	s := p.server(t, data)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "web"}, nil)
	v1 := zipDir(t, probePackage(t, "v1"))
	d1 := s.deploy("web", "production", v1)
	r := s.probe("web.localhost", "") // writes probe-written into its package
	if r.UID != nobody.Uid || r.Results["write package"] != "ok" {
		t.Fatalf("handler uid %s, write package %q: want %s, allowed", r.UID, r.Results["write package"], nobody.Uid)
	}
	var res struct{ Error struct{ Message string } }
	if code := s.call("POST", "/api/v1/apps/web/slots/production/deploy?message=again", v1, &res); code != http.StatusOK {
		t.Errorf("redeploy of the same zip after its handler wrote into it: %d %q, want 200", code, res.Error.Message)
	}
	s.deploy("web", "production", zipDir(t, probePackage(t, "v2")))
	if code := s.call("POST", "/api/v1/apps/web/slots/production/rollback", map[string]string{"deployment": d1}, &res); code != http.StatusOK {
		t.Errorf("rollback to a package its handler wrote into: %d %q, want 200", code, res.Error.Message)
	}
}
