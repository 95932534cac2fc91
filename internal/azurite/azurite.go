// Package azurite starts Azurite, Microsoft's Azure Storage emulator, as a
// real process for tests that talk to queues and blobs.
//
// Azurite is the npm package `azurite`, pinned in the Makefile and installed
// by `make deps` into <repo>/.deps/azurite; an `azurite` on PATH is used when
// that is absent. Each Start runs its own emulator on free loopback ports with
// its own data folder, so tests using it can run in parallel.
package azurite

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Account and Key are Azurite's well-known development account and its
// shared key (the same for every Azurite; public, not a secret).
const (
	Account = "devstoreaccount1"
	Key     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// startTimeout bounds how long Start waits for both services to listen;
// node takes a few seconds to load Azurite on a loaded two-core machine.
const startTimeout = 90 * time.Second

// Server is a running Azurite with blob and queue services.
type Server struct {
	// BlobEndpoint and QueueEndpoint are the services' account URLs,
	// e.g. http://127.0.0.1:41234/devstoreaccount1.
	BlobEndpoint  string
	QueueEndpoint string
}

// ConnectionString returns an account-key connection string for the
// development account at this server's endpoints.
func (s *Server) ConnectionString() string {
	return "DefaultEndpointsProtocol=http;AccountName=" + Account + ";AccountKey=" + Key +
		";BlobEndpoint=" + s.BlobEndpoint + ";QueueEndpoint=" + s.QueueEndpoint + ";"
}

// Start runs a new Azurite for the test and stops it in t.Cleanup. When
// Azurite is not installed the test is skipped, or fails under CI (CI set in
// the environment), so CI cannot pass by skipping.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := find()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("azurite: %v; run make deps", err)
		}
		t.Skipf("azurite: %v; run make deps", err)
	}
	s, err := start(bin, t.TempDir(), t.Cleanup)
	if err != nil {
		t.Fatalf("azurite: %v", err)
	}
	return s
}

// find returns the Azurite executable: .deps/azurite in the nearest enclosing
// folder that has one (tests run in their package's folder), else PATH.
func find() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		bin := filepath.Join(dir, ".deps", "azurite", "node_modules", ".bin", "azurite")
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break // the module root: look no higher
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	bin, err := exec.LookPath("azurite")
	if err != nil {
		return "", errors.New("azurite is not installed in .deps/azurite nor on PATH")
	}
	return bin, nil
}

// listening matches Azurite's startup line that names the port it bound.
var listening = regexp.MustCompile(`Azurite (Blob|Queue|Table) service is successfully listening at (http://\S+)`)

// start runs Azurite with port 0 for every service, so the kernel picks
// free ports without a race, and reads the bound ports from its output.
func start(bin, dir string, cleanup func(func())) (*Server, error) {
	cmd := exec.Command(bin,
		"--location", dir,
		"--blobHost", "127.0.0.1", "--blobPort", "0",
		"--queueHost", "127.0.0.1", "--queuePort", "0",
		"--tableHost", "127.0.0.1", "--tablePort", "0",
		"--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	done := make(chan struct{})
	stop := func() {
		// Kill the whole group: the launcher may have children.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	cleanup(stop)

	var (
		mu      sync.Mutex
		log     strings.Builder // Azurite's output, for error messages
		urls    = make(map[string]string)
		started bool
	)
	ready := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			if log.Len() < 8<<10 {
				log.WriteString(line + "\n")
			}
			if m := listening.FindStringSubmatch(line); m != nil {
				urls[m[1]] = m[2]
				if !started && urls["Blob"] != "" && urls["Queue"] != "" {
					started = true
					close(ready)
				}
			}
			mu.Unlock()
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
	}()
	select {
	case <-ready:
	case <-done:
		mu.Lock()
		defer mu.Unlock()
		return nil, fmt.Errorf("%s exited before listening:\n%s", bin, log.String())
	case <-time.After(startTimeout):
		mu.Lock()
		defer mu.Unlock()
		return nil, fmt.Errorf("%s did not listen within %s:\n%s", bin, startTimeout, log.String())
	}
	mu.Lock()
	s := &Server{BlobEndpoint: urls["Blob"] + "/" + Account, QueueEndpoint: urls["Queue"] + "/" + Account}
	mu.Unlock()
	// The line is printed once listen returned; check anyway that both
	// ports take connections, so a test's first request cannot race it.
	for _, u := range []string{s.BlobEndpoint, s.QueueEndpoint} {
		host := strings.TrimPrefix(u, "http://")
		host = host[:strings.IndexByte(host, '/')]
		c, err := net.DialTimeout("tcp", host, 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("%s listens at %s but does not answer: %w", bin, host, err)
		}
		c.Close()
	}
	return s, nil
}
