package pgtest

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// haproxyStartTimeout bounds how long HAProxy takes to answer on its
// runtime API after it was started.
const haproxyStartTimeout = 30 * time.Second

// LoadBalancer is a running HAProxy in front of a test's backends, like the
// one an operator puts in front of several hotswap nodes.
//
// It balances HTTP/1.1 keep-alive connections round-robin over the
// backends and checks each with GET /healthz every 500ms: two failures take
// a backend out, two successes bring it back (HAProxy counts a backend up
// until its first checks have failed; see WaitStatus).
//
// Retries: a request that could not be connected to a backend is retried,
// whatever its method (it never reached one). A GET, HEAD or OPTIONS
// request is also retried when the backend closed the connection without
// answering, sent garbage, timed out, or answered 500, 502, 503 or 504
// (retry-on all-retryable-errors), as long as the whole request, headers
// and body, fits in HAProxy's 16 KiB buffer (tune.bufsize): HAProxy keeps
// that copy for the retry; no http-buffer-request is needed. Every retry
// goes to another backend (option redispatch 1), at most 3 (retries 3).
// Other methods are not retried after they reached a backend
// (disable-l7-retry), since that could run them twice.
type LoadBalancer struct {
	// Addr is the frontend's loopback host:port.
	Addr string

	sock string        // runtime API unix socket
	log  *tailBuffer   // HAProxy's output: alerts and non-normal requests
	done chan struct{} // closed when HAProxy has exited
}

// ServerName returns the name of backends[i] in HAProxy's configuration
// and statistics.
func ServerName(i int) string { return "n" + strconv.Itoa(i) }

// haproxyConfig is HAProxy's configuration; see LoadBalancer for what it
// does. The frontend listens on fd 3, a socket the test bound to a free
// port, so there is no race for the port.
var haproxyConfig = template.Must(template.New("haproxy.cfg").Parse(`global
	maxconn 4096
	stats socket {{.Sock}} mode 600 level admin
	log stderr format raw local0 info

defaults
	mode http
	log global
	option httplog
	option dontlog-normal
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	timeout http-request 10s
	timeout http-keep-alive 30s
	timeout queue 10s
	timeout check 2s

frontend fe
	bind fd@3
	default_backend be

backend be
	balance roundrobin
	option httpchk
	http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host localhost
	http-check expect status 200
	default-server check inter 500ms fall 2 rise 2
	retries 3
	option redispatch 1
	retry-on all-retryable-errors
	http-request disable-l7-retry if !METH_GET !METH_OPTIONS
	http-reuse always
{{- range $i, $addr := .Backends}}
	server n{{$i}} {{$addr}}
{{- end}}
`))

// findHAProxy returns the haproxy executable: PATH, else /usr/sbin, where
// Debian installs it and which a non-root PATH may lack.
func findHAProxy() (string, error) {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy", nil
	}
	return "", errors.New("haproxy is not installed (not on PATH nor /usr/sbin/haproxy); run make deps")
}

// HAProxy starts an HAProxy in front of backends (host:port each) for the
// test and stops it in t.Cleanup. When HAProxy is not installed the test is
// skipped, or fails under CI.
func HAProxy(t testing.TB, backends []string) *LoadBalancer {
	t.Helper()
	bin, err := findHAProxy()
	if err != nil {
		missing(t, err)
	}
	for _, b := range backends {
		if _, _, err := net.SplitHostPort(b); err != nil || strings.ContainsAny(b, " \t\n#") {
			t.Fatalf("pgtest: HAProxy backend %q is not host:port", b)
		}
	}
	dir := t.TempDir()
	// A unix socket path is limited to about 100 bytes, which a long test
	// name's TempDir can exceed.
	sockDir, err := os.MkdirTemp("", "hx")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	lb := &LoadBalancer{sock: filepath.Join(sockDir, "s"), log: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}

	cfg := filepath.Join(dir, "haproxy.cfg")
	var b strings.Builder
	if err := haproxyConfig.Execute(&b, struct {
		Sock     string
		Backends []string
	}{lb.sock, backends}); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	lnFile, err := ln.(*net.TCPListener).File()
	ln.Close() // lnFile is a duplicate: the socket stays bound and listening
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	lb.Addr = ln.Addr().String()

	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Dir = dir
	cmd.ExtraFiles = []*os.File{lnFile} // fd 3
	cmd.Stdout = lb.log
	cmd.Stderr = lb.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pid, err := startLocked(cmd, lb.done)
	lnFile.Close()
	if err != nil {
		t.Fatalf("pgtest: start haproxy: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGTERM) // HAProxy's hard stop
		select {
		case <-lb.done:
		case <-time.After(stopTimeout):
			syscall.Kill(-pid, syscall.SIGKILL)
			<-lb.done
		}
		if t.Failed() {
			t.Logf("haproxy output:\n%s", lb.Log())
		}
	})

	deadline := time.Now().Add(haproxyStartTimeout)
	for {
		_, err := lb.Command("show info")
		if err == nil {
			break
		}
		select {
		case <-lb.done:
			t.Fatalf("pgtest: haproxy exited at start:\n%s", lb.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgtest: haproxy does not answer on %s after %s: %v\n%s", lb.sock, haproxyStartTimeout, err, lb.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return lb
}

// Log returns the end of HAProxy's output: startup warnings, backends
// going up and down, and requests that failed, were retried or
// redispatched (normal requests are not logged).
func (lb *LoadBalancer) Log() string { return lb.log.String() }

// Command sends one command to HAProxy's runtime API (admin level) and
// returns its answer, e.g. "set server be/n0 state drain" or
// "set server be/n1 addr 127.0.0.1 port 8080".
func (lb *LoadBalancer) Command(cmd string) (string, error) {
	c, err := net.DialTimeout("unix", lb.sock, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", err
	}
	out, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("haproxy %q: %w", cmd, err)
	}
	return string(out), nil
}

// ServerStat is one backend's line of HAProxy's statistics.
type ServerStat struct {
	Name   string // ServerName(i) of backends[i]
	Addr   string
	Status string // "UP", "DOWN", "UP 1/2" (going down), "DOWN 1/2" (going up), "MAINT", "DRAIN"
	// Sessions counts the requests sent to the backend (stot), Retries
	// and Redispatches those retried on it or moved away from it.
	Sessions, Retries, Redispatches int
	// ConnErrors counts failed connections, RespErrors failed responses,
	// Status5xx its answers with status 5xx.
	ConnErrors, RespErrors, Status5xx int
}

// Servers returns the statistics of every backend, in configuration order.
func (lb *LoadBalancer) Servers() ([]ServerStat, error) {
	out, err := lb.Command("show stat")
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("haproxy show stat: unreadable answer %q", out)
	}
	col := make(map[string]int)
	for i, name := range rows[0] {
		col[name] = i
	}
	field := func(row []string, name string) string {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return ""
	}
	num := func(row []string, name string) int {
		n, _ := strconv.Atoi(field(row, name))
		return n
	}
	var stats []ServerStat
	for _, row := range rows[1:] {
		if field(row, "pxname") != "be" || field(row, "svname") == "BACKEND" {
			continue
		}
		stats = append(stats, ServerStat{
			Name:         field(row, "svname"),
			Addr:         field(row, "addr"),
			Status:       field(row, "status"),
			Sessions:     num(row, "stot"),
			Retries:      num(row, "wretr"),
			Redispatches: num(row, "wredis"),
			ConnErrors:   num(row, "econ"),
			RespErrors:   num(row, "eresp"),
			Status5xx:    num(row, "hrsp_5xx"),
		})
	}
	return stats, nil
}

// WaitStatus waits until backends[i] has the status ("UP", "DOWN" ...) in
// HAProxy's statistics, and fails the test after 30 seconds.
func (lb *LoadBalancer) WaitStatus(t testing.TB, i int, status string) {
	t.Helper()
	name := ServerName(i)
	deadline := time.Now().Add(30 * time.Second)
	last := "unknown"
	for {
		stats, err := lb.Servers()
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		for _, s := range stats {
			if s.Name == name {
				last = s.Status
			}
		}
		if last == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgtest: haproxy server %s is %q, not %q, after 30s\n%s", name, last, status, lb.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tailBuffer keeps the last max bytes written to it, whole lines.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		cut := len(t.b) - t.max/2
		if i := strings.IndexByte(string(t.b[cut:]), '\n'); i >= 0 {
			cut += i + 1
		}
		t.b = append(t.b[:0], t.b[cut:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
