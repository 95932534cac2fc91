package metrics

import "time"

// HistoryLen is the number of minutes History returns: the last hour.
const HistoryLen = 60

// hour is a slot's per-minute history, entry m%HistoryLen holding Unix minute
// m. It reuses the ring's entry type and its lock-free claiming (see ring),
// with minutes for epochs: about 6 KiB per slot.
type hour [HistoryLen]second

// minute returns the Unix minute holding Unix second sec.
func minute(sec int64) int64 {
	m := sec / 60
	if sec < 0 && sec%60 != 0 {
		m--
	}
	return m
}

// entry returns the entry that holds Unix minute m.
func (h *hour) entry(m int64) *second {
	i := m % HistoryLen
	if i < 0 {
		i += HistoryLen
	}
	return &h[i]
}

// add counts one request made in Unix second sec, histogram bucket b.
func (h *hour) add(sec int64, b int, isErr bool) {
	m := minute(sec)
	h.entry(m).add(m, b, isErr)
}

// Point is one minute of a slot's requests, all its deployments together.
type Point struct {
	Start    time.Time // the minute's first instant, UTC
	Requests int64
	Errors   int64 // responses with a 5xx status
	// P50 and P95 are the upper bounds of the histogram buckets holding
	// those percentiles (see Stats.P95); Unbounded above 60s; 0 when the
	// minute has no requests.
	P50, P95 time.Duration
}

// History returns a slot's last hour minute by minute, oldest first: HistoryLen
// points, the last one the current, unfinished minute. Minutes without
// requests have zero counts. An unknown slot has no history (nil). It reads
// atomics only and does not slow the request path.
func (r *Registry) History(app, slot string) []Point {
	r.mu.Lock()
	sd := r.slots[slotKey{app, slot}]
	r.mu.Unlock()
	if sd == nil {
		return nil
	}
	now := minute(r.unix())
	out := make([]Point, HistoryLen)
	for i := range out {
		m := now - HistoryLen + 1 + int64(i)
		p := Point{Start: time.Unix(m*60, 0).UTC()}
		if hist, errs, ok := sd.hour.entry(m).read(m); ok {
			var total uint64
			for _, c := range hist {
				total += c
			}
			if total > 0 {
				p.Requests = int64(total)
				p.Errors = int64(min(errs, total))
				p.P50 = quantile(&hist, total, 50)
				p.P95 = quantile(&hist, total, 95)
			}
		}
		out[i] = p
	}
	return out
}

// read returns an entry's counts if it holds epoch, checking the epoch before
// and after so that counts being reset for a later epoch are not reported.
func (e *second) read(epoch int64) (hist [nBuckets]uint64, errs uint64, ok bool) {
	if e.epoch.Load() != epoch {
		return hist, 0, false
	}
	for i := range hist {
		hist[i] = uint64(e.hist[i].Load())
	}
	errs = uint64(e.errors.Load())
	if e.epoch.Load() != epoch {
		return [nBuckets]uint64{}, 0, false
	}
	return hist, errs, true
}

// quantile returns the upper bound of the bucket holding the pct-th
// percentile of a histogram of total > 0 requests; Unbounded above the last
// finite bound.
func quantile(hist *[nBuckets]uint64, total, pct uint64) time.Duration {
	rank := (total*pct + 99) / 100 // ceil(pct/100 * total)
	var cum uint64
	for i, c := range hist[:len(bounds)] {
		cum += c
		if cum >= rank {
			return bounds[i]
		}
	}
	return Unbounded
}

// HourStats aggregates a slot's requests over the minutes History returns
// (the current minute and the 59 before it). An unknown slot has zero Stats.
func (r *Registry) HourStats(app, slot string) Stats {
	r.mu.Lock()
	sd := r.slots[slotKey{app, slot}]
	r.mu.Unlock()
	if sd == nil {
		return Stats{}
	}
	now := minute(r.unix())
	var hist [nBuckets]uint64
	var errs uint64
	for m := now - HistoryLen + 1; m <= now; m++ {
		h, e, ok := sd.hour.entry(m).read(m)
		if !ok {
			continue
		}
		for i, c := range h {
			hist[i] += c
		}
		errs += e
	}
	return stats(&hist, errs)
}
