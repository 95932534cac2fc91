package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/invoke"
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
	// DefaultPayloadBodyTimeout is how long a payload-mode request body
	// may take to arrive, all of it, before the client is answered 408.
	DefaultPayloadBodyTimeout = 30 * time.Second
)

// PayloadLimits bound the payload-mode invocations in flight: each holds its
// request body and the handler's answer in memory. Zero fields take the
// defaults.
type PayloadLimits struct {
	Concurrency int           // per process set; zero = DefaultPayloadConcurrency
	QueueWait   time.Duration // wait for a turn, then 503; zero = DefaultPayloadQueueWait
	// BodyTimeout bounds reading the whole request body, which happens
	// before a turn is taken, so a slow client holds no turn; past it the
	// client gets 408. Zero = DefaultPayloadBodyTimeout.
	BodyTimeout time.Duration
}

func (l PayloadLimits) withDefaults() PayloadLimits {
	if l.Concurrency <= 0 {
		l.Concurrency = DefaultPayloadConcurrency
	}
	if l.QueueWait <= 0 {
		l.QueueWait = DefaultPayloadQueueWait
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultPayloadBodyTimeout
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
// held once, grown as it arrives, the JSON envelope is encoded from it as
// the handler reads it, and the answer is held once and decoded in place; a
// bounded number of invocations per process set run at once.
//
// The caller has checked the key. The body is read before a turn is taken,
// within one deadline for all of it, so slow clients hold neither a turn
// nor more memory than they have sent.
func (h *Handler) invoke(w http.ResponseWriter, r *http.Request, s *Slot, fn *funcapp.Function, params []funcapp.Param, addr string) int {
	if r.ContentLength > h.maxBody {
		return tooLarge(w, h.maxBody)
	}
	body, err := h.readRequestBody(w, r)
	if err != nil {
		switch {
		case errors.Is(err, errTooLarge):
			return tooLarge(w, h.maxBody)
		case errors.Is(err, errBodyDeadline):
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request timeout: the request body did not arrive within %v", h.payload.limits.BodyTimeout), http.StatusRequestTimeout)
			return http.StatusRequestTimeout
		}
		return 499
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
	id := invoke.NewID()
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
	var vals map[string]string
	if len(fn.Inputs) > 0 || len(fn.Outputs) > 0 {
		vals = httpBindingValues(ps, query, body)
	}
	inputs, err := h.readInputs(r.Context(), s, fn, vals)
	if err != nil {
		if r.Context().Err() != nil {
			return 499
		}
		s.log("host", fmt.Sprintf("invocation %s of %s failed: %v", id, fn.Name, err))
		http.Error(w, "internal server error: the function's input bindings could not be read", http.StatusInternalServerError)
		return http.StatusInternalServerError
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
		Inputs:      inputs,
	})
	if err != nil {
		h.logger.Error("encode invocation", "function", fn.Name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	// The guard bounds how long the handler may leave the invocation
	// unread without answering (see stallConn).
	ctx, guard := withStallGuard(r.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/"+fn.Name, env.Reader())
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	req.ContentLength = env.Size()
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(env.Reader()), nil }
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Azure-Functions-InvocationId", id)
	resp, err := h.client.Do(req)
	guard.answered()
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
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			// The response header timeout passed, or the handler took
			// none of the invocation for as long.
			http.Error(w, "gateway timeout: "+errResponseTimeout.Error(), http.StatusGatewayTimeout)
			return http.StatusGatewayTimeout
		}
		http.Error(w, "bad gateway: the function handler did not answer", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	out, err := readHandlerAnswer(resp.Body, resp.ContentLength, 2*h.maxBody)
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
	a, err := invoke.ParseAnswer(out)
	if err != nil {
		s.log("host", fmt.Sprintf("invocation %s of %s: the handler's answer is not valid JSON: %v", id, fn.Name, err))
		http.Error(w, "bad gateway: the function handler answered invalid JSON", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	for _, line := range a.Logs {
		s.log(fn.Name, line)
	}
	raw := a.Output(fn.OutputName)
	if fn.OutputName == "" || invoke.Null(raw) {
		if err := h.writeOutputs(r.Context(), s, fn, a, vals); err != nil {
			return outputsFailed(w, s, fn, id, err)
		}
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	}
	status, hdr, respBody, err := invoke.DecodeHTTPOutput(raw)
	if err != nil {
		s.log("host", fmt.Sprintf("invocation %s of %s: output %s: %v", id, fn.Name, fn.OutputName, err))
		http.Error(w, "bad gateway: the function's http output is invalid", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	// The other outputs are written once the function has succeeded, before
	// the caller is answered: a failed write fails the invocation.
	if err := h.writeOutputs(r.Context(), s, fn, a, vals); err != nil {
		return outputsFailed(w, s, fn, id, err)
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

// writeOutputs writes fn's queue and blob outputs from the answer a. vals
// are the names the trigger binds for {name} expressions
// (httpBindingValues).
func (h *Handler) writeOutputs(ctx context.Context, s *Slot, fn *funcapp.Function, a invoke.Result, vals map[string]string) error {
	if len(fn.Outputs) == 0 {
		return nil
	}
	if h.outputs == nil {
		return errors.New("output bindings are not configured on this server")
	}
	// The function has run: its outputs are written even if the caller
	// goes away meanwhile, within a bound of their own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outputTimeout)
	defer cancel()
	return h.outputs.WriteOutputs(ctx, s.Package, s.Settings, fn, a, vals)
}

// outputTimeout bounds writing one invocation's output bindings.
const outputTimeout = 2 * time.Minute

// outputsFailed answers 500 for an invocation whose outputs could not be
// written, and says why in the slot's log.
func outputsFailed(w http.ResponseWriter, s *Slot, fn *funcapp.Function, id string, err error) int {
	s.log("host", fmt.Sprintf("invocation %s of %s failed: %v", id, fn.Name, err))
	http.Error(w, "internal server error: the function's output bindings could not be written", http.StatusInternalServerError)
	return http.StatusInternalServerError
}

var (
	// errTooLarge is readBody's error for a body over its limit.
	errTooLarge = errors.New("body too large")
	// errBodyDeadline is readRequestBody's error when the whole body did
	// not arrive within the payload body timeout.
	errBodyDeadline = errors.New("the request body did not arrive in time")
)

// readRequestBody reads r's body, all of it within the payload body
// timeout. The net/http side renews a read deadline on every read
// (deadlineBody), which a client sending a byte now and then would keep
// alive; here one deadline covers the whole body instead.
func (h *Handler) readRequestBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rd := io.Reader(r.Body)
	if d, ok := r.Body.(*deadlineBody); ok {
		rd = d.ReadCloser
	}
	deadline := time.Now().Add(h.payload.limits.BodyTimeout)
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(deadline); err == nil {
		// Lifted after the body, where net/http starts watching for the
		// client going away.
		defer rc.SetReadDeadline(time.Time{})
	}
	body, err := readBody(rd, r.ContentLength, h.maxBody)
	if err != nil && !errors.Is(err, errTooLarge) && (errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(deadline)) {
		return nil, errBodyDeadline
	}
	return body, err
}

// readBody reads all of a client's body into one buffer, grown as the
// bytes arrive (never past size when the size is known): a declared size
// alone allocates nothing. It reads at most limit bytes and returns
// errTooLarge past them.
func readBody(rc io.Reader, size, limit int64) ([]byte, error) {
	return readInto(rc, size, limit, 32<<10)
}

// readHandlerAnswer reads all of a handler's answer into one buffer: of
// exactly size bytes when the size is known, else grown as it comes. It
// reads at most limit bytes and returns errTooLarge past them.
func readHandlerAnswer(rc io.Reader, size, limit int64) ([]byte, error) {
	if size >= 0 {
		return readInto(rc, size, limit, size)
	}
	return readInto(rc, size, limit, 32<<10)
}

// readInto reads rc to its end into a buffer of initial bytes, grown as
// needed, never past size when size >= 0. It reads at most limit bytes.
func readInto(rc io.Reader, size, limit, initial int64) ([]byte, error) {
	if size > limit {
		return nil, errTooLarge
	}
	if size >= 0 {
		initial = min(initial, size)
	}
	b := make([]byte, 0, initial)
	for {
		if size >= 0 && int64(len(b)) == size {
			// The reader ends the body at its declared length.
			return b, nil
		}
		if len(b) == cap(b) {
			// Four times while the declared size is not reached (fewer
			// copies: it is coming), twice when the size is unknown.
			c := max(2*int64(cap(b)), 512)
			if size >= 0 {
				c = min(2*c, size)
			} else {
				c = min(c, limit+1)
			}
			nb := make([]byte, len(b), c)
			copy(nb, b)
			b = nb
		}
		n, err := rc.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, errTooLarge
		}
		if err == io.EOF {
			if size >= 0 && int64(len(b)) < size {
				return nil, io.ErrUnexpectedEOF
			}
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
