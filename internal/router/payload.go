package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hotswap/hotswap/internal/funcapp"
)

// payloadRequest is what a handler receives in payload mode.
type payloadRequest struct {
	Data     map[string]any `json:"Data"`
	Metadata map[string]any `json:"Metadata"`
}

// httpData is the trigger data of an HTTP request in payload mode.
type httpData struct {
	URL     string              `json:"Url"`
	Method  string              `json:"Method"`
	Query   map[string]string   `json:"Query"`
	Headers map[string][]string `json:"Headers"`
	Params  map[string]string   `json:"Params"`
	Body    string              `json:"Body"`
}

// payloadResponse is what a handler answers in payload mode.
type payloadResponse struct {
	Outputs     map[string]json.RawMessage `json:"Outputs"`
	Logs        []string                   `json:"Logs"`
	ReturnValue json.RawMessage            `json:"ReturnValue"`
}

// httpOutput is an http output binding's value.
type httpOutput struct {
	StatusCode json.RawMessage `json:"statusCode"`
	Status     json.RawMessage `json:"status"`
	Body       json.RawMessage `json:"body"`
	Headers    map[string]any  `json:"headers"`
}

// invoke calls fn in payload mode and writes the HTTP answer. It returns the
// status written.
func (h *Handler) invoke(w http.ResponseWriter, r *http.Request, s *Slot, fn *funcapp.Function, params []funcapp.Param, addr string) int {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, fmt.Sprintf("request body is larger than %d bytes", h.maxBody), http.StatusRequestEntityTooLarge)
			return http.StatusRequestEntityTooLarge
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
	in := payloadRequest{
		Data: map[string]any{trigger: httpData{
			URL:     scheme + "://" + r.Host + r.URL.RequestURI(),
			Method:  r.Method,
			Query:   query,
			Headers: r.Header,
			Params:  ps,
			Body:    string(body),
		}},
		Metadata: map[string]any{
			"Query":   query,
			"Headers": r.Header,
			"sys": map[string]any{
				"MethodName": fn.Name,
				"UtcNow":     time.Now().UTC().Format(time.RFC3339Nano),
				"RandGuid":   id,
			},
		},
	}
	for _, p := range params {
		in.Metadata[p.Name] = p.Value
	}
	buf, err := json.Marshal(in)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "http://"+addr+"/"+fn.Name, bytes.NewReader(buf))
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Azure-Functions-InvocationId", id)
	resp, err := h.client.Do(req)
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
	out, err := io.ReadAll(io.LimitReader(resp.Body, h.maxBody+1))
	if err != nil || int64(len(out)) > h.maxBody {
		s.log("host", fmt.Sprintf("invoke %s: reading the handler's answer failed", fn.Name))
		http.Error(w, "bad gateway: the function handler's answer could not be read", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		s.log("host", fmt.Sprintf("invocation %s of %s failed: handler answered %d: %.200s", id, fn.Name, resp.StatusCode, out))
		http.Error(w, "internal server error: the function failed", http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	var pr payloadResponse
	if err := json.Unmarshal(out, &pr); err != nil {
		s.log("host", fmt.Sprintf("invocation %s of %s: the handler's answer is not valid JSON: %v", id, fn.Name, err))
		http.Error(w, "bad gateway: the function handler answered invalid JSON", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	for _, line := range pr.Logs {
		s.log(fn.Name, line)
	}
	var raw json.RawMessage
	switch fn.OutputName {
	case "":
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	case "$return":
		raw = pr.ReturnValue
	default:
		raw = pr.Outputs[fn.OutputName]
	}
	if len(raw) == 0 || string(raw) == "null" {
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

// decodeHTTPOutput reads an http output binding value: statusCode (number or
// string, default 200), headers (string or list values), and body (a string
// as is; any other JSON value marshalled, with a JSON content type).
func decodeHTTPOutput(raw json.RawMessage) (int, http.Header, []byte, error) {
	var o httpOutput
	if err := json.Unmarshal(raw, &o); err != nil {
		return 0, nil, nil, fmt.Errorf("not an object with statusCode, headers and body: %w", err)
	}
	status := http.StatusOK
	code := o.StatusCode
	if len(code) == 0 {
		code = o.Status
	}
	if len(code) > 0 && string(code) != "null" {
		s := strings.Trim(string(code), `"`)
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 || n > 999 {
			return 0, nil, nil, fmt.Errorf("statusCode %s is not an HTTP status", code)
		}
		status = n
	}
	hdr := make(http.Header, len(o.Headers))
	for k, v := range o.Headers {
		switch v := v.(type) {
		case string:
			hdr.Add(k, v)
		case []any:
			for _, e := range v {
				hdr.Add(k, fmt.Sprint(e))
			}
		case nil:
		default:
			hdr.Add(k, fmt.Sprint(v))
		}
	}
	var body []byte
	if len(o.Body) > 0 && string(o.Body) != "null" {
		var s string
		if err := json.Unmarshal(o.Body, &s); err == nil {
			body = []byte(s)
		} else {
			body = o.Body
			if hdr.Get("Content-Type") == "" {
				hdr.Set("Content-Type", "application/json; charset=utf-8")
			}
		}
	}
	return status, hdr, body, nil
}

func (s *Slot) log(stream, text string) {
	if s.Log != nil {
		s.Log(stream, text)
	}
}
