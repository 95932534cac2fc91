package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// User is an account handler processes run as (see Manager.User).
type User struct {
	Name string
	UID  uint32
	GID  uint32 // primary group; the only group the handlers get
}

// LookupUser returns the account called name. It refuses root and the root
// group: handlers must not get the rights the user switch is meant to take
// away.
func LookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("handler user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("handler user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("handler user %q: gid %q: %w", name, u.Gid, err)
	}
	if uid == 0 || gid == 0 {
		return nil, fmt.Errorf("handler user %q has uid %d and gid %d: choose an unprivileged user, not root or the root group", name, uid, gid)
	}
	return &User{Name: name, UID: uint32(uid), GID: uint32(gid)}, nil
}

// useradd serializes the creation of users by this process.
var useradd sync.Mutex

// EnsureUser returns the account called name, creating it first if it does
// not exist, as a system user with its own group, no home directory and no
// login shell (useradd --system). created reports whether it did. Creating
// a user needs root.
func EnsureUser(ctx context.Context, name string) (u *User, created bool, err error) {
	useradd.Lock()
	defer useradd.Unlock()
	u, err = LookupUser(name)
	if err == nil || !errors.As(err, new(user.UnknownUserError)) {
		return u, false, err
	}
	// useradd fails while another process (another server starting) holds
	// the lock of /etc/passwd: try a few times.
	for attempt := 0; ; attempt++ {
		cmd := exec.CommandContext(ctx, "useradd", "--system", "--no-create-home", "--user-group",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name)
		out, runErr := cmd.CombinedOutput()
		// Another process may have created it meanwhile.
		if u, err = LookupUser(name); err == nil {
			return u, runErr == nil, nil
		}
		if runErr == nil {
			return nil, false, err
		}
		if attempt == 9 || ctx.Err() != nil {
			return nil, false, fmt.Errorf("create handler user %q: useradd: %v: %s", name, runErr, strings.TrimSpace(string(out)))
		}
		time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
	}
}

// makeHome creates the set's private home, owned by the Manager's User.
func (s *Set) makeHome() error {
	if s.home == "" {
		return nil
	}
	if err := os.Mkdir(s.home, 0o700); err != nil {
		return fmt.Errorf("create home: %w", err)
	}
	err := os.Chmod(s.home, 0o700) // whatever the umask
	if err == nil && s.m.User != nil {
		err = os.Chown(s.home, int(s.m.User.UID), int(s.m.User.GID))
	}
	if err != nil {
		os.Remove(s.home)
		return fmt.Errorf("create home: %w", err)
	}
	return nil
}

// removeHome removes the set's home and whatever its handlers left there.
func (s *Set) removeHome() {
	if s.home == "" {
		return
	}
	if err := RemoveAll(s.home); err != nil {
		s.log.Error("remove handler home", "dir", s.home, "err", err)
	}
}

// RemoveAll is os.RemoveAll for what handlers left behind, in their homes
// for example: unless the server is root, a directory a handler made
// read-only (a Go module cache) cannot be emptied until it is writable
// again, so when removing fails, RemoveAll makes every directory in dir
// writable for its owner and tries again.
func RemoveAll(dir string) error {
	err := os.RemoveAll(dir)
	if err != nil {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
		err = os.RemoveAll(dir)
	}
	return err
}
