package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// openClusterDB opens a store on a fresh database, closed when the test ends.
func openClusterDB(t testing.TB) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := Open(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sqlExec runs a statement of the test's own on db's pool.
func sqlExec(t testing.TB, db *DB, sql string, args ...any) {
	t.Helper()
	if _, err := db.Pool().Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// note is one call of a Listen callback.
type note struct{ channel, payload string }

// listen runs db.Listen until the test ends and returns what it hears.
func listen(t *testing.T, db *DB) <-chan note {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	notes := make(chan note, 100)
	done := make(chan error, 1)
	go func() {
		done <- db.Listen(ctx, func(channel, payload string) { notes <- note{channel, payload} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Listen returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Listen did not return 10s after its context was cancelled")
		}
	})
	return notes
}

// next returns the next note, failing the test if none comes within 10s.
func next(t *testing.T, notes <-chan note) note {
	t.Helper()
	select {
	case n := <-notes:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
		return note{}
	}
}

// quiet fails the test if a note comes within d.
func quiet(t *testing.T, notes <-chan note, d time.Duration) {
	t.Helper()
	select {
	case n := <-notes:
		t.Fatalf("unexpected notification %+v", n)
	case <-time.After(d):
	}
}

func generation(t *testing.T, db *DB) int64 {
	t.Helper()
	g, err := db.Generation(context.Background())
	if err != nil {
		t.Fatalf("Generation: %v", err)
	}
	return g
}

func TestGenerationBumpsOncePerCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	notes := listen(t, db)
	if got := next(t, notes); got != (note{}) {
		t.Fatalf("first call = %+v, want the (re)connect call", got)
	}
	if got := generation(t, db); got != 0 {
		t.Fatalf("Generation of a new store = %d, want 0", got)
	}

	// A transaction of several statements on several tables bumps once, and
	// only when it commits.
	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, sql := range []string{
		"INSERT INTO apps (name, created_at) VALUES ('a', 1), ('b', 1)",
		"INSERT INTO slots (app, name, label, created_at) VALUES ('a', 'production', 'a', 1)",
		"INSERT INTO settings (app, slot, name, value, sticky) VALUES ('a', 'production', 'X', '1', false)",
		"INSERT INTO keys (app, slot, scope, function, name, value) VALUES ('a', 'production', 'host', '', 'default', 'k')",
		"INSERT INTO deployments (id, app, slot, digest, author, message, status, status_text, created_at) VALUES ('d1', 'a', 'production', 'x', '', '', 0, '', 1)",
		"UPDATE deployments SET status = 1 WHERE id = 'd1'",
	} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	quiet(t, notes, 300*time.Millisecond)
	if got := generation(t, db); got != 0 {
		t.Fatalf("Generation before the commit = %d, want 0", got)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := next(t, notes), (note{ChangesChannel, "1"}); got != want {
		t.Fatalf("notification = %+v, want %+v", got, want)
	}
	if got := generation(t, db); got != 1 {
		t.Fatalf("Generation after the commit = %d, want 1", got)
	}

	// A transaction that rolls back leaves no trace; one that changes no
	// row of those tables does not bump.
	tx, err = db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM apps WHERE name = 'b'"); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	sqlExec(t, db, "UPDATE apps SET created_at = 2 WHERE name = 'nothing'")
	sqlExec(t, db, "INSERT INTO meta (key, value) VALUES ('k', 'v')")
	sqlExec(t, db, "DELETE FROM apps WHERE name = 'b'")
	if got, want := next(t, notes), (note{ChangesChannel, "2"}); got != want {
		t.Fatalf("notification = %+v, want %+v", got, want)
	}
	if got := generation(t, db); got != 2 {
		t.Fatalf("Generation = %d, want 2", got)
	}
	// Deleting an app bumps once however many rows it cascades to.
	sqlExec(t, db, "DELETE FROM apps WHERE name = 'a'")
	if got, want := next(t, notes), (note{ChangesChannel, "3"}); got != want {
		t.Fatalf("notification = %+v, want %+v", got, want)
	}
	quiet(t, notes, 300*time.Millisecond)
}

// Concurrent SERIALIZABLE writers (the store's updates) do not fail each
// other over the generation, and the generation counts both.
func TestGenerationConcurrentSerializableWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	var txs []pgx.Tx
	for _, app := range []string{"a", "b"} {
		tx, err := db.Pool().BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "INSERT INTO apps (name, created_at) VALUES ($1, 1)", app); err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	for i, tx := range txs {
		if err := tx.Commit(ctx); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	if got := generation(t, db); got != 2 {
		t.Fatalf("Generation = %d, want 2", got)
	}
}

func TestNodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := hotswap.Node{ID: "a", Name: "host-a", Addr: "10.0.0.1:7071", Version: "1.0", State: hotswap.NodeServing, Generation: 5, StartedAt: started}
	b := hotswap.Node{ID: "b", Name: "host-b", Addr: "10.0.0.2:7071", Version: "1.1", State: hotswap.NodeStarting}
	for _, n := range []hotswap.Node{a, b} {
		if err := db.Heartbeat(ctx, n); err != nil {
			t.Fatalf("Heartbeat(%s): %v", n.ID, err)
		}
	}
	nodes, err := db.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[1].StartedAt != started || nodes[0].StartedAt.IsZero() {
		t.Fatalf("ListNodes = %+v, want b (started now) then a (started %v)", nodes, started)
	}
	for _, n := range nodes {
		if n.Age < 0 || n.Age > time.Minute || n.HeartbeatAt.IsZero() {
			t.Errorf("node %s: age %v, heartbeat %v: want a heartbeat just now", n.ID, n.Age, n.HeartbeatAt)
		}
	}
	ignore := cmpopts.IgnoreFields(hotswap.Node{}, "StartedAt", "HeartbeatAt", "Age")
	if diff := cmp.Diff(nodes, []hotswap.Node{b, a}, ignore); diff != "" {
		t.Errorf("ListNodes (-got +want):\n%s", diff)
	}

	// The generation never goes back, by AckGeneration or by Heartbeat.
	if err := db.AckGeneration(ctx, "a", 7); err != nil {
		t.Fatal(err)
	}
	if err := db.AckGeneration(ctx, "a", 6); err != nil {
		t.Fatal(err)
	}
	a.State, a.Version, a.StartedAt = hotswap.NodeDraining, "1.0.1", time.Now()
	if err := db.Heartbeat(ctx, a); err != nil { // Generation 5 in a
		t.Fatal(err)
	}
	// A node whose heartbeat is old is not live, nor is a stopped one.
	sqlExec(t, db, "UPDATE nodes SET heartbeat_at = now() - interval '1 minute' WHERE id = 'b'")
	live, err := db.LiveNodes(ctx, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := a
	want.Generation = 7
	if diff := cmp.Diff(live, []hotswap.Node{want}, ignore); diff != "" {
		t.Errorf("LiveNodes (-got +want):\n%s", diff)
	}
	if len(live) == 1 && !live[0].StartedAt.Equal(started) {
		t.Errorf("StartedAt = %v, want %v kept from the first heartbeat", live[0].StartedAt, started)
	}
	nodes, err = db.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].ID != "b" || nodes[0].Age < 55*time.Second || nodes[0].Age > 5*time.Minute {
		t.Errorf("ListNodes = %+v, want b first with an age of about a minute", nodes)
	}
	live, err = db.LiveNodes(ctx, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 2 {
		t.Errorf("LiveNodes(2m) = %+v, want both", live)
	}
	a.State = hotswap.NodeStopped
	if err := db.Heartbeat(ctx, a); err != nil {
		t.Fatal(err)
	}
	if live, err = db.LiveNodes(ctx, 2*time.Minute); err != nil || len(live) != 1 || live[0].ID != "b" {
		t.Errorf("LiveNodes after a stopped = %+v, %v; want b only", live, err)
	}

	if err := db.AckGeneration(ctx, "nobody", 1); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("AckGeneration of an unknown node = %v, want NotFound", err)
	}
	for _, n := range []hotswap.Node{{State: hotswap.NodeServing}, {ID: "c"}, {ID: "c", State: "dead"}} {
		if err := db.Heartbeat(ctx, n); hotswap.ErrorKind(err) != hotswap.Invalid {
			t.Errorf("Heartbeat(%+v) = %v, want Invalid", n, err)
		}
	}
}

func TestListenReconnects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	notes := listen(t, db)
	if got := next(t, notes); got != (note{}) {
		t.Fatalf("first call = %+v, want the (re)connect call", got)
	}
	if err := db.Notify(ctx, "elsewhere", "x"); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{PrepareChannel, ReleasesChannel, ChangesChannel} {
		if err := db.Notify(ctx, ch, "p-"+ch); err != nil {
			t.Fatal(err)
		}
		if got, want := next(t, notes), (note{ch, "p-" + ch}); got != want {
			t.Fatalf("notification = %+v, want %+v", got, want)
		}
	}

	// Kill the listener's connection: it connects again and says so.
	var pid int
	err := db.Pool().QueryRow(ctx, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'hotswap listen'`).Scan(&pid)
	if err != nil {
		t.Fatalf("find the listener's connection: %v", err)
	}
	sqlExec(t, db, "SELECT pg_terminate_backend($1)", pid)
	if got := next(t, notes); got != (note{}) {
		t.Fatalf("after the connection was killed: %+v, want the (re)connect call", got)
	}
	if err := db.Notify(ctx, PrepareChannel, "again"); err != nil {
		t.Fatal(err)
	}
	if got, want := next(t, notes), (note{PrepareChannel, "again"}); got != want {
		t.Fatalf("notification = %+v, want %+v", got, want)
	}
	if err := db.Notify(ctx, "", "x"); hotswap.ErrorKind(err) != hotswap.Invalid {
		t.Errorf("Notify on no channel = %v, want Invalid", err)
	}
}

func TestPrepares(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	notes := listen(t, db)
	next(t, notes)

	p := hotswap.Prepare{OpID: "op1", App: "shop", By: "a", Wants: []hotswap.PrepareWant{{
		Slot: "production", DeploymentID: "d2", Digest: "abc",
		Settings: []hotswap.Setting{{Name: "X", Value: "1", Sticky: true}},
	}}}
	if err := db.RequestPrepare(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got, want := next(t, notes), (note{PrepareChannel, "op1"}); got != want {
		t.Fatalf("notification = %+v, want %+v", got, want)
	}
	if err := db.RequestPrepare(ctx, p); hotswap.ErrorKind(err) != hotswap.Conflict {
		t.Errorf("second RequestPrepare(op1) = %v, want Conflict", err)
	}
	if err := db.RequestPrepare(ctx, hotswap.Prepare{OpID: "op2", App: "shop"}); hotswap.ErrorKind(err) != hotswap.Invalid {
		t.Errorf("RequestPrepare without By = %v, want Invalid", err)
	}

	pending := func(node string, since time.Duration) []hotswap.Prepare {
		t.Helper()
		ps, err := db.PendingPrepares(ctx, node, since)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	got := pending("b", time.Minute)
	if len(got) != 1 || got[0].CreatedAt.IsZero() || time.Since(got[0].CreatedAt) > time.Minute {
		t.Fatalf("PendingPrepares(b) = %+v, want op1 created just now", got)
	}
	if diff := cmp.Diff(got, []hotswap.Prepare{p}, cmpopts.IgnoreFields(hotswap.Prepare{}, "CreatedAt")); diff != "" {
		t.Errorf("PendingPrepares(b) (-got +want):\n%s", diff)
	}
	if got := pending("a", time.Minute); len(got) != 0 {
		t.Errorf("PendingPrepares(a), its own = %+v, want none", got)
	}

	if err := db.ReportPrepared(ctx, "op1", "b", ""); err != nil {
		t.Fatal(err)
	}
	if err := db.ReportPrepared(ctx, "op1", "c", "start set: boom"); err != nil {
		t.Fatal(err)
	}
	if got := pending("b", time.Minute); len(got) != 0 {
		t.Errorf("PendingPrepares(b) after its report = %+v, want none", got)
	}
	if got := pending("d", time.Minute); len(got) != 1 {
		t.Errorf("PendingPrepares(d) = %+v, want op1", got)
	}
	results, err := db.PrepareResults(ctx, "op1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(results, map[string]string{"b": "", "c": "start set: boom"}); diff != "" {
		t.Errorf("PrepareResults (-got +want):\n%s", diff)
	}
	// An old prepare is no longer pending.
	sqlExec(t, db, "UPDATE prepares SET created_at = now() - interval '2 minutes'")
	if got := pending("d", time.Minute); len(got) != 0 {
		t.Errorf("PendingPrepares(d) of a 2-minute-old prepare within 1m = %+v, want none", got)
	}

	if err := db.RequestPrepare(ctx, hotswap.Prepare{OpID: "op3", App: "shop", By: "a"}); err != nil {
		t.Fatal(err)
	}
	if results, err := db.PrepareResults(ctx, "op3"); err != nil || len(results) != 0 {
		t.Errorf("PrepareResults(op3) = %v, %v; want none yet", results, err)
	}
	if err := db.ReportPrepared(ctx, "nope", "b", ""); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("ReportPrepared(nope) = %v, want NotFound", err)
	}
	if _, err := db.PrepareResults(ctx, "nope"); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("PrepareResults(nope) = %v, want NotFound", err)
	}
}
