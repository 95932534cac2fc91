// Package pgtest gives tests a real PostgreSQL: a fresh, empty database per
// test on a throwaway server, and an HAProxy in front of test backends.
//
// The server is the one named by HOTSWAP_TEST_POSTGRES when that is set (a
// postgres:// URL whose user may CREATE DATABASE). Otherwise the first DSN
// call of a test process starts a server from Debian's postgresql package
// (installed by make deps): initdb into a temp folder, postgres on a free
// loopback port with trust authentication and fsync off, run as the
// unprivileged user postgres (or nobody) when the tests run as root. That
// server lives until Stop, which Main calls after the tests; it also dies
// with the test process when that is killed (parent-death signal).
//
// A package whose tests call DSN should say so in its TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// When PostgreSQL is not installed the test is skipped, or fails under CI
// (CI set in the environment), so CI cannot pass by skipping.
package pgtest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// Env names the environment variable with the URL of an existing server to
// use instead of starting one, e.g.
// postgres://hotswap:secret@127.0.0.1:5432/postgres?sslmode=disable.
const Env = "HOTSWAP_TEST_POSTGRES"

// ErrNotInstalled is returned (wrapped) when neither Env is set nor
// PostgreSQL's server programs can be found.
var ErrNotInstalled = errors.New("PostgreSQL is not installed (no initdb on PATH nor in /usr/lib/postgresql/*/bin); run make deps or set " + Env)

// dbTimeout bounds creating or dropping one database; a loaded two-core
// machine with several test processes can be slow.
const dbTimeout = 2 * time.Minute

// The server shared by the tests of this process, started by the first DSN.
var (
	sharedOnce sync.Once
	sharedMu   sync.Mutex
	sharedSrv  *Server
	sharedErr  error
)

// shared returns the process's server, starting it on first use.
func shared() (*Server, error) {
	sharedOnce.Do(func() {
		s, err := open()
		sharedMu.Lock()
		sharedSrv, sharedErr = s, err
		sharedMu.Unlock()
	})
	sharedMu.Lock()
	defer sharedMu.Unlock()
	return sharedSrv, sharedErr
}

// open returns the server named by Env, or starts a local one.
func open() (*Server, error) {
	if v := os.Getenv(Env); v != "" {
		return external(v)
	}
	return startLocal()
}

// DSN creates a fresh, empty database for the test and returns its
// postgres:// URL; the database is dropped (closing any connection left
// open) when the test and its cleanups registered later have finished.
// Databases of one process share one server, so tests may run in parallel.
func DSN(t testing.TB) string {
	t.Helper()
	s, err := shared()
	if errors.Is(err, ErrNotInstalled) {
		missing(t, err)
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	dsn, err := s.CreateDatabase(ctx, t.Name())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
		defer cancel()
		if err := s.DropDatabase(ctx, dsn); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dsn
}

// missing skips the test because a program is not installed, or fails it
// under CI, which must never pass by skipping.
func missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("pgtest: %v", err)
	}
	t.Skipf("pgtest: %v", err)
}

// Main runs the tests, stops the server they used, and exits with their
// status. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the server DSN started, waits for it to exit and removes its
// files. It is safe to call more than once and when no server was started;
// a DSN call after Stop fails. A TestMain that does more than Main calls it
// after m.Run.
func Stop() {
	sharedOnce.Do(func() {}) // no server may start after Stop
	sharedMu.Lock()
	s := sharedSrv
	sharedSrv, sharedErr = nil, errors.New("DSN called after Stop")
	sharedMu.Unlock()
	if s != nil {
		s.stop()
	}
}
