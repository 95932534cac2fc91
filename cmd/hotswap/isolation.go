package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hotswap/hotswap/internal/runtime"
)

// defaultHandlerUser is the account handlers run as when the server runs as
// root; serve creates it when it is missing.
const defaultHandlerUser = "hotswap-handler"

// owned are the names hotswap creates directly in the data directory; the
// modes of these only are set at start: --data may name a folder that
// holds other things too.
var owned = map[string]bool{
	"hotswap.db": true, "hotswap.db-wal": true, "hotswap.db-shm": true, "hotswap.db-journal": true,
	"admin-token": true, "admin-token.tmp": true, "lock": true,
}

// isolate keeps handlers away from what the server keeps to itself. It
// returns the user handlers run as (nil: the server's own, when it is not
// root or when --handler-user is empty) and the directory of their private
// homes.
//
// The data directory is laid out so that a handler running as the handler
// user can reach its package and its home and nothing else:
//
//	<data>/                0711 (0700 when handlers run as the server's user):
//	                       others may pass through, not list
//	hotswap.db, -wal, -shm,
//	admin-token, lock      0600
//	packages/              0711, package content root-owned and read-only
//	                       (see artifact.Open); sums/ and tmp/ 0700
//	homes/                 0711; homes/<set> 0700, owned by the handler user,
//	                       the handler's HOME and TMPDIR, removed at stop
//
// Nothing else in <data> is touched (--data may name a folder that holds
// other things). The modes are set at every start, so a data directory made
// by an earlier version, or loosened by hand, is tightened too.
func (m *Main) isolate(ctx context.Context) (user *runtime.User, homes string, err error) {
	dir, err := filepath.Abs(m.Config.DataDir)
	if err != nil {
		return nil, "", fmt.Errorf("data directory: %w", err)
	}
	if os.Geteuid() == 0 {
		if name := m.Config.HandlerUser; name == "" {
			m.logger.Warn("--handler-user is empty: handlers run as root and can read the control plane's secrets (the admin token, the database) and change any package")
		} else {
			var created bool
			if user, created, err = runtime.EnsureUser(ctx, name); err != nil {
				return nil, "", err
			}
			if created {
				m.logger.Info("created the handler user", "user", name, "uid", user.UID)
			}
		}
	}
	mode := fs.FileMode(0o700)
	if user != nil {
		mode = 0o711
		if err := reachable(dir, user); err != nil {
			return nil, "", err
		}
	}
	if err := os.Chmod(dir, mode); err != nil {
		return nil, "", fmt.Errorf("data directory: %w", err)
	}
	// SQLite creates the -wal and -shm files with the mode of the database
	// file, so a new database starts private.
	db := filepath.Join(dir, "hotswap.db")
	if f, err := os.OpenFile(db, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, "", fmt.Errorf("create store: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, "", fmt.Errorf("data directory: %w", err)
	}
	for _, e := range ents {
		if !owned[e.Name()] || e.Type()&fs.ModeSymlink != 0 {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, "", fmt.Errorf("data directory: %w", err)
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(filepath.Join(dir, e.Name()), perm&^0o077); err != nil {
				return nil, "", fmt.Errorf("data directory: make %s private: %w", e.Name(), err)
			}
		}
	}
	// What handlers of an earlier run left in their homes goes; they are
	// swept before any handler of this run starts.
	homes = filepath.Join(dir, "homes")
	if err := runtime.RemoveAll(homes); err != nil {
		return nil, "", fmt.Errorf("clean handler homes: %w", err)
	}
	if err := os.Mkdir(homes, 0o711); err != nil {
		return nil, "", fmt.Errorf("handler homes: %w", err)
	}
	if err := os.Chmod(homes, 0o711); err != nil {
		return nil, "", fmt.Errorf("handler homes: %w", err)
	}
	return user, homes, nil
}

// reachable checks that user can pass through every directory above the
// data directory dir, so that it can reach the packages inside (ACLs are
// not looked at). Otherwise every handler would fail to start with a bare
// "permission denied".
func reachable(dir string, user *runtime.User) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		bit := fs.FileMode(0o001)
		switch {
		case st.Uid == user.UID:
			bit = 0o100
		case st.Gid == user.GID:
			bit = 0o010
		}
		if fi.Mode()&bit == 0 {
			return fmt.Errorf("handler user %s (uid %d) cannot reach the packages in data directory %s: %s is %v, owner %d; make it traversable (chmod o+x %s) or use another --data",
				user.Name, user.UID, dir, p, fi.Mode().Perm(), st.Uid, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
