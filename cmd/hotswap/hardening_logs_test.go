package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCrashInSlotLog kills a slot's handler and checks that the slot log
// (what `hotswap log` and the API show), not only the server's stderr,
// says it exited, how, and that it was restarted.
func TestCrashInSlotLog(t *testing.T) {
	t.Parallel()
	s := payloadServer(t, nil)
	readyRE := regexp.MustCompile(`ready \(pid (\d+)\)`)
	var pid int
	if ok, lines := s.logHas("orders", "production", "host", func(text string) bool {
		m := readyRE.FindStringSubmatch(text)
		if m != nil {
			pid, _ = strconv.Atoi(m[1])
		}
		return m != nil
	}); !ok {
		t.Fatalf("no handler ready line in the slot log: %v", lines)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		crashed, lines := s.logHas("orders", "production", "host", func(text string) bool {
			return strings.Contains(text, "(pid "+strconv.Itoa(pid)+") exited unexpectedly") && strings.Contains(text, "signal: killed") && strings.Contains(text, "restarting in")
		})
		restarted, _ := s.logHas("orders", "production", "host", func(text string) bool {
			return strings.HasPrefix(text, "handler restarted (pid ") && !strings.Contains(text, "(pid "+strconv.Itoa(pid)+")")
		})
		if crashed && restarted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot log after SIGKILL of pid %d: crash line %v, restart line %v: %v", pid, crashed, restarted, lines)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp, body := s.fn("POST", "orders.localhost", "/api/echo", nil, []byte("back")); resp.StatusCode != http.StatusOK || string(body) != "back" {
		t.Errorf("after the restart: %d %q, want 200 back", resp.StatusCode, body)
	}
}

// smallDisk mounts a tmpfs of size in a new directory, for filling up. The
// test must run as root.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %s tmpfs on %s (this test needs root): %v: %s", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes file until the disk is full, then frees leave bytes of it.
func fill(t *testing.T, file string, leave int64) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, err := f.Write(buf)
		n += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(max(0, n-leave)); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFullSaysWhat fills the disk under the data directory (a real
// tmpfs, so the errors are the kernel's ENOSPC) and checks that a deploy and
// a settings change fail with 507 and a message that says the disk is full
// and what was being written, and that the slot log says so too.
func TestDiskFullSaysWhat(t *testing.T) {
	t.Parallel()
	dir := smallDisk(t, "24m")
	s := startServerWith(t, dir, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	zip := zipDir(t, examplePackage(t, "gopayload"))

	// Room for the database's small writes, not for the package.
	fill(t, filepath.Join(dir, "filler-1"), 1<<20)
	var res struct {
		Error struct{ Kind, Message string }
	}
	status := s.call("POST", "/api/v1/apps/orders/slots/production/deploy", zip, &res)
	const wantPkg = "disk full: no space left on device while writing the package"
	if status != http.StatusInsufficientStorage || res.Error.Kind != "storage_full" || res.Error.Message != wantPkg {
		t.Errorf("deploy on a full disk: %d %+v, want 507 storage_full %q", status, res.Error, wantPkg)
	}
	if ok, lines := s.logHas("orders", "production", "host", func(text string) bool {
		return strings.HasPrefix(text, "deploy d-") && strings.HasSuffix(text, " failed: "+wantPkg)
	}); !ok {
		t.Errorf("the slot log does not say the deploy failed on a full disk: %v", lines)
	}

	// The Kudu async deploy spools the upload before it answers 202.
	req, err := http.NewRequest("POST", s.api+"/kudu/orders/production/api/zipdeploy?isAsync=true", bytes.NewReader(zip))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("x", s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	const wantUpload = "disk full: no space left on device while writing the uploaded package"
	if resp.StatusCode != http.StatusInsufficientStorage || !strings.Contains(string(body), wantUpload) {
		t.Errorf("Kudu async deploy on a full disk: %d %s, want 507 %q", resp.StatusCode, body, wantUpload)
	}
	if ok, lines := s.logHas("orders", "production", "host", func(text string) bool { return text == "upload failed: "+wantUpload }); !ok {
		t.Errorf("the slot log does not say the upload failed on a full disk: %v", lines)
	}

	// No room at all: settings changes, each as large as the API takes,
	// soon cannot be stored (the first may fit in the database's log).
	fill(t, filepath.Join(dir, "filler-2"), 0)
	for round := 0; ; round++ {
		var set []map[string]any
		for i := range 15 {
			set = append(set, map[string]any{"name": fmt.Sprintf("BIG_%d_%d", round, i), "value": strings.Repeat("v", 60<<10)})
		}
		res.Error.Kind, res.Error.Message = "", ""
		status = s.call("PATCH", "/api/v1/apps/orders/slots/production/settings", map[string]any{"set": set}, &res)
		if status != http.StatusOK || round == 20 {
			break
		}
	}
	const wantDB = "disk full: no space left on device while writing the database"
	if status != http.StatusInsufficientStorage || res.Error.Kind != "storage_full" || res.Error.Message != wantDB {
		t.Errorf("settings change on a full disk: %d %+v, want 507 storage_full %q", status, res.Error, wantDB)
	}
	if ok, lines := s.logHas("orders", "production", "host", func(text string) bool {
		return text == "settings change failed: "+wantDB
	}); !ok {
		t.Errorf("the slot log does not say the settings change failed on a full disk: %v", lines)
	}
}
