package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hotswap/hotswap/internal/funcapp"
)

// Defaults of payload mode, for the zero fields of Config.
const (
	// DefaultMaxPayloadBody is the largest request body a payload-mode
	// function accepts (Config.MaxPayloadBody). The handler's answer may be
	// twice as large.
	DefaultMaxPayloadBody = 8 << 20
	// DefaultPayloadConcurrency is how many payload-mode invocations a
	// process set runs at once.
	DefaultPayloadConcurrency = 32
	// DefaultPayloadQueueWait is how long an invocation over that bound
	// waits for a turn before it is answered 503.
	DefaultPayloadQueueWait = time.Second
)

// PayloadLimits bound the payload-mode invocations in flight: each holds its
// request body and the handler's answer in memory. Zero fields take the
// defaults.
type PayloadLimits struct {
	Concurrency int           // per process set; zero = DefaultPayloadConcurrency
	QueueWait   time.Duration // wait for a turn, then 503; zero = DefaultPayloadQueueWait
}

func (l PayloadLimits) withDefaults() PayloadLimits {
	if l.Concurrency <= 0 {
		l.Concurrency = DefaultPayloadConcurrency
	}
	if l.QueueWait <= 0 {
		l.QueueWait = DefaultPayloadQueueWait
	}
	return l
}

// payloadState is the Handler's payload-mode state. mu orders Publish
// calls, which hand gates on from table to table.
type payloadState struct {
	limits PayloadLimits
	mu     sync.Mutex
}

// payloadGate bounds the payload-mode invocations in flight on one process
// set: each holds its request body and the handler's answer in memory. It is
// shared by every table that routes to the set (see Handler.Publish).
type payloadGate chan struct{}

func newPayloadGate(n int) payloadGate { return make(payloadGate, n) }

// enter takes a turn, waiting at most wait; false when none came or ctx
// ended first. A nil gate never waits.
func (g payloadGate) enter(ctx context.Context, wait time.Duration) bool {
	if g == nil {
		return true
	}
	select {
	case g <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case g <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (g payloadGate) leave() {
	if g != nil {
		<-g
	}
}

// invoke calls fn in payload mode and writes the HTTP answer. It returns the
// status written.
//
// Memory: a body over the limit is refused before it is read; the body is
// held once, the JSON envelope is encoded from it as the handler reads it,
// and the answer is held once and decoded in place; a bounded number of
// invocations per process set run at once.
func (h *Handler) invoke(w http.ResponseWriter, r *http.Request, s *Slot, fn *funcapp.Function, params []funcapp.Param, addr string) int {
	if r.ContentLength > h.maxBody {
		return tooLarge(w, h.maxBody)
	}
	if !s.payload.enter(r.Context(), h.payload.limits.QueueWait) {
		if r.Context().Err() != nil {
			return 499
		}
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many invocations in flight on this slot; retry shortly", http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable
	}
	defer s.payload.leave()
	body, err := readBody(r.Body, r.ContentLength, h.maxBody)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return tooLarge(w, h.maxBody)
		}
		return 499
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	query := make(map[string]string)
	for k, v := range r.URL.Query() {
		query[k] = v[0]
	}
	ps := make(map[string]string, len(params))
	for _, p := range params {
		ps[p.Name] = p.Value
	}
	trigger := fn.TriggerName
	if trigger == "" {
		trigger = "req"
	}
	id := newInvocationID()
	meta := map[string]any{
		"Query":   query,
		"Headers": r.Header,
		"sys": map[string]any{
			"MethodName": fn.Name,
			"UtcNow":     time.Now().UTC().Format(time.RFC3339Nano),
			"RandGuid":   id,
		},
	}
	for _, p := range params {
		meta[p.Name] = p.Value
	}
	env, err := newEnvelope(envelopeRequest{
		Trigger:     trigger,
		URL:         scheme + "://" + r.Host + r.URL.RequestURI(),
		Method:      r.Method,
		ContentType: r.Header.Get("Content-Type"),
		Query:       query,
		Headers:     r.Header,
		Params:      ps,
		Metadata:    meta,
		Body:        body,
	})
	if err != nil {
		h.logger.Error("encode invocation", "function", fn.Name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "http://"+addr+"/"+fn.Name, env.Reader())
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	req.ContentLength = env.Size()
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(env.Reader()), nil }
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Azure-Functions-InvocationId", id)
	resp, err := h.client.Do(req)
	body, env = nil, nil // the handler has it all now
	if err != nil {
		if r.Context().Err() != nil {
			return 499
		}
		if _, ok := s.Upstream.Addr(); !ok {
			unavailable(w, s.Upstream.RetryAfter())
			return http.StatusServiceUnavailable
		}
		s.log("host", fmt.Sprintf("invoke %s failed: %v", fn.Name, err))
		http.Error(w, "bad gateway: the function handler did not answer", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	out, err := readBody(resp.Body, resp.ContentLength, 2*h.maxBody)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			s.log("host", fmt.Sprintf("invocation %s of %s: the handler's answer is larger than %d bytes", id, fn.Name, 2*h.maxBody))
		} else {
			s.log("host", fmt.Sprintf("invocation %s of %s: reading the handler's answer failed: %v", id, fn.Name, err))
		}
		http.Error(w, "bad gateway: the function handler's answer could not be read", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		s.log("host", fmt.Sprintf("invocation %s of %s failed: handler answered %d: %.200s", id, fn.Name, resp.StatusCode, out))
		http.Error(w, "internal server error: the function failed", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	a, err := parseAnswer(out)
	if err != nil {
		s.log("host", fmt.Sprintf("invocation %s of %s: the handler's answer is not valid JSON: %v", id, fn.Name, err))
		http.Error(w, "bad gateway: the function handler answered invalid JSON", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	for _, line := range a.Logs {
		s.log(fn.Name, line)
	}
	var raw span
	switch fn.OutputName {
	case "":
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	case "$return":
		raw = a.ReturnValue
	default:
		raw = a.Outputs[fn.OutputName]
	}
	if raw.null() {
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	}
	status, hdr, respBody, err := decodeHTTPOutput(raw)
	if err != nil {
		s.log("host", fmt.Sprintf("invocation %s of %s: output %s: %v", id, fn.Name, fn.OutputName, err))
		http.Error(w, "bad gateway: the function's http output is invalid", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	for k, vs := range hdr {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if w.Header().Get("Content-Type") == "" && len(respBody) > 0 {
		w.Header().Set("Content-Type", http.DetectContentType(respBody))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(respBody)))
	w.WriteHeader(status)
	_, _ = w.Write(respBody)
	return status
}

// errTooLarge is readBody's error for a body over its limit.
var errTooLarge = errors.New("body too large")

// readBody reads all of rc into one buffer: of exactly size bytes when the
// size is known, else grown as it comes. It reads at most limit bytes and
// returns errTooLarge past them.
func readBody(rc io.Reader, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, errTooLarge
	}
	if size >= 0 {
		b := make([]byte, size)
		if _, err := io.ReadFull(rc, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	b := make([]byte, 0, 32<<10)
	for {
		if len(b) == cap(b) {
			// Grow by half, not double: less slack in the last buffer.
			b = slices.Grow(b, cap(b)/2)
		}
		n, err := rc.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, errTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// tooLarge answers 413 without reading the body; the server closes the
// connection rather than reading a large unread body.
func tooLarge(w http.ResponseWriter, limit int64) int {
	w.Header().Set("Connection", "close")
	http.Error(w, fmt.Sprintf("request body is larger than %d bytes, the limit of this payload-mode function", limit), http.StatusRequestEntityTooLarge)
	return http.StatusRequestEntityTooLarge
}

func (s *Slot) log(stream, text string) {
	if s.Log != nil {
		s.Log(stream, text)
	}
}

// shareGates gives each slot of next that routes to a process set the
// payload gate of that set: the one prev's slots use, so the bound holds
// across tables, or a new one. Slots already gated (published before) are
// left alone: a published slot is never written.
func (h *Handler) shareGates(prev, next *Table) {
	gates := make(map[Upstream]payloadGate)
	if prev != nil {
		for _, s := range prev.slots {
			if s.Upstream != nil && s.payload != nil {
				gates[s.Upstream] = s.payload
			}
		}
	}
	for _, s := range next.slots {
		if s.Upstream == nil || s.payload != nil {
			continue
		}
		g, ok := gates[s.Upstream]
		if !ok {
			g = newPayloadGate(h.payload.limits.Concurrency)
			gates[s.Upstream] = g
		}
		s.payload = g
	}
}
