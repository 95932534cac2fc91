package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the registry's metrics in the Prometheus exposition format:
// hotswap_requests_total{app,slot,deployment,code_class} (a counter per status
// class, 1xx to 5xx) and hotswap_request_duration_seconds{app,slot,deployment}
// (a histogram), plus the Go runtime and process collectors. Samples are
// built from the atomics at scrape time, so the request path never touches
// client_golang's locks and maps.
func (r *Registry) Handler() http.Handler {
	r.handlerOnce.Do(func() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(
			newCollector(r),
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
		reg.MustRegister(r.Collectors...)
		r.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	})
	return r.handler
}

// collector exports a Registry's series to Prometheus.
type collector struct {
	reg      *Registry
	requests *prometheus.Desc
	duration *prometheus.Desc
	le       [len(bounds)]float64 // bucket bounds in seconds
}

// newCollector returns a collector of r's series.
func newCollector(r *Registry) *collector {
	c := &collector{
		reg: r,
		requests: prometheus.NewDesc("hotswap_requests_total",
			"Requests a slot's deployment answered, by HTTP status class.",
			[]string{"app", "slot", "deployment", "code_class"}, nil),
		duration: prometheus.NewDesc("hotswap_request_duration_seconds",
			"Time a slot's deployment took to answer a request.",
			[]string{"app", "slot", "deployment"}, nil),
	}
	for i, b := range bounds {
		c.le[i] = b.Seconds()
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.duration
}

// Collect implements prometheus.Collector. Each counter is read atomically,
// but a series is not a snapshot: requests observed during the scrape may
// show in one sample and not another. The histogram count is the sum of its
// buckets, so it is consistent with them.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := c.reg.index.Load()
	if m == nil {
		return
	}
	for _, s := range *m {
		for i, name := range classes {
			ch <- valid(c.requests)(prometheus.NewConstMetric(c.requests, prometheus.CounterValue,
				float64(s.codes[i].Load()), s.app, s.slot, s.deployment, name))
		}
		buckets := make(map[float64]uint64, len(bounds))
		var count uint64
		for i := range s.hist {
			count += s.hist[i].Load()
			if i < len(bounds) {
				buckets[c.le[i]] = count
			}
		}
		sum := float64(s.sumMicros.Load()) / 1e6
		ch <- valid(c.duration)(prometheus.NewConstHistogram(c.duration, count, sum, buckets,
			s.app, s.slot, s.deployment))
	}
}

// valid returns a function passing on a metric, or, when building it failed
// (a label value that is not UTF-8), an invalid metric that the handler
// reports in its log and skips: one bad name must neither panic the scrape
// nor hide the other series.
func valid(desc *prometheus.Desc) func(prometheus.Metric, error) prometheus.Metric {
	return func(m prometheus.Metric, err error) prometheus.Metric {
		if err != nil {
			return prometheus.NewInvalidMetric(desc, err)
		}
		return m
	}
}
