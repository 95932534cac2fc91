// Package metrics records the data plane's request metrics per app, slot and
// deployment. The request path writes only atomics: lifetime counters per
// status class, a fixed-bucket latency histogram, and a ring of per-second
// buckets covering the last ten minutes. Release gates read the ring through
// Registry.Window ("error rate and p95 of slot X over the last N minutes"),
// the portal's charts read a ring of per-minute buckets through
// Registry.History (the last hour), and Registry.Handler exports the lifetime counters in the Prometheus text
// format, building the samples at scrape time.
package metrics

import (
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxWindow is the longest span Window can aggregate: the ring holds one
// bucket per second for this long.
const MaxWindow = 10 * time.Minute

// Unbounded is the P95 reported when the 95th percentile lies above the last
// finite bucket bound (60s): a gate comparing P95 to a limit then fails, as it
// should.
const Unbounded = time.Duration(math.MaxInt64)

// ringSize is the number of per-second buckets in a slot's ring.
const ringSize = int64(MaxWindow / time.Second)

// bounds are the upper bounds (inclusive, like Prometheus "le") of the latency
// histogram buckets, roughly doubling from 250µs to 60s with round values, so
// that a P95 read from them overstates the true value by less than 2x. A
// final, implicit bucket holds everything slower.
var bounds = [...]time.Duration{
	250 * time.Microsecond,
	500 * time.Microsecond,
	1 * time.Millisecond,
	2 * time.Millisecond,
	4 * time.Millisecond,
	8 * time.Millisecond,
	15 * time.Millisecond,
	30 * time.Millisecond,
	60 * time.Millisecond,
	100 * time.Millisecond,
	200 * time.Millisecond,
	400 * time.Millisecond,
	750 * time.Millisecond,
	1500 * time.Millisecond,
	3 * time.Second,
	6 * time.Second,
	10 * time.Second,
	20 * time.Second,
	40 * time.Second,
	60 * time.Second,
}

// nBuckets counts the histogram buckets, the overflow bucket included.
const nBuckets = len(bounds) + 1

// classes are the Prometheus code_class label values, indexed by status/100-1.
var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// errorClass is the index in classes of the class that counts as an error.
const errorClass = 4

// bucket returns the index of the histogram bucket holding d.
func bucket(d time.Duration) int {
	i, _ := slices.BinarySearch(bounds[:], d) // first bound >= d
	return i
}

// class returns the index in classes of an HTTP status. A status outside
// 100..599 is a broken response and counts as 5xx.
func class(status int) int {
	c := status/100 - 1
	if status < 100 || c > errorClass {
		return errorClass
	}
	return c
}

// seriesKey names one series.
type seriesKey struct{ app, slot, deployment string }

// slotKey names one slot.
type slotKey struct{ app, slot string }

// slotData is what a Registry keeps per slot: the time ring shared by all
// the slot's deployments (gates ask about slots, and sharing bounds the
// memory by slots, not by deployments ever made) and its series.
type slotData struct {
	ring        ring
	hour        hour // per-minute history for the portal's charts
	deployments map[string]*Series
}

// Registry holds request metrics per app, slot and deployment. The zero value
// is ready to use; New returns one too. Its methods are safe for concurrent use.
type Registry struct {
	// Now returns the current time; nil means the system clock (read as
	// monotonic time elapsed since the package started, so wall-clock steps
	// do not move the ring). Tests set it to a fake clock before the first
	// Observe; it is called on every Observe.
	Now func() time.Time

	mu    sync.Mutex
	slots map[slotKey]*slotData // guarded by mu

	// index maps every series by name. It is copied on write under mu and
	// read without a lock by Observe-by-name and by the Prometheus collector.
	index atomic.Pointer[map[seriesKey]*Series]

	// Collectors are exported by Handler beside the request metrics (the
	// triggers' counters, say); set them before Handler is first called.
	Collectors []prometheus.Collector

	handlerOnce sync.Once
	handler     http.Handler
}

// New returns an empty Registry.
func New() *Registry { return &Registry{} }

// anchor pairs a wall-clock reading with the monotonic clock, so that the
// current Unix second can be derived from the monotonic time elapsed since:
// one clock read on the request path where time.Now takes two (about half the
// cost of Observe otherwise), and a ring that never steps back with the wall
// clock. It is set once, at package initialization, and never written again.
var anchor = time.Now()

// anchorNanos is anchor in Unix nanoseconds.
var anchorNanos = anchor.UnixNano()

// unix returns the current Unix second of the registry's clock.
func (r *Registry) unix() int64 {
	if r.Now != nil {
		return r.Now().Unix()
	}
	return (anchorNanos + int64(time.Since(anchor))) / int64(time.Second)
}

// Series returns the series of one (app, slot, deployment), creating it.
// Callers (the control plane, when it builds a routing table) hold the pointer
// so that the request path needs no map lookup.
func (r *Registry) Series(app, slot, deployment string) *Series {
	k := seriesKey{app, slot, deployment}
	if m := r.index.Load(); m != nil {
		if s := (*m)[k]; s != nil {
			return s
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.slots == nil {
		r.slots = make(map[slotKey]*slotData)
	}
	sd := r.slots[slotKey{app, slot}]
	if sd == nil {
		sd = &slotData{deployments: make(map[string]*Series)}
		r.slots[slotKey{app, slot}] = sd
	}
	if s := sd.deployments[deployment]; s != nil {
		return s // created by a concurrent call since the lock-free look-up
	}
	s := &Series{reg: r, ring: &sd.ring, hour: &sd.hour, app: app, slot: slot, deployment: deployment}
	sd.deployments[deployment] = s
	r.publishLocked()
	return s
}

// Forget drops the series of a deleted slot (all its deployments), or of all
// an app's slots when slot is "". Series pointers still held keep accepting
// observations, but these are no longer exported or windowed; a later
// Series call for the same names starts from zero.
func (r *Registry) Forget(app, slot string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.slots {
		if k.app == app && (slot == "" || k.slot == slot) {
			delete(r.slots, k)
		}
	}
	r.publishLocked()
}

// publishLocked rebuilds the lock-free index from r.slots. r.mu must be held.
// Copying on write costs O(series) per created series, which happens on the
// control plane only; the request path then reads a map nobody writes.
func (r *Registry) publishLocked() {
	n := 0
	for _, sd := range r.slots {
		n += len(sd.deployments)
	}
	m := make(map[seriesKey]*Series, n)
	for _, sd := range r.slots {
		for _, s := range sd.deployments {
			m[seriesKey{s.app, s.slot, s.deployment}] = s
		}
	}
	r.index.Store(&m)
}

// Observe records one request by name, so that a Registry satisfies the
// router's Metrics interface. It costs a lock-free map look-up more than
// Series.Observe and allocates nothing once the series exists; the first
// request of a new series creates it under a lock.
func (r *Registry) Observe(app, slot, deployment string, status int, d time.Duration) {
	if m := r.index.Load(); m != nil {
		if s := (*m)[seriesKey{app, slot, deployment}]; s != nil {
			s.Observe(status, d)
			return
		}
	}
	r.Series(app, slot, deployment).Observe(status, d)
}

// Stats are a slot's request metrics over a window.
type Stats struct {
	Requests  int64
	Errors    int64   // responses with a 5xx status; 4xx is the client's error
	ErrorRate float64 // Errors / Requests; 0 when there are no requests
	// P95 is the upper bound of the histogram bucket holding the 95th
	// percentile, so it overstates the true value by less than the bucket
	// width; Unbounded above 60s; 0 when there are no requests.
	P95 time.Duration
}

// Window aggregates a slot's requests, all its deployments together, over the
// last d: the current second and the whole seconds before it, d rounded up to
// a second and clamped to 1s..MaxWindow. An unknown slot has zero Stats.
func (r *Registry) Window(app, slot string, d time.Duration) Stats {
	r.mu.Lock()
	sd := r.slots[slotKey{app, slot}]
	r.mu.Unlock()
	if sd == nil {
		return Stats{}
	}
	n := int64((d + time.Second - 1) / time.Second)
	n = min(max(n, 1), ringSize)
	hist, errs := sd.ring.sum(r.unix(), n)
	return stats(&hist, errs)
}

// stats computes Stats from a window's histogram and error count.
func stats(hist *[nBuckets]uint64, errs uint64) Stats {
	var total uint64
	for _, c := range hist {
		total += c
	}
	if total == 0 {
		return Stats{}
	}
	// Error and bucket counts are separate atomics, so a read racing a ring
	// reset may see more errors than requests.
	errs = min(errs, total)
	st := Stats{
		Requests:  int64(total),
		Errors:    int64(errs),
		ErrorRate: float64(errs) / float64(total),
		P95:       Unbounded,
	}
	rank := (total*95 + 99) / 100 // ceil(0.95 * total): the 95th percentile's rank
	var cum uint64
	for i, c := range hist[:len(bounds)] {
		cum += c
		if cum >= rank {
			st.P95 = bounds[i]
			break
		}
	}
	return st
}

// Series holds the metrics of one (app, slot, deployment). Its Observe is the
// request path: lock-free and allocation-free.
type Series struct {
	reg                   *Registry
	ring                  *ring // shared with the slot's other deployments
	hour                  *hour // shared with the slot's other deployments
	app, slot, deployment string

	// The fields above are read by every Observe, those below written:
	// padding keeps them off one cache line so cores don't invalidate it.
	_ [64]byte

	codes     [len(classes)]atomic.Uint64 // lifetime requests per status class
	hist      [nBuckets]atomic.Uint64     // lifetime latency histogram, not cumulative
	sumMicros atomic.Uint64               // lifetime latency sum; µs so it won't wrap
}

// Observe records one request with its HTTP status and duration. Many
// goroutines call it concurrently; it takes no lock and allocates nothing.
func (s *Series) Observe(status int, d time.Duration) {
	d = max(d, 0)
	b := bucket(d)
	c := class(status)
	s.codes[c].Add(1)
	s.hist[b].Add(1)
	s.sumMicros.Add(uint64(d / time.Microsecond))
	sec := s.reg.unix()
	s.ring.add(sec, b, c == errorClass)
	s.hour.add(sec, b, c == errorClass)
}

// second is one ring entry: the requests of one Unix second. 32-bit counters
// halve the ring's size (about 56 KiB per slot) and hold 4e9 requests a second.
type second struct {
	epoch  atomic.Int64  // the Unix second the counts belong to
	errors atomic.Uint32 // 5xx responses
	hist   [nBuckets]atomic.Uint32
}

// ring is a slot's last MaxWindow of requests, one entry per second, entry
// sec%ringSize holding second sec. Entries are reset lazily by the first
// Observe of a new second that maps to them, with atomics only:
//
// The claimer sees an older epoch, zeroes the counts, then compare-and-swaps
// the epoch to the new second; writers that see the new epoch add to it.
// Zeroing before publishing the epoch means a reader (which checks the epoch
// before and after reading) never attributes the counts of ten minutes ago
// to the current second. The price is a possible small undercount, never an
// overcount: when two goroutines claim the same entry at once, the loser's
// zeroing may land after the winner's first increments and erase them. That
// needs a goroutine to stall between reading the old epoch and zeroing, at
// the first request of a second, and costs at most the increments made
// meanwhile; a gate reading minutes of traffic does not notice. A lock or a
// per-entry "resetting" state would remove it at the cost of making the
// request path wait.
type ring [ringSize]second

// entry returns the entry that holds second sec.
func (r *ring) entry(sec int64) *second {
	i := sec % ringSize
	if i < 0 {
		i += ringSize
	}
	return &r[i]
}

// add counts one request in second sec, histogram bucket b.
func (r *ring) add(sec int64, b int, isErr bool) {
	r.entry(sec).add(sec, b, isErr)
}

// add counts one request in the entry for epoch (a second in a ring, a
// minute in an hour), claiming the entry first if it holds an older epoch.
func (e *second) add(epoch int64, b int, isErr bool) {
	for {
		ep := e.epoch.Load()
		if ep == epoch {
			break
		}
		if ep > epoch {
			// A later epoch owns the entry (the clock went back): this
			// request is outside every window.
			return
		}
		e.reset()
		if e.epoch.CompareAndSwap(ep, epoch) {
			break
		}
		// Another goroutine claimed the entry: look at its epoch again.
	}
	e.hist[b].Add(1)
	if isErr {
		e.errors.Add(1)
	}
}

// reset zeroes an entry's counts.
func (e *second) reset() {
	e.errors.Store(0)
	for i := range e.hist {
		e.hist[i].Store(0)
	}
}

// sum adds up the n seconds ending with second now. An entry whose epoch is
// not the second asked for holds older data (or nothing) and is skipped, as
// is one reclaimed while being read.
func (r *ring) sum(now, n int64) (hist [nBuckets]uint64, errs uint64) {
	for sec := now - n + 1; sec <= now; sec++ {
		e := r.entry(sec)
		if e.epoch.Load() != sec {
			continue
		}
		var h [nBuckets]uint32
		for i := range h {
			h[i] = e.hist[i].Load()
		}
		er := e.errors.Load()
		if e.epoch.Load() != sec {
			continue
		}
		for i, c := range h {
			hist[i] += uint64(c)
		}
		errs += uint64(er)
	}
	return hist, errs
}
