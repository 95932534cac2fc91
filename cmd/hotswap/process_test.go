package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// alive reports whether pid is a live process (a zombie counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitGone(t testing.TB, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive after %v", pid, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// handlerPID asks the goforward example which process answered.
func handlerPID(t testing.TB, client *http.Client, fnAddr, host, key string) int {
	t.Helper()
	resp, body := fnRequest(t, client, fnAddr, "GET", host, "/api/hello?code="+key, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("hello = %d %s", resp.StatusCode, body)
	}
	pid, err := strconv.Atoi(resp.Header.Get("X-Handler-Pid"))
	if err != nil {
		t.Fatalf("X-Handler-Pid %q: %v", resp.Header.Get("X-Handler-Pid"), err)
	}
	return pid
}

// TestHandlerCrashRestarts kills a handler: requests get a quick 503 with
// Retry-After (never a hang) until it is back, then a new process answers.
func TestHandlerCrashRestarts(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "shop"}, nil)
	s.deploy("shop", "production", zipDir(t, examplePackage(t, "goforward")))
	key := findKey(s.keys("shop", "production"), "host", "", "default")
	pid := handlerPID(t, s.client, s.fnAddr, "shop.localhost", key)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	saw503 := false
	for {
		start := time.Now()
		resp, body := s.fn("GET", "shop.localhost", "/api/hello?code="+key, nil, nil)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("a request took %v while the handler was down", d)
		}
		switch resp.StatusCode {
		case 200:
			newPID, _ := strconv.Atoi(resp.Header.Get("X-Handler-Pid"))
			if newPID == pid {
				if saw503 {
					t.Fatalf("the killed handler %d answered again", pid)
				}
				time.Sleep(5 * time.Millisecond) // not yet noticed
				continue
			}
			var state struct{ State string }
			s.must(200, "GET", "/api/v1/apps/shop/slots/production", nil, &state)
			if state.State != "running" {
				t.Errorf("slot state = %q after restart, want running", state.State)
			}
			return
		case 502, 503:
			if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
				t.Fatalf("503 without Retry-After: %s", body)
			}
			saw503 = true
		default:
			t.Fatalf("status %d while restarting: %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatal("the handler did not come back within 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// proc is a hotswap server run as a separate process.
type proc struct {
	cmd    *exec.Cmd
	fnAddr string
	api    string
}

var (
	fnRe  = regexp.MustCompile(`functions: http://\S+?(:\d+)`)
	apiRe = regexp.MustCompile(`control: +http://(\S+)`)
)

// startProc runs `hotswap serve` (this test binary acting as hotswap) on
// dataDir, with extra environment, and waits for its banner.
func startProc(t testing.TB, dataDir string, env ...string) *proc {
	t.Helper()
	shareTempDir(t, dataDir)
	cmd := exec.Command(os.Args[0], "serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-level", "warn", "--drain-grace", "2s", "--shutdown-grace", "3s")
	cmd.Env = append(append(os.Environ(), "HOTSWAP_TEST_MAIN=1"), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &proc{cmd: cmd}
	sc := bufio.NewScanner(out)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			line := sc.Text()
			if m := fnRe.FindStringSubmatch(line); m != nil {
				p.fnAddr = "127.0.0.1" + m[1]
			}
			if m := apiRe.FindStringSubmatch(line); m != nil {
				p.api = "http://" + m[1]
			}
			if strings.Contains(line, "admin token") {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start within 60s")
	}
	if p.fnAddr == "" || p.api == "" {
		t.Fatalf("no addresses in the banner (functions %q, control %q)", p.fnAddr, p.api)
	}
	go func() { // keep draining stdout
		for sc.Scan() {
		}
	}()
	return p
}

func (p *proc) server(t testing.TB, dataDir string) *server {
	tok, err := os.ReadFile(dataDir + "/admin-token")
	if err != nil {
		t.Fatal(err)
	}
	return &server{t: t, fnAddr: p.fnAddr, api: p.api, token: strings.TrimSpace(string(tok)), client: &http.Client{Timeout: 60 * time.Second}}
}

// TestRestartKeepsEverything stops the server gracefully and by SIGKILL:
// no handler outlives it, and after a restart apps, slots, deployments, keys
// and settings are back and serve.
func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	p := startProc(t, dataDir)
	s := p.server(t, dataDir)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "shop"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/shop/slots", map[string]string{"name": "staging"}, nil)
	s.must(http.StatusOK, "PATCH", "/api/v1/apps/shop/slots/staging/settings", map[string]any{"set": []map[string]any{{"name": "APP_VERSION", "value": "2.0.0"}}}, nil)
	prodDeploy := s.deploy("shop", "production", zipDir(t, examplePackage(t, "goforward")))
	stagingDeploy := s.deploy("shop", "staging", zipDir(t, examplePackage(t, "goforward")))
	s.must(http.StatusOK, "PUT", "/api/v1/apps/shop/slots/staging/keys/host/ci", map[string]string{"value": "staging-ci-key-0123456789"}, nil)
	keysBefore := s.keys("shop", "staging")
	prodKey := findKey(s.keys("shop", "production"), "host", "", "default")
	pids := []int{
		handlerPID(t, s.client, s.fnAddr, "shop.localhost", prodKey),
		handlerPID(t, s.client, s.fnAddr, "shop-staging.localhost", "staging-ci-key-0123456789"),
	}

	// Graceful stop: SIGTERM ends the server and its handlers.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("server exit after SIGTERM: %v", err)
	}
	for _, pid := range pids {
		waitGone(t, pid, 5*time.Second)
	}

	// Restart: everything is back and serves.
	p = startProc(t, dataDir)
	s = p.server(t, dataDir)
	var slot struct {
		DeploymentID string
		State        string
	}
	s.must(http.StatusOK, "GET", "/api/v1/apps/shop/slots/production", nil, &slot)
	if slot.DeploymentID != prodDeploy || slot.State != "running" {
		t.Errorf("production after restart = %+v, want %s running", slot, prodDeploy)
	}
	s.must(http.StatusOK, "GET", "/api/v1/apps/shop/slots/staging", nil, &slot)
	if slot.DeploymentID != stagingDeploy || slot.State != "idle" {
		// A slot that may idle starts asleep; its first request below
		// starts it.
		t.Errorf("staging after restart = %+v, want %s idle", slot, stagingDeploy)
	}
	if got := s.keys("shop", "staging"); fmt.Sprint(got) != fmt.Sprint(keysBefore) {
		t.Errorf("staging keys changed across restart:\n got %v\nwant %v", got, keysBefore)
	}
	resp, body := s.fn("GET", "shop-staging.localhost", "/api/hello?code=staging-ci-key-0123456789", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"version":"2.0.0"`) {
		t.Errorf("staging after restart = %d %s, want 200 with its setting", resp.StatusCode, body)
	}
	if resp, _ := s.fn("GET", "shop.localhost", "/api/hello?code=staging-ci-key-0123456789", nil, nil); resp.StatusCode != 401 {
		t.Errorf("staging key opened production after restart: %d", resp.StatusCode)
	}
	pids = []int{
		handlerPID(t, s.client, s.fnAddr, "shop.localhost", prodKey),
		handlerPID(t, s.client, s.fnAddr, "shop-staging.localhost", "staging-ci-key-0123456789"),
	}

	// SIGKILL: the server cannot clean up, yet no handler outlives it.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	for _, pid := range pids {
		waitGone(t, pid, 5*time.Second)
	}
	p = startProc(t, dataDir)
	s = p.server(t, dataDir)
	if resp, _ := s.fn("GET", "shop.localhost", "/api/health", nil, nil); resp.StatusCode != 200 {
		t.Errorf("production after SIGKILL and restart = %d", resp.StatusCode)
	}
}

// TestKillTakesHandlerDescendants: a process a handler started itself, even
// one that left the handler's process group and session, dies with a server
// killed by SIGKILL (the warden), and a second server on the same data
// directory is refused while the first runs.
func TestKillTakesHandlerDescendants(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	p := startProc(t, dataDir)
	s := p.server(t, dataDir)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "daemon"}, nil)
	s.setSettings("daemon", "production", false, "SPAWN_ORPHAN", "1")
	s.deploy("daemon", "production", zipDir(t, examplePackage(t, "envapp")))
	resp, body := s.fn("GET", "daemon.localhost", "/api/orphan", nil, nil)
	orphan, err := strconv.Atoi(string(body))
	if resp.StatusCode != 200 || err != nil || orphan == 0 {
		t.Fatalf("orphan = %d %q", resp.StatusCode, body)
	}
	t.Cleanup(func() { syscall.Kill(orphan, syscall.SIGKILL) })
	if !alive(orphan) {
		t.Fatalf("the orphan %d is not running", orphan)
	}

	// A second server on the same data directory: refused, naming the first.
	second := exec.Command(os.Args[0], "serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	second.Env = append(os.Environ(), "HOTSWAP_TEST_MAIN=1")
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is in use by another hotswap server (pid "+strconv.Itoa(p.cmd.Process.Pid)+")") {
		t.Errorf("a second server on the same data directory: %v\n%s", err, out)
	}
	if !alive(orphan) {
		t.Fatal("the refused second server killed the first one's processes")
	}

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	waitGone(t, orphan, 5*time.Second)

	// The data directory is free again.
	p = startProc(t, dataDir)
	s = p.server(t, dataDir)
	if resp, _ := s.fn("GET", "daemon.localhost", "/api/orphan", nil, nil); resp.StatusCode != 200 {
		t.Errorf("after SIGKILL and restart: %d", resp.StatusCode)
	}
}
