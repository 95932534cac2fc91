package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hotswap/hotswap"
)

// totalsOf is a published row without its time.
func totalsOf(node, app, slot string, errs uint64, hist ...uint64) hotswap.SlotTotals {
	return hotswap.SlotTotals{Node: node, App: app, Slot: slot, Hist: hist, Errors: errs}
}

func TestNodeMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	for _, id := range []string{"a", "b", "c"} {
		if err := db.Heartbeat(ctx, hotswap.Node{ID: id, State: hotswap.NodeServing}); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(node string, rows ...hotswap.SlotTotals) {
		t.Helper()
		if err := db.PublishNodeMetrics(ctx, node, rows); err != nil {
			t.Fatalf("PublishNodeMetrics(%s): %v", node, err)
		}
	}
	read := func(app, slot string) []hotswap.SlotTotals {
		t.Helper()
		got, err := db.SlotTotals(ctx, app, slot)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	ignoreTime := cmpopts.IgnoreFields(hotswap.SlotTotals{}, "Updated")

	publish("b", totalsOf("", "shop", "staging", 2, 5, 0, 1<<40), totalsOf("", "shop", "production", 0, 9))
	publish("a", totalsOf("", "shop", "staging", 1, 3, 4))
	publish("c") // nothing counted yet
	got := read("shop", "staging")
	want := []hotswap.SlotTotals{totalsOf("a", "shop", "staging", 1, 3, 4), totalsOf("b", "shop", "staging", 2, 5, 0, 1<<40)}
	if diff := cmp.Diff(got, want, ignoreTime); diff != "" {
		t.Fatalf("SlotTotals(staging) (-got +want):\n%s", diff)
	}
	for _, r := range got {
		if r.Updated.IsZero() || time.Since(r.Updated) > time.Minute {
			t.Errorf("row of node %s: Updated = %v, want the database's time of the publish", r.Node, r.Updated)
		}
	}
	first := got[0].Updated

	// A publish replaces the node's rows: updated counts, a newer time, and
	// a slot it no longer counts is gone.
	time.Sleep(5 * time.Millisecond)
	publish("b", totalsOf("", "shop", "staging", 3, 8, 0, 1<<40))
	publish("a", totalsOf("", "shop", "staging", 1, 4, 4))
	got = read("shop", "staging")
	want = []hotswap.SlotTotals{totalsOf("a", "shop", "staging", 1, 4, 4), totalsOf("b", "shop", "staging", 3, 8, 0, 1<<40)}
	if diff := cmp.Diff(got, want, ignoreTime); diff != "" {
		t.Fatalf("SlotTotals(staging) after republishing (-got +want):\n%s", diff)
	}
	if !got[0].Updated.After(first) {
		t.Errorf("Updated after a second publish = %v, want after %v", got[0].Updated, first)
	}
	if got := read("shop", "production"); len(got) != 0 {
		t.Errorf("SlotTotals(production) after b stopped counting it = %+v, want none", got)
	}

	publish("c", totalsOf("", "blog", "production", 0, 1))
	all, err := db.AllSlotTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want = []hotswap.SlotTotals{totalsOf("c", "blog", "production", 0, 1), totalsOf("a", "shop", "staging", 1, 4, 4), totalsOf("b", "shop", "staging", 3, 8, 0, 1<<40)}
	if diff := cmp.Diff(all, want, ignoreTime); diff != "" {
		t.Fatalf("AllSlotTotals (-got +want):\n%s", diff)
	}

	// A node silent for longer than NodeMetricsKeep is left out at once,
	// and its rows are deleted by the next publish of another node.
	sqlExec(t, db, "UPDATE nodes SET heartbeat_at = now() - $1 * interval '1 second' WHERE id = 'b'", (NodeMetricsKeep + time.Minute).Seconds())
	want = []hotswap.SlotTotals{totalsOf("a", "shop", "staging", 1, 4, 4)}
	if diff := cmp.Diff(read("shop", "staging"), want, ignoreTime); diff != "" {
		t.Fatalf("SlotTotals(staging) with b silent for long (-got +want):\n%s", diff)
	}
	var rowsOfB int
	count := func() {
		t.Helper()
		if err := db.Pool().QueryRow(ctx, "SELECT count(*) FROM node_metrics WHERE node = 'b'").Scan(&rowsOfB); err != nil {
			t.Fatal(err)
		}
	}
	if count(); rowsOfB != 1 {
		t.Fatalf("b has %d rows before a publish, want 1", rowsOfB)
	}
	publish("a", totalsOf("", "shop", "staging", 1, 5, 4))
	if count(); rowsOfB != 0 {
		t.Errorf("b, silent for long, has %d rows after a's publish, want none", rowsOfB)
	}
}

func TestNodeMetricsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	tests := []struct {
		name string
		node string
		rows []hotswap.SlotTotals
		want string
	}{
		{"no node", "", nil, "node ID is empty"},
		{"no slot", "a", []hotswap.SlotTotals{totalsOf("", "shop", "", 0, 1)}, `row 1 has no app or slot ("shop", "")`},
		{"twice", "a", []hotswap.SlotTotals{totalsOf("", "shop", "x", 0, 1), totalsOf("", "shop", "x", 0, 2)}, "slot shop/x twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := db.PublishNodeMetrics(ctx, tc.node, tc.rows)
			if hotswap.ErrorKind(err) != hotswap.Invalid || !strings.Contains(hotswap.ErrorMessage(err), tc.want) {
				t.Errorf("PublishNodeMetrics = %v, want Invalid saying %q", err, tc.want)
			}
		})
	}
}

// Publishing takes no write lock: it goes through while another node holds
// it (a flip, or a writer stuck), as heartbeats do.
func TestNodeMetricsSparesWriteLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	if err := db.Heartbeat(ctx, hotswap.Node{ID: "a", State: hotswap.NodeServing}); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writeLock); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := db.PublishNodeMetrics(pctx, "a", []hotswap.SlotTotals{totalsOf("", "shop", "production", 0, 1)}); err != nil {
		t.Fatalf("PublishNodeMetrics while the write lock is held: %v", err)
	}
	got, err := db.SlotTotals(pctx, "shop", "production")
	if err != nil || len(got) != 1 {
		t.Fatalf("SlotTotals while the write lock is held = %+v, %v; want a's row", got, err)
	}
}
