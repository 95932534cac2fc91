// Command handler is the benchmark's custom handler in forwarding mode: the
// smallest useful app, so that the figures show the host's cost and not the
// handler's. The bench harness (../) builds it next to host.json, deploys the
// folder to hotswap and also runs the same binary directly as the baseline.
//
//	GET  /          readiness: "ok"
//	GET  /api/small a fixed 60-byte JSON body
//	POST /api/echo  the request body, streamed back
//
// Every answer carries X-Deployment: the value of HOTSWAP_DEPLOYMENT_ID,
// which hotswap sets for each deployment, so the swap benchmark can tell
// which deployment served each request. The harness sets it to "direct"
// for the baseline so both carry the same header bytes.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// smallBody is exactly 60 bytes; the harness checks the length it receives.
const smallBody = `{"message":"hello from the hotswap bench!","ok":true,"n":42}`

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
	srv := &http.Server{Handler: newMux(), ReadHeaderTimeout: 10 * time.Second}
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

func newMux() *http.ServeMux {
	small := []byte(smallBody)
	smallLen := strconv.Itoa(len(small))
	// Set as a pre-built slice, the header costs no allocation per request.
	dep := []string{os.Getenv("HOTSWAP_DEPLOYMENT_ID")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Deployment"] = dep
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /api/small", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Deployment"] = dep
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", smallLen)
		w.Write(small)
	})
	mux.HandleFunc("POST /api/echo", func(w http.ResponseWriter, r *http.Request) {
		// Without full duplex, net/http stops reading an HTTP/1.1 request
		// body once the response starts, which would cut large echoes short.
		http.NewResponseController(w).EnableFullDuplex()
		h := w.Header()
		h["X-Deployment"] = dep
		h.Set("Content-Type", "application/octet-stream")
		if r.ContentLength >= 0 {
			h.Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
		}
		w.WriteHeader(http.StatusOK)
		io.Copy(w, r.Body)
	})
	return mux
}
