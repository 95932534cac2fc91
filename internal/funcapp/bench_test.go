package funcapp

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// benchFuncs is an app of typical size: a score of HTTP functions.
func benchFuncs() []*Function {
	fns := []*Function{
		httpFunc("Health", "health", "GET"),
		httpFunc("Product", "products/{category:alpha}/{id:int}", "GET"),
		httpFunc("Files", "files/{*path}", "GET"),
	}
	for i := range 20 {
		fns = append(fns, httpFunc(fmt.Sprintf("F%d", i), fmt.Sprintf("svc%d/{id}/items/{item:int?}", i)))
	}
	return fns
}

// serveMuxNs measures, once per run (so in the same run as Match), the standard library ServeMux resolving
// an equivalent route table: the baseline Match is reported against.
var serveMuxNs = sync.OnceValues(func() (literal, params float64) {
	mux := http.NewServeMux()
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux.Handle("GET /api/health", h)
	mux.Handle("GET /api/products/{category}/{id}", h)
	mux.Handle("GET /api/files/{path...}", h)
	for i := range 20 {
		mux.Handle(fmt.Sprintf("/api/svc%d/{id}/items/{item}", i), h)
	}
	run := func(path string) float64 {
		// testing.Benchmark cannot run inside a benchmark: time a loop.
		req := httptest.NewRequest("GET", path, nil)
		const n = 200_000
		start := time.Now()
		for range n {
			mux.Handler(req)
		}
		return float64(time.Since(start).Nanoseconds()) / n
	}
	return run("/api/health"), run("/api/products/shoes/42")
})

func BenchmarkRouterMatch(b *testing.B) {
	r := newRouter(b, "api", benchFuncs()...)
	literal, params := serveMuxNs()
	for _, bc := range []struct {
		name, path string
		baseline   float64
	}{
		{"literal", "/api/health", literal},
		{"two-params", "/api/products/shoes/42", params},
		{"last-of-many", "/api/svc19/abc/items/7", 0},
		{"escaped", "/api/files/a%20b/c", 0},
		{"not-found", "/api/nothing/here", 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			dst := make([]Param, 0, 8)
			b.ReportAllocs()
			for b.Loop() {
				r.Match("GET", bc.path, dst)
			}
			if bc.baseline > 0 {
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(ns/bc.baseline, "x-servemux")
			}
		})
	}
}
