// Command handler is an Azure Functions custom handler in forwarding mode
// (host.json sets enableForwardingHttpRequest): the host passes each HTTP
// request through unchanged, with the full path including the route prefix
// (/api/hello), and sends the response back unchanged.
//
// Build it next to host.json:
//
//	go build -o examples/goforward/handler ./examples/goforward
package main

import (
	"context"
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
	"syscall"
	"time"
)

// routePrefix must match extensions.http.routePrefix in host.json: in
// forwarding mode the handler sees the path exactly as the client sent it.
const routePrefix = "/api"

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
	// The host sends SIGTERM when it drains this process: finish in-flight
	// requests, then exit 0.
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

func newMux(logger *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	// Readiness: the host polls GET / until it answers.
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET "+routePrefix+"/hello", hello)
	mux.HandleFunc("POST "+routePrefix+"/hello", hello)
	echo := echoHandler(logger)
	mux.HandleFunc("POST "+routePrefix+"/echo", echo)
	mux.HandleFunc("PUT "+routePrefix+"/echo", echo)
	mux.HandleFunc("GET "+routePrefix+"/products/{category}", products)
	mux.HandleFunc("GET "+routePrefix+"/products/{category}/{id}", products)
	mux.HandleFunc("GET "+routePrefix+"/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{
			"status":  "healthy",
			"version": os.Getenv("APP_VERSION"),
		})
	})
	mux.HandleFunc("GET "+routePrefix+"/admin/info", func(w http.ResponseWriter, r *http.Request) {
		// The host has already checked the master key (authLevel admin).
		writeJSON(w, http.StatusOK, map[string]bool{"admin": true})
	})
	return mux
}

func hello(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "world"
	}
	// The pid lets a caller see which process answered, e.g. across a swap.
	w.Header().Set("X-Handler-Pid", strconv.Itoa(os.Getpid()))
	writeJSON(w, http.StatusOK, map[string]string{
		"message": "Hello, " + name,
		"slot":    os.Getenv("WEBSITE_SLOT_NAME"),
		"site":    os.Getenv("WEBSITE_SITE_NAME"),
		"version": os.Getenv("APP_VERSION"),
	})
}

// echoHandler streams the request body back as it arrives, so bodies of any
// size pass without being held in memory.
func echoHandler(logger *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Without full duplex, net/http stops reading an HTTP/1.1 request
		// body once the response starts, which would cut large echoes short.
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			logger.Warn("echo: full duplex unavailable", "err", err)
		}
		h := w.Header()
		if ct := r.Header.Get("Content-Type"); ct != "" {
			h.Set("Content-Type", ct)
		} else {
			h["Content-Type"] = nil // no sniffing: echo exactly what came in
		}
		h.Set("X-Echo-Method", r.Method)
		h.Set("X-Echo-Query", r.URL.RawQuery)
		h.Set("X-Echo-Path", r.URL.Path)
		if r.ContentLength >= 0 {
			h.Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
		}
		w.WriteHeader(http.StatusOK)
		if _, err := io.Copy(w, r.Body); err != nil {
			logger.Warn("echo: copy body", "err", err)
		}
	}
}

// products serves products/{category:alpha}/{id:int?}. The host matches the
// template before forwarding; the checks here keep the handler honest when
// called directly.
func products(w http.ResponseWriter, r *http.Request) {
	category := r.PathValue("category")
	if !isAlpha(category) {
		http.NotFound(w, r)
		return
	}
	var id *int32
	if s := r.PathValue("id"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		v := int32(n)
		id = &v
	}
	writeJSON(w, http.StatusOK, struct {
		Category string `json:"category"`
		ID       *int32 `json:"id"`
	}{category, id})
}

// isAlpha reports whether s is non-empty and only ASCII letters, as the
// ASP.NET "alpha" route constraint requires.
func isAlpha(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
