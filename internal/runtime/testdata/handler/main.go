//go:build ignore

// Command handler is a custom handler used by the runtime package tests.
// Behaviour is chosen with environment variables:
//
//	HANDLER_EXIT=N          print to stderr and exit with code N before listening
//	HANDLER_SLEEP=dur       sleep before listening
//	HANDLER_IGNORE_TERM=1   ignore SIGTERM
//	HANDLER_STDOUT=text     print text to stdout (once per line in text)
//	HANDLER_STDERR=text     print text to stderr
//	HANDLER_LONG=N          print one stdout line of N bytes
//	HANDLER_CHILD=1         start a child process (same process group) that sleeps
//	HANDLER_CHILD=orphan    the same, but in a new session, out of the handler's group
//	HANDLER_EXIT_IF=path    exit with code 4 before listening when path exists
//
// It prints "pid=N" (and "child=N") to stderr first.
// Endpoints: GET / (ok), /pid, /env?k=NAME, /crash (exit 2), /child (child pid).
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getenv("HANDLER_MODE") == "child" {
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Hour)
		return
	}
	fmt.Fprintf(os.Stderr, "pid=%d\n", os.Getpid())
	if s := os.Getenv("HANDLER_STDOUT"); s != "" {
		fmt.Println(s)
	}
	if s := os.Getenv("HANDLER_STDERR"); s != "" {
		fmt.Fprintln(os.Stderr, s)
	}
	if s := os.Getenv("HANDLER_LONG"); s != "" {
		n, _ := strconv.Atoi(s)
		fmt.Println(strings.Repeat("x", n))
		fmt.Println("after-long")
	}
	if s := os.Getenv("HANDLER_EXIT"); s != "" {
		code, _ := strconv.Atoi(s)
		fmt.Fprintf(os.Stderr, "handler: exiting with %d\n", code)
		os.Exit(code)
	}
	if f := os.Getenv("HANDLER_EXIT_IF"); f != "" {
		if _, err := os.Stat(f); err == nil {
			fmt.Fprintln(os.Stderr, "handler: exit file present")
			os.Exit(4)
		}
	}
	if os.Getenv("HANDLER_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	childPID := 0
	if c := os.Getenv("HANDLER_CHILD"); c == "1" || c == "orphan" {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "HANDLER_MODE=child")
		if c == "orphan" {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "start child:", err)
			os.Exit(1)
		}
		childPID = cmd.Process.Pid
		fmt.Fprintf(os.Stderr, "child=%d\n", childPID)
	}
	if s := os.Getenv("HANDLER_SLEEP"); s != "" {
		d, _ := time.ParseDuration(s)
		time.Sleep(d)
	}
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/pid", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, os.Getpid()) })
	mux.HandleFunc("/child", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, childPID) })
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("k")))
	})
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) { os.Exit(2) })
	err := http.ListenAndServe("127.0.0.1:"+port, mux)
	fmt.Fprintln(os.Stderr, "listen:", err)
	os.Exit(1)
}
