package release

import (
	"context"
	"strings"
	"testing"
	"time"
)

// quiet is a slot without traffic: metrics with no requests.
type quiet struct{}

func (quiet) Window(app, slot string, d time.Duration) Stats { return Stats{} }

// TestMetricGateWithoutTraffic: a metric gate over a window without a
// request (minRequests 0 lets it pass) says it had no data, in its state
// and in the stage's log, instead of a plain "passed".
func TestMetricGateWithoutTraffic(t *testing.T) {
	ctx := context.Background()
	te := newTestEngine(t)
	// The same store and ops, with metrics that see no traffic.
	e, err := Open(ctx, Config{Store: te.db, Ops: te.cfg.Ops, Metrics: quiet{}, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	te.Close()
	defer e.Close()
	def := `name: quiet
artifact: {feed: orders}
stages:
  - name: production
    gates:
      - metric: {app: orders, slot: staging, maxErrorRate: 0.01, window: 5m}
        every: 100ms
        timeout: 10s
    swap: {app: orders, slot: staging, target: production}
`
	if _, err := e.ApplyPipeline(ctx, admin, []byte(def)); err != nil {
		t.Fatal(err)
	}
	r, err := e.CreateRelease(ctx, admin, "quiet", "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err = e.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st := r.stage("production"); len(st.Gates) == 1 && st.Gates[0].Passed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gate did not pass: %+v", r.stage("production"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := r.stage("production")
	if got, want := st.Gates[0].Last, "no data: no requests in 5m0s"; got != want {
		t.Errorf("gate's last result = %q, want %q", got, want)
	}
	var log []string
	for _, l := range st.Log {
		log = append(log, l.Text)
	}
	if want := "gate 1 (metric orders/staging) passed (no data: no requests in 5m0s)"; !strings.Contains(strings.Join(log, "\n"), want) {
		t.Errorf("the stage's log does not say %q:\n%s", want, strings.Join(log, "\n"))
	}
}
