// Command holdapp is a payload-mode test handler whose invocations stay in
// flight as long as a test wants: POST /hold?addr=host:port dials addr,
// which tells the test the invocation is in the handler, and answers once
// the test closes that connection.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		port = "8080"
	}
	http.HandleFunc("POST /hold", hold)
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", port), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func hold(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Data struct {
			Req struct {
				Query map[string]string `json:"Query"`
			} `json:"req"`
		} `json:"Data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, "decode invocation: "+err.Error(), http.StatusBadRequest)
		return
	}
	addr := in.Data.Req.Query["addr"]
	if addr == "" {
		http.Error(w, "hold: no addr in the query", http.StatusBadRequest)
		return
	}
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		http.Error(w, "hold: "+err.Error(), http.StatusInternalServerError)
		return
	}
	io.Copy(io.Discard, c) // until the test closes it
	c.Close()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"Outputs":{},"Logs":["held"],"ReturnValue":{"statusCode":200,"body":"held"}}`)
}
