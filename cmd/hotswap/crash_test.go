package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestCrashSafety kills the server (SIGKILL) at each phase of a deploy and
// of a swap, restarts it, and checks that every slot serves either its old
// or its new deployment, matching the store; that the operation is recorded
// as completed or failed, never left running; that no handler of the killed
// server survived; and that the next operation works.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts many servers")
	}
	points := []struct {
		point string
		op    string // deploy or swap or preview
	}{
		{"deploy.stored", "deploy"},
		{"activate.ready", "deploy"},
		{"activate.flipped", "deploy"},
		{"activate.published", "deploy"},
		{"swap.prepared", "swap"},
		{"swap.flipped", "swap"},
		{"swap.published", "swap"},
		{"swap.preview", "preview"},
	}
	pkg := zipDir(t, examplePackage(t, "envapp"))
	for _, tc := range points {
		t.Run(tc.point, func(t *testing.T) {
			dataDir := t.TempDir()
			p := startProc(t, dataDir)
			s := p.server(t, dataDir)
			d1, d2 := newSwapApp(t, s)
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.cmd.Wait()

			p = startProc(t, dataDir, "HOTSWAP_TEST_CRASH_AT="+tc.point)
			s = p.server(t, dataDir)
			pids := []string{s.whoami("web.localhost").PID, s.whoami("web-staging.localhost").PID}
			var req *http.Request
			switch tc.op {
			case "deploy":
				req, _ = http.NewRequest("POST", s.api+"/api/v1/apps/web/slots/staging/deploy", bytes.NewReader(pkg))
			case "swap", "preview":
				body, _ := json.Marshal(map[string]any{"slot": "staging", "preview": tc.op == "preview"})
				req, _ = http.NewRequest("POST", s.api+"/api/v1/apps/web/swap", bytes.NewReader(body))
			}
			req.Header.Set("Authorization", "Bearer "+s.token)
			if resp, err := s.client.Do(req); err == nil {
				resp.Body.Close()
				if tc.op != "preview" {
					t.Fatalf("the %s answered %d: the server did not crash at %s", tc.op, resp.StatusCode, tc.point)
				}
			}
			if tc.op == "preview" {
				// The crash point is after the preview was published; the
				// answer may or may not have been sent.
				time.Sleep(100 * time.Millisecond)
			}
			err := p.cmd.Wait()
			if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("server exit = %v, want killed by SIGKILL at %s", err, tc.point)
			}
			for _, pid := range pids {
				n, _ := strconv.Atoi(pid)
				waitGone(t, n, 5*time.Second)
			}

			p = startProc(t, dataDir)
			s = p.server(t, dataDir)
			prodDep, stagingDep := s.slotDeployment("web", "production"), s.slotDeployment("web", "staging")
			if got := s.whoami("web.localhost").Deployment; got != prodDep {
				t.Errorf("production serves %s, the store says %s", got, prodDep)
			}
			if got := s.whoami("web-staging.localhost").Deployment; got != stagingDep {
				t.Errorf("staging serves %s, the store says %s", got, stagingDep)
			}
			switch tc.op {
			case "deploy":
				if prodDep != d1 {
					t.Errorf("production = %s, want it untouched (%s)", prodDep, d1)
				}
				if stagingDep != d2 {
					var d struct{ Status string }
					s.must(200, "GET", "/api/v1/apps/web/deployments/"+stagingDep, nil, &d)
					if d.Status != "success" {
						t.Errorf("staging serves %s with status %q, want a successful deployment", stagingDep, d.Status)
					}
				}
			default:
				swapped := prodDep == d2 && stagingDep == d1
				unchanged := prodDep == d1 && stagingDep == d2
				if !swapped && !unchanged {
					t.Errorf("production %s staging %s: neither the old (%s %s) nor the swapped state", prodDep, stagingDep, d1, d2)
				}
			}
			var ops struct {
				Operations []struct{ ID, Kind, State, Detail string }
			}
			s.must(200, "GET", "/api/v1/apps/web/operations", nil, &ops)
			for _, o := range ops.Operations {
				if o.State == "running" {
					t.Errorf("operation %s (%s) still running after the restart", o.ID, o.Kind)
				}
			}
			var deps struct {
				Deployments []struct {
					ID     string
					Status string
				}
			}
			s.must(200, "GET", "/api/v1/apps/web/deployments", nil, &deps)
			for _, d := range deps.Deployments {
				if d.Status != "failed" && d.Status != "success" {
					t.Errorf("deployment %s left in status %q", d.ID, d.Status)
				}
			}
			// The app is not locked: the next swap works.
			r := s.swap("web", "staging", false)
			if r.Phase != "completed" {
				t.Errorf("swap after recovery = %+v", r)
			}
		})
	}
}
