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

// env is what the scenarios run against: the hotswap functions listener with
// the handler deployed as app "bench", and the same handler binary started
// directly. Close stops both and removes the temp directory.
type env struct {
	tmp        string
	hotswap    string // functions listener, host:port
	hostHeader string // Host header that routes to app bench
	direct     string // the handler on its own, host:port
	procs      []*proc
}

// proc is a child process started by the harness.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returns
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

// openEnv builds hotswap and the handler package, starts both servers and
// deploys the package. On error everything started so far is stopped.
// hotswapBin, when set, is a hotswap binary to use instead of building
// ./cmd/hotswap from the working tree.
func openEnv(ctx context.Context, hotswapBin string, logf func(string, ...any)) (e *env, err error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "hotswap-bench-")
	if err != nil {
		return nil, err
	}
	e = &env{tmp: tmp, hostHeader: "bench.localhost"}
	defer func() {
		if err != nil {
			e.Close()
			e = nil
		}
	}()

	logf("building hotswap and the handler")
	bin := hotswapBin
	if bin == "" {
		bin = filepath.Join(tmp, "hotswap")
		if err := goBuild(ctx, root, bin, "./cmd/hotswap"); err != nil {
			return e, err
		}
	}
	pkg := filepath.Join(tmp, "package")
	if err := copyDir(filepath.Join(root, "bench", "handler"), pkg, ".json"); err != nil {
		return e, fmt.Errorf("package folder: %w", err)
	}
	if err := goBuild(ctx, root, filepath.Join(pkg, "handler"), "./bench/handler"); err != nil {
		return e, err
	}

	// The baseline: the same binary, started the way the host starts it.
	if e.direct, err = freePort(); err != nil {
		return e, err
	}
	_, port, _ := net.SplitHostPort(e.direct)
	if err := e.start("handler", filepath.Join(pkg, "handler"), pkg, []string{"FUNCTIONS_CUSTOMHANDLER_PORT=" + port}); err != nil {
		return e, err
	}
	if err := waitHTTP(ctx, "http://"+e.direct+"/", "", ""); err != nil {
		return e, fmt.Errorf("direct handler: %w", err)
	}

	if e.hotswap, err = freePort(); err != nil {
		return e, err
	}
	admin, err := freePort()
	if err != nil {
		return e, err
	}
	data := filepath.Join(tmp, "data")
	if err := e.start("hotswap", bin, tmp, nil, "serve", "--data", data,
		"--listen", e.hotswap, "--admin", admin, "--log-level", "error", "--shutdown-grace", "3s"); err != nil {
		return e, err
	}
	token, err := waitToken(ctx, filepath.Join(data, "admin-token"))
	if err != nil {
		return e, err
	}
	api := "http://" + admin + "/api/v1"
	if err := waitHTTP(ctx, api+"/apps", "", token); err != nil {
		return e, fmt.Errorf("hotswap control plane: %w", err)
	}

	logf("deploying the handler to app bench")
	if err := call(ctx, token, "POST", api+"/apps", "application/json", strings.NewReader(`{"name":"bench"}`), http.StatusCreated); err != nil {
		return e, fmt.Errorf("create app: %w", err)
	}
	var zip bytes.Buffer
	if err := artifact.ZipDir(pkg, &zip); err != nil {
		return e, err
	}
	if err := call(ctx, token, "POST", api+"/apps/bench/slots/production/deploy?message=bench", "application/zip", &zip, http.StatusOK); err != nil {
		return e, fmt.Errorf("deploy: %w", err)
	}
	if err := waitHTTP(ctx, "http://"+e.hotswap+"/api/small", e.hostHeader, ""); err != nil {
		return e, fmt.Errorf("hotswap serving app bench: %w", err)
	}
	return e, nil
}

// start runs a child in its own process group, killed by the kernel if the
// harness dies without cleaning up (Pdeathsig).
func (e *env) start(name, path, dir string, extraEnv []string, args ...string) error {
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout = io.Discard // hotswap's banner holds the admin token
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	e.procs = append(e.procs, p)
	return nil
}

// Close stops the children (SIGTERM, then SIGKILL to the whole process group
// after a grace period) and removes the temp directory. Idempotent.
func (e *env) Close() error {
	for i := len(e.procs) - 1; i >= 0; i-- {
		p := e.procs[i]
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		// The group also holds any handler hotswap started.
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
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
func call(ctx context.Context, token, method, url, contentType string, body io.Reader, want int) error {
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
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != want {
		var e struct {
			Error struct{ Kind, Message string }
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s %s: %s (%s)", method, url, e.Error.Message, resp.Status)
		}
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
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
