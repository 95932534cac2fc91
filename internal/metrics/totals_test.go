package metrics

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTotals(t *testing.T) {
	r, clk := newRegistry(t)
	// Two deployments of staging, one of production, over several
	// seconds: the totals are lifetime counts, not a window.
	for i := range 40 {
		r.Observe("shop", "staging", "d1", 200, 3*time.Millisecond)
		if i%10 == 0 {
			r.Observe("shop", "staging", "d2", 503, 700*time.Millisecond)
		}
		r.Observe("shop", "production", "d0", 404, 90*time.Second)
		clk.Advance(time.Second)
	}
	r.Observe("shop", "staging", "d2", 99, 0) // broken status: an error

	var want Totals
	want.Hist[bucket(3*time.Millisecond)] = 40
	want.Hist[bucket(700*time.Millisecond)] = 4
	want.Hist[bucket(0)] = 1
	want.Errors = 5
	if diff := cmp.Diff(r.Totals("shop", "staging"), want); diff != "" {
		t.Errorf("Totals(staging) (-got +want):\n%s", diff)
	}
	var prod Totals
	prod.Hist[Buckets-1] = 40 // slower than 60s: the overflow bucket
	if diff := cmp.Diff(r.Totals("shop", "production"), prod); diff != "" {
		t.Errorf("Totals(production) (-got +want):\n%s", diff)
	}
	if got := r.Totals("shop", "nope"); got != (Totals{}) {
		t.Errorf("Totals of an unknown slot = %+v, want zero", got)
	}
	all := r.AllTotals()
	if diff := cmp.Diff(all, map[SlotKey]Totals{{"shop", "staging"}: want, {"shop", "production"}: prod}); diff != "" {
		t.Errorf("AllTotals (-got +want):\n%s", diff)
	}
	// The map is the caller's: editing it changes nothing in the registry.
	delete(all, SlotKey{"shop", "staging"})
	if len(r.AllTotals()) != 2 {
		t.Error("AllTotals returned the registry's own map")
	}

	r.Forget("shop", "staging")
	if got := r.Totals("shop", "staging"); got != (Totals{}) {
		t.Errorf("Totals after Forget = %+v, want zero", got)
	}
	if _, ok := r.AllTotals()[SlotKey{"shop", "staging"}]; ok {
		t.Error("AllTotals lists a forgotten slot")
	}
}

// StatsOf of the difference of two readings is what Window says of the
// requests between them.
func TestStatsOfMatchesWindow(t *testing.T) {
	r, clk := newRegistry(t)
	for range 50 {
		r.Observe("shop", "staging", "d1", 200, 40*time.Millisecond) // before the window
	}
	clk.Advance(time.Minute)
	before := r.Totals("shop", "staging")
	for i := range 200 {
		status, d := 200, 5*time.Millisecond
		switch {
		case i%20 == 0:
			status = 500
		case i%7 == 0:
			d = 300 * time.Millisecond
		}
		r.Observe("shop", "staging", "d1", status, d)
		if i%50 == 49 {
			clk.Advance(time.Second)
		}
	}
	delta, ok := r.Totals("shop", "staging").Sub(before)
	if !ok {
		t.Fatal("Sub of a later reading reported a reset")
	}
	got, want := StatsOf(delta), r.Window("shop", "staging", 10*time.Second)
	if want.Requests != 200 || want.Errors != 10 {
		t.Fatalf("Window = %+v, want 200 requests, 10 errors", want)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("StatsOf (-got +want):\n%s", diff)
	}
	if got := StatsOf(Totals{}); got != (Stats{}) {
		t.Errorf("StatsOf(zero) = %+v, want zero", got)
	}
	var slow Totals
	slow.Hist[Buckets-1] = 1
	if got := StatsOf(slow).P95; got != Unbounded {
		t.Errorf("P95 of overflow = %v, want Unbounded", got)
	}
}

func TestTotalsSubAdd(t *testing.T) {
	mk := func(errs uint64, hist ...uint64) Totals {
		var t Totals
		copy(t.Hist[:], hist)
		t.Errors = errs
		return t
	}
	tests := []struct {
		name     string
		now, old Totals
		want     Totals
		wantOK   bool
	}{
		{"grew", mk(3, 10, 5, 1), mk(1, 4, 5, 0), mk(2, 6, 0, 1), true},
		{"same", mk(1, 4, 5), mk(1, 4, 5), Totals{}, true},
		{"a bucket went down: counted from zero", mk(3, 10, 2), mk(1, 4, 5), mk(3, 10, 2), false},
		{"errors went down: counted from zero", mk(0, 10, 5), mk(1, 4, 5), mk(0, 10, 5), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.now.Sub(tc.old)
			if ok != tc.wantOK {
				t.Errorf("ok = %v, want %v", ok, tc.wantOK)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Sub (-got +want):\n%s", diff)
			}
			if ok {
				if back := tc.old.Add(got); back != tc.now {
					t.Errorf("old + delta = %+v, want %+v", back, tc.now)
				}
			}
		})
	}
}
