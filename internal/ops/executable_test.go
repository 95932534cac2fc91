package ops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotswap/hotswap/internal/runtime"
)

// TestCheckExecutable: a handler executable (found in the PATH or by its
// path) or the interpreter of its #! line that the handler user cannot
// reach or execute is refused with a message naming the path, the user and
// the way out; what that user can run passes, and so does anything when
// handlers run as the server's user.
func TestCheckExecutable(t *testing.T) {
	u := &runtime.User{Name: "hotswap-handler", UID: 64999, GID: 64999}
	dir := t.TempDir()
	// The test's temporary directories are private: open them up.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, mode os.FileMode, body string) string {
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
	private := filepath.Join(dir, "root-home")
	shim := write("root-home/.pyenv/shims/python3", 0o755, "#!/bin/sh\n")
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	ownerOnly := write("bin/owner-only", 0o700, "\x7fELF")
	unreadable := write("bin/unreadable-script", 0o711, "#!/bin/sh\n")
	open := write("bin/open", 0o755, "\x7fELF")
	script := write("app/run.sh", 0o755, "#!"+shim+" -u\nprint(1)\n")
	link := filepath.Join(dir, "bin/python3")
	if err := os.Symlink(shim, link); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "path"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(shim, filepath.Join(dir, "path", "python3")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Join(dir, "path")+":/usr/bin:/bin")

	tests := []struct {
		name, path string
		want       []string // substrings of the error; none: no error
	}{
		{"found in PATH behind a private home", "python3", []string{shim, private, "drwx------", "hotswap-handler", "uid 64999", "system-wide", "--handler-user="}},
		{"path behind a private home", shim, []string{shim, private}},
		{"link into a private home", link, []string{shim, private}},
		{"interpreter behind a private home", script, []string{shim, "the interpreter of " + script, private}},
		{"not executable for the user", ownerOnly, []string{ownerOnly, "not executable"}},
		{"script not readable for the user", unreadable, []string{unreadable, "not readable"}},
		{"open binary", open, nil},
		{"system command", "sh", nil},
		{"missing", "no-such-command-anywhere", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExecutable(tc.path, u)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("checkExecutable(%q) = %v, want nil", tc.path, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkExecutable(%q) = nil, want an error naming %q", tc.path, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if err := checkExecutable(shim, nil); err != nil {
		t.Errorf("checkExecutable without a handler user = %v, want nil", err)
	}
}
