package runtime

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireRoot skips a test that needs root, except in CI, which runs as
// root: there it fails, so the test cannot silently stop running.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root, and CI runs as root")
		}
		t.Skip("needs root to run handlers as another user")
	}
}

// nobody returns the unprivileged account the tests run handlers as.
func nobody(t *testing.T) *User {
	t.Helper()
	u, err := LookupUser("nobody")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// openDir returns a new directory that other users can traverse (a test's
// temporary directories are 0700).
func openDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// openHandler returns a copy of the test handler that other users can run.
func openHandler(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(handlerPath)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(openDir(t), "handler")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// procIDs returns the Uid, Gid and Groups lines of /proc/pid/status.
func procIDs(t *testing.T, pid int) (uid, gid, groups string) {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		v = strings.Join(strings.Fields(v), " ")
		switch k {
		case "Uid":
			uid = v
		case "Gid":
			gid = v
		case "Groups":
			groups = v
		}
	}
	return uid, gid, groups
}

// TestUserAndHome: with Manager.User and Homes, the handler runs as that
// user with no supplementary groups (real, effective, saved and file-system
// ids), gets a private home it owns as HOME and TMPDIR, keeps it across a
// restart, and stopping the set kills it and removes the home.
func TestUserAndHome(t *testing.T) {
	requireRoot(t)
	u := nobody(t)
	homes := openDir(t)
	m := newManager(t)
	m.User = u
	m.Homes = homes
	s := start(t, m, Spec{Path: openHandler(t), Env: []string{"HOME=/root", "TMPDIR=/tmp"}, StartTimeout: 10 * time.Second})

	check := func(when string) string {
		t.Helper()
		addr := mustAddr(t, s)
		id := strconv.FormatUint(uint64(u.UID), 10)
		gid := strconv.FormatUint(uint64(u.GID), 10)
		gotUID, gotGID, groups := procIDs(t, s.PID())
		if want := strings.Repeat(id+" ", 3) + id; gotUID != want {
			t.Errorf("%s: Uid %q, want %q", when, gotUID, want)
		}
		if want := strings.Repeat(gid+" ", 3) + gid; gotGID != want {
			t.Errorf("%s: Gid %q, want %q", when, gotGID, want)
		}
		if groups != "" {
			t.Errorf("%s: supplementary groups %q, want none", when, groups)
		}
		home := get(t, addr, "/env?k=HOME")
		if filepath.Dir(home) != homes {
			t.Fatalf("%s: HOME=%q, want a directory in %s", when, home, homes)
		}
		if tmp := get(t, addr, "/env?k=TMPDIR"); tmp != home {
			t.Errorf("%s: TMPDIR=%q, want HOME %q", when, tmp, home)
		}
		fi, err := os.Stat(home)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o700 || st.Uid != u.UID || st.Gid != u.GID {
			t.Errorf("%s: home mode %v owner %d:%d, want 0700 %d:%d", when, fi.Mode().Perm(), st.Uid, st.Gid, u.UID, u.GID)
		}
		return home
	}
	home := check("first start")
	if err := os.WriteFile(filepath.Join(home, "left"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	old := s.PID()
	http.Get("http://" + mustAddr(t, s) + "/crash") // the handler exits: no response
	waitFor(t, 20*time.Second, "restart", func() bool { p := s.PID(); return p != 0 && p != old })
	if got := check("after a restart"); got != home {
		t.Errorf("home after a restart = %q, want %q", got, home)
	}

	pid := s.PID()
	if err := s.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	waitGone(t, 5*time.Second, pid)
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("home after Stop: %v, want it removed", err)
	}
}

// TestStartFailureRemovesHome: a set that never got ready leaves no home.
func TestStartFailureRemovesHome(t *testing.T) {
	homes := t.TempDir()
	m := newManager(t)
	m.Homes = homes
	if _, err := m.Start(t.Context(), handlerSpec("HANDLER_EXIT=3")); err == nil {
		t.Fatal("Start succeeded, want an error")
	}
	if ents, err := os.ReadDir(homes); err != nil || len(ents) != 0 {
		t.Errorf("homes holds %v (%v), want nothing", ents, err)
	}
}

// TestPdeathsigOtherUser: the kernel clears the parent-death signal when a
// process changes its credentials, so it must be set after the switch; a
// handler running as another user still dies with a server killed with
// SIGKILL, and the warden still sweeps what it started.
func TestPdeathsigOtherUser(t *testing.T) {
	requireRoot(t)
	env := []string{"HOTSWAP_RUNTIME_USER=nobody", "HOTSWAP_RUNTIME_HANDLER=" + openHandler(t)}
	t.Run("pdeathsig", func(t *testing.T) {
		handler, _ := killedServer(t, "", false, env...)
		waitGone(t, 2*time.Second, handler)
	})
	t.Run("warden", func(t *testing.T) {
		handler, orphan := killedServer(t, "test-"+strconv.Itoa(os.Getpid())+"-user", true, env...)
		waitGone(t, 2*time.Second, handler)
		waitGone(t, 2*time.Second, orphan)
	})
}

// TestEnvironHome: a private home replaces the server's HOME and TMPDIR and
// cannot be overridden by Spec.Env.
func TestEnvironHome(t *testing.T) {
	env := environ([]string{"HOME=/elsewhere", "TMPDIR=/x", "A=b"}, 1234, "/homes/abc", nil)
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v // last wins, as in exec.Cmd
	}
	if got["HOME"] != "/homes/abc" || got["TMPDIR"] != "/homes/abc" || got["A"] != "b" {
		t.Errorf("environ = %q, want HOME and TMPDIR /homes/abc and A=b", env)
	}
}
