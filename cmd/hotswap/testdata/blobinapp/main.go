// Command blobinapp is a payload-mode test handler whose functions have a
// blob input binding "doc". Each shows the value it got, as raw JSON (a
// string, or null for a missing blob):
//
//	doc (GET /api/doc/{name}, blob docs/{name}): answers 200 with the value
//	pick (/api/pick?file=F, blob %Folder%/{Query.file}): answers 200 with the value
//	down (GET /api/down, blob through a connection with a wrong key): never runs
//	tick (timer, every second, blob docs/tick.txt): logs "tick read <value>"
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

type invocation struct {
	Data struct {
		Doc json.RawMessage `json:"doc"`
	}
}

func main() {
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		port = "8080"
	}
	answerDoc := func(w http.ResponseWriter, r *http.Request) {
		var in invocation
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "decode invocation: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"Outputs": map[string]any{"res": map[string]any{
			"statusCode": 200, "body": string(in.Data.Doc),
		}}})
	}
	http.HandleFunc("POST /doc", answerDoc)
	http.HandleFunc("POST /pick", answerDoc)
	http.HandleFunc("POST /down", answerDoc)
	http.HandleFunc("POST /tick", func(w http.ResponseWriter, r *http.Request) {
		var in invocation
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "decode invocation: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"Logs": []string{"tick read " + string(in.Data.Doc)}})
	})
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", port), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
