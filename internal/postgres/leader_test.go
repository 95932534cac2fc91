package postgres

import (
	"context"
	"testing"
	"time"
)

// waitFor polls cond every 20ms until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaders returns how many of ls lead.
func leaders(ls ...*Leadership) int {
	n := 0
	for _, l := range ls {
		if l.IsLeader() {
			n++
		}
	}
	return n
}

// changed fails the test unless l.Changed() has a value within d.
func changed(t *testing.T, l *Leadership, d time.Duration) {
	t.Helper()
	select {
	case <-l.Changed():
	case <-time.After(d):
		t.Fatalf("no change signalled within %v", d)
	}
}

func TestLeaderOneAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	a, b := db.Leader(ctx, "release-engine"), db.Leader(ctx, "release-engine")
	defer a.Close()
	defer b.Close()
	waitFor(t, 10*time.Second, "one leader", func() bool { return leaders(a, b) == 1 })
	// It stays one, across several retries of the other.
	for range 25 {
		if n := leaders(a, b); n != 1 {
			t.Fatalf("%d leaders, want 1", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	first, other := a, b
	if b.IsLeader() {
		first, other = b, a
	}
	changed(t, first, time.Second) // the gain was signalled

	// Another name is another leadership.
	c := db.Leader(ctx, "blob-scans")
	defer c.Close()
	waitFor(t, 10*time.Second, "the other name's leader", c.IsLeader)

	// Closing the leader hands over.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if first.IsLeader() {
		t.Fatal("IsLeader after Close")
	}
	first.Close() // again
	waitFor(t, 5*time.Second, "the other to take over after Close", other.IsLeader)
	changed(t, other, time.Second)
}

func TestLeaderConnectionKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	a, b := db.Leader(ctx, "timers"), db.Leader(ctx, "timers")
	defer a.Close()
	defer b.Close()
	waitFor(t, 10*time.Second, "one leader", func() bool { return leaders(a, b) == 1 })
	first, other := a, b
	if b.IsLeader() {
		first, other = b, a
	}
	<-first.Changed()

	var pid int
	err := db.Pool().QueryRow(ctx, `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		leaderClass).Scan(&pid)
	if err != nil {
		t.Fatalf("find the leader's connection: %v", err)
	}
	sqlExec(t, db, "SELECT pg_terminate_backend($1)", pid)
	changed(t, first, 5*time.Second)
	waitFor(t, 5*time.Second, "the other to take over", other.IsLeader)
	// The first, connected again, does not lead too.
	time.Sleep(3 * time.Second)
	if n := leaders(a, b); n != 1 || !other.IsLeader() {
		t.Fatalf("%d leaders (other leads: %v), want the other only", n, other.IsLeader())
	}
}

func TestLeaderEndsWithItsContext(t *testing.T) {
	t.Parallel()
	db := openClusterDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	l := db.Leader(ctx, "x")
	defer l.Close()
	waitFor(t, 10*time.Second, "leader", l.IsLeader)
	<-l.Changed()
	cancel()
	changed(t, l, 5*time.Second)
	if l.IsLeader() {
		t.Fatal("IsLeader after its context ended")
	}
	m := db.Leader(context.Background(), "x")
	defer m.Close()
	waitFor(t, 5*time.Second, "a new leader", m.IsLeader)
}
