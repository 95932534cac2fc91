package pgtest

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// server returns the process's shared server, or skips (fails under CI)
// like DSN when PostgreSQL is missing.
func server(t *testing.T) *Server {
	t.Helper()
	s, err := shared()
	if errors.Is(err, ErrNotInstalled) {
		missing(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// userTables counts the tables outside PostgreSQL's own schemas.
func userTables(ctx context.Context, conn *pgx.Conn) (int, error) {
	var n int
	err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&n)
	return n, err
}

// fill checks that the database of dsn is empty, then writes rows tagged
// tag into a table named like in every other database, and reads back only
// its own.
func fill(dsn, tag string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if n, err := userTables(ctx, conn); err != nil || n != 0 {
		return errors.Join(err, errors.New(tag+": database is not empty: "+strconv.Itoa(n)+" tables"))
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE items (tag text NOT NULL)"); err != nil {
		return err
	}
	for range 50 {
		if _, err := conn.Exec(ctx, "INSERT INTO items VALUES ($1)", tag); err != nil {
			return err
		}
	}
	var n, other int
	if err := conn.QueryRow(ctx, "SELECT count(*) FILTER (WHERE tag = $1), count(*) FILTER (WHERE tag <> $1) FROM items", tag).Scan(&n, &other); err != nil {
		return err
	}
	if n != 50 || other != 0 {
		return errors.New(tag + ": read back " + strconv.Itoa(n) + " own rows and " + strconv.Itoa(other) + " others, want 50 and 0")
	}
	return nil
}

func TestDSNFreshAndConcurrent(t *testing.T) {
	t.Parallel()
	dsns := []string{DSN(t), DSN(t), DSN(t)}
	seen := make(map[string]bool)
	for _, dsn := range dsns {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if u.Scheme != "postgres" || seen[u.Path] {
			t.Fatalf("DSN %s: want a postgres:// URL of a database not handed out before", u.Redacted())
		}
		seen[u.Path] = true
		if os.Getenv(Env) == "" {
			if got := u.Query().Get("sslmode"); got != "disable" {
				t.Errorf("DSN %s: sslmode %q, want disable", dsn, got)
			}
			if h := u.Hostname(); h != "127.0.0.1" {
				t.Errorf("DSN %s: host %q, want loopback", dsn, h)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(dsns))
	for i, dsn := range dsns {
		wg.Go(func() { errs[i] = fill(dsn, "db"+strconv.Itoa(i)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func TestDSNDroppedAfterTest(t *testing.T) {
	t.Parallel()
	s := server(t)
	var (
		dsn    string
		leaked *pgx.Conn
	)
	t.Run("inner", func(t *testing.T) {
		dsn = DSN(t)
		// A connection left open: the drop must end it (FORCE).
		leaked = connect(t, dsn)
		if _, err := leaked.Exec(context.Background(), "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
	})
	if dsn == "" || leaked == nil {
		t.Fatal("inner test did not get a database")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer leaked.Close(ctx)
	u, _ := url.Parse(dsn)
	admin := connect(t, s.admin.String())
	defer admin.Close(ctx)
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", strings.TrimPrefix(u.Path, "/")).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test", u.Path)
	}
	if err := leaked.Ping(ctx); err == nil {
		t.Error("a connection to the dropped database still works")
	}
	// Dropping it again is not an error.
	if err := s.DropDatabase(ctx, dsn); err != nil {
		t.Errorf("drop again: %v", err)
	}
}

// procUID returns the real uid of a local process.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
			uid, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return uid
		}
	}
	t.Fatalf("no Uid in /proc/%d/status", pid)
	return 0
}

// TestLocalServerUser checks that a local server runs, and owns its files,
// as an unprivileged user when the tests run as root (initdb and postgres
// refuse root), and as ourselves otherwise. It starts its own local server
// when Env names another one.
func TestLocalServerUser(t *testing.T) {
	t.Parallel()
	s := server(t)
	if s.proc == nil {
		if _, err := findBin(); err != nil {
			missing(t, err)
		}
		var err error
		if s, err = startLocal(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.stop)
	}
	want := os.Geteuid()
	if want == 0 {
		cred, err := account()
		if err != nil {
			t.Fatal(err)
		}
		want = int(cred.Uid)
		if want == 0 {
			t.Fatal("account() picked root")
		}
	}
	if got := procUID(t, s.proc.pid); got != want {
		t.Errorf("postmaster runs as uid %d, want %d", got, want)
	}
	fi, err := os.Stat(filepath.Join(s.proc.dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if got := int(fi.Sys().(*syscall.Stat_t).Uid); got != want {
		t.Errorf("data folder owned by uid %d, want %d", got, want)
	}
	// So does a backend, the postmaster's child serving a connection.
	conn := connect(t, s.admin.String())
	defer conn.Close(context.Background())
	var pid int
	if err := conn.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if got := procUID(t, pid); got != want {
		t.Errorf("backend runs as uid %d, want %d", got, want)
	}
}

// TestRun checks the benchmark's entry point: its server hands out
// databases, and its stop func stops a local server and removes its files
// but leaves Env's server alone.
func TestRun(t *testing.T) {
	t.Parallel()
	server(t) // skips, or fails under CI, like every test here
	s, stop, err := Run()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := s.CreateDatabase(ctx, "bench")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	if err := fill(dsn, "bench"); err != nil {
		t.Error(err)
	}
	if err := s.DropDatabase(ctx, dsn); err != nil {
		t.Error(err)
	}
	stop()
	conn, err := pgx.Connect(ctx, s.admin.String())
	if s.proc == nil {
		if err != nil {
			t.Errorf("%s's server no longer answers after stop: %v", Env, err)
		} else {
			conn.Close(ctx)
		}
		return
	}
	if err == nil {
		conn.Close(ctx)
		t.Error("the local server still answers after stop")
	}
	if _, err := os.Stat(s.proc.dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after stop (%v)", s.proc.dir, err)
	}
}

func TestExternal(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"host=127.0.0.1 password=hunter2",
		"mysql://u:hunter2@127.0.0.1/db",
		"postgres:///db?password=hunter2",
		"postgres://u:hunter2@[::1/db",
	} {
		_, err := external(raw)
		if err == nil {
			t.Errorf("external(%q): no error", raw)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("external(%q): error %q shows the password", raw, err)
		}
	}

	// Through the shared server's address, as Env would name it, with no
	// database (the postgres database is the default) and a password the
	// trust authentication ignores.
	s := server(t)
	u := *s.admin
	u.User = url.UserPassword(u.User.Username(), "secret")
	u.Path = ""
	ext, err := external(u.String())
	if err != nil {
		t.Fatal(err)
	}
	if ext.admin.Path != "/postgres" {
		t.Errorf("admin database %q, want /postgres", ext.admin.Path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := ext.CreateDatabase(ctx, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := url.Parse(dsn); p.User.String() != u.User.String() {
		t.Errorf("DSN %s lost the user and password of %s", p.Redacted(), u.Redacted())
	}
	if err := fill(dsn, "ext"); err != nil {
		t.Error(err)
	}
	if err := ext.DropDatabase(ctx, dsn); err != nil {
		t.Error(err)
	}
	ext.stop() // leaves the server alone
	conn := connect(t, s.admin.String())
	conn.Close(ctx)
}

func TestDatabaseName(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for _, hint := range []string{
		"",
		"TestX",
		"TestX",
		"TestCluster/three_nodes:swap-ÄÖ \"quoted\"",
		strings.Repeat("VeryLongTestName", 10),
	} {
		name := databaseName(hint)
		if len(name) > 63 {
			t.Errorf("databaseName(%q) = %q: longer than PostgreSQL's 63 bytes", hint, name)
		}
		if !strings.HasPrefix(name, "pgtest_") || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("databaseName(%q) = %q: want pgtest_ and only a-z, 0-9, _", hint, name)
		}
		if seen[name] {
			t.Errorf("databaseName(%q) = %q twice", hint, name)
		}
		seen[name] = true
	}
}

// TestSweep checks that the folder of a server whose process died is
// removed, and one whose owner lives (holds the lock) is kept.
func TestSweep(t *testing.T) {
	t.Parallel()
	old := time.Now().Add(-time.Hour)
	// mk makes a server's folder, locked by this test when alive, and only
	// then makes it old: a sweep that another package's server runs
	// meanwhile must not find alive's folder old and unlocked (it would
	// remove it) or locked by its own check (as CI once saw).
	mk := func(alive bool) string {
		dir, err := os.MkdirTemp("", dirPrefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.WriteFile(filepath.Join(dir, "lock"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(filepath.Join(dir, "data"), 0o700)
		if alive {
			f, err := os.Open(filepath.Join(dir, "lock"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
				t.Fatal(err) // nothing else knows the folder while it is new
			}
		}
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dead, alive := mk(false), mk(true)
	// Another sweep (a server another test or package starts meanwhile)
	// may hold dead's lock for a moment while it removes the folder, and
	// this one then passes it by: it is gone soon either way.
	deadline := time.Now().Add(5 * time.Second)
	for {
		sweep()
		_, err := os.Stat(dead)
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stale %s not removed (%v)", dead, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(alive, "data")); err != nil {
		t.Errorf("%s of a live owner removed: %v", alive, err)
	}
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int // sign
	}{
		{"15", "16", -1},
		{"9.6", "10", -1},
		{"16", "9.6", 1},
		{"15", "15", 0},
	} {
		got := compareVersions(tc.a, tc.b)
		if (got < 0) != (tc.want < 0) || (got > 0) != (tc.want > 0) {
			t.Errorf("compareVersions(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
		}
	}
}
