package metrics

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// t0 is when the fake clock starts.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a fake clock safe for concurrent use.
type clock struct{ ns atomic.Int64 }

// Now returns the fake time.
func (c *clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Set moves the clock to t0+off.
func (c *clock) Set(off time.Duration) { c.ns.Store(t0.Add(off).UnixNano()) }

// Advance moves the clock forward by d.
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// newRegistry returns a registry on a fake clock set to t0.
func newRegistry(tb testing.TB) (*Registry, *clock) {
	tb.Helper()
	c := &clock{}
	c.Set(0)
	r := New()
	r.Now = c.Now
	return r, c
}

// obs is n requests observed at t0+at.
type obs struct {
	at               time.Duration
	slot, deployment string
	status           int
	d                time.Duration
	n                int
}

func TestWindow(t *testing.T) {
	const app = "orders"
	tests := []struct {
		name   string
		obs    []obs
		now    time.Duration // the query's time, after t0
		window time.Duration
		want   Stats
	}{
		{
			name:   "no requests",
			window: time.Minute,
			want:   Stats{},
		},
		{
			name: "5xx is an error, 4xx is not",
			obs: []obs{
				{slot: "production", deployment: "d1", status: 200, d: 10 * time.Millisecond, n: 90},
				{slot: "production", deployment: "d1", status: 404, d: 10 * time.Millisecond, n: 5},
				{slot: "production", deployment: "d1", status: 500, d: 2 * time.Second, n: 5},
			},
			window: time.Minute,
			want:   Stats{Requests: 100, Errors: 5, ErrorRate: 0.05, P95: 15 * time.Millisecond},
		},
		{
			name: "p95 in the slow tail",
			obs: []obs{
				{slot: "production", deployment: "d1", status: 200, d: time.Millisecond, n: 18},
				{slot: "production", deployment: "d1", status: 200, d: 1200 * time.Millisecond, n: 2},
			},
			window: time.Minute,
			want:   Stats{Requests: 20, P95: 1500 * time.Millisecond},
		},
		{
			name: "a bound belongs to its bucket",
			obs: []obs{
				{slot: "production", deployment: "d1", status: 200, d: 100 * time.Millisecond, n: 100},
			},
			window: time.Minute,
			want:   Stats{Requests: 100, P95: 100 * time.Millisecond},
		},
		{
			name: "beyond the last bucket",
			obs: []obs{
				{slot: "production", deployment: "d1", status: 504, d: 2 * time.Minute, n: 1},
			},
			window: time.Minute,
			want:   Stats{Requests: 1, Errors: 1, ErrorRate: 1, P95: Unbounded},
		},
		{
			name: "all deployments of the slot and no other slot",
			obs: []obs{
				{slot: "production", deployment: "blue", status: 200, d: time.Millisecond, n: 10},
				{slot: "production", deployment: "green", status: 503, d: time.Millisecond, n: 10},
				{slot: "staging", deployment: "green", status: 500, d: time.Minute, n: 50},
			},
			window: time.Minute,
			want:   Stats{Requests: 20, Errors: 10, ErrorRate: 0.5, P95: time.Millisecond},
		},
		{
			name: "old seconds fall out of the window",
			obs: []obs{
				{at: 0, slot: "production", deployment: "d1", status: 500, d: time.Millisecond, n: 10},
				{at: 50 * time.Second, slot: "production", deployment: "d1", status: 200, d: 5 * time.Millisecond, n: 10},
			},
			now:    70 * time.Second,
			window: time.Minute,
			want:   Stats{Requests: 10, P95: 8 * time.Millisecond},
		},
		{
			name: "the oldest whole second is in",
			obs: []obs{
				{at: 0, slot: "production", deployment: "d1", status: 200, d: time.Millisecond, n: 3},
			},
			now:    59*time.Second + 900*time.Millisecond,
			window: time.Minute,
			want:   Stats{Requests: 3, P95: time.Millisecond},
		},
		{
			name: "one second later it is out",
			obs: []obs{
				{at: 0, slot: "production", deployment: "d1", status: 200, d: time.Millisecond, n: 3},
			},
			now:    60 * time.Second,
			window: time.Minute,
			want:   Stats{},
		},
		{
			name: "under a second is the current second",
			obs: []obs{
				{at: 0, slot: "production", deployment: "d1", status: 500, d: time.Millisecond, n: 5},
				{at: time.Second, slot: "production", deployment: "d1", status: 200, d: time.Millisecond, n: 3},
			},
			now:    time.Second,
			window: time.Millisecond,
			want:   Stats{Requests: 3, P95: time.Millisecond},
		},
		{
			name: "a window is ten minutes at most",
			obs: []obs{
				{at: 0, slot: "production", deployment: "d1", status: 500, d: time.Millisecond, n: 5},
				{at: 5 * time.Minute, slot: "production", deployment: "d1", status: 200, d: time.Millisecond, n: 3},
			},
			now:    10 * time.Minute,
			window: time.Hour,
			want:   Stats{Requests: 3, P95: time.Millisecond},
		},
		{
			name: "a bucket reused after ten minutes is reset",
			obs: []obs{
				{at: 0, slot: "production", deployment: "d1", status: 500, d: time.Minute, n: 10},
				{at: 10 * time.Minute, slot: "production", deployment: "d1", status: 200, d: time.Millisecond, n: 1},
			},
			now:    10 * time.Minute,
			window: 10 * time.Minute,
			want:   Stats{Requests: 1, P95: time.Millisecond},
		},
		{
			name: "a bucket not reused is not read after ten minutes",
			obs: []obs{
				{at: 0, slot: "production", deployment: "d1", status: 200, d: time.Millisecond, n: 10},
			},
			now:    20 * time.Minute,
			window: 10 * time.Minute,
			want:   Stats{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, c := newRegistry(t)
			r.Series(app, "production", "d1") // the slot exists even without requests
			for _, o := range tc.obs {
				c.Set(o.at)
				s := r.Series(app, o.slot, o.deployment)
				for range o.n {
					s.Observe(o.status, o.d)
				}
			}
			c.Set(tc.now)
			got := r.Window(app, "production", tc.window)
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Window(%v) mismatch (-got +want):\n%s", tc.window, diff)
			}
		})
	}
}

func TestWindowUnknownSlot(t *testing.T) {
	r, _ := newRegistry(t)
	r.Series("orders", "production", "d1").Observe(500, time.Millisecond)
	if got := r.Window("orders", "staging", time.Minute); got != (Stats{}) {
		t.Errorf("Window of an unknown slot = %+v, want zero", got)
	}
}

func TestClassAndBucket(t *testing.T) {
	classTests := []struct {
		status int
		want   string
	}{
		{100, "1xx"}, {204, "2xx"}, {304, "3xx"}, {429, "4xx"}, {503, "5xx"},
		{599, "5xx"}, {600, "5xx"}, {99, "5xx"}, {0, "5xx"}, {-200, "5xx"},
	}
	for _, tc := range classTests {
		t.Run(fmt.Sprintf("status %d", tc.status), func(t *testing.T) {
			if got := classes[class(tc.status)]; got != tc.want {
				t.Errorf("class(%d) = %s, want %s", tc.status, got, tc.want)
			}
		})
	}
	bucketTests := []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{250 * time.Microsecond, 0},
		{250*time.Microsecond + 1, 1},
		{time.Second, 13},
		{60 * time.Second, len(bounds) - 1},
		{60*time.Second + 1, len(bounds)},
		{time.Hour, len(bounds)},
	}
	for _, tc := range bucketTests {
		t.Run(fmt.Sprintf("duration %v", tc.d), func(t *testing.T) {
			if got := bucket(tc.d); got != tc.want {
				t.Errorf("bucket(%v) = %d, want %d", tc.d, got, tc.want)
			}
		})
	}
}

func TestSeriesIdentity(t *testing.T) {
	r, _ := newRegistry(t)
	s := r.Series("orders", "production", "d1")
	if got := r.Series("orders", "production", "d1"); got != s {
		t.Errorf("second Series call returned a new series")
	}
	r.Observe("orders", "production", "d1", 500, time.Millisecond) // by name, as the router does
	if got, want := s.codes[errorClass].Load(), uint64(1); got != want {
		t.Errorf("5xx count after Registry.Observe = %d, want %d", got, want)
	}
}

// names lists the registry's series as app/slot/deployment, sorted.
func names(r *Registry) []string {
	var out []string
	if m := r.index.Load(); m != nil {
		for k := range *m {
			out = append(out, k.app+"/"+k.slot+"/"+k.deployment)
		}
	}
	slices.Sort(out)
	return out
}

func TestForget(t *testing.T) {
	all := []string{"billing/production/c", "orders/production/a", "orders/production/b", "orders/staging/d"}
	tests := []struct {
		name       string
		app, slot  string
		want       []string
		production Stats // Window of orders/production afterwards
	}{
		{
			name: "slot", app: "orders", slot: "production",
			want: []string{"billing/production/c", "orders/staging/d"},
		},
		{
			name: "app", app: "orders", slot: "",
			want: []string{"billing/production/c"},
		},
		{
			name: "unknown app", app: "nope", slot: "",
			want:       all,
			production: Stats{Requests: 2, P95: time.Millisecond},
		},
		{
			name: "unknown slot", app: "orders", slot: "nope",
			want:       all,
			production: Stats{Requests: 2, P95: time.Millisecond},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRegistry(t)
			for _, n := range all {
				f := strings.Split(n, "/")
				r.Series(f[0], f[1], f[2]).Observe(200, time.Millisecond)
			}
			r.Forget(tc.app, tc.slot)
			if diff := cmp.Diff(names(r), tc.want); diff != "" {
				t.Errorf("series after Forget(%q, %q) (-got +want):\n%s", tc.app, tc.slot, diff)
			}
			if diff := cmp.Diff(r.Window("orders", "production", time.Minute), tc.production); diff != "" {
				t.Errorf("Window after Forget (-got +want):\n%s", diff)
			}
		})
	}
}

// histogram is a scraped Prometheus histogram.
type histogram struct {
	Count   uint64
	Sum     float64
	Buckets []uint64 // cumulative, one per finite bound
}

// scrape fetches url and parses the text exposition format.
func scrape(tb testing.TB, url string) map[string]*dto.MetricFamily {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		tb.Fatalf("GET %s: Content-Type %q, want text/plain", url, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// label returns the value of a sample's label.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// seriesName is how the tests name a sample's series: app/slot/deployment.
func seriesName(m *dto.Metric) string {
	return label(m, "app") + "/" + label(m, "slot") + "/" + label(m, "deployment")
}

// requests returns hotswap_requests_total by app/slot/deployment/code_class.
func requests(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range fams["hotswap_requests_total"].GetMetric() {
		out[seriesName(m)+"/"+label(m, "code_class")] = m.GetCounter().GetValue()
	}
	return out
}

// durations returns hotswap_request_duration_seconds by app/slot/deployment.
func durations(tb testing.TB, fams map[string]*dto.MetricFamily) map[string]histogram {
	tb.Helper()
	out := map[string]histogram{}
	for _, m := range fams["hotswap_request_duration_seconds"].GetMetric() {
		h := m.GetHistogram()
		got := histogram{Count: h.GetSampleCount(), Sum: h.GetSampleSum()}
		for i, b := range h.GetBucket() {
			if i == len(bounds) { // the text format's explicit +Inf bucket
				if !math.IsInf(b.GetUpperBound(), 1) || b.GetCumulativeCount() != got.Count {
					tb.Fatalf("%s last bucket: le=%v count %d, want +Inf and %d", seriesName(m), b.GetUpperBound(), b.GetCumulativeCount(), got.Count)
				}
				continue
			}
			if i > len(bounds) || b.GetUpperBound() != bounds[i].Seconds() {
				tb.Fatalf("%s bucket %d: le=%v, want %v", seriesName(m), i, b.GetUpperBound(), bounds[min(i, len(bounds)-1)].Seconds())
			}
			got.Buckets = append(got.Buckets, b.GetCumulativeCount())
		}
		out[seriesName(m)] = got
	}
	return out
}

func TestHandler(t *testing.T) {
	r, _ := newRegistry(t)
	prod := r.Series("orders", "production", "d1")
	for range 3 {
		prod.Observe(200, 10*time.Millisecond)
	}
	prod.Observe(404, time.Millisecond)
	prod.Observe(503, 2*time.Second)
	r.Observe("orders", "staging", "d2", 700, 100*time.Microsecond) // a broken status is a 5xx
	r.Observe("orders", "staging", "d2", 201, 90*time.Second)       // beyond the last bucket
	r.Series("billing", "production", "d3")                         // no requests yet
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	fams := scrape(t, srv.URL)

	t.Run("types", func(t *testing.T) {
		for name, want := range map[string]dto.MetricType{
			"hotswap_requests_total":           dto.MetricType_COUNTER,
			"hotswap_request_duration_seconds": dto.MetricType_HISTOGRAM,
			"go_goroutines":                    dto.MetricType_GAUGE,
			"process_cpu_seconds_total":        dto.MetricType_COUNTER,
		} {
			f, ok := fams[name]
			if !ok {
				t.Errorf("%s missing", name)
				continue
			}
			if got := f.GetType(); got != want {
				t.Errorf("%s type = %v, want %v", name, got, want)
			}
		}
	})
	t.Run("requests", func(t *testing.T) {
		want := map[string]float64{
			"orders/production/d1/1xx":  0,
			"orders/production/d1/2xx":  3,
			"orders/production/d1/3xx":  0,
			"orders/production/d1/4xx":  1,
			"orders/production/d1/5xx":  1,
			"orders/staging/d2/1xx":     0,
			"orders/staging/d2/2xx":     1,
			"orders/staging/d2/3xx":     0,
			"orders/staging/d2/4xx":     0,
			"orders/staging/d2/5xx":     1,
			"billing/production/d3/1xx": 0,
			"billing/production/d3/2xx": 0,
			"billing/production/d3/3xx": 0,
			"billing/production/d3/4xx": 0,
			"billing/production/d3/5xx": 0,
		}
		if diff := cmp.Diff(requests(fams), want); diff != "" {
			t.Errorf("hotswap_requests_total (-got +want):\n%s", diff)
		}
	})
	t.Run("durations", func(t *testing.T) {
		// Bounds: 250µs 500µs 1ms 2ms 4ms 8ms 15ms 30ms 60ms 100ms
		// 200ms 400ms 750ms 1.5s 3s 6s 10s 20s 40s 60s.
		want := map[string]histogram{
			"orders/production/d1": {
				Count:   5,
				Sum:     2.031,
				Buckets: []uint64{0, 0, 1, 1, 1, 1, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5},
			},
			"orders/staging/d2": {
				Count:   2,
				Sum:     90.0001,
				Buckets: []uint64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
			},
			"billing/production/d3": {
				Buckets: make([]uint64, len(bounds)),
			},
		}
		if diff := cmp.Diff(durations(t, fams), want); diff != "" {
			t.Errorf("hotswap_request_duration_seconds (-got +want):\n%s", diff)
		}
	})
	t.Run("forgotten series are not exported", func(t *testing.T) {
		r.Forget("orders", "")
		fams := scrape(t, srv.URL)
		want := map[string]float64{
			"billing/production/d3/1xx": 0,
			"billing/production/d3/2xx": 0,
			"billing/production/d3/3xx": 0,
			"billing/production/d3/4xx": 0,
			"billing/production/d3/5xx": 0,
		}
		if diff := cmp.Diff(requests(fams), want); diff != "" {
			t.Errorf("hotswap_requests_total after Forget (-got +want):\n%s", diff)
		}
	})
}

func TestHandlerInvalidLabel(t *testing.T) {
	r, _ := newRegistry(t)
	r.Observe("orders", "production", "d1", 200, time.Millisecond)
	r.Observe("bad\xff", "production", "d1", 200, time.Millisecond) // not UTF-8
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	got := durations(t, scrape(t, srv.URL))
	want := map[string]histogram{
		"orders/production/d1": {
			Count:   1,
			Sum:     0.001,
			Buckets: []uint64{0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("hotswap_request_duration_seconds with a bad label (-got +want):\n%s", diff)
	}
}

func TestConcurrent(t *testing.T) {
	const (
		writers = 8
		each    = 2000 // requests per writer; every 10th is a 5xx
	)
	tests := []struct {
		name    string
		advance bool // a goroutine moves the clock a second at a time, so ring entries are reset under load
	}{
		{name: "fixed clock"},
		{name: "advancing clock", advance: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, c := newRegistry(t)
			h := r.Handler()
			var (
				writing sync.WaitGroup
				reading sync.WaitGroup
				done    atomic.Bool
			)
			for w := range writers {
				writing.Go(func() {
					dep := fmt.Sprintf("d%d", w%2)
					s := r.Series("orders", "production", dep)
					for i := range each {
						status := 200
						if i%10 == 0 {
							status = 500
						}
						if w%4 == 0 {
							r.Observe("orders", "production", dep, status, time.Duration(i)*time.Microsecond)
						} else {
							s.Observe(status, time.Duration(i)*time.Microsecond)
						}
					}
				})
			}
			reading.Go(func() {
				for !done.Load() {
					r.Window("orders", "production", MaxWindow)
				}
			})
			reading.Go(func() {
				for !done.Load() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
					if rec.Code != http.StatusOK {
						t.Errorf("GET /metrics during writes: %d", rec.Code)
						return
					}
				}
			})
			if tc.advance {
				reading.Go(func() {
					for !done.Load() {
						c.Advance(time.Second)
						time.Sleep(10 * time.Microsecond)
					}
				})
			}
			writing.Wait()
			done.Store(true)
			reading.Wait()

			// Lifetime counters never lose a request, whatever the clock did.
			var gotTotal, gotErrors uint64
			for _, dep := range []string{"d0", "d1"} {
				s := r.Series("orders", "production", dep)
				for i := range s.codes {
					gotTotal += s.codes[i].Load()
				}
				gotErrors += s.codes[errorClass].Load()
			}
			if want := uint64(writers * each); gotTotal != want {
				t.Errorf("lifetime requests = %d, want %d", gotTotal, want)
			}
			if want := uint64(writers * each / 10); gotErrors != want {
				t.Errorf("lifetime 5xx = %d, want %d", gotErrors, want)
			}

			var want Stats
			if tc.advance {
				// Entries were reset under load; what is left is inexact by
				// design. A new second must count exactly again.
				c.Advance(time.Second)
				r.Observe("orders", "production", "d0", 500, 3*time.Second)
				want = Stats{Requests: 1, Errors: 1, ErrorRate: 1, P95: 3 * time.Second}
				if got := r.Window("orders", "production", time.Second); got != want {
					t.Errorf("Window(1s) after the load = %+v, want %+v", got, want)
				}
				return
			}
			want = Stats{Requests: writers * each, Errors: writers * each / 10, ErrorRate: 0.1, P95: 2 * time.Millisecond}
			if diff := cmp.Diff(r.Window("orders", "production", MaxWindow), want); diff != "" {
				t.Errorf("Window after the load (-got +want):\n%s", diff)
			}
		})
	}
}

func TestObserveAllocs(t *testing.T) {
	r := New() // the real clock: time.Now must not allocate either
	s := r.Series("orders", "production", "d1")
	r.Series("orders", "production", "d2")
	tests := []struct {
		name string
		f    func()
	}{
		{"Series.Observe", func() { s.Observe(200, 3*time.Millisecond) }},
		{"Series.Observe 5xx", func() { s.Observe(503, 3*time.Second) }},
		{"Registry.Observe", func() { r.Observe("orders", "production", "d2", 200, time.Millisecond) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(1000, tc.f); got != 0 {
				t.Errorf("allocations per call = %v, want 0", got)
			}
		})
	}
}
