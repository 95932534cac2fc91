package metrics

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHistory(t *testing.T) {
	r, c := newRegistry(t)
	s := r.Series("orders", "production", "d1")
	s2 := r.Series("orders", "production", "d2") // same slot: counted together
	other := r.Series("orders", "staging", "d3")

	// Minute 0 (t0 = 12:00:00): 10 requests, 1 of them 5xx.
	for range 9 {
		s.Observe(200, 3*time.Millisecond) // bucket <= 4ms
	}
	s2.Observe(500, 90*time.Millisecond) // bucket <= 100ms
	other.Observe(500, time.Second)
	// Minute 1, the last second of it: a rollover inside the minute is not
	// one, the next second is.
	c.Set(time.Minute + 59*time.Second)
	for range 20 {
		s.Observe(200, 700*time.Microsecond) // <= 1ms
	}
	// Minute 2: 1 request slower than every bound.
	c.Set(2*time.Minute + 30*time.Second)
	s.Observe(200, 2*time.Minute)

	h := r.History("orders", "production")
	if len(h) != HistoryLen {
		t.Fatalf("len(History) = %d, want %d", len(h), HistoryLen)
	}
	end := len(h) - 1
	want := []Point{
		{Start: t0, Requests: 10, Errors: 1, P50: 4 * time.Millisecond, P95: 100 * time.Millisecond},
		{Start: t0.Add(time.Minute), Requests: 20, P50: time.Millisecond, P95: time.Millisecond},
		{Start: t0.Add(2 * time.Minute), Requests: 1, P50: Unbounded, P95: Unbounded},
	}
	if diff := cmp.Diff(want, h[end-2:]); diff != "" {
		t.Errorf("last three minutes (-want +got):\n%s", diff)
	}
	if got, want := h[0].Start, t0.Add(-57*time.Minute); !got.Equal(want) {
		t.Errorf("oldest point starts %v, want %v", got, want)
	}
	for i, p := range h[:end-2] {
		if p.Requests != 0 || p.Errors != 0 || p.P50 != 0 || p.P95 != 0 {
			t.Errorf("point %d before any request = %+v, want zero counts", i, p)
		}
		if i > 0 && p.Start.Sub(h[i-1].Start) != time.Minute {
			t.Errorf("point %d starts %v after point %d", i, p.Start.Sub(h[i-1].Start), i-1)
		}
	}

	// An hour later the ring has turned: minute 0's entry is reused by
	// minute 60 and the old counts are gone, not added.
	c.Set(60*time.Minute + 5*time.Second)
	s.Observe(503, 3*time.Millisecond)
	h = r.History("orders", "production")
	if got := h[len(h)-1]; got.Requests != 1 || got.Errors != 1 || !got.Start.Equal(t0.Add(time.Hour)) {
		t.Errorf("current minute after an hour = %+v, want 1 request, 1 error, at %v", got, t0.Add(time.Hour))
	}
	var total int64
	for _, p := range h {
		total += p.Requests
	}
	if total != 22 { // minutes 1, 2 and 60
		t.Errorf("requests over the hour = %d, want 22 (minute 0 has left the hour)", total)
	}

	want2 := Stats{Requests: 22, Errors: 1, ErrorRate: 1.0 / 22, P95: 4 * time.Millisecond} // 21st of 22: the 5xx of minute 60
	if got := r.HourStats("orders", "production"); got != want2 {
		t.Errorf("HourStats = %+v, want %+v", got, want2)
	}
	if got := r.HourStats("orders", "nope"); got != (Stats{}) {
		t.Errorf("HourStats of an unknown slot = %+v, want zero", got)
	}
	if got := r.History("orders", "nope"); got != nil {
		t.Errorf("History of an unknown slot = %v, want nil", got)
	}
}

func TestHistoryObserveAllocs(t *testing.T) {
	r, c := newRegistry(t)
	s := r.Series("orders", "production", "d1")
	// Each run moves the fake clock by 7s so that the runs cross minute
	// boundaries and claim hour entries, the path that could allocate.
	got := testing.AllocsPerRun(1000, func() {
		c.Advance(7 * time.Second)
		s.Observe(200, 3*time.Millisecond)
		r.Observe("orders", "production", "d1", 500, time.Second)
	})
	if got != 0 {
		t.Errorf("allocations per Observe across minute rollovers = %v, want 0", got)
	}
	var total int64
	for _, p := range r.History("orders", "production") {
		total += p.Requests
	}
	// 60 minutes hold 60*60/7 runs, give or take the partial minutes.
	if total < 2*500 || total > 2*520 {
		t.Errorf("requests over the last hour = %d, want about %d", total, 2*3600/7)
	}
}
