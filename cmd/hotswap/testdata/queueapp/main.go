// Command queueapp is a payload-mode test handler with queue-triggered
// functions. Each answers with a log line naming the message, the
// deployment it ran on and the try, which tests read from the slot log:
//
//	work: "work got <text> on <deployment> try <n>"
//	fail: answers 500, always
//	slow: takes 300ms, then "slow done <text> on <deployment>"
//	onblob (uploads/{name}): "blob got <name>: <content> on <deployment>"
//	hang: on its first try takes a minute (a test kills the server meanwhile),
//	then "hang done <text> try <n>"
//	lookup (queue lookups, blob input docs/{queueTrigger}): "lookup <text>: <doc>" (null: no blob)
//	relay (queue stream): returns "<text> on <deployment>" to the queue relayed
//	toblob (queue orders, {"id": ...}): writes "receipt for <id>" to the blob receipts/<id>.txt
package main

import (
	"encoding/json"
	"fmt"
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
	http.HandleFunc("POST /work", func(w http.ResponseWriter, r *http.Request) {
		text, try, ok := read(w, r)
		if ok {
			answer(w, fmt.Sprintf("work got %s on %s try %d", text, os.Getenv("HOTSWAP_DEPLOYMENT_ID"), try))
		}
	})
	http.HandleFunc("POST /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "fail always fails", http.StatusInternalServerError)
	})
	http.HandleFunc("POST /slow", func(w http.ResponseWriter, r *http.Request) {
		text, _, ok := read(w, r)
		if ok {
			time.Sleep(300 * time.Millisecond)
			answer(w, fmt.Sprintf("slow done %s on %s", text, os.Getenv("HOTSWAP_DEPLOYMENT_ID")))
		}
	})
	http.HandleFunc("POST /onblob", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Data     struct{ Blob string }
			Metadata struct{ Name string }
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "decode invocation: "+err.Error(), http.StatusBadRequest)
			return
		}
		answer(w, fmt.Sprintf("blob got %s: %s on %s", in.Metadata.Name, in.Data.Blob, os.Getenv("HOTSWAP_DEPLOYMENT_ID")))
	})
	http.HandleFunc("POST /toblob", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Data struct{ Order string } }
		var order struct{ ID string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || json.Unmarshal([]byte(in.Data.Order), &order) != nil {
			http.Error(w, "decode the order", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"Outputs": map[string]any{"receipt": "receipt for " + order.ID}, "Logs": []string{"toblob wrote " + order.ID}})
	})
	http.HandleFunc("POST /relay", func(w http.ResponseWriter, r *http.Request) {
		text, _, ok := read(w, r)
		if ok {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"ReturnValue": text + " on " + os.Getenv("HOTSWAP_DEPLOYMENT_ID")})
		}
	})
	http.HandleFunc("POST /hang", func(w http.ResponseWriter, r *http.Request) {
		text, try, ok := read(w, r)
		if !ok {
			return
		}
		if try == 1 {
			time.Sleep(time.Minute)
		}
		answer(w, fmt.Sprintf("hang done %s try %d", text, try))
	})
	http.HandleFunc("POST /lookup", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Data struct {
				Msg string
				Doc json.RawMessage
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "decode invocation: "+err.Error(), http.StatusBadRequest)
			return
		}
		answer(w, fmt.Sprintf("lookup %s: %s", in.Data.Msg, in.Data.Doc))
	})
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", port), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// read decodes a queue invocation: the message text (Data.msg, a JSON
// string) and its DequeueCount.
func read(w http.ResponseWriter, r *http.Request) (text string, try int, ok bool) {
	var in struct {
		Data     struct{ Msg string }
		Metadata struct{ DequeueCount int }
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, "decode invocation: "+err.Error(), http.StatusBadRequest)
		return "", 0, false
	}
	return in.Data.Msg, in.Metadata.DequeueCount, true
}

func answer(w http.ResponseWriter, line string) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"Outputs": map[string]any{}, "Logs": []string{line}})
}
