package metrics

// Buckets counts the latency histogram's buckets, the overflow bucket
// (slower than 60s) included, as Totals.Hist holds them.
const Buckets = nBuckets

// Totals are a slot's lifetime request counts on this node, all its
// deployments together: what a node shares with the others of a cluster,
// so that the node analysing a progressive swap sees every node's
// requests. Two readings of one slot subtract into the requests between
// them (Sub), which StatsOf reads as Window's figures.
type Totals struct {
	// Hist counts requests per latency bucket, with Window's bounds (the
	// last one counts those slower than 60s); not cumulative.
	Hist   [Buckets]uint64
	Errors uint64 // responses with a 5xx status (or a broken one)
}

// SlotKey names a slot of an app.
type SlotKey struct{ App, Slot string }

// Totals returns the lifetime counts of a slot, all its deployments
// together; zero for a slot without requests or forgotten (see Forget). It
// reads atomics only: the request path is not held up.
func (r *Registry) Totals(app, slot string) Totals {
	r.mu.Lock()
	defer r.mu.Unlock()
	sd := r.slots[slotKey{app, slot}]
	if sd == nil {
		return Totals{}
	}
	return sd.totals()
}

// AllTotals returns the lifetime counts of every slot the registry holds,
// in a new map the caller owns.
func (r *Registry) AllTotals() map[SlotKey]Totals {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[SlotKey]Totals, len(r.slots))
	for k, sd := range r.slots {
		out[SlotKey{k.app, k.slot}] = sd.totals()
	}
	return out
}

// totals sums the slot's series. r.mu must be held (it guards the map;
// the counts are atomics).
func (sd *slotData) totals() Totals {
	var t Totals
	for _, s := range sd.deployments {
		for i := range s.hist {
			t.Hist[i] += s.hist[i].Load()
		}
		t.Errors += s.codes[errorClass].Load()
	}
	return t
}

// Add returns t plus u, bucket by bucket.
func (t Totals) Add(u Totals) Totals {
	for i := range t.Hist {
		t.Hist[i] += u.Hist[i]
	}
	t.Errors += u.Errors
	return t
}

// Sub returns the requests counted in t but not in an earlier reading
// old, bucket by bucket. ok is false when a count of t is below old's:
// the counts started again from zero in between (the node restarted, or
// the slot was forgotten and made again), and t itself is what was
// counted since.
func (t Totals) Sub(old Totals) (delta Totals, ok bool) {
	for i := range t.Hist {
		if t.Hist[i] < old.Hist[i] {
			return t, false
		}
		delta.Hist[i] = t.Hist[i] - old.Hist[i]
	}
	if t.Errors < old.Errors {
		return t, false
	}
	delta.Errors = t.Errors - old.Errors
	return delta, true
}

// StatsOf reads counts (usually the difference of two readings, see Sub)
// as Window does: requests, 5xx errors, error rate and the p95 bucket's
// upper bound.
func StatsOf(delta Totals) Stats {
	return stats(&delta.Hist, delta.Errors)
}
