// Command queue is the benchmark's queue-triggered no-op function "tick"
// (payload mode). Each invocation reports its message text to the bench
// process by POSTing it to BENCH_CALLBACK, so the bench measures from its
// own clock when each message reached the handler; the queue trigger and the
// direct HTTP baseline call the same POST /tick with the same envelope.
//
//	GET  /      readiness: "ok"
//	POST /tick  {"Data": {"msg": "<text>"}, ...}: POST <text> to BENCH_CALLBACK, answer {}
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
	"strings"
	"syscall"
	"time"
)

// invokeRequest is the part of the invocation body this handler reads: the
// queue trigger "msg", the message text as a JSON string.
type invokeRequest struct {
	Data struct {
		Msg string `json:"msg"`
	} `json:"Data"`
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

	callback := os.Getenv("BENCH_CALLBACK")
	if callback == "" {
		return errors.New("BENCH_CALLBACK is not set")
	}
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		port = "8080"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute},
	}
	srv := &http.Server{Handler: newMux(client, callback), ReadHeaderTimeout: 10 * time.Second}
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

func newMux(client *http.Client, callback string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("POST /tick", func(w http.ResponseWriter, r *http.Request) {
		var in invokeRequest
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "bad invocation: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := report(r.Context(), client, callback, in.Data.Msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"Outputs":{},"Logs":[],"ReturnValue":null}`)
	})
	return mux
}

// report tells the bench process that msg reached the handler.
func report(ctx context.Context, client *http.Client, callback, msg string) error {
	req, err := http.NewRequestWithContext(ctx, "POST", callback, strings.NewReader(msg))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("callback: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("callback: %s", resp.Status)
	}
	return nil
}
