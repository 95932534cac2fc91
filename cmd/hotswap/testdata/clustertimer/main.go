// Command clustertimer is the timer handler of the cluster tests: each run
// of its one-second timer "tick" appends one JSON line to the file its
// TICK_FILE setting names. The nodes of a cluster all write to that file,
// so a test sees every run of every node in one place, with the process
// that made it.
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// record is one run of the timer, as the test reads it back.
type record struct {
	Next      string `json:"next"` // ScheduleStatus.Next: the occurrence after this run's
	Last      string `json:"last"` // ScheduleStatus.Last
	PastDue   bool   `json:"pastDue"`
	Received  string `json:"received"`
	PID       int    `json:"pid"`
	Ancestors []int  `json:"ancestors"` // parent, its parent ... : one of them is the node
}

func main() {
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("POST /tick", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Data map[string]struct {
				ScheduleStatus struct{ Last, Next string }
				IsPastDue      bool
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "bad timer payload: "+err.Error(), http.StatusBadRequest)
			return
		}
		t, ok := in.Data["myTimer"]
		if !ok {
			http.Error(w, "no myTimer in the payload", http.StatusBadRequest)
			return
		}
		rec := record{
			Next: t.ScheduleStatus.Next, Last: t.ScheduleStatus.Last, PastDue: t.IsPastDue,
			Received: time.Now().UTC().Format(time.RFC3339Nano), PID: os.Getpid(), Ancestors: ancestors(),
		}
		line, _ := json.Marshal(rec)
		mu.Lock()
		defer mu.Unlock()
		f, err := os.OpenFile(os.Getenv("TICK_FILE"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, err = f.Write(append(line, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"Outputs": map[string]any{}, "Logs": []string{}})
	})
	srv := &http.Server{Addr: "127.0.0.1:" + strings.TrimSpace(os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")), Handler: mux}
	if err := srv.ListenAndServe(); err != nil {
		os.Exit(1)
	}
}

// ancestors returns the process IDs above this one, nearest first, read
// from /proc (at most 8).
func ancestors() []int {
	var ids []int
	pid := os.Getppid()
	for len(ids) < 8 && pid > 1 {
		ids = append(ids, pid)
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			break
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			break
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			break
		}
		if pid, err = strconv.Atoi(f[1]); err != nil {
			break
		}
	}
	return ids
}
