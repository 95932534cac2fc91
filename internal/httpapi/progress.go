package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/ops"
)

// Progress of long operations, as server-sent events (see docs/api.md):
//
//   - GET /api/v1/operations/{id}/events follows one operation: its phases
//     so far, then live, then its end;
//   - a deploy, swap, complete, cancel, rollback or settings request sent
//     with Accept: text/event-stream streams the phases of the operations
//     it runs, then its answer as event: result (or event: error);
//   - ?wait=false on a deploy or swap answers 202 with the operation's ID
//     once it has begun.

const (
	maxStream = 30 * time.Minute // a stream ends after this, whatever follows
	keepAlive = 15 * time.Second // an SSE comment when nothing else was sent
	eventMime = "text/event-stream"
)

func (s *Server) progressRoutes() {
	s.mux.HandleFunc("GET /api/v1/operations/{id}/events", s.auth(read, s.operationEvents))
}

// wantsEvents reports whether the request asks for server-sent events.
func wantsEvents(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == eventMime {
				return true
			}
		}
	}
	return false
}

// noWait reads ?wait=: true (or absent) waits for the operation, false
// answers once it has begun.
func noWait(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, hotswap.Errorf(hotswap.Invalid, "wait must be true or false, not %q", v)
	}
	return !b, nil
}

// sse writes server-sent events, flushing each.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", eventMime+"; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	e := &sse{w: w, rc: http.NewResponseController(w)}
	_ = e.rc.Flush()
	return e
}

// send writes one event; data is JSON on one line.
func (e *sse) send(event, id string, data []byte) error {
	var b bytes.Buffer
	b.WriteString("event: " + event + "\n")
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	if _, err := e.w.Write(b.Bytes()); err != nil {
		return err
	}
	return e.rc.Flush()
}

func (e *sse) event(ev ops.OperationEvent, withID bool) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	name, id := "phase", ""
	if ev.End {
		name = "end"
	}
	if withID {
		id = strconv.Itoa(ev.Seq)
	}
	return e.send(name, id, data)
}

func (e *sse) ping() error {
	if _, err := e.w.Write([]byte(": keep-alive\n\n")); err != nil {
		return err
	}
	return e.rc.Flush()
}

// operationEvents follows one operation: its events so far (after
// Last-Event-ID, when a client reconnects), then live, until its end.
func (s *Server) operationEvents(w http.ResponseWriter, r *http.Request, _ actor) {
	id := r.PathValue("id")
	if _, known := s.ops.OperationEvents(id); !known {
		s.fail(w, r, hotswap.Errorf(hotswap.NotFound, "operation %s is not known to this server: it ended more than a few minutes ago, or another node of the cluster runs it (see GET /api/v1/apps/{app}/operations)", id))
		return
	}
	last := 0
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.fail(w, r, hotswap.Errorf(hotswap.Invalid, "Last-Event-ID must be the number of an event of the operation, not %q", v))
			return
		}
		last = n
	}
	if evs, _ := s.ops.OperationEvents(id); len(evs) > 0 && evs[len(evs)-1].End && evs[len(evs)-1].Seq <= last {
		// The client saw the end and reconnected (EventSource does):
		// 204 tells it, by the SSE spec, to stop.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), maxStream)
	defer cancel()
	out := startSSE(w)
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		changed := s.ops.EventsChanged()
		evs, known := s.ops.OperationEvents(id)
		if !known {
			return // forgotten while followed: it ended long ago
		}
		for _, ev := range evs {
			if ev.Seq <= last {
				continue
			}
			if err := out.event(ev, true); err != nil {
				return // the client went away
			}
			last = ev.Seq
			if ev.End {
				return
			}
		}
		select {
		case <-changed:
		case <-ping.C:
			if out.ping() != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// recorder keeps the answer of a handler whose request is streamed, for
// the result event.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// reset forgets what was written, for an answer in its place.
func (r *recorder) reset() {
	r.header = make(http.Header)
	r.status = 0
	r.body.Reset()
}

// progress serves h with the progress of its operations as server-sent
// events when the request asks for them (Accept: text/event-stream), and
// with nowait (when not nil) for ?wait=false.
func (s *Server) progress(h, nowait func(http.ResponseWriter, *http.Request, actor)) func(http.ResponseWriter, *http.Request, actor) {
	return func(w http.ResponseWriter, r *http.Request, who actor) {
		if nowait != nil {
			skip, err := noWait(r)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if skip {
				nowait(w, r, who)
				return
			}
		}
		if !wantsEvents(r) {
			h(w, r, who)
			return
		}
		s.stream(w, r, who, h)
	}
}

// stream runs h while it sends the events of the operations h begins. The
// stream opens at the first phase past "receiving", so an upload is read
// whole before anything is written (HTTP/1.1 clients do not read an
// answer while they send); a request that ends before (refused, say)
// gets its plain answer instead, with its status.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, who actor, h func(http.ResponseWriter, *http.Request, actor)) {
	// The operations the request runs, with the last event sent of each.
	// An operation taken up (a swap's complete or cancel of its preview)
	// is followed from where it is: its earlier phases were the preview's.
	type tracked struct {
		id   string
		sent int
	}
	var mu sync.Mutex
	var running []*tracked
	wake := make(chan struct{}, 1)
	ctx := ops.WithOperationStarted(r.Context(), func(id string) {
		t := &tracked{id: id}
		if evs := s.ops.Events(id); len(evs) > 0 {
			t.sent = evs[len(evs)-1].Seq
		}
		mu.Lock()
		running = append(running, t)
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	rec := &recorder{header: make(http.Header)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// net/http recovers a panic only in its own goroutine: one here
		// would end the server, every app's traffic with it.
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("panic serving a streamed request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				rec.reset()
				writeJSON(rec, http.StatusInternalServerError, map[string]string{"error": "internal error"})
			}
		}()
		h(rec, r.WithContext(ctx), who)
	}()
	// The handler is waited for however the stream ends: it writes rec,
	// and the operation it runs goes on without the client anyway.
	defer func() { <-done }()

	var out *sse
	var pending []ops.OperationEvent
	finished := false
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		changed := s.ops.EventsChanged()
		mu.Lock()
		known := append([]*tracked(nil), running...)
		mu.Unlock()
		for _, t := range known {
			for _, ev := range s.ops.Events(t.id) {
				if ev.Seq > t.sent {
					pending = append(pending, ev)
					t.sent = ev.Seq
				}
			}
		}
		if out == nil {
			for _, ev := range pending {
				if ev.Phase != "receiving" {
					out = startSSE(w)
					break
				}
			}
		}
		if out != nil {
			for _, ev := range pending {
				if out.event(ev, false) != nil {
					return
				}
			}
			pending = pending[:0]
		}
		if finished {
			break
		}
		select {
		case <-changed:
		case <-wake:
		case <-done:
			finished = true // one more pass for the last events
		case <-ping.C:
			if out != nil && out.ping() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
	if out == nil {
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(max(rec.status, http.StatusOK))
		_, _ = w.Write(rec.body.Bytes())
		return
	}
	name := "result"
	if rec.status >= 400 {
		name = "error"
	}
	data := rec.body.Bytes()
	var compact bytes.Buffer
	if json.Compact(&compact, data) == nil {
		data = compact.Bytes()
	}
	if len(data) == 0 {
		data = []byte("{}") // 204: no body
	}
	_ = out.send(name, "", data)
}

// deployNoWait stores the upload, begins the deploy and answers 202 with
// the operation to follow, as Kudu's isAsync deploy does.
func (s *Server) deployNoWait(w http.ResponseWriter, r *http.Request, who actor) {
	forced, err := force(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if limit := s.ops.MaxPackageBytes(); r.ContentLength > limit {
		s.fail(w, r, hotswap.Errorf(hotswap.TooLarge, "package is larger than the limit of %d bytes", limit))
		return
	}
	app, slot := r.PathValue("app"), r.PathValue("slot")
	if !forced {
		// Refused before the upload is read, not after.
		if err := s.ops.CheckHold(app, slot, "deploy"); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	var mu sync.Mutex
	opID := ""
	ctx := ops.WithOperationStarted(r.Context(), func(id string) {
		mu.Lock()
		defer mu.Unlock()
		if opID == "" {
			opID = id
		}
	})
	d, _, err := s.ops.StartDeploy(ctx, ops.DeployRequest{
		App: app, Slot: slot, Actor: who.Name, Message: r.URL.Query().Get("message"), Package: r.Body, Force: forced,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	mu.Lock()
	id := opID
	mu.Unlock()
	accepted(w, id, map[string]any{"deployment": d})
}

// swapNoWait begins the swap and answers 202 with the operation to follow.
func (s *Server) swapNoWait(w http.ResponseWriter, r *http.Request, who actor) {
	var in swapInput
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if in.rolloutSpec.given() {
		// A progressive swap answers at once anyway.
		s.swapRollout(w, r, who, in)
		return
	}
	req, err := in.request(r, who)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := s.ops.Background(r.Context(), func(ctx context.Context) error {
		_, err := s.ops.Swap(ctx, req)
		return err
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	target := req.Target
	if target == "" {
		target = hotswap.ProductionSlot
	}
	accepted(w, id, map[string]any{"app": req.App, "source": req.Source, "target": target, "preview": req.Preview})
}

// accepted answers 202 for operation id with the fields of more.
func accepted(w http.ResponseWriter, id string, more map[string]any) {
	events := "/api/v1/operations/" + id + "/events"
	more["operation"] = id
	more["events"] = events
	w.Header().Set("Location", events)
	writeJSON(w, http.StatusAccepted, more)
}
