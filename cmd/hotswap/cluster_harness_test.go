package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/pgtest"
)

// The cluster tests run several hotswap nodes as separate processes of the
// real binary, sharing one PostgreSQL database from pgtest, so that a test
// can SIGKILL one, drain one, or restart one with the same flags as an
// operator would during a rolling upgrade. Each node has its own data
// folder (package cache, admin token) and fixed loopback ports, chosen once,
// so a restarted node is the same backend to the load balancer.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// hotswapBinary builds the hotswap command once per test process and
// returns its path.
func hotswapBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hotswap-bin-")
		if err != nil {
			binErr = err
			return
		}
		// Handlers run as another user when the tests run as root; the
		// binary only needs to be executable by root, but keep the folder
		// searchable like the other shared temp folders.
		os.Chmod(dir, 0o755)
		binPath = filepath.Join(dir, "hotswap")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/hotswap")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/hotswap: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cluster is a set of hotswap nodes sharing one PostgreSQL store.
type cluster struct {
	t     *testing.T
	dsn   string
	bin   string
	extra []string // flags every node gets
	nodes []*node
}

// node is one hotswap process of a cluster, across its restarts.
type node struct {
	c       *cluster
	name    string // --node-name: n0, n1 ...
	dir     string // --data
	fnAddr  string // --listen
	admin   string // --admin
	logPath string // the node's stdout and stderr, all incarnations

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	err  error         // its exit, once done
	pids []int         // every incarnation's process ID
}

// newCluster starts n nodes on a fresh database, one after another (the
// first is the first to take any leadership), each with extra flags.
func newCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, dsn: pgtest.DSN(t), bin: hotswapBinary(t), extra: extra}
	for i := 0; i < n; i++ {
		nd := &node{
			c:      c,
			name:   "n" + strconv.Itoa(i),
			dir:    t.TempDir(),
			fnAddr: freeAddr(t),
			admin:  freeAddr(t),
		}
		nd.logPath = filepath.Join(nd.dir, "node.log")
		shareTempDir(t, nd.dir)
		c.nodes = append(c.nodes, nd)
	}
	// Registered after pgtest.DSN's cleanup, so it runs before the
	// database is dropped: every node is killed first.
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.kill()
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				t.Logf("node %s (%s, functions %s, admin %s, pids %v) log, last 80 lines:\n%s", nd.name, nd.dir, nd.fnAddr, nd.admin, nd.allPIDs(), nd.logTail(80))
			}
		}
	})
	for _, nd := range c.nodes {
		nd.start()
	}
	return c
}

// backends returns the nodes' functions addresses, for a load balancer.
func (c *cluster) backends() []string {
	var b []string
	for _, nd := range c.nodes {
		b = append(b, nd.fnAddr)
	}
	return b
}

// start runs the node's process and waits until its health check passes.
func (nd *node) start() {
	t := nd.c.t
	t.Helper()
	nd.mu.Lock()
	if nd.cmd != nil && !isClosed(nd.done) {
		nd.mu.Unlock()
		t.Fatalf("node %s: start while it is running", nd.name)
	}
	logf, err := os.OpenFile(nd.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		nd.mu.Unlock()
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== test: starting node %s at %s\n", nd.name, time.Now().UTC().Format(time.RFC3339Nano))
	args := []string{"serve",
		"--store", nd.c.dsn,
		"--data", nd.dir,
		"--listen", nd.fnAddr,
		"--admin", nd.admin,
		"--node-name", nd.name,
		"--drain-delay", "1s",
		"--drain-grace", "2s",
		"--shutdown-grace", "5s",
		"--start-timeout", "60s",
		"--log-level", "info",
	}
	cmd := exec.Command(nd.c.bin, append(args, nd.c.extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The node dies with the test process; its handlers die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The kernel sends the parent-death signal when the thread that
		// forked the node ends, not the process, and the Go runtime ends
		// a thread whose locked goroutine returns (the in-process
		// servers' forkers, pgtest's postgres do). Forked from any
		// thread, a node was once SIGKILLed in the middle of a test. This
		// thread stays locked, so alive, until the node has exited.
		runtime.LockOSThread() // never unlocked: the thread ends with the node
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		logf.Close()
		nd.mu.Lock()
		nd.err = err
		nd.mu.Unlock()
		close(done)
	}()
	if err := <-started; err != nil {
		logf.Close()
		nd.mu.Unlock()
		t.Fatalf("node %s: %v", nd.name, err)
	}
	nd.cmd, nd.done, nd.err = cmd, done, nil
	nd.pids = append(nd.pids, cmd.Process.Pid)
	nd.mu.Unlock()

	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	last := "no answer yet"
	for {
		select {
		case <-done:
			t.Fatalf("node %s exited while starting: %v\n%s", nd.name, nd.exitErr(), nd.logTail(40))
		default:
		}
		if _, err := os.Stat(filepath.Join(nd.dir, "admin-token")); err == nil {
			resp, err := client.Get("http://" + nd.fnAddr + "/healthz")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
				last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
			} else {
				last = err.Error()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: GET /healthz is not 200 after 90s (last: %s)\n%s", nd.name, last, nd.logTail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// pid returns the process ID of the node's current incarnation.
func (nd *node) pid() int {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd.Process.Pid
}

func (nd *node) allPIDs() []int {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return append([]int(nil), nd.pids...)
}

func (nd *node) exitErr() error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.err
}

// signal sends sig to the node's current process.
func (nd *node) signal(sig syscall.Signal) {
	nd.c.t.Helper()
	nd.mu.Lock()
	cmd := nd.cmd
	nd.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		nd.c.t.Fatalf("node %s: send %v: %v", nd.name, sig, err)
	}
}

// kill SIGKILLs the node, if it runs, and waits for it to be gone.
func (nd *node) kill() {
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// waitExit waits for the node's process to end by itself within d and
// fails the test unless it exited with status 0.
func (nd *node) waitExit(d time.Duration) {
	t := nd.c.t
	t.Helper()
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("node %s still runs %s after it was asked to stop\n%s", nd.name, d, nd.logTail(40))
	}
	if err := nd.exitErr(); err != nil {
		t.Fatalf("node %s exited with %v, want status 0\n%s", nd.name, err, nd.logTail(40))
	}
}

// logTail returns the last n lines of the node's log.
func (nd *node) logTail(n int) string {
	data, err := os.ReadFile(nd.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// api returns a client of the node's control plane with its own admin
// token (admin tokens are per data folder; users' tokens work on every node).
func (nd *node) api() *server {
	t := nd.c.t
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(nd.dir, "admin-token"))
	if err != nil {
		t.Fatalf("node %s: %v", nd.name, err)
	}
	return &server{t: t, fnAddr: nd.fnAddr, api: "http://" + nd.admin, token: strings.TrimSpace(string(tok)), client: &http.Client{Timeout: 90 * time.Second}}
}

// serves asks the node itself (not the load balancer) which deployment
// answers on host, and fails the test naming the node unless it is want.
func (nd *node) serves(host, want, after string) {
	t := nd.c.t
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	req, _ := http.NewRequest("GET", "http://"+nd.fnAddr+"/api/whoami", nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("after %s: node %s GET %s/api/whoami: %v", after, nd.name, host, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var w whoami
	switch {
	case resp.StatusCode == http.StatusInternalServerError && strings.HasPrefix(string(body), "failing on purpose"):
		// A build with fail-every answers every Nth call with a 500 by
		// design; which deployment answered is still in its header.
		if w.Deployment = resp.Header.Get("X-Deployment"); w.Deployment == "" {
			t.Fatalf("after %s: node %s GET %s/api/whoami = 500 on purpose, without X-Deployment", after, nd.name, host)
		}
	case resp.StatusCode != http.StatusOK || json.Unmarshal(body, &w) != nil:
		t.Fatalf("after %s: node %s GET %s/api/whoami = %d %s", after, nd.name, host, resp.StatusCode, body)
	}
	if w.Deployment != want {
		t.Fatalf("after %s: node %s serves deployment %s on %s, want %s", after, nd.name, w.Deployment, host, want)
	}
}

// nodeID returns the node's cluster ID, from its own GET /api/v1/nodes.
func (nd *node) nodeID() string {
	var res struct{ Self string }
	nd.api().must(http.StatusOK, "GET", "/api/v1/nodes", nil, &res)
	if res.Self == "" {
		nd.c.t.Fatalf("node %s: GET /api/v1/nodes names no self", nd.name)
	}
	return res.Self
}

// load is steady traffic through a load balancer: clients keep-alive
// clients each sending GETs one after another, pausing between them.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	method string

	ok, failed atomic.Int64
	allowed    atomic.Int64 // failures accepted so far (see allow)
	mu         sync.Mutex
	samples    []string // the first failures, described
}

// startLoad starts clients goroutines, each with its own keep-alive
// connection, sending GET path to host through addr until stop.
func startLoad(addr, host, path string, clients int, pause time.Duration) *load {
	return startLoadMethod("GET", addr, host, path, clients, pause)
}

// startLoadMethod is startLoad with another method; a POST sends a small
// body.
func startLoadMethod(method, addr, host, path string, clients int, pause time.Duration) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, method: method}
	for i := 0; i < clients; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
			for ctx.Err() == nil {
				l.one(ctx, client, addr, host, path)
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	return l
}

func (l *load) one(ctx context.Context, client *http.Client, addr, host, path string) {
	start := time.Now()
	var reqBody io.Reader
	if l.method == "POST" {
		reqBody = strings.NewReader(`{"order":"o1","qty":2}`)
	}
	req, _ := http.NewRequestWithContext(ctx, l.method, "http://"+addr+path, reqBody)
	req.Host = host
	resp, err := client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err != nil && ctx.Err() != nil {
		return // stopped, not failed
	}
	if err == nil && resp.StatusCode/100 == 2 {
		l.ok.Add(1)
		return
	}
	l.failed.Add(1)
	what := ""
	if err != nil {
		what = err.Error()
	} else {
		what = fmt.Sprintf("%d %.200s", resp.StatusCode, bytes.TrimSpace(body))
	}
	l.mu.Lock()
	if len(l.samples) < 20 {
		l.samples = append(l.samples, fmt.Sprintf("%s %s %s%s (took %s): %s", start.UTC().Format("15:04:05.000"), l.method, host, path, time.Since(start).Round(time.Millisecond), what))
	}
	l.mu.Unlock()
}

// stop ends the load and waits for the requests in flight.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// check fails the test when a request has failed so far, saying when,
// where and how.
func (l *load) check(t testing.TB, during string) {
	t.Helper()
	if n := l.failed.Load() - l.allowed.Load(); n != 0 {
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Fatalf("%d of %d %ss through the load balancer failed (by %s); the first:\n%s", n, n+l.ok.Load(), l.method, during, strings.Join(l.samples, "\n"))
	}
}

// allow accepts the failures so far (counted and reported by the caller)
// and returns how many there were since the last allow.
func (l *load) allow() int64 {
	n := l.failed.Load()
	return n - l.allowed.Swap(n)
}

// lbDump returns HAProxy's view of its backends, for a failure message.
func lbDump(lb *pgtest.LoadBalancer) string {
	stats, err := lb.Servers()
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, s := range stats {
		fmt.Fprintf(&b, "%s %s %s sessions=%d retries=%d redispatches=%d connErr=%d respErr=%d 5xx=%d\n", s.Name, s.Addr, s.Status, s.Sessions, s.Retries, s.Redispatches, s.ConnErrors, s.RespErrors, s.Status5xx)
	}
	return b.String()
}
