package ops

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hotswap/hotswap/internal/runtime"
)

// checkExecutable reports, before a handler is started as user u, when u
// could not run it: the executable path (a bare name is looked up in the
// server's PATH, as exec does) or the interpreter its #! line names lies
// behind a directory u cannot search, or is not executable (a script: not
// readable) by u. Otherwise the handler fails with a bare "fork/exec ...:
// permission denied", typically for a runtime installed in root's home
// (pyenv, nvm). A nil u (handlers run as the server's user) passes, and so
// does what cannot be found: starting reports that.
func checkExecutable(path string, u *runtime.User) error {
	if u == nil {
		return nil
	}
	if !strings.Contains(path, "/") {
		p, err := osexec.LookPath(path)
		if err != nil {
			return nil
		}
		path = p
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil
	}
	if err := runnable(abs, u); err != nil {
		return fmt.Errorf("%w; install the runtime system-wide (for example under /usr/local) or make it reachable for %s, or run handlers as the server's user with --handler-user= (they can then read the server's secrets)", err, u.Name)
	}
	return nil
}

// runnable checks path and the interpreter of its #! line, if any.
func runnable(path string, u *runtime.User) error {
	if err := canRun(path, "", u); err != nil {
		return err
	}
	if interp := interpreter(path); filepath.IsAbs(interp) {
		return canRun(interp, path, u)
	}
	return nil
}

// canRun checks that u can search every directory above path, both as
// written and with links resolved, and execute path, and read it if it is
// a script. by, if not empty, is the script naming path as its interpreter.
func canRun(path, by string, u *runtime.User) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil // not there: starting reports it
	}
	what := path
	if real != path {
		what = fmt.Sprintf("%s (a link to %s)", path, real)
	}
	if by != "" {
		what += " (the interpreter of " + by + ")"
	}
	for _, p := range []string{path, real} {
		for d := filepath.Dir(p); ; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			if err != nil {
				return nil
			}
			if !permits(fi, u, 0o1) {
				return fmt.Errorf("handler user %s (uid %d) cannot run %s: directory %s is %v, owner uid %d, group %d", u.Name, u.UID, what, d, fi.Mode(), owner(fi), group(fi))
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	if !permits(fi, u, 0o1) {
		return fmt.Errorf("handler user %s (uid %d) cannot run %s: it is %v, owner uid %d, group %d, not executable for that user", u.Name, u.UID, what, fi.Mode().Perm(), owner(fi), group(fi))
	}
	if interpreter(real) != "" && !permits(fi, u, 0o4) {
		return fmt.Errorf("handler user %s (uid %d) cannot run the script %s: it is %v, owner uid %d, group %d, not readable for that user", u.Name, u.UID, what, fi.Mode().Perm(), owner(fi), group(fi))
	}
	return nil
}

// permits reports whether the mode of fi grants bit (0o1 search/execute,
// 0o4 read) to u, which has no supplementary groups. ACLs are not looked
// at.
func permits(fi fs.FileInfo, u *runtime.User, bit fs.FileMode) bool {
	perm := fi.Mode().Perm()
	switch {
	case owner(fi) == u.UID:
		return perm&(bit<<6) != 0
	case group(fi) == u.GID:
		return perm&(bit<<3) != 0
	}
	return perm&bit != 0
}

func owner(fi fs.FileInfo) uint32 { return fi.Sys().(*syscall.Stat_t).Uid }
func group(fi fs.FileInfo) uint32 { return fi.Sys().(*syscall.Stat_t).Gid }

// interpreter returns the program a #! line at the start of the file path
// names, or "".
func interpreter(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	line, _ := bufio.NewReaderSize(f, 256).ReadSlice('\n')
	rest, ok := bytes.CutPrefix(line, []byte("#!"))
	if !ok {
		return ""
	}
	fields := strings.Fields(string(rest))
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}
