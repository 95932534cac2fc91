package release

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
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
// Each pipeline has its own queue and delivery goroutine, so a slow or dead
// webhook delays only its own pipeline's events. Send never blocks the
// engine: when a pipeline's queue is full the event is dropped and logged.
// Webhook URLs usually carry a secret: only their scheme and host are ever
// logged (RedactURL).
type Notifier struct {
	// Client sends the requests; its Timeout bounds each attempt.
	Client *http.Client
	// QueueSize bounds each pipeline's queue; zero = 64.
	QueueSize int
	// Retry is the wait before the second attempt, doubled before the
	// third; zero = 500ms.
	Retry time.Duration
	log   *slog.Logger

	ctx    context.Context // cancelled when Close gives up draining
	cancel context.CancelFunc
	mu     sync.Mutex
	queues map[string]chan delivery // by pipeline id
	closed bool
	wg     sync.WaitGroup
	once   sync.Once
}

type delivery struct {
	url string
	ev  Event
}

// NewNotifier returns a notifier; delivery goroutines start with the first
// event of each pipeline.
func NewNotifier(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{Client: &http.Client{Timeout: 5 * time.Second}, log: log, queues: make(map[string]chan delivery)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n
}

// Send queues ev for url on pipeline's queue; an empty url does nothing.
func (n *Notifier) Send(pipeline, url string, ev Event) {
	if url == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	q := n.queues[pipeline]
	if q == nil {
		size := n.QueueSize
		if size <= 0 {
			size = 64
		}
		q = make(chan delivery, size)
		n.queues[pipeline] = q
		n.wg.Add(1)
		go n.deliver(q)
	}
	select {
	case q <- delivery{url, ev}:
	default:
		n.log.Warn("webhook queue full; event dropped", "release", ev.Release, "event", ev.Event, "webhook", RedactURL(url))
	}
}

// closeDrain is how long Close lets the queues drain before it abandons
// what is left.
const closeDrain = 5 * time.Second

// Close stops delivering: the queued events are sent for at most a few
// seconds, then dropped. It waits for every delivery goroutine. Idempotent.
func (n *Notifier) Close() {
	n.once.Do(func() {
		n.mu.Lock()
		n.closed = true
		for _, q := range n.queues {
			close(q)
		}
		n.mu.Unlock()
		done := make(chan struct{})
		go func() { n.wg.Wait(); close(done) }()
		t := time.NewTimer(closeDrain)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			n.cancel()
			<-done
		}
		n.cancel()
	})
}

func (n *Notifier) deliver(q chan delivery) {
	defer n.wg.Done()
	for d := range q {
		if n.ctx.Err() != nil {
			continue // closing: drop what is left
		}
		n.post(d)
	}
}

// post delivers one event, up to three attempts.
func (n *Notifier) post(d delivery) {
	body, _ := json.Marshal(d.ev)
	backoff := n.Retry
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	for attempt := 1; ; attempt++ {
		why := n.attempt(d.url, body)
		if why == "" {
			return
		}
		if attempt == 3 || n.ctx.Err() != nil {
			n.log.Warn("webhook delivery failed", "release", d.ev.Release, "event", d.ev.Event, "webhook", RedactURL(d.url), "attempts", attempt, "err", why)
			return
		}
		select {
		case <-n.ctx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// attempt posts body once: "" on a 2xx answer, else why not, without the
// URL (an error of net/http names it, query and all).
func (n *Notifier) attempt(u string, body []byte) string {
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return "bad webhook URL"
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Sprintf("answered HTTP %d", resp.StatusCode)
	}
	return ""
}

// RedactURL returns what of a webhook URL may be shown: scheme://host/…
// without userinfo, path or query, which often carry the secret.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(webhook URL)"
	}
	s := u.Scheme + "://" + u.Host
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		s += "/…"
	}
	return s
}

var webhookValue = regexp.MustCompile(`(webhook[ \t]*:[ \t]*)("[^"\n]*"|'[^'\n]*'|[^\s,}#]+)`)

// RedactDefinition returns a pipeline definition with its webhook URL
// reduced to scheme://host/…, for anyone but admins.
func RedactDefinition(def string) string {
	return webhookValue.ReplaceAllStringFunc(def, func(m string) string {
		sub := webhookValue.FindStringSubmatch(m)
		v := strings.Trim(sub[2], `"'`)
		return sub[1] + strconv.Quote(RedactURL(v))
	})
}
