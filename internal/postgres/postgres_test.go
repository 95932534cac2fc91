package postgres

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pgtest"
	"github.com/hotswap/hotswap/internal/storetest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The PostgreSQL store has the whole method set of the SQLite store.
var _ storetest.Store = (*DB)(nil)

// openDSN opens the store at dsn, closed when t ends.
func openDSN(t testing.TB, dsn string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) (storetest.Store, func() storetest.Store) {
		dsn := pgtest.DSN(t)
		open := func() storetest.Store {
			db := openDSN(t, dsn)
			db.Now = now
			return db
		}
		return open(), open
	})
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)

	// Nodes starting at once migrate once, under the lock.
	const n = 4
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = Open(ctx, dsn) })
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent Open %d: %v", i, errs[i])
		}
		if dbs[i].Created() {
			created++
		}
		dbs[i].Close()
	}
	if created != 1 {
		t.Errorf("%d of %d concurrent Opens made the schema, want 1", created, n)
	}
	db := openDSN(t, dsn)
	var versions []int
	rows, err := db.pool.Query(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(versions) != SchemaVersion() || versions[len(versions)-1] != SchemaVersion() {
		t.Errorf("schema_migrations = %v, want 1..%d", versions, SchemaVersion())
	}

	// Each embedded migration's compatible version is recorded.
	var compatible []int
	if err := db.pool.QueryRow(ctx, "SELECT array_agg(compatible ORDER BY version) FROM schema_migrations").Scan(&compatible); err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if compatible[i] != m.compatible {
			t.Errorf("schema_migrations: version %d compatible = %d, want %d", m.version, compatible[i], m.compatible)
		}
	}

	// A schema newer than this binary knows (a newer node migrated it)
	// whose newer migrations are compatible with this binary is opened:
	// an old node restarting during a rolling upgrade rejoins.
	cur := SchemaVersion()
	if _, err := db.pool.Exec(ctx, "INSERT INTO schema_migrations (version, name, compatible) VALUES ($1, 'add_a_column.sql', $2)", cur+1, cur); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open of a newer schema compatible with this binary: %v", err)
	}
	if db.Created() {
		t.Error("Open of a newer schema: Created() = true")
	}
	var count int
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&count); err != nil || count != cur+1 {
		t.Errorf("schema_migrations has %d rows (%v) after opening a newer schema, want %d: none added", count, err, cur+1)
	}

	// One that is not is refused, with a message that says what to do; so
	// is one recorded without a compatible version (by a binary before it).
	for _, compatible := range []any{cur + 2, nil} {
		if _, err := db.pool.Exec(ctx, "DELETE FROM schema_migrations WHERE version > $1", cur+1); err != nil {
			t.Fatal(err)
		}
		if _, err := db.pool.Exec(ctx, "INSERT INTO schema_migrations (version, name, compatible) VALUES ($1, 'drop_a_column.sql', $2)", cur+2, compatible); err != nil {
			t.Fatal(err)
		}
		_, err = Open(ctx, dsn)
		if err == nil {
			t.Fatalf("Open of a newer schema that needs version %v succeeded", compatible)
		}
		want := fmt.Sprintf("the store's schema is version %d, which needs a binary that knows schema version %d or newer; this binary knows %d: upgrade hotswap", cur+2, cur+2, cur)
		if got := hotswap.ErrorMessage(err); got != want {
			t.Errorf("Open of a newer schema: message = %q, want %q", got, want)
		}
		if hotswap.ErrorKind(err) != hotswap.FailedPrecondition {
			t.Errorf("Open of a newer schema: kind = %v, want FailedPrecondition", hotswap.ErrorKind(err))
		}
	}
	db.Close()
}

func TestParseCompatible(t *testing.T) {
	for _, tc := range []struct {
		src     string
		version int
		want    int // 0: an error
	}{
		{"-- compatible: 3\nCREATE TABLE x (a int);", 4, 3},
		{"-- compatible: 4\n", 4, 4},
		{"--  compatible:1 \n", 4, 0},
		{"-- compatible: 5\n", 4, 0},
		{"-- compatible: 0\n", 4, 0},
		{"-- compatible: x\n", 4, 0},
		{"CREATE TABLE x (a int);\n-- compatible: 3\n", 4, 0},
		{"", 4, 0},
	} {
		got, err := parseCompatible("0004_x.sql", tc.src, tc.version)
		if got != tc.want || (err == nil) != (tc.want != 0) {
			t.Errorf("parseCompatible(%q, %d) = %d, %v; want %d", tc.src, tc.version, got, err, tc.want)
		}
	}
}

func TestOpenBadDSN(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{"", "   ", "postgres://u:secret@[::1"} {
		_, err := Open(ctx, dsn)
		if hotswap.ErrorKind(err) != hotswap.Invalid {
			t.Errorf("Open(%q) = %v, want kind Invalid", dsn, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error shows the password: %v", dsn, err)
		}
	}
	// A server that is not there: a clear error, not a hang.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := Open(ctx, "postgres://hotswap:secret@127.0.0.1:1/none?connect_timeout=5"); err == nil {
		t.Error("Open of a closed port succeeded")
	} else if strings.Contains(err.Error(), "secret") {
		t.Errorf("Open error shows the password: %v", err)
	}
}

// icuDSN returns the URL of a new database whose default collation is ICU's
// en-US, where "alice" sorts before "Bob" and "_x" before "Bob", unlike in
// SQLite; it is dropped when t ends.
func icuDSN(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	base := pgtest.DSN(t)
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := cfg.Database + "_icu"
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+
		" TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"); err != nil {
		t.Fatalf("create a database with ICU collation: %v", err)
	}
	t.Cleanup(func() {
		admin, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	var sorted bool
	if err := admin.QueryRow(ctx, "SELECT 'alice' < 'Bob' COLLATE \"en-US-x-icu\"").Scan(&sorted); err != nil || !sorted {
		t.Fatalf("ICU en-US does not sort alice before Bob (%v, %v): the test proves nothing", sorted, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// TestConformanceICU runs the suite on databases whose default collation
// is not bytewise, as a production database's locale usually is not: the
// store must still list names in SQLite's order.
func TestConformanceICU(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) (storetest.Store, func() storetest.Store) {
		dsn := icuDSN(t)
		open := func() storetest.Store {
			db := openDSN(t, dsn)
			db.Now = now
			return db
		}
		return open(), open
	})
}

// TestWritesSerializeAcrossNodes checks the write lock between stores
// opened by different nodes on one database: one operation per app
// cluster-wide, and every loser told which operation runs; release numbers
// are distinct.
func TestWritesSerializeAcrossNodes(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	nodes := []*DB{openDSN(t, dsn), openDSN(t, dsn), openDSN(t, dsn)}
	if _, err := nodes[0].ApplyPipeline(ctx, "p1", "pipe", "def", "ann"); err != nil {
		t.Fatal(err)
	}
	const n = 24
	opErrs := make([]error, n)
	numbers := make([]int, n)
	relErrs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		db := nodes[i%len(nodes)]
		wg.Go(func() {
			opErrs[i] = db.BeginOperation(ctx, hotswap.Operation{ID: fmt.Sprintf("op%d", i), App: "orders", Kind: "deploy", Node: fmt.Sprintf("node%d", i%len(nodes))})
		})
		wg.Go(func() {
			numbers[i], relErrs[i] = db.CreateRelease(ctx, hotswap.ReleaseRow{ID: fmt.Sprintf("r%d", i), PipelineID: "p1", State: "running"},
				func(int) (string, error) { return "{}", nil })
		})
	}
	wg.Wait()
	wins := 0
	seen := map[int]bool{}
	for i := range n {
		switch err := opErrs[i]; {
		case err == nil:
			wins++
		case hotswap.ErrorKind(err) != hotswap.Conflict:
			t.Errorf("BeginOperation op%d = %v, want nil or Conflict", i, err)
		case !strings.Contains(hotswap.ErrorMessage(err), `app "orders" has a running deploy (operation op`):
			t.Errorf("BeginOperation op%d: message %q does not name the running operation", i, hotswap.ErrorMessage(err))
		}
		if relErrs[i] != nil {
			t.Errorf("CreateRelease r%d: %v", i, relErrs[i])
		} else if seen[numbers[i]] {
			t.Errorf("release number %d given twice", numbers[i])
		}
		seen[numbers[i]] = true
	}
	if wins != 1 {
		t.Errorf("%d BeginOperation calls succeeded across %d nodes, want exactly 1", wins, len(nodes))
	}
	running, err := nodes[1].RunningOperations(ctx)
	if err != nil || len(running) != 1 || running[0].Node == "" {
		t.Errorf("RunningOperations = %+v, %v; want one, with its node", running, err)
	}
}
