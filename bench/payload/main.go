// Command payload is the benchmark's custom handler in payload mode
// (host.json sets enableForwardingHttpRequest to false): hotswap turns each
// HTTP request into POST /<function> with the trigger data as JSON, and this
// handler's JSON answer back into the HTTP response. It answers the same
// bodies as ../handler, so the report can set the two modes side by side.
//
//	GET  /          readiness: "ok"
//	GET  /api/small the same fixed 60-byte JSON body (function "small")
//	POST /api/echo  the request body echoed (function "echo")
package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// smallBody is the forwarding handler's body, byte for byte.
const smallBody = `{"message":"hello from the hotswap bench!","ok":true,"n":42}`

// invokeRequest is the part of the host's invocation body this handler reads:
// the HTTP trigger "req" and its body, which the host sends as a string,
// base64-encoded when BodyEncoding says so (a binary body).
type invokeRequest struct {
	Data struct {
		Req struct {
			Body         string `json:"Body"`
			BodyEncoding string `json:"BodyEncoding"`
		} `json:"req"`
	} `json:"Data"`
}

// httpOutput is the value of the "res" output binding.
type httpOutput struct {
	StatusCode   int               `json:"statusCode"`
	Body         string            `json:"body"`
	BodyEncoding string            `json:"bodyEncoding,omitempty"` // "base64": the host decodes body
	Headers      map[string]string `json:"headers"`
}

// invokeResponse is the handler's answer to an invocation.
type invokeResponse struct {
	Outputs map[string]httpOutput `json:"Outputs"`
}

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(); err != nil {
		logger.Error("handler stopped", "err", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newMux(os.Getenv("HOTSWAP_DEPLOYMENT_ID")), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newMux(deployment string) *http.ServeMux {
	answer := func(w http.ResponseWriter, contentType, body, encoding string) {
		out := invokeResponse{Outputs: map[string]httpOutput{"res": {
			StatusCode:   http.StatusOK,
			Body:         body,
			BodyEncoding: encoding,
			Headers:      map[string]string{"Content-Type": contentType, "X-Deployment": deployment},
		}}}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	// The path is the function's folder name, not its route.
	mux.HandleFunc("POST /small", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		answer(w, "application/json", smallBody, "")
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		var in invokeRequest
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "bad invocation: "+err.Error(), http.StatusBadRequest)
			return
		}
		// A binary body comes and goes base64-encoded: echo it as it came.
		answer(w, "application/octet-stream", in.Data.Req.Body, in.Data.Req.BodyEncoding)
	})
	return mux
}
