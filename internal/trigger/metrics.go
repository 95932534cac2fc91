package trigger

import (
	"context"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/prometheus/client_golang/prometheus"
)

// The Manager exports its listeners' counters to Prometheus (register it
// with metrics.Registry.Collectors). Counters run since a listener started:
// a swap or deploy starts new ones, which Prometheus reads as a reset.
var (
	descInvocations = prometheus.NewDesc("hotswap_trigger_invocations_total",
		"Invocations of a queue or blob triggered function in a slot, by result (success or failure).",
		[]string{"app", "slot", "function", "trigger", "result"}, nil)
	descPoisoned = prometheus.NewDesc("hotswap_trigger_poisoned_total",
		"Queue messages moved to <queue>-poison, or blobs reported to webjobs-blobtrigger-poison, after their last try.",
		[]string{"app", "slot", "function", "trigger"}, nil)
	descQueueLength = prometheus.NewDesc("hotswap_queue_messages",
		"Messages in a queue trigger's queue, as the queue service approximates it (read at most every queueStatsEvery).",
		[]string{"app", "slot", "function", "queue"}, nil)
	descQueueAge = prometheus.NewDesc("hotswap_queue_oldest_message_age_seconds",
		"Age of the oldest visible message of a queue trigger's queue; 0 when none is visible.",
		[]string{"app", "slot", "function", "queue"}, nil)
)

// queueStatsEvery bounds how often a poller reads its queue's length and
// oldest message (two calls to the queue service).
const queueStatsEvery = 5 * time.Second

// Describe implements prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	ch <- descInvocations
	ch <- descPoisoned
	ch <- descQueueLength
	ch <- descQueueAge
}

// Collect implements prometheus.Collector.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.listeners {
		for _, f := range l.states {
			if f.stats == nil {
				continue
			}
			app, slot, fn, trig := l.serving.App, l.serving.Slot, f.state.Function, f.state.Trigger
			inv, fails := f.stats.invocations.Load(), f.stats.failures.Load()
			ch <- prometheus.MustNewConstMetric(descInvocations, prometheus.CounterValue, float64(inv-fails), app, slot, fn, trig, "success")
			ch <- prometheus.MustNewConstMetric(descInvocations, prometheus.CounterValue, float64(fails), app, slot, fn, trig, "failure")
			ch <- prometheus.MustNewConstMetric(descPoisoned, prometheus.CounterValue, float64(f.stats.poison.Load()), app, slot, fn, trig)
			if n, age, ok := f.stats.queue(); ok {
				ch <- prometheus.MustNewConstMetric(descQueueLength, prometheus.GaugeValue, float64(n), app, slot, fn, f.state.Queue)
				ch <- prometheus.MustNewConstMetric(descQueueAge, prometheus.GaugeValue, age.Seconds(), app, slot, fn, f.state.Queue)
			}
		}
	}
}

// measure reads the queue's length and the age of its oldest visible
// message, at most every queueStatsEvery.
func (p *poller) measure(work context.Context) {
	if !p.stats.measureDue(time.Now(), queueStatsEvery) {
		return
	}
	ctx, cancel := context.WithTimeout(work, storageTimeout)
	defer cancel()
	props, err := p.q.GetProperties(ctx, nil)
	if err != nil {
		return
	}
	var oldest time.Time
	if peek, err := p.q.PeekMessage(ctx, &azqueue.PeekMessageOptions{}); err == nil && len(peek.Messages) > 0 {
		oldest = deref(peek.Messages[0].InsertionTime)
	}
	p.stats.setQueue(int64(deref(props.ApproximateMessagesCount)), oldest)
}
