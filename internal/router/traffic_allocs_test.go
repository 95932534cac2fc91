package router

import (
	"runtime"
	"testing"
)

// TestTrafficForwardAllocs: on the lean forwarding path a request to
// production's host name allocates nothing with no rule, with a 10% rule
// (a draw and a Set-Cookie per answer) and with a routing cookie pinning
// the client to staging; and each case is routed as its rule says.
func TestTrafficForwardAllocs(t *testing.T) {
	for _, tc := range routingCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newRoutingFixture(t, tc.shares)
			rc := f.dial(t, tc.cookie)
			var err error
			one := func() {
				if e := rc.do(); e != nil && err == nil {
					err = e
				}
			}
			for range 100 {
				one() // warm the pools and the handler connections
			}
			rc.staging, rc.cookies = 0, 0
			lean := f.lean.Load()
			const runs = 2000
			// AllocsPerRun truncates the mean, so an allocation on the 10%
			// of requests routed to staging would not show in it: count
			// every allocation too. A few come from the runtime and the
			// test itself (GC, timers), hence the small allowance.
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			allocs := testing.AllocsPerRun(runs, one)
			runtime.ReadMemStats(&m1)
			if err != nil {
				t.Fatal(err)
			}
			total := m1.Mallocs - m0.Mallocs
			t.Logf("%v allocs/op, %d allocations in %d requests", allocs, total, runs+1)
			if allocs != 0 || total > runs/50 {
				t.Errorf("%v allocs/op, %d allocations in %d requests, want 0", allocs, total, runs+1)
			}
			checkRouting(t, tc.name, rc, f.lean.Load()-lean, runs+1)
		})
	}
}
