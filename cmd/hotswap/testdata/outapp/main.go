// Command outapp is a payload-mode test handler whose functions answer with
// the outputs the caller asks for: the HTTP request body
//
//	{"outputs":{"<binding>":<value>,...},"returnValue":<value>,"fail":false}
//
// becomes the answer's Outputs (with "res", an http output of 200 and body
// "done", added) and ReturnValue; with "fail" the handler answers 500, a
// failed function. An invocation without "req" (a timer's) answers the
// output "msg" with "tick from <function>".
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
	http.HandleFunc("POST /{name}", invoke)
	srv := &http.Server{Addr: net.JoinHostPort("127.0.0.1", port), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func invoke(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Data struct {
			Req *struct {
				Body string `json:"Body"`
			} `json:"req"`
		} `json:"Data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, "decode invocation: "+err.Error(), http.StatusBadRequest)
		return
	}
	if in.Data.Req == nil {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"Outputs": map[string]string{"msg": "tick from " + r.PathValue("name")},
			"Logs":    []string{"timer " + r.PathValue("name")},
		})
		return
	}
	var ask struct {
		Outputs     map[string]json.RawMessage `json:"outputs"`
		ReturnValue json.RawMessage            `json:"returnValue"`
		Fail        bool                       `json:"fail"`
	}
	if err := json.Unmarshal([]byte(in.Data.Req.Body), &ask); err != nil {
		http.Error(w, "decode the request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if ask.Fail {
		http.Error(w, "failed as asked", http.StatusInternalServerError)
		return
	}
	if ask.Outputs == nil {
		ask.Outputs = map[string]json.RawMessage{}
	}
	ask.Outputs["res"] = json.RawMessage(`{"statusCode":200,"body":"done"}`)
	if ask.ReturnValue == nil {
		ask.ReturnValue = json.RawMessage("null")
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"Outputs":     ask.Outputs,
		"Logs":        []string{fmt.Sprintf("%s: %d outputs", r.PathValue("name"), len(ask.Outputs)-1)},
		"ReturnValue": ask.ReturnValue,
	})
}
