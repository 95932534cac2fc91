package ops

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
	"github.com/hotswap/hotswap/internal/sqlite"
)

// testService opens a Service on a real store in a temporary directory,
// with no handler processes; it is closed when the test ends. It returns
// the path of the store's file too.
func testService(t testing.TB, retention int) (*Service, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "hotswap.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	arts, err := artifact.Open(filepath.Join(dir, "packages"), artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rt := runtime.NewManager(nil)
	t.Cleanup(func() { rt.Close() })
	s, err := Open(context.Background(), Config{
		Domain: "localhost", PublicAddr: "127.0.0.1:8080",
		Store: db, Artifacts: arts, Runtime: rt, Router: router.New(router.Config{Domain: "localhost"}),
		Retention: retention,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// rawDB opens a second connection to the store's file, for a test to do
// what the store never does (create a trigger).
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t testing.TB, db *sql.DB, query string) {
	t.Helper()
	if _, err := db.Exec(query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// refuseEnds makes the store refuse to end an operation, as a full disk
// would: the write fails and is rolled back.
const refuseEnds = `CREATE TRIGGER refuse_end BEFORE UPDATE OF state ON operations
	WHEN NEW.state <> 'running' BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END`

func setting(name, value string) []hotswap.Setting {
	return []hotswap.Setting{{Name: name, Value: value}}
}

// waitNoRunning waits until the store itself records no running operation.
func waitNoRunning(t testing.TB, s *Service, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		running, err := s.store.RunningOperations(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(running) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the store still records %+v as running", within, running)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRefusedEndIsRecordedLater: a store that refuses to record the end of
// an operation does not leave the app locked once it takes writes again.
func TestRefusedEndIsRecordedLater(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, path := testService(t, 0)
	if _, err := s.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	exec(t, raw, refuseEnds)

	// The change itself is stored; only its end is refused.
	if _, err := s.UpdateSettings(ctx, "t", "shop", "production", setting("A", "1"), nil, HoldOptions{}); err != nil {
		t.Fatalf("settings change while ends are refused = %v, want success", err)
	}
	running, err := s.store.RunningOperations(ctx)
	if err != nil || len(running) != 1 {
		t.Fatalf("store's running operations = %+v, %v; want the settings change", running, err)
	}
	op := running[0]
	listed, err := s.Operations(ctx, "shop", 10)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(listed, func(o hotswap.Operation) bool { return o.ID == op.ID }); i < 0 || listed[i].State != hotswap.OpSucceeded || listed[i].EndedAt.IsZero() {
		t.Errorf("Operations lists %+v, want %s succeeded and ended", listed, op.ID)
	}

	// While the store still refuses, another change says why it cannot start.
	_, err = s.UpdateSettings(ctx, "t", "shop", "production", setting("A", "2"), nil, HoldOptions{})
	if hotswap.ErrorKind(err) != hotswap.Unavailable || !strings.Contains(hotswap.ErrorMessage(err), op.ID) {
		t.Fatalf("settings change while the end is unrecorded = %v (kind %v), want Unavailable naming %s", err, hotswap.ErrorKind(err), op.ID)
	}

	// Once the store takes writes again, the background retry records the
	// end, with the time the operation really ended.
	endedBy := time.Now()
	exec(t, raw, "DROP TRIGGER refuse_end")
	waitNoRunning(t, s, 20*time.Second)
	ops, err := s.store.ListOperations(ctx, "shop", 0)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ops, func(o hotswap.Operation) bool { return o.ID == op.ID })
	if i < 0 || ops[i].State != hotswap.OpSucceeded || ops[i].EndedAt.After(endedBy) {
		t.Fatalf("stored operations = %+v, want %s succeeded, ended before %v", ops, op.ID, endedBy)
	}
	if _, err := s.UpdateSettings(ctx, "t", "shop", "production", setting("A", "3"), nil, HoldOptions{}); err != nil {
		t.Fatalf("settings change after the store recovered = %v", err)
	}
}

func TestTransient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{errors.New("disk I/O error"), true},
		{&hotswap.Error{Kind: hotswap.Unavailable, Msg: "busy"}, true},
		{&hotswap.Error{Kind: hotswap.Kind(99), Msg: "a kind added later, e.g. storage full"}, true},
		{hotswap.Errorf(hotswap.FailedPrecondition, "operation op-1 has ended (succeeded)"), false},
		{hotswap.Errorf(hotswap.NotFound, "operation op-1 not found"), false},
		{hotswap.Errorf(hotswap.Invalid, "bad state"), false},
	}
	for _, tc := range tests {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestRefusedEndFlushedByNextOperation: the next operation on the app
// writes a kept end itself when the store recovered before the retry did.
func TestRefusedEndFlushedByNextOperation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, path := testService(t, 0)
	if _, err := s.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	exec(t, raw, refuseEnds)
	if _, err := s.UpdateSettings(ctx, "t", "shop", "production", setting("A", "1"), nil, HoldOptions{}); err != nil {
		t.Fatal(err)
	}
	exec(t, raw, "DROP TRIGGER refuse_end")
	if _, err := s.UpdateSettings(ctx, "t", "shop", "production", setting("A", "2"), nil, HoldOptions{}); err != nil {
		t.Fatalf("settings change right after the store recovered = %v", err)
	}
	waitNoRunning(t, s, 5*time.Second)
}

// TestCloseWithUnrecordedEnd: Close stops the retry even while the store
// still refuses.
func TestCloseWithUnrecordedEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, path := testService(t, 0)
	if _, err := s.CreateApp(ctx, "t", "shop"); err != nil {
		t.Fatal(err)
	}
	exec(t, rawDB(t, path), refuseEnds)
	if _, err := s.UpdateSettings(ctx, "t", "shop", "production", setting("A", "1"), nil, HoldOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s with an end the store refuses")
	}
}

// dep is a deployment a prune test puts in the store.
type dep struct {
	id     string
	slot   string
	status hotswap.DeploymentStatus // DeploySuccess: the slot serves it
	fresh  bool                     // created just now, not an hour ago
}

func TestPrune(t *testing.T) {
	t.Parallel()
	good := func(id string) dep { return dep{id: id, slot: "production", status: hotswap.DeploySuccess} }
	failed := func(id string) dep { return dep{id: id, slot: "production", status: hotswap.DeployFailed} }
	staging := func(id string) dep { return dep{id: id, slot: "staging", status: hotswap.DeploySuccess} }
	tests := []struct {
		name string
		deps []dep // oldest first
		want []string
	}{{
		// Retention 3: three good deploys, five failing, one good. Only
		// the oldest good one is beyond the three newest good ones.
		name: "failures do not count",
		deps: []dep{good("g1"), good("g2"), good("g3"), failed("f1"), failed("f2"), failed("f3"), failed("f4"), failed("f5"), good("g4")},
		want: []string{"f1", "f2", "f3", "f4", "f5", "g2", "g3", "g4"},
	}, {
		name: "the last failures are kept for diagnosis",
		deps: []dep{good("g1"), failed("f1"), failed("f2"), failed("f3"), failed("f4"), failed("f5"), failed("f6"), failed("f7"), good("g2")},
		want: []string{"f3", "f4", "f5", "f6", "f7", "g1", "g2"},
	}, {
		name: "a failure younger than a minute is kept",
		deps: []dep{good("g1"), failed("f1"), failed("f2"), failed("f3"), failed("f4"), failed("f5"), {id: "f6", slot: "production", status: hotswap.DeployFailed, fresh: true}, failed("f7"), good("g2")},
		want: []string{"f3", "f4", "f5", "f6", "f7", "g1", "g2"},
	}, {
		// Many good deploys to staging never push out what production
		// served: its last 3 (the retention) stay.
		name: "production history survives staging churn",
		deps: []dep{good("p1"), good("p2"), good("p3"), staging("s1"), staging("s2"), staging("s3"), staging("s4"), staging("s5")},
		want: []string{"p1", "p2", "p3", "s3", "s4", "s5"},
	}, {
		name: "each slot keeps what it served before",
		deps: []dep{staging("s1"), good("p1"), staging("s2"), good("p2"), good("p3"), good("p4"), good("p5"), good("p6")},
		want: []string{"p4", "p5", "p6", "s1", "s2"},
	}, {
		name: "in progress is never pruned",
		deps: []dep{{id: "x1", slot: "production", status: hotswap.DeployBuilding}, good("g1"), good("g2"), good("g3"), good("g4"), good("g5")},
		want: []string{"g3", "g4", "g5", "x1"},
	}}
	s, _ := testService(t, 3)
	ctx := context.Background()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := "app" + string(rune('a'+i))
			if _, err := s.CreateApp(ctx, "t", app); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateSlot(ctx, "t", app, "staging", ""); err != nil {
				t.Fatal(err)
			}
			base := time.Now().Add(-time.Hour)
			for j, d := range tc.deps {
				created := base.Add(time.Duration(j) * time.Second)
				if d.fresh {
					created = time.Now()
				}
				status := d.status
				if status == hotswap.DeploySuccess {
					status = hotswap.DeployDeploying
				}
				// Deployment ids are unique across apps.
				hd := hotswap.Deployment{ID: app + "-" + d.id, App: app, Slot: d.slot, Status: status, CreatedAt: created}
				if err := s.store.CreateDeployment(ctx, hd); err != nil {
					t.Fatal(err)
				}
				if d.status == hotswap.DeploySuccess {
					if err := s.store.DeployTo(ctx, hd); err != nil {
						t.Fatal(err)
					}
				}
			}
			s.prune(ctx, app)
			ds, err := s.store.ListDeployments(ctx, app, "")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, strings.TrimPrefix(d.ID, app+"-"))
			}
			slices.Sort(got)
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("deployments after prune (-got +want):\n%s", diff)
			}
		})
	}
}
