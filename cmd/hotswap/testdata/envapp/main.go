// Command envapp is a test handler for hotswap's swap tests: it reports its
// deployment, slot and environment, and misbehaves on request through its
// settings (CRASH_IF_SLOT, WARM_STATUS, WARM_SLEEP). With SPAWN_ORPHAN=1 it
// starts a detached child (new session), whose pid GET /api/orphan reports.
// A file fail-every beside the executable holding N makes every Nth answer
// of /api/whoami a 500: a bad build, for the progressive swap tests.
package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if os.Getenv("ENVAPP_MODE") == "sleep" {
		time.Sleep(time.Hour)
		return
	}
	orphan := 0
	if os.Getenv("SPAWN_ORPHAN") == "1" {
		// A worker that leaves the handler's process group and session, as
		// a daemonizing child would.
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "ENVAPP_MODE=sleep")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			os.Stderr.WriteString("spawn orphan: " + err.Error() + "\n")
			os.Exit(1)
		}
		orphan = cmd.Process.Pid
	}
	if os.Getenv("CRASH_IF_SLOT") != "" && os.Getenv("CRASH_IF_SLOT") == os.Getenv("WEBSITE_SLOT_NAME") {
		os.Stderr.WriteString("crashing on purpose: CRASH_IF_SLOT matches\n")
		os.Exit(3)
	}
	who := map[string]string{
		"deployment": os.Getenv("HOTSWAP_DEPLOYMENT_ID"),
		"slot":       os.Getenv("WEBSITE_SLOT_NAME"),
		"pid":        strconv.Itoa(os.Getpid()),
	}
	failEvery := int64(0)
	if exe, err := os.Executable(); err == nil {
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(exe), "fail-every")); err == nil {
			failEvery, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		}
	}
	var calls atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("GET /api/orphan", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strconv.Itoa(orphan)))
	})
	mux.HandleFunc("/api/whoami", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // a POST's body, for the cluster test's load
		w.Header().Set("X-Deployment", who["deployment"])
		if failEvery > 0 && calls.Add(1)%failEvery == 0 {
			http.Error(w, "failing on purpose: fail-every", http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(who)
	})
	mux.HandleFunc("GET /api/env/{name}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.PathValue("name"))
		if !ok {
			http.Error(w, "unset", http.StatusNotFound)
			return
		}
		w.Write([]byte(v))
	})
	mux.HandleFunc("GET /api/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.PathValue("code"))
		if err != nil || code < 200 || code > 599 {
			code = 400
		}
		w.WriteHeader(code)
	})
	var ticks atomic.Int64
	var timersMu sync.Mutex
	timers := map[string][]bool{} // function -> IsPastDue of each run, in order
	timer := func(w http.ResponseWriter, r *http.Request) bool {
		var in struct {
			Data map[string]struct{ IsPastDue bool }
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.Data) != 1 {
			http.Error(w, "bad timer payload", http.StatusBadRequest)
			return false
		}
		timersMu.Lock()
		defer timersMu.Unlock()
		for _, t := range in.Data {
			timers[r.PathValue("name")] = append(timers[r.PathValue("name")], t.IsPastDue)
		}
		return true
	}
	mux.HandleFunc("POST /{name}", func(w http.ResponseWriter, r *http.Request) {
		if !timer(w, r) {
			return
		}
		var logs []string
		if r.PathValue("name") == "tick" {
			logs = append(logs, "tick "+strconv.FormatInt(ticks.Add(1), 10))
		}
		json.NewEncoder(w).Encode(map[string]any{"Outputs": map[string]any{}, "Logs": logs})
	})
	mux.HandleFunc("GET /api/timers", func(w http.ResponseWriter, r *http.Request) {
		timersMu.Lock()
		defer timersMu.Unlock()
		json.NewEncoder(w).Encode(timers)
	})
	mux.HandleFunc("GET /api/ticks", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strconv.FormatInt(ticks.Load(), 10)))
	})
	mux.HandleFunc("GET /api/warm", func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(os.Getenv("WARM_SLEEP")); err == nil {
			time.Sleep(d)
		}
		status := 200
		if s, err := strconv.Atoi(os.Getenv("WARM_STATUS")); err == nil {
			status = s
		}
		w.WriteHeader(status)
	})
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	srv := &http.Server{Addr: "127.0.0.1:" + strings.TrimSpace(port), Handler: mux}
	if err := srv.ListenAndServe(); err != nil {
		os.Exit(1)
	}
}
