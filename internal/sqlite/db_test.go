package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
)

// t0 is the first time the test clock returns.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// clock returns a Now function that starts at t0 and advances one second per
// call, so every timestamp differs and ordering by time is deterministic.
func clock() func() time.Time {
	var mu sync.Mutex
	t := t0.Add(-time.Second)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// openAt opens the store in path with a test clock, closed when t ends.
func openAt(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	db.Now = clock()
	t.Cleanup(func() { db.Close() })
	return db
}

// newDB opens a new store in a temporary directory.
func newDB(t testing.TB) *DB {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "hotswap.db"))
}

// masterKey returns a master key with value v.
func masterKey(v string) hotswap.Key {
	return hotswap.Key{Scope: hotswap.ScopeMaster, Name: hotswap.MasterKeyName, Value: v}
}

// mustCreateApp creates app name with a master key.
func mustCreateApp(t testing.TB, db *DB, name string) {
	t.Helper()
	if err := db.CreateApp(context.Background(), hotswap.App{Name: name}, []hotswap.Key{masterKey("master-" + name)}); err != nil {
		t.Fatalf("CreateApp(%q) = %v", name, err)
	}
}

// mustCreateSlot creates slot name of app.
func mustCreateSlot(t testing.TB, db *DB, app, name string) {
	t.Helper()
	if err := db.CreateSlot(context.Background(), hotswap.Slot{App: app, Name: name}, nil); err != nil {
		t.Fatalf("CreateSlot(%q, %q) = %v", app, name, err)
	}
}

// checkKind fails t unless err has kind want.
func checkKind(t testing.TB, err error, want hotswap.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want kind %v", want)
	}
	if got := hotswap.ErrorKind(err); got != want {
		t.Fatalf("ErrorKind(%v) = %v, want %v", err, got, want)
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub dir?x%20", "hotswap.db")
	if _, err := Open(ctx, path); err == nil {
		t.Fatalf("Open in a missing directory succeeded")
	}
	path = filepath.Join(t.TempDir(), "odd?name%20.db")
	db := openAt(t, path)
	// The '?' and '%' are part of the file name, not URI syntax.
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}

	pragmas := []struct {
		name string
		want string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
		{"user_version", fmt.Sprint(len(mustGlob(t, "migrations/*.sql")))},
	}
	for _, p := range pragmas {
		for pool, sdb := range map[string]*sql.DB{"write": db.write, "read": db.read} {
			var got string
			if err := sdb.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(&got); err != nil {
				t.Fatalf("%s PRAGMA %s: %v", pool, p.name, err)
			}
			if got != p.want {
				t.Errorf("%s PRAGMA %s = %q, want %q", pool, p.name, got, p.want)
			}
		}
	}
	if _, err := db.read.ExecContext(ctx, "INSERT INTO meta (key, value) VALUES ('a', 'b')"); err == nil {
		t.Errorf("write through the read pool succeeded")
	}

	if err := db.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	// Reopening runs no migration again.
	db = openAt(t, path)
	if err := db.SetMeta(ctx, "k", "v"); err != nil {
		t.Fatalf("SetMeta after reopen: %v", err)
	}

	for _, bad := range []string{"", ":memory:", "file:x.db"} {
		if _, err := Open(ctx, bad); hotswap.ErrorKind(err) != hotswap.Invalid {
			t.Errorf("Open(%q) = %v, want kind Invalid", bad, err)
		}
	}
}

func mustGlob(t testing.TB, pattern string) []string {
	t.Helper()
	names, err := fs.Glob(migrationFS, pattern)
	if err != nil || len(names) == 0 {
		t.Fatalf("glob %s: %v (%d files)", pattern, err, len(names))
	}
	return names
}
