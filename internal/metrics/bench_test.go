package metrics

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clientGolangNs measures, once per run (so in the same run as Observe), the
// baseline Observe is reported against: the same observation made with
// client_golang vectors on the request path, as a router calling
// CounterVec/HistogramVec per request would, on GOMAXPROCS goroutines.
var clientGolangNs = sync.OnceValue(func() float64 {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests_total"},
		[]string{"app", "slot", "deployment", "code_class"})
	durations := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "duration_seconds", Buckets: boundsSeconds()},
		[]string{"app", "slot", "deployment"})
	// testing.Benchmark cannot run inside a benchmark: time a parallel loop.
	const perG = 200_000
	procs := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	start := time.Now()
	for range procs {
		wg.Go(func() {
			for range perG {
				requests.WithLabelValues("orders", "production", "d1", "2xx").Inc()
				durations.WithLabelValues("orders", "production", "d1").Observe(0.003)
			}
		})
	}
	wg.Wait()
	return float64(time.Since(start).Nanoseconds()) / (perG * float64(procs))
})

// boundsSeconds returns the histogram bounds in seconds.
func boundsSeconds() []float64 {
	out := make([]float64, len(bounds))
	for i, b := range bounds {
		out[i] = b.Seconds()
	}
	return out
}

// BenchmarkObserveParallel measures the request path under contention: all
// goroutines write one series, the worst case for cache-line sharing.
func BenchmarkObserveParallel(b *testing.B) {
	baseline := clientGolangNs()
	r := New()
	s := r.Series("orders", "production", "d1")
	for _, bc := range []struct {
		name string
		f    func()
	}{
		{"series", func() { s.Observe(200, 3*time.Millisecond) }},
		{"by-name", func() { r.Observe("orders", "production", "d1", 200, 3*time.Millisecond) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					bc.f()
				}
			})
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(ns/baseline, "x-client_golang")
		})
	}
}

// BenchmarkObserve measures the request path without contention.
func BenchmarkObserve(b *testing.B) {
	s := New().Series("orders", "production", "d1")
	b.ReportAllocs()
	for b.Loop() {
		s.Observe(200, 3*time.Millisecond)
	}
}

// BenchmarkWindow measures a gate's query over a full ring.
func BenchmarkWindow(b *testing.B) {
	r := New()
	s := r.Series("orders", "production", "d1")
	for range 1000 {
		s.Observe(200, 3*time.Millisecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Window("orders", "production", MaxWindow)
	}
}
