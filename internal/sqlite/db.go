// Package sqlite is the store of hotswap: apps, slots, deployments, settings,
// keys, operations and the activity log, kept in one SQLite file through the
// pure Go driver modernc.org/sqlite.
//
// Writes go through a single connection, so concurrent Go callers queue in
// database/sql instead of failing with SQLITE_BUSY; reads use a separate pool
// of read-only connections, which WAL mode lets run alongside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotswap/hotswap"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is the store. Open it with Open; it is safe for concurrent use.
type DB struct {
	// Now returns the current time, used for timestamps the caller leaves
	// zero. Open sets it to time.Now; tests replace it before use.
	Now func() time.Time

	path    string
	write   *sql.DB // one connection: all writes are serialized here
	read    *sql.DB // read-only connections
	created bool    // Open made the schema from nothing

	closeOnce sync.Once
	closeErr  error
}

// Open opens the store in the SQLite file at path, creating it if needed,
// and brings its schema up to date.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.HasPrefix(path, "file:") {
		return nil, hotswap.Errorf(hotswap.Invalid, "database path %q: want a file name", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// A file: URI with an escaped path, so a '?' or '%' in the path is a
	// path character, not the start of parameters.
	name := "file:" + (&url.URL{Path: filepath.ToSlash(abs)}).EscapedPath()
	common := "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"

	db := &DB{Now: time.Now, path: path}
	// _txlock=immediate takes the write lock at BEGIN, so a transaction that
	// reads before it writes cannot fail to upgrade its lock halfway.
	db.write, err = sql.Open("sqlite", name+"?mode=rwc&_txlock=immediate&_pragma=journal_mode(WAL)&"+common)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)

	var mode string
	if err := db.write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.write.Close()
		return nil, corrupt(path, err, fmt.Errorf("open database %s: %w", path, err))
	}
	if !strings.EqualFold(mode, "wal") {
		db.write.Close()
		return nil, fmt.Errorf("open database %s: journal mode is %q, not wal", path, mode)
	}
	if err := db.check(ctx); err != nil {
		db.write.Close()
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.write.Close()
		return nil, corrupt(path, err, fmt.Errorf("open database %s: %w", path, err))
	}

	db.read, err = sql.Open("sqlite", name+"?mode=rw&_pragma=query_only(1)&"+common)
	if err != nil {
		db.write.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}

// Close closes the store. It may be called more than once; later calls
// return the result of the first.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		var errs []error
		if db.read != nil {
			errs = append(errs, db.read.Close())
		}
		if db.write != nil {
			errs = append(errs, db.write.Close())
		}
		db.closeErr = errors.Join(errs...)
	})
	return db.closeErr
}

// migrate applies, in order, each embedded migration newer than the file's
// user_version, each in its own transaction together with the new version,
// so a crash leaves the schema at one version or the next.
func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for i, name := range names {
		// Files are numbered 0001_..., 0002_...; the number is the version.
		base := filepath.Base(name)
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v != i+1 {
			return fmt.Errorf("migration %s: want number %04d", base, i+1)
		}
	}
	for {
		done := false
		err := db.update(ctx, func(tx *sql.Tx) error {
			var cur int
			if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&cur); err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if cur > len(names) {
				return fmt.Errorf("schema version %d is newer than this program knows (%d)", cur, len(names))
			}
			if cur == len(names) {
				done = true
				return nil
			}
			base := filepath.Base(names[cur])
			src, err := migrationFS.ReadFile(names[cur])
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(src)); err != nil {
				return fmt.Errorf("migration %s: %w", base, err)
			}
			// PRAGMA user_version is transactional: it commits with the schema.
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", cur+1)); err != nil {
				return fmt.Errorf("migration %s: %w", base, err)
			}
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}

// update runs fn in a write transaction and commits it if fn returns nil.
// A full disk is reported as such (see diskFull).
func (db *DB) update(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return diskFull(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return diskFull(err)
	}
	return diskFull(tx.Commit())
}

// view runs fn in a read transaction, so all its queries see one snapshot.
func (db *DB) view(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// querier is what *sql.Tx and *sql.DB share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// now returns the current time in UTC.
func (db *DB) now() time.Time {
	if db.Now == nil {
		return time.Now().UTC()
	}
	return db.Now().UTC()
}

// orNow returns t, or the current time if t is zero.
func (db *DB) orNow(t time.Time) time.Time {
	if t.IsZero() {
		return db.now()
	}
	return t.UTC()
}

// timeArg is how a time is stored: unix nanoseconds, NULL for the zero time.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// nullTime scans a stored time.
type nullTime struct{ t *time.Time }

// Scan implements sql.Scanner.
func (n nullTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*n.t = time.Time{}
	case int64:
		*n.t = time.Unix(0, v).UTC()
	default:
		return fmt.Errorf("stored time has type %T, want int64", v)
	}
	return nil
}

// isConstraint reports whether err is the SQLite extended result code code.
func isConstraint(err error, code int) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == code
}

// isUnique reports whether err is a violated UNIQUE or PRIMARY KEY constraint.
func isUnique(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) || isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// exists reports whether query returns a row.
func exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// appMustExist returns a NotFound error if app does not exist.
func appMustExist(ctx context.Context, q querier, app string) error {
	ok, err := exists(ctx, q, "SELECT 1 FROM apps WHERE name = ?", app)
	if err != nil {
		return err
	}
	if !ok {
		return hotswap.Errorf(hotswap.NotFound, "app %q not found", app)
	}
	return nil
}

// slotMustExist returns a NotFound error if the app or its slot does not exist.
func slotMustExist(ctx context.Context, q querier, app, slot string) error {
	ok, err := exists(ctx, q, "SELECT 1 FROM slots WHERE app = ? AND name = ?", app, slot)
	if err != nil {
		return err
	}
	if !ok {
		if err := appMustExist(ctx, q, app); err != nil {
			return err
		}
		return hotswap.Errorf(hotswap.NotFound, "slot %q of app %q not found", slot, app)
	}
	return nil
}

// wrap adds context to an internal error and returns a domain error as is,
// so its client-facing message stays the whole message.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var e *hotswap.Error
	if errors.As(err, &e) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
