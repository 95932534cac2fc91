package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hotswap/hotswap/internal/artifact"
)

// env is what the scenarios run against: the hotswap server with the
// forwarding handler deployed as app "bench" and the payload-mode handler as
// app "benchpay", the forwarding handler binary started directly, and nginx
// in front of it where nginx is available. Close stops everything and removes
// the temp directory.
type env struct {
	tmp         string
	root        string // module root
	bin         string // hotswap binary
	handlerPkg  string // package folder of bench/handler: host.json, function.json files, binary "handler"
	handlerZip  []byte // handlerPkg zipped, ready to deploy
	main        *server
	hotswap     string // functions listener, host:port
	hostHeader  string // Host header that routes to app bench
	payloadHost string // Host header that routes to app benchpay (payload mode)
	direct      string // the handler on its own, host:port
	nginx       string // nginx proxy_pass in front of direct, host:port; "" when unavailable
	nginxNote   string // why nginx is missing, or how it was set up
	procs       []*proc
}

// server is one running `hotswap serve` with its control-plane address and
// admin token.
type server struct {
	fn    string // functions listener, host:port
	api   string // control plane base URL, ".../api/v1"
	token string
	proc  *proc
}

// proc is a child process started by the harness.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{} // closed when Wait returns
	stopped bool
}

// moduleRoot finds the directory of go.mod, so the harness works from any
// directory inside the module.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the hotswap module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}

func goBuild(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before we bind it again; on a test machine that is rare enough.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// buildPackage copies the .json files of bench/<dir> into a package folder
// under tmp and builds ./bench/<dir> next to them as "handler".
func buildPackage(ctx context.Context, root, tmp, dir string) (string, error) {
	pkg := filepath.Join(tmp, dir+"-package")
	if err := copyDir(filepath.Join(root, "bench", dir), pkg, ".json"); err != nil {
		return "", fmt.Errorf("package folder: %w", err)
	}
	if err := goBuild(ctx, root, filepath.Join(pkg, "handler"), "./bench/"+dir); err != nil {
		return "", err
	}
	return pkg, nil
}

func zipPackage(dir string) ([]byte, error) {
	var zip bytes.Buffer
	if err := artifact.ZipDir(dir, &zip); err != nil {
		return nil, err
	}
	return zip.Bytes(), nil
}

// openEnv builds hotswap and both handler packages, starts the servers and
// deploys the packages. On error everything started so far is stopped.
// hotswapBin, when set, is a hotswap binary to use instead of building
// ./cmd/hotswap from the working tree. With useNginx false nginx is skipped.
func openEnv(ctx context.Context, hotswapBin string, useNginx bool, logf func(string, ...any)) (e *env, err error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "hotswap-bench-")
	if err != nil {
		return nil, err
	}
	// The data directories live here: a server running as root runs its
	// handlers as an unprivileged user, who must be able to pass through.
	if err := os.Chmod(tmp, 0o711); err != nil {
		return nil, err
	}
	e = &env{tmp: tmp, root: root, hostHeader: "bench.localhost", payloadHost: "benchpay.localhost"}
	defer func() {
		if err != nil {
			e.Close()
			e = nil
		}
	}()

	logf("building hotswap and the handlers")
	e.bin = hotswapBin
	if e.bin == "" {
		e.bin = filepath.Join(tmp, "hotswap")
		if err := goBuild(ctx, root, e.bin, "./cmd/hotswap"); err != nil {
			return e, err
		}
	}
	if e.handlerPkg, err = buildPackage(ctx, root, tmp, "handler"); err != nil {
		return e, err
	}
	payloadPkg, err := buildPackage(ctx, root, tmp, "payload")
	if err != nil {
		return e, err
	}
	if e.handlerZip, err = zipPackage(e.handlerPkg); err != nil {
		return e, err
	}
	payloadZip, err := zipPackage(payloadPkg)
	if err != nil {
		return e, err
	}

	// The baseline: the same binary, started the way the host starts it.
	// HOTSWAP_DEPLOYMENT_ID makes it send the same X-Deployment header bytes
	// as a deployed copy would.
	if e.direct, err = freePort(); err != nil {
		return e, err
	}
	_, port, _ := net.SplitHostPort(e.direct)
	if _, err := e.start("handler", filepath.Join(e.handlerPkg, "handler"), e.handlerPkg,
		[]string{"FUNCTIONS_CUSTOMHANDLER_PORT=" + port, "HOTSWAP_DEPLOYMENT_ID=direct"}); err != nil {
		return e, err
	}
	if err := waitHTTP(ctx, "http://"+e.direct+"/", "", ""); err != nil {
		return e, fmt.Errorf("direct handler: %w", err)
	}

	if useNginx {
		e.nginx, e.nginxNote = e.startNginx(ctx, logf)
	} else {
		e.nginxNote = "nginx skipped (-nginx=false)"
	}

	if e.main, err = e.startServer(ctx, "hotswap"); err != nil {
		return e, err
	}
	e.hotswap = e.main.fn

	logf("deploying the handlers to apps bench (forwarding) and benchpay (payload)")
	for _, d := range []struct {
		app  string
		zip  []byte
		host string
	}{{"bench", e.handlerZip, e.hostHeader}, {"benchpay", payloadZip, e.payloadHost}} {
		if err := e.main.createApp(ctx, d.app); err != nil {
			return e, err
		}
		if _, err := e.main.deploy(ctx, d.app, "production", d.zip); err != nil {
			return e, err
		}
		if err := waitHTTP(ctx, "http://"+e.hotswap+"/api/small", d.host, ""); err != nil {
			return e, fmt.Errorf("hotswap serving app %s: %w", d.app, err)
		}
	}
	return e, nil
}

// startServer starts `hotswap serve` with its own data directory on free
// loopback ports and waits until its control plane answers.
func (e *env) startServer(ctx context.Context, name string) (*server, error) {
	return e.startServerWith(ctx, name, nil)
}

// startServerWith is startServer with extra environment variables and
// serve flags (a cluster node's store and name).
func (e *env) startServerWith(ctx context.Context, name string, extraEnv []string, extraArgs ...string) (*server, error) {
	fn, err := freePort()
	if err != nil {
		return nil, err
	}
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(e.tmp, name+"-data")
	args := append([]string{"serve", "--data", data,
		"--listen", fn, "--admin", admin, "--log-level", "error", "--shutdown-grace", "3s"}, extraArgs...)
	p, err := e.start(name, e.bin, e.tmp, extraEnv, args...)
	if err != nil {
		return nil, err
	}
	token, err := waitToken(ctx, filepath.Join(data, "admin-token"))
	if err != nil {
		return nil, err
	}
	s := &server{fn: fn, api: "http://" + admin + "/api/v1", token: token, proc: p}
	if err := waitHTTP(ctx, s.api+"/apps", "", token); err != nil {
		return nil, fmt.Errorf("%s control plane: %w", name, err)
	}
	return s, nil
}

// deployment is the part of the deploy answer the harness reads.
type deployment struct {
	ID string `json:"id"`
}

func (s *server) createApp(ctx context.Context, app string) error {
	body := fmt.Sprintf(`{"name":%q}`, app)
	if err := call(ctx, s.token, "POST", s.api+"/apps", "application/json", strings.NewReader(body), http.StatusCreated, nil); err != nil {
		return fmt.Errorf("create app %s: %w", app, err)
	}
	return nil
}

func (s *server) createSlot(ctx context.Context, app, slot string) error {
	body := fmt.Sprintf(`{"name":%q}`, slot)
	if err := call(ctx, s.token, "POST", s.api+"/apps/"+app+"/slots", "application/json", strings.NewReader(body), http.StatusCreated, nil); err != nil {
		return fmt.Errorf("create slot %s/%s: %w", app, slot, err)
	}
	return nil
}

// deploy uploads zip to app/slot; the API answers once the slot serves it.
func (s *server) deploy(ctx context.Context, app, slot string, zip []byte) (deployment, error) {
	var out struct{ Deployment deployment }
	err := call(ctx, s.token, "POST", s.api+"/apps/"+app+"/slots/"+slot+"/deploy?message=bench", "application/zip", bytes.NewReader(zip), http.StatusOK, &out)
	if err != nil {
		return deployment{}, fmt.Errorf("deploy %s/%s: %w", app, slot, err)
	}
	return out.Deployment, nil
}

func (s *server) delete(ctx context.Context, path string) error {
	return call(ctx, s.token, "DELETE", s.api+path, "application/json", nil, http.StatusNoContent, nil)
}

// start runs a child in its own process group, killed by the kernel if the
// harness dies without cleaning up (Pdeathsig).
func (e *env) start(name, path, dir string, extraEnv []string, args ...string) (*proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout = io.Discard // hotswap's banner holds the admin token
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	e.procs = append(e.procs, p)
	return p, nil
}

// stop ends the process: SIGTERM, then SIGKILL to its whole process group
// (which also holds any handler hotswap started) after a grace period.
// Idempotent.
func (p *proc) stop() {
	if p.stopped {
		return
	}
	p.stopped = true
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Close stops the children, newest first, and removes the temp directory.
// Idempotent.
func (e *env) Close() error {
	for i := len(e.procs) - 1; i >= 0; i-- {
		e.procs[i].stop()
	}
	e.procs = nil
	if e.tmp == "" {
		return nil
	}
	err := os.RemoveAll(e.tmp)
	e.tmp = ""
	return err
}

// copyDir copies the files of src whose names end in ext into dst, keeping
// the folder layout (host.json and one folder per function).
func copyDir(src, dst, ext string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !strings.HasSuffix(path, ext) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

func waitToken(ctx context.Context, path string) (string, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if tok := strings.TrimSpace(string(b)); err == nil && tok != "" {
			return tok, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no admin token in %s after 20s", path)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return "", err
		}
	}
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url, host, token string) error {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return err
		}
		if host != "" {
			req.Host = host
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not ready after 30s: %w", url, last)
}

// call makes one control-plane request and checks its status; the error
// carries the API's JSON error message.
// When out is not nil the answer's JSON is decoded into it.
func call(ctx context.Context, token, method, url, contentType string, body io.Reader, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		var e struct {
			Error struct{ Kind, Message string }
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s %s: %s (%s)", method, url, e.Error.Message, resp.Status)
		}
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: answer: %w", method, url, err)
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
