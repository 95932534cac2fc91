package ops

import (
	"context"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/metrics"
	"github.com/hotswap/hotswap/internal/pgtest"
	"github.com/hotswap/hotswap/internal/postgres"
)

// A node publishes its registry's counts at its heartbeats, for the node
// that analyses progressive swaps; counts that did not change are not
// written again.
func TestNodePublishesMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	reg := metrics.New()
	s, _ := openNodeWith(t, dsn, "a", func(db Store) Store { return db }, func(c *Config) { c.Metrics = reg })
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	read := func() []hotswap.SlotTotals {
		t.Helper()
		rows, err := db.SlotTotals(ctx, "shop", "staging")
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	for range 30 {
		reg.Observe("shop", "staging", "d1", 200, 3*time.Millisecond)
	}
	reg.Observe("shop", "staging", "d2", 500, 3*time.Millisecond)
	var rows []hotswap.SlotTotals
	waitFor(t, 10*time.Second, "node a publishes 31 requests of shop/staging", func() bool {
		rows = read()
		return len(rows) == 1 && total(rows[0]) == 31
	})
	if rows[0].Node != s.NodeID() || rows[0].Errors != 1 || len(rows[0].Hist) != metrics.Buckets {
		t.Fatalf("published row = %+v, want node %s, 1 error, %d buckets", rows[0], s.NodeID(), metrics.Buckets)
	}

	// Three heartbeats with nothing new write nothing.
	time.Sleep(3500 * time.Millisecond)
	if again := read(); len(again) != 1 || !again[0].Updated.Equal(rows[0].Updated) {
		t.Fatalf("with no new request the row was written again: %+v, then %+v", rows[0], again)
	}
	reg.Observe("shop", "staging", "d2", 200, time.Second)
	waitFor(t, 10*time.Second, "node a publishes its 32nd request", func() bool {
		rows = read()
		return len(rows) == 1 && total(rows[0]) == 32
	})
}

func total(t hotswap.SlotTotals) uint64 {
	var n uint64
	for _, c := range t.Hist {
		n += c
	}
	return n
}
