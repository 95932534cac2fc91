package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestForkRetriesTextFileBusy starts an executable while a write descriptor
// to it is still open, as happens when a deploy has just written a handler
// and another goroutine forks at that moment (golang/go#22315). The exec
// fails with ETXTBSY until the descriptor closes; the start must wait for
// that instead of failing the deploy.
func TestForkRetriesTextFileBusy(t *testing.T) {
	m := NewManager(nil)
	defer m.Close()
	path := filepath.Join(t.TempDir(), "handler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("#!/bin/sh\nexit 0\n"); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		f.Close()
	}()
	cmd, err := m.fork(exec.Command(path))
	if err != nil {
		t.Fatalf("start while the file was open for writing: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("wait: %v", err)
	}
}
