package release

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Event is what a pipeline's webhook receives.
type Event struct {
	Event     string    `json:"event"` // release or stage
	Release   string    `json:"release"`
	ReleaseID string    `json:"releaseId"`
	Stage     string    `json:"stage,omitempty"`
	State     string    `json:"state"`
	Detail    string    `json:"detail,omitempty"`
	Time      time.Time `json:"time"`
}

// Notifier delivers webhook events in the background, with bounded retries.
// Send never blocks the engine: when the queue is full the event is dropped
// and logged.
type Notifier struct {
	Client *http.Client
	log    *slog.Logger
	queue  chan delivery
	wg     sync.WaitGroup
	once   sync.Once
}

type delivery struct {
	url string
	ev  Event
}

// NewNotifier starts a notifier with one delivery goroutine.
func NewNotifier(log *slog.Logger) *Notifier {
	n := &Notifier{Client: &http.Client{Timeout: 5 * time.Second}, log: log, queue: make(chan delivery, 256)}
	n.wg.Add(1)
	go n.deliver()
	return n
}

// Send queues ev for url; an empty url does nothing.
func (n *Notifier) Send(url string, ev Event) {
	if url == "" {
		return
	}
	select {
	case n.queue <- delivery{url, ev}:
	default:
		n.log.Warn("webhook queue full; event dropped", "release", ev.Release, "event", ev.Event)
	}
}

// Close stops delivering once the queue is drained (at most a few seconds).
func (n *Notifier) Close() {
	n.once.Do(func() {
		close(n.queue)
		n.wg.Wait()
	})
}

func (n *Notifier) deliver() {
	defer n.wg.Done()
	for d := range n.queue {
		body, _ := json.Marshal(d.ev)
		backoff := 500 * time.Millisecond
		for attempt := 1; attempt <= 3; attempt++ {
			resp, err := n.Client.Post(d.url, "application/json", bytes.NewReader(body))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 300 {
					break
				}
			}
			if attempt == 3 {
				n.log.Warn("webhook delivery failed", "release", d.ev.Release, "err", err)
				break
			}
			time.Sleep(backoff)
			backoff *= 2
		}
	}
}
