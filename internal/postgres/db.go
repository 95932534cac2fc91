// Package postgres is the store of hotswap on PostgreSQL, for several nodes
// sharing one database: the same apps, slots, deployments, settings, keys,
// operations, activity, users, releases and timers as internal/sqlite, with
// the same methods, errors and ordering (internal/storetest runs one suite
// against both), plus what a cluster needs.
//
// It uses pgx through a connection pool. Write transactions hold one
// cluster-wide advisory lock, so they run one at a time as under SQLite's
// single writer (see update); reads run beside them on snapshots.
//
// # Schema migrations
//
// The schema is the embedded migrations/NNNN_name.sql files, applied in
// order by Open in one transaction that holds a transaction-level advisory
// lock, so nodes starting at the same time migrate once; each version is
// recorded in schema_migrations.
//
// Each migration file starts with a header line "-- compatible: N": binaries
// that know schema version N or newer run correctly on a database with this
// migration applied (N is at most the migration's own number; N below it
// says the migration keeps older binaries working). It is recorded with the
// version, so a binary older than the database (a node of the previous
// release restarting during a rolling upgrade) opens it if every migration
// it does not know is compatible with it, and refuses it otherwise.
//
// The rule for migrations: they stay backward compatible for one release,
// because during a rolling upgrade nodes of the previous release run on the
// schema the new release migrated. A migration may add tables, columns with a
// default, and indexes; it never drops or renames a column or table, nor
// changes a type or adds a constraint the previous release could violate, in
// the same release that stops using it: that waits for the release after.
// Such a migration says so with "-- compatible: N-1" (N its number); one
// that breaks the previous release says "-- compatible: N", and then a node
// of the previous release cannot restart until it is upgraded. Migrations 1
// to 3 predate the header and say their own number.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrateLock is the key of the advisory lock that serializes migrations
// of nodes opening one database at the same time.
const migrateLock int64 = 0x686f7473776170 // "hotswap"

// DB is the store. Open it with Open; it is safe for concurrent use.
type DB struct {
	// Now returns the current time, used for timestamps the caller leaves
	// zero. Open sets it to time.Now; tests replace it before use.
	Now func() time.Time
	// Log receives what the store cannot do but works without; nil means
	// slog.Default().
	Log *slog.Logger

	pool *pgxpool.Pool
	// beat is a small pool of its own for Heartbeat and AckGeneration, so
	// a node whose writers all wait for the write lock still shows it is
	// alive.
	beat    *pgxpool.Pool
	created bool // Open made the schema from nothing

	closeOnce sync.Once
	idleWarn  sync.Once // the warning of setIdleTimeout, once
}

// log returns db.Log or the default logger.
func (db *DB) log() *slog.Logger {
	if db.Log == nil {
		return slog.Default()
	}
	return db.Log
}

// Open connects to the PostgreSQL database named by dsn (a postgres:// URL
// or a key=value connection string) and brings its schema up to date. It
// refuses a schema newer than this program knows unless it is compatible
// with it (see Schema migrations in the package documentation).
func Open(ctx context.Context, dsn string) (*DB, error) {
	if strings.TrimSpace(dsn) == "" {
		return nil, hotswap.Errorf(hotswap.Invalid, "postgres store: the connection string is empty")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's error redacts the password of the string it quotes.
		return nil, hotswap.Errorf(hotswap.Invalid, "postgres store: %v", err)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.Itoa(int(idleInTransaction / time.Millisecond))
	}
	// The server notices a client host that vanished (no FIN, no RST)
	// within about 25 seconds rather than TCP's default two hours, and
	// ends its session, releasing its locks. The pool's connections and
	// the dedicated ones (Listen, Leader) copy these.
	for k, v := range keepalives {
		if _, ok := cfg.ConnConfig.RuntimeParams[k]; !ok {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	_, userTimeoutSet := cfg.ConnConfig.RuntimeParams["tcp_user_timeout"]
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if userTimeoutSet {
			return nil
		}
		return setUserTimeout(ctx, conn)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = int32(max(8, 4*runtime.GOMAXPROCS(0)))
	}
	where := cfg.ConnConfig.Host
	if cfg.ConnConfig.Database != "" {
		where += "/" + cfg.ConnConfig.Database
	}
	beatCfg := cfg.Copy()
	beatCfg.MaxConns, beatCfg.MinConns = 2, 0
	beatCfg.ConnConfig.RuntimeParams["application_name"] = "hotswap heartbeat"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store %s: %w", where, err)
	}
	beat, err := pgxpool.NewWithConfig(ctx, beatCfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", where, err)
	}
	db := &DB{Now: time.Now, pool: pool, beat: beat}
	if err := pool.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", where, err)
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", where, err)
	}
	return db, nil
}

// Close closes the connections of the store. It may be called more than
// once.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.pool.Close()
		db.beat.Close()
	})
	return nil
}

// Pool returns the connection pool, for code of this store's users that
// needs a connection of its own (LISTEN, session advisory locks).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// migration is one embedded schema file.
type migration struct {
	version int
	name    string
	sql     string
	// compatible is the oldest schema version a binary must know to run
	// on a database with this migration applied.
	compatible int
}

// parseCompatible reads the "-- compatible: N" header of migration name,
// number version, from its first line.
func parseCompatible(name, src string, version int) (int, error) {
	first, _, _ := strings.Cut(src, "\n")
	rest, ok := strings.CutPrefix(strings.TrimSpace(first), "-- compatible:")
	if !ok {
		return 0, fmt.Errorf("migration %s: the first line must be \"-- compatible: N\", the oldest schema version binaries that run on it must know", name)
	}
	n, err := strconv.Atoi(strings.TrimSpace(rest))
	if err != nil || n < 1 || n > version {
		return 0, fmt.Errorf("migration %s: compatible version %q is not a number from 1 to %d", name, strings.TrimSpace(rest), version)
	}
	return n, nil
}

// migrations returns the embedded migrations in order, checking that they
// are numbered 1, 2, 3... without gaps.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var ms []migration
	for i, name := range names {
		base := path.Base(name)
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v != i+1 {
			return nil, fmt.Errorf("migration %s: want number %04d", base, i+1)
		}
		src, err := migrationFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		compatible, err := parseCompatible(base, string(src), v)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(src), compatible: compatible})
	}
	return ms, nil
}

// SchemaVersion returns the newest schema version this program knows: the
// number of its newest migration.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate applies the migrations the database lacks, in one transaction
// under an advisory lock. A schema newer than it knows is accepted if
// every migration it lacks is compatible with it, else refused.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLock); err != nil {
		return fmt.Errorf("lock for migration: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	// Rows recorded before the column was added count as compatible with
	// their own version only.
	if _, err := tx.Exec(ctx, "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS compatible INTEGER"); err != nil {
		return fmt.Errorf("add schema_migrations.compatible: %w", err)
	}
	var cur, needs int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0),
		COALESCE(MAX(COALESCE(compatible, version)) FILTER (WHERE version > $1), 0)
		FROM schema_migrations`, len(ms)).Scan(&cur, &needs); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if needs > len(ms) {
		return hotswap.Errorf(hotswap.FailedPrecondition,
			"the store's schema is version %d, which needs a binary that knows schema version %d or newer; this binary knows %d: upgrade hotswap", cur, needs, len(ms))
	}
	if cur > len(ms) {
		return tx.Commit(ctx) // newer, and compatible with this binary
	}
	db.created = cur == 0
	for _, m := range ms[cur:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, compatible) VALUES ($1, $2, $3)", m.version, m.name, m.compatible); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return tx.Commit(ctx)
}

// Created reports whether Open made the schema from nothing: the database
// held no hotswap schema.
func (db *DB) Created() bool { return db.created }

// HasApps reports whether the store holds at least one app.
func (db *DB) HasApps(ctx context.Context) (bool, error) {
	ok, err := exists(ctx, db.pool, "SELECT 1 FROM apps LIMIT 1")
	if err != nil {
		return false, wrap(err, "look for apps")
	}
	return ok, nil
}

// keepalives are the server's TCP keepalive settings for the sessions of
// this store: a probe after 10s of silence, then every 5s, and the peer
// counts as gone after 3 unanswered. A DSN may set them itself.
var keepalives = map[string]string{
	"tcp_keepalives_idle":     "10",
	"tcp_keepalives_interval": "5",
	"tcp_keepalives_count":    "3",
}

// userTimeout is the server's tcp_user_timeout for the sessions of this
// store: how long data it sent may stay unacknowledged before it drops
// the connection (what keepalives do for a session that is not idle).
const userTimeout = 25 * time.Second

// setUserTimeout sets tcp_user_timeout on conn if the server knows it
// (PostgreSQL 12 and later; a server older refuses an unknown parameter at
// connect, so it is not one of the connection's RuntimeParams).
func setUserTimeout(ctx context.Context, conn *pgx.Conn) error {
	if serverMajor(conn) < 12 {
		return nil
	}
	_, err := conn.Exec(ctx, fmt.Sprintf("SET tcp_user_timeout = %d", userTimeout.Milliseconds()))
	return err
}

// serverMajor returns the major version of the server conn is connected
// to, 0 if unknown.
func serverMajor(conn *pgx.Conn) int {
	v := conn.PgConn().ParameterStatus("server_version")
	end := 0
	for end < len(v) && '0' <= v[end] && v[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}

// idleInTransaction is how long the server lets a session of this store
// sit idle inside a transaction before it ends the session, releasing the
// write lock of a node that hangs or is cut off mid-transaction. A DSN may
// set idle_in_transaction_session_timeout itself.
const idleInTransaction = time.Minute

// writeLock is the key of the advisory lock every write transaction holds,
// so write transactions run one at a time across all nodes.
const writeLock int64 = 0x686f7473776171

// writeLockWait is how long a write transaction waits for the write lock
// before it gives up as Unavailable: each waiting writer holds a
// connection of the pool, and its caller waits too.
const writeLockWait = 5 * time.Second

// update runs fn in a write transaction and commits it if fn returns nil.
// The transaction first takes the cluster-wide write lock, so write
// transactions run one at a time, as they do through SQLite's single
// writer: a transaction's checks (the app exists, no operation is running,
// the host name is free) still hold when it writes, whichever node writes,
// and fn runs exactly once. Writes are few and short (the request path never
// writes), so the queue is short; a node that dies holding the lock loses it
// with its connection, or after idleInTransaction. A writer that waits
// longer than writeLockWait for the lock (or any other lock of its
// transaction) fails as Unavailable.
func (db *DB) update(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", writeLockWait.Milliseconds())); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writeLock); err != nil {
		return busy(err)
	}
	if err := fn(tx); err != nil {
		return busy(badText(storageFull(err)))
	}
	return busy(badText(storageFull(tx.Commit(ctx))))
}

// view runs fn in a read-only REPEATABLE READ transaction, so all its
// queries see one snapshot.
func (db *DB) view(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	return fn(tx)
}

// querier is what pgx.Tx and *pgxpool.Pool share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
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

// Scan implements sql.Scanner, which pgx uses for it.
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

// SQLSTATE codes this store tells apart.
const (
	codeUnique     = "23505"
	codeForeignKey = "23503"
	codeDiskFull   = "53100"
	codeLockWait   = "55P03" // lock_not_available: lock_timeout ran out
	// Text PostgreSQL cannot store: a NUL byte, or bytes that are not
	// UTF-8 (or not representable in the server's encoding).
	codeBadText        = "22021"
	codeUntranslatable = "22P05"
)

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// isUnique reports whether err is a violated UNIQUE or PRIMARY KEY constraint.
func isUnique(err error) bool { return pgCode(err) == codeUnique }

// isUniqueOn reports whether err is a violation of the unique constraint
// or index called name.
func isUniqueOn(err error, name string) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == codeUnique && e.ConstraintName == name
}

// storageFull turns PostgreSQL's disk_full into a StorageFull error. Other
// errors, nil included, pass unchanged.
func storageFull(err error) error {
	if pgCode(err) == codeDiskFull && hotswap.ErrorKind(err) != hotswap.StorageFull {
		return &hotswap.Error{Kind: hotswap.StorageFull, Msg: "disk full: the PostgreSQL server has no space left to write the database", Err: err}
	}
	return err
}

// busy turns a lock wait that ran out of lock_timeout into an Unavailable
// error. Other errors pass unchanged.
func busy(err error) error {
	if pgCode(err) == codeLockWait && hotswap.ErrorKind(err) != hotswap.Unavailable {
		return &hotswap.Error{Kind: hotswap.Unavailable, Err: err,
			Msg: fmt.Sprintf("the store is busy: another write held the database for over %v; try again", writeLockWait)}
	}
	return err
}

// badText turns PostgreSQL's refusal of text it cannot store into an
// Invalid error. The stores check the free-text fields users fill (see
// hotswap.ValidateText), so both refuse them alike; this catches the
// others, which SQLite stores as given. Other errors pass unchanged.
func badText(err error) error {
	if c := pgCode(err); (c == codeBadText || c == codeUntranslatable) && hotswap.ErrorKind(err) != hotswap.Invalid {
		return &hotswap.Error{Kind: hotswap.Invalid, Msg: "text contains a NUL byte or invalid UTF-8", Err: err}
	}
	return err
}

// exists reports whether query returns a row.
func exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRow(ctx, query, args...).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// appMustExist returns a NotFound error if app does not exist.
func appMustExist(ctx context.Context, q querier, app string) error {
	ok, err := exists(ctx, q, "SELECT 1 FROM apps WHERE name = $1", app)
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
	ok, err := exists(ctx, q, "SELECT 1 FROM slots WHERE app = $1 AND name = $2", app, slot)
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

// limitArg is how a "at most limit, all if limit <= 0" is passed to LIMIT:
// NULL means no limit.
func limitArg(limit int) any {
	if limit <= 0 {
		return nil
	}
	return limit
}
