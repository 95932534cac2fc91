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
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pipeline"
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

// WithheldDefinition is shown to non-admins instead of a pipeline
// definition whose webhook URL could not be cut out of its text.
const WithheldDefinition = "# This definition is withheld: its webhook URL, which may carry a secret,\n# could not be hidden from its text. Ask an admin to read or change it.\n"

// RedactDefinition returns a pipeline definition for anyone but admins:
// every occurrence of its webhook URL, plainly or escaped as YAML or JSON
// would, reduced to scheme://host/… (RedactURL). The URL is taken from the
// parsed definition, not guessed from the text, and the result is parsed
// again: when the webhook could still be read from it (written some other
// way, or its path, query or user info still in the text), or the
// definition does not parse, the whole text is withheld
// (WithheldDefinition).
func RedactDefinition(def string) string {
	pl, err := pipeline.Parse([]byte(def), nil)
	if err != nil {
		return WithheldDefinition
	}
	secret := pl.Webhook
	shown := RedactURL(secret)
	if secret == "" || shown == secret {
		return def
	}
	out := def
	for _, form := range webhookForms(secret) {
		out = strings.ReplaceAll(out, form, shown)
	}
	again, err := pipeline.Parse([]byte(out), nil)
	if err != nil || again.Webhook == secret || leaksURL(out, secret) {
		return WithheldDefinition
	}
	return out
}

// webhookForms returns the ways raw may be spelled in a YAML or JSON
// document, longest first: plain, inside single quotes, and inside double
// quotes with Go's, JSON's (with and without HTML escapes) and "\/"
// escapes.
func webhookForms(raw string) []string {
	forms := []string{raw, strings.ReplaceAll(raw, "'", "''")}
	for _, q := range []string{strconv.Quote(raw), strconv.QuoteToASCII(raw)} {
		forms = append(forms, q[1:len(q)-1])
	}
	for _, html := range []bool{true, false} {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(raw) == nil {
			j := strings.TrimSuffix(b.String(), "\n")
			forms = append(forms, j[1:len(j)-1])
		}
	}
	for _, f := range forms[2:] {
		forms = append(forms, strings.ReplaceAll(f, "/", `\/`))
	}
	slices.SortFunc(forms, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(forms)
}

// leaksURL reports whether text still holds the parts of raw that
// RedactURL hides: its user info, path, query or fragment.
func leaksURL(text, raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return strings.Contains(text, raw)
	}
	parts := []string{u.RawQuery, u.Fragment, u.EscapedPath(), u.Path}
	if u.User != nil {
		parts = append(parts, u.User.String())
	}
	for _, p := range parts {
		if p != "" && p != "/" && strings.Contains(text, p) {
			return true
		}
	}
	return false
}

// keepWebhook undoes the redaction of old's webhook in a definition a
// non-admin applies: one fetched redacted and applied again would
// otherwise replace the webhook with scheme://host/…. It returns the
// definition with the old URL back, or data unchanged when its webhook is
// not old's redacted one.
func keepWebhook(data []byte, def, old *pipeline.Pipeline, r pipeline.Resolver) ([]byte, *pipeline.Pipeline, error) {
	if old == nil || old.Webhook == "" || def.Webhook == old.Webhook || def.Webhook != RedactURL(old.Webhook) {
		return data, def, nil
	}
	shown := RedactURL(old.Webhook)
	q := strconv.Quote(old.Webhook)
	for _, form := range []string{old.Webhook, q[1 : len(q)-1], strings.ReplaceAll(old.Webhook, "'", "''")} {
		text := []byte(strings.ReplaceAll(string(data), shown, form))
		if next, err := pipeline.Parse(text, r); err == nil && next.Webhook == old.Webhook {
			return text, next, nil
		}
	}
	return nil, nil, hotswap.Errorf(hotswap.Invalid, "pipeline %s: notify.webhook is the redacted %s; give its whole URL, or leave it to an admin", def.Name, shown)
}
