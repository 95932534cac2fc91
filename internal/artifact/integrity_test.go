package artifact

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hotswap/hotswap"
)

// storedModes returns want, a tree as built by tree, with the modes stored
// content gets: read-only when the tests run as root.
func storedModes(want map[string]string) map[string]string {
	if os.Geteuid() != 0 { // Open seals only as root
		return want
	}
	r := strings.NewReplacer("dir 755", "dir 555", "file 755", "file 555", "file 644", "file 444")
	out := make(map[string]string, len(want))
	for k, v := range want {
		out[k] = r.Replace(v)
	}
	return out
}

// requireRoot skips a test that needs root, except in CI, which runs as root:
// there it fails, so the test cannot silently stop running.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root, and CI runs as root")
		}
		t.Skip("needs root: stored content is made read-only only when running as root")
	}
}

// openSealed opens a sealed store, as Open does when running as root.
func openSealed(t *testing.T) *Store {
	t.Helper()
	requireRoot(t)
	s, err := open(filepath.Join(t.TempDir(), "store"), Limits{}, true)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVerify: in a sealed store, a package whose content changed after Put
// is refused by Verify, with a message that names the package and the
// path; unchanged content passes. A Put of the same zip is not refused but
// replaces the changed content with the zip's, sealed again.
func TestVerify(t *testing.T) {
	data := makeZip(t,
		zent{name: "host.json", body: "{}"},
		zent{name: "bin/handler", body: "#!/bin/sh\n", mode: 0o755},
		zent{name: "current", mode: fs.ModeSymlink | 0o777, body: "bin"},
	)
	tests := []struct {
		name   string
		tamper func(dir string) error
		want   string
	}{
		{"file changed", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "bin/handler"), []byte("#!/bin/sh\nevil\n"), 0o755)
		}, "bin/handler was changed"},
		{"file added", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "bin/extra"), []byte("x"), 0o644)
		}, "bin/extra was added"},
		{"file removed", func(dir string) error {
			return os.Remove(filepath.Join(dir, "host.json"))
		}, "host.json was removed"},
		{"link retargeted", func(dir string) error {
			if err := os.Remove(filepath.Join(dir, "current")); err != nil {
				return err
			}
			return os.Symlink("host.json", filepath.Join(dir, "current"))
		}, "current was changed"},
		{"file became a link", func(dir string) error {
			if err := os.Remove(filepath.Join(dir, "host.json")); err != nil {
				return err
			}
			return os.Symlink("bin/handler", filepath.Join(dir, "host.json"))
		}, "host.json was changed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openSealed(t)
			digest, err := put(t, s, data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(digest); err != nil {
				t.Fatalf("Verify of untouched content: %v", err)
			}
			dir := s.Dir(digest)
			stored := tree(t, dir)
			unseal(t, dir)
			if err := tc.tamper(dir); err != nil {
				t.Fatal(err)
			}
			err = s.Verify(digest)
			if k := hotswap.ErrorKind(err); k != hotswap.FailedPrecondition {
				t.Fatalf("Verify after tampering = %v (kind %v), want %v", err, k, hotswap.FailedPrecondition)
			}
			msg := hotswap.ErrorMessage(err)
			for _, want := range []string{digest, tc.want, "changed after it was stored"} {
				if !strings.Contains(msg, want) {
					t.Errorf("Verify message %q does not contain %q", msg, want)
				}
			}
			var checked map[string]string
			got, err := put(t, s, data, func(dir string) error { checked = tree(t, dir); return nil })
			if err != nil || got != digest {
				t.Fatalf("Put of the same zip = %q, %v; want %q, nil", got, err, digest)
			}
			if diff := cmp.Diff(storedModes(checked), stored); diff != "" {
				t.Errorf("Put checked other content than the zip's (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(tree(t, dir), stored); diff != "" {
				t.Errorf("content after the repairing Put (-got +want):\n%s", diff)
			}
			if err := s.Verify(digest); err != nil {
				t.Errorf("Verify after the repairing Put: %v", err)
			}
			checkClean(t, s, digest)
		})
	}
}

// TestUnsealedSkipsVerify: when the store is not sealed, handlers run as the
// owner of the content and may write their state into their package
// directory; neither Verify (a rollback) nor a Put of the same zip (a
// redeploy) refuses the package then.
func TestUnsealedSkipsVerify(t *testing.T) {
	s, err := open(filepath.Join(t.TempDir(), "store"), Limits{}, false)
	if err != nil {
		t.Fatal(err)
	}
	data := makeZip(t, zent{name: "host.json", body: "{}"}, zent{name: "bin/handler", body: "#!/bin/sh\n", mode: 0o755})
	digest, err := put(t, s, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir(digest)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() == 0o555 {
		t.Fatalf("unsealed package directory: %v, %v; want it left writable", fi.Mode().Perm(), err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.txt"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(digest); err != nil {
		t.Errorf("Verify after a handler wrote state.txt: %v", err)
	}
	checked := false
	if got, err := put(t, s, data, func(string) error { checked = true; return nil }); err != nil || got != digest {
		t.Errorf("Put of the same zip = %q, %v; want %q, nil", got, err, digest)
	}
	if !checked {
		t.Error("Put of the same zip did not run check")
	}
	if err := s.Verify(strings.Repeat("0", 64)); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("Verify of a missing package = %v, want a NotFound error", err)
	}
	checkClean(t, s, digest)
}

// TestOpenSealsRecords: a package stored unsealed, into which a handler
// wrote, is sealed by the first sealed Open with a manifest of its content
// as it is then, so the handler's writes do not refuse it afterwards.
func TestOpenSealsRecords(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "store")
	s, err := open(dir, Limits{}, false)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := put(t, s, makeZip(t, zent{name: "host.json", body: "{}"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(digest), "state.txt"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err = open(dir, Limits{}, true); err != nil {
		t.Fatal(err)
	}
	if !isSealed(s.Dir(digest)) {
		t.Error("package not sealed by a sealed Open")
	}
	if err := s.Verify(digest); err != nil {
		t.Errorf("Verify after sealing: %v", err)
	}
}

// TestVerifyWithoutManifest: a package stored before manifests existed gets
// one at its first Verify, which then guards it.
func TestVerifyWithoutManifest(t *testing.T) {
	s := openSealed(t)
	digest, err := put(t, s, makeZip(t, zent{name: "a", body: "a"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.sumPath(digest)); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(digest); err != nil {
		t.Fatalf("Verify without a manifest: %v", err)
	}
	if _, err := os.Stat(s.sumPath(digest)); err != nil {
		t.Fatalf("Verify recorded no manifest: %v", err)
	}
	unseal(t, s.Dir(digest))
	if err := os.WriteFile(filepath.Join(s.Dir(digest), "a"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(digest); hotswap.ErrorKind(err) != hotswap.FailedPrecondition {
		t.Errorf("Verify after tampering = %v, want a FailedPrecondition error", err)
	}
	if err := s.Verify(strings.Repeat("0", 64)); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("Verify of a missing package = %v, want a NotFound error", err)
	}
}

// TestOpenSeals: running as root, Open makes stored content read-only even
// when it was stored writable (by an earlier version), makes the store
// directory traversable only, and drops manifests of packages that are gone.
func TestOpenSeals(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "store")
	s, err := Open(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	digest, err := put(t, s, makeZip(t,
		zent{name: "host.json", body: "{}"},
		zent{name: "sub/run", body: "x", mode: 0o755},
	), nil)
	if err != nil {
		t.Fatal(err)
	}
	unseal(t, s.Dir(digest))
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(s.sums, strings.Repeat("a", 64))
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		".":         "dir 555",
		"host.json": "file 444 {}",
		"sub":       "dir 555",
		"sub/run":   "file 555 x",
	}
	got := tree(t, s.Dir(digest))
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	for name, want := range map[string]fs.FileMode{dir: 0o711, s.sums: 0o700, s.tmp: 0o700} {
		if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", name, fi.Mode().Perm(), err, want)
		}
	}
	checkClean(t, s, digest)
	if err := s.Verify(digest); err != nil {
		t.Errorf("Verify after sealing: %v", err)
	}
}

// unseal makes stored content writable again, as an attacker with the
// server's rights could.
func unseal(tb testing.TB, dir string) {
	tb.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Chmod(p, 0o755)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			return os.Chmod(p, mode)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}
