package ops

import (
	"bytes"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
)

var (
	forwardOnce sync.Once
	forwardZip  []byte
	forwardErr  error
)

// forwardPackage returns the goforward example, its handler built once per
// run, as a zip to deploy.
func forwardPackage(t testing.TB) []byte {
	t.Helper()
	forwardOnce.Do(func() {
		var dir string
		if dir, forwardErr = os.MkdirTemp("", "hotswap-ops-goforward-"); forwardErr != nil {
			return
		}
		defer os.RemoveAll(dir)
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			forwardErr = err
			return
		}
		pkg := filepath.Join(dir, "goforward")
		if forwardErr = os.CopyFS(pkg, os.DirFS(filepath.Join(root, "examples", "goforward"))); forwardErr != nil {
			return
		}
		cmd := osexec.Command("go", "build", "-o", filepath.Join(pkg, "handler"), "./examples/goforward")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			forwardErr = fmt.Errorf("build goforward: %v\n%s", err, out)
			return
		}
		var buf bytes.Buffer
		if forwardErr = artifact.ZipDir(pkg, &buf); forwardErr == nil {
			forwardZip = buf.Bytes()
		}
	})
	if forwardErr != nil {
		t.Fatal(forwardErr)
	}
	return forwardZip
}

// TestSetKeyDuringSwap changes both slots' keys while swaps prepare: a swap
// copies each slot's key slice under the lock and reads it without (to
// build the slots it warms), so a key change must make a new slice, never
// edit the old one in place. Run with -race: an edit in place is a data
// race it reports.
func TestSetKeyDuringSwap(t *testing.T) {
	s, _ := testService(t, 0)
	ctx := context.Background()
	if _, err := s.CreateApp(ctx, "test", "keys"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSlot(ctx, "test", "keys", "staging", ""); err != nil {
		t.Fatal(err)
	}
	zip := forwardPackage(t)
	for _, slot := range []string{hotswap.ProductionSlot, "staging"} {
		if _, err := s.Deploy(ctx, DeployRequest{App: "keys", Slot: slot, Actor: "test", Package: bytes.NewReader(zip)}); err != nil {
			t.Fatalf("deploy to %s: %v", slot, err)
		}
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, slot := range []string{hotswap.ProductionSlot, "staging"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				// An existing key, replaced: the edit a swap must not see.
				k := hotswap.Key{Scope: hotswap.ScopeHost, Name: "default", Value: fmt.Sprintf("changed-%s-%08d-0123456789abcdef", slot, i)}
				if _, err := s.SetKey(ctx, "test", "keys", slot, k); err != nil {
					t.Errorf("set the default key of %s: %v", slot, err)
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	swaps := 0
	for ; swaps < 20 && time.Now().Before(deadline); swaps++ {
		if _, err := s.Swap(ctx, SwapRequest{App: "keys", Source: "staging", Actor: "test"}); err != nil {
			t.Errorf("swap %d: %v", swaps+1, err)
			break
		}
	}
	close(done)
	wg.Wait()
	if swaps < 3 {
		t.Errorf("only %d swaps ran beside the key changes, want at least 3", swaps)
	}
	t.Logf("%d swaps beside key changes", swaps)
}
