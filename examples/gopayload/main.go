// Command handler is an Azure Functions custom handler in payload mode
// (host.json sets enableForwardingHttpRequest to false): for every invocation
// the host sends POST /<FunctionName> with the trigger data as JSON, and the
// handler answers with the outputs as JSON, which the host turns into the
// HTTP response.
//
// Build it next to host.json:
//
//	go build -o examples/gopayload/handler ./examples/gopayload
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// invokeRequest is the body of POST /<FunctionName>.
type invokeRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// httpRequest is an httpTrigger's entry in Data. Hosts differ in how they
// encode Query, Headers, Params and Body (an object or a JSON string, single
// values or lists), so they stay raw and are read with stringMap and bodyText.
type httpRequest struct {
	URL     string          `json:"Url"`
	Method  string          `json:"Method"`
	Query   json.RawMessage `json:"Query"`
	Headers json.RawMessage `json:"Headers"`
	Params  json.RawMessage `json:"Params"`
	Body    json.RawMessage `json:"Body"`
	// BodyEncoding is "base64" when Body holds a binary body (not UTF-8
	// text, or sent as application/octet-stream or multipart/*) in base64.
	BodyEncoding string `json:"BodyEncoding"`
}

// invokeResponse is the handler's 2xx answer. ReturnValue feeds a "$return"
// output binding.
type invokeResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// httpOutput is the value of an http output binding. BodyEncoding
// "base64" tells hotswap that Body is a binary body in base64.
type httpOutput struct {
	StatusCode   int               `json:"statusCode"`
	Body         string            `json:"body"`
	BodyEncoding string            `json:"bodyEncoding,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
}

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger); err != nil {
		logger.Error("handler stopped", "err", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port()))
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newMux(logger),
		ReadHeaderTimeout: 10 * time.Second,
	}
	logger.Info("listening", "addr", ln.Addr().String(), "pid", os.Getpid())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// port returns the port the host assigned, accepting the legacy alias, and
// 8080 when run by hand outside a host.
func port() string {
	for _, k := range []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "8080"
}

// invokeFunc runs one function on its trigger request.
type invokeFunc func(req httpRequest) (invokeResponse, error)

func newMux(logger *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	// The path is the function's folder name, not its route.
	mux.Handle("POST /hello", invocation(logger, hello))
	mux.Handle("POST /echo", invocation(logger, echo))
	mux.Handle("POST /items", invocation(logger, items))
	mux.Handle("POST /order", invocation(logger, order))
	mux.HandleFunc("POST /fulfil", fulfil)
	mux.HandleFunc("POST /receipt", receipt)
	mux.HandleFunc("POST /status", status)
	mux.Handle("POST /nooutput", invocation(logger, func(httpRequest) (invokeResponse, error) {
		// No output binding: the host answers the client 204.
		return invokeResponse{Outputs: map[string]any{}, Logs: []string{"fired"}}, nil
	}))
	mux.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		// Any non-2xx answer is a failed invocation; the host reports it
		// to the client as a server error.
		http.Error(w, "fail: this function always fails", http.StatusInternalServerError)
	})
	return mux
}

// invocation decodes the payload, runs fn on the "req" trigger and encodes
// its answer. A payload it cannot read is a failed invocation (400).
func invocation(logger *slog.Logger, fn invokeFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in invokeRequest
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "decode invocation: "+err.Error(), http.StatusBadRequest)
			return
		}
		var req httpRequest
		if raw, ok := in.Data["req"]; ok {
			if err := json.Unmarshal(raw, &req); err != nil {
				http.Error(w, "decode Data.req: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		out, err := fn(req)
		if err != nil {
			logger.Error("invocation failed", "path", r.URL.Path, "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if out.Outputs == nil {
			out.Outputs = map[string]any{}
		}
		if out.Logs == nil {
			out.Logs = []string{}
		}
		b, err := json.Marshal(out)
		if err != nil {
			http.Error(w, "encode response", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})
}

func hello(req httpRequest) (invokeResponse, error) {
	name := stringMap(req.Query)["name"]
	if name == "" {
		var body struct {
			Name string `json:"name"`
		}
		// A body that is not JSON simply has no name.
		if json.Unmarshal([]byte(bodyText(req.Body)), &body) == nil {
			name = body.Name
		}
	}
	if name == "" {
		name = "world"
	}
	b, err := json.Marshal(map[string]string{
		"message": "Hello, " + name,
		"slot":    os.Getenv("WEBSITE_SLOT_NAME"),
		"version": os.Getenv("APP_VERSION"),
	})
	if err != nil {
		return invokeResponse{}, err
	}
	return invokeResponse{
		Outputs: map[string]any{"res": httpOutput{
			StatusCode: http.StatusOK,
			Body:       string(b),
			Headers:    map[string]string{"Content-Type": "application/json"},
		}},
		Logs: []string{"hello called for " + name},
	}, nil
}

// echo answers through "$return": the host takes the HTTP response from
// ReturnValue instead of Outputs. A binary body goes back as it came, in
// base64 with its content type, so every byte survives.
func echo(req httpRequest) (invokeResponse, error) {
	body := bodyText(req.Body)
	out := httpOutput{
		StatusCode: http.StatusOK,
		Body:       body,
		Headers:    map[string]string{"Content-Type": "text/plain"},
	}
	n := len(body)
	if req.BodyEncoding == "base64" {
		out.BodyEncoding = "base64"
		out.Headers["Content-Type"] = "application/octet-stream"
		if ct := stringMap(req.Headers)["Content-Type"]; ct != "" {
			out.Headers["Content-Type"] = ct
		}
		n = base64.StdEncoding.DecodedLen(len(body)) - strings.Count(body[max(0, len(body)-2):], "=")
	}
	return invokeResponse{
		Logs:        []string{fmt.Sprintf("echo %d bytes", n)},
		ReturnValue: out,
	}, nil
}

// items serves route items/{id:int}; the host has matched the template and
// passes id in Params.
func items(req httpRequest) (invokeResponse, error) {
	s := stringMap(req.Params)["id"]
	id, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return invokeResponse{
			Outputs: map[string]any{"res": httpOutput{
				StatusCode: http.StatusBadRequest,
				Body:       fmt.Sprintf("id %q is not an int", s),
				Headers:    map[string]string{"Content-Type": "text/plain"},
			}},
		}, nil
	}
	b, err := json.Marshal(map[string]int64{"id": id})
	if err != nil {
		return invokeResponse{}, err
	}
	return invokeResponse{
		Outputs: map[string]any{"res": httpOutput{
			StatusCode: http.StatusOK,
			Body:       string(b),
			Headers:    map[string]string{"Content-Type": "application/json"},
		}},
	}, nil
}

// order takes an order, {"item":"...","quantity":n}, and puts it on the
// "orders" queue through its queue output binding "order": the host writes
// the value to the queue after the function succeeded, and answers the
// caller from the http output "res". A bad order is refused with 400 and
// enqueues nothing.
func order(req httpRequest) (invokeResponse, error) {
	var o struct {
		ID       string `json:"id"`
		Item     string `json:"item"`
		Quantity int    `json:"quantity"`
	}
	if err := json.Unmarshal([]byte(bodyText(req.Body)), &o); err != nil || o.Item == "" || o.Quantity < 1 {
		return invokeResponse{
			Outputs: map[string]any{"res": httpOutput{
				StatusCode: http.StatusBadRequest,
				Body:       `an order is {"item":"<name>","quantity":<1 or more>}`,
				Headers:    map[string]string{"Content-Type": "text/plain"},
			}},
		}, nil
	}
	if o.ID == "" {
		o.ID = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	b, err := json.Marshal(o)
	if err != nil {
		return invokeResponse{}, err
	}
	return invokeResponse{
		Outputs: map[string]any{
			"order": o,
			"res": httpOutput{
				StatusCode: http.StatusAccepted,
				Body:       string(b),
				Headers:    map[string]string{"Content-Type": "application/json"},
			},
		},
		Logs: []string{fmt.Sprintf("order %s: %d x %s", o.ID, o.Quantity, o.Item)},
	}, nil
}

// fulfil is triggered by each message on the queue "orders" (what order
// enqueues). Data.order is the message text, a JSON string holding the
// order; Metadata has the message's Id and DequeueCount. It writes a receipt
// to the blob output "receipt", whose path receipts/{id}.json takes {id}
// from the order's JSON. An answer other than 2xx would leave the message
// on the queue, to be tried again (and moved to orders-poison after 5 tries).
func fulfil(w http.ResponseWriter, r *http.Request) {
	var in invokeRequest
	var text string
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || json.Unmarshal(in.Data["order"], &text) != nil {
		http.Error(w, "decode the queue message: want Data.order as a string", http.StatusBadRequest)
		return
	}
	var o struct {
		ID       string `json:"id"`
		Item     string `json:"item"`
		Quantity int    `json:"quantity"`
	}
	if err := json.Unmarshal([]byte(text), &o); err != nil || o.ID == "" {
		http.Error(w, "the message is not an order with an id", http.StatusBadRequest)
		return
	}
	var try int
	_ = json.Unmarshal(in.Metadata["DequeueCount"], &try)
	writeInvokeResponse(w, invokeResponse{
		Outputs: map[string]any{"receipt": map[string]any{"id": o.ID, "item": o.Item, "quantity": o.Quantity, "status": "fulfilled"}},
		Logs:    []string{fmt.Sprintf("fulfilled order %s (try %d)", o.ID, try)},
	})
}

// receipt is triggered by each new or changed blob under receipts/ (what
// fulfil writes): Data.receipt is the blob's text, Metadata.name the name
// the path receipts/{name} binds.
func receipt(w http.ResponseWriter, r *http.Request) {
	var in invokeRequest
	var text, name string
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || json.Unmarshal(in.Data["receipt"], &text) != nil {
		http.Error(w, "decode the blob: want Data.receipt as a string", http.StatusBadRequest)
		return
	}
	_ = json.Unmarshal(in.Metadata["name"], &name)
	writeInvokeResponse(w, invokeResponse{Logs: []string{fmt.Sprintf("receipt %s: %s", name, text)}})
}

// status answers GET /api/orders/{id} with the order's receipt, which the
// host reads before the call through the blob input binding "receipt"
// (path receipts/{id}.json, {id} from the route): Data.receipt is the
// blob's text, or null while there is no receipt yet (404).
func status(w http.ResponseWriter, r *http.Request) {
	var in invokeRequest
	var req httpRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || json.Unmarshal(in.Data["req"], &req) != nil {
		http.Error(w, "decode invocation: want Data.req", http.StatusBadRequest)
		return
	}
	id := stringMap(req.Params)["id"]
	var text *string
	if err := json.Unmarshal(in.Data["receipt"], &text); err != nil {
		http.Error(w, "decode the blob: want Data.receipt as a string or null", http.StatusBadRequest)
		return
	}
	res := httpOutput{
		StatusCode: http.StatusNotFound,
		Body:       fmt.Sprintf("no receipt for order %s yet\n", id),
		Headers:    map[string]string{"Content-Type": "text/plain"},
	}
	if text != nil {
		res = httpOutput{StatusCode: http.StatusOK, Body: *text, Headers: map[string]string{"Content-Type": "application/json"}}
	}
	writeInvokeResponse(w, invokeResponse{Outputs: map[string]any{"res": res}})
}

func writeInvokeResponse(w http.ResponseWriter, out invokeResponse) {
	if out.Outputs == nil {
		out.Outputs = map[string]any{}
	}
	if out.Logs == nil {
		out.Logs = []string{}
	}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// stringMap reads Query, Headers or Params: an object whose values are
// strings or lists of strings (the first one counts), or such an object
// encoded as a JSON string. Anything else yields an empty map.
func stringMap(raw json.RawMessage) map[string]string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return map[string]string{}
		}
		raw = []byte(s)
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return map[string]string{}
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = v
		case []any:
			if len(v) > 0 {
				if s, ok := v[0].(string); ok {
					out[k] = s
				}
			}
		case float64, bool:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// bodyText returns the request body: a JSON string is unquoted, an absent or
// null body is empty, and any other JSON value (a host that parsed a JSON
// body) is returned as its JSON text.
func bodyText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}
