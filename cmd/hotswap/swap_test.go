package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type whoami struct {
	Deployment string `json:"deployment"`
	Slot       string `json:"slot"`
	PID        string `json:"pid"`
}

func (s *server) whoami(host string) whoami {
	s.t.Helper()
	resp, body := s.fn("GET", host, "/api/whoami", nil, nil)
	var w whoami
	if resp.StatusCode != 200 || json.Unmarshal(body, &w) != nil {
		s.t.Fatalf("whoami %s = %d %s", host, resp.StatusCode, body)
	}
	return w
}

// env returns the handler's value of an environment variable, "<unset>" when
// it has none.
func (s *server) env(host, name string) string {
	s.t.Helper()
	resp, body := s.fn("GET", host, "/api/env/"+name, nil, nil)
	switch resp.StatusCode {
	case 200:
		return string(body)
	case 404:
		return "<unset>"
	}
	s.t.Fatalf("env %s %s = %d %s", host, name, resp.StatusCode, body)
	return ""
}

func (s *server) slotDeployment(app, slot string) string {
	s.t.Helper()
	var v struct{ DeploymentID string }
	s.must(200, "GET", "/api/v1/apps/"+app+"/slots/"+slot, nil, &v)
	return v.DeploymentID
}

func (s *server) setSettings(app, slot string, sticky bool, kv ...string) {
	s.t.Helper()
	var set []map[string]any
	for i := 0; i < len(kv); i += 2 {
		set = append(set, map[string]any{"name": kv[i], "value": kv[i+1], "slotSetting": sticky})
	}
	s.must(200, "PATCH", "/api/v1/apps/"+app+"/slots/"+slot+"/settings", map[string]any{"set": set}, nil)
}

func (s *server) storedSettings(app, slot string) map[string]string {
	s.t.Helper()
	var res struct {
		Settings []struct {
			Name, Value string
			SlotSetting bool
		}
	}
	s.must(200, "GET", "/api/v1/apps/"+app+"/slots/"+slot+"/settings", nil, &res)
	m := map[string]string{}
	for _, x := range res.Settings {
		v := x.Value
		if x.SlotSetting {
			v += " (sticky)"
		}
		m[x.Name] = v
	}
	return m
}

type swapResult struct {
	Phase            string
	SourceDeployment string
	TargetDeployment string
	ReusedWarm       bool
}

func (s *server) swap(app, slot string, preview bool) swapResult {
	s.t.Helper()
	var r swapResult
	s.must(200, "POST", "/api/v1/apps/"+app+"/swap", map[string]any{"slot": slot, "preview": preview}, &r)
	return r
}

// newSwapApp creates app web with a staging slot, both running envapp.
func newSwapApp(t *testing.T, s *server) (prod, staging string) {
	t.Helper()
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "web"}, nil)
	s.must(201, "POST", "/api/v1/apps/web/slots", map[string]string{"name": "staging"}, nil)
	pkg := zipDir(t, examplePackage(t, "envapp"))
	return s.deploy("web", "production", pkg), s.deploy("web", "staging", pkg)
}

// TestSwapSettings checks which settings move with the content and which
// stay with their slot, across preview, cancel, swap and swap back.
func TestSwapSettings(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	d1, d2 := newSwapApp(t, s)
	s.setSettings("web", "production", false, "A", "prod-a")
	s.setSettings("web", "production", true, "S", "prod-s")
	s.setSettings("web", "staging", false, "A", "stg-a", "N", "stg-n")
	s.setSettings("web", "staging", true, "S", "stg-s")
	keysProd, keysStaging := s.keys("web", "production"), s.keys("web", "staging")

	type view struct {
		Deployment, Slot, A, S, N string
	}
	look := func(host string) view {
		w := s.whoami(host)
		return view{w.Deployment, w.Slot, s.env(host, "A"), s.env(host, "S"), s.env(host, "N")}
	}
	initialProd := view{d1, "Production", "prod-a", "prod-s", "<unset>"}
	initialStaging := view{d2, "staging", "stg-a", "stg-s", "stg-n"}
	storedProd := map[string]string{"A": "prod-a", "S": "prod-s (sticky)"}
	storedStaging := map[string]string{"A": "stg-a", "N": "stg-n", "S": "stg-s (sticky)"}

	steps := []struct {
		name                   string
		do                     func()
		wantProd, wantStaging  view
		storedP, storedS       map[string]string
		wantProdSt, wantStagSt string
	}{
		{"initial", func() {}, initialProd, initialStaging, storedProd, storedStaging, "running", "running"},
		{"preview: staging URL serves its content under production's settings", func() { s.swap("web", "staging", true) },
			initialProd, view{d2, "Production", "stg-a", "prod-s", "stg-n"}, storedProd, storedStaging, "running", "preview"},
		{"cancel restores", func() { s.must(200, "POST", "/api/v1/apps/web/swap/cancel", nil, nil) },
			initialProd, initialStaging, storedProd, storedStaging, "running", "running"},
		{"swap moves content and normal settings, slot settings stay", func() { s.swap("web", "staging", false) },
			view{d2, "Production", "stg-a", "prod-s", "stg-n"}, view{d1, "staging", "prod-a", "stg-s", "<unset>"},
			map[string]string{"A": "stg-a", "N": "stg-n", "S": "prod-s (sticky)"}, map[string]string{"A": "prod-a", "S": "stg-s (sticky)"}, "running", "running"},
		{"swap back with preview then complete", func() {
			s.swap("web", "staging", true)
			s.must(200, "POST", "/api/v1/apps/web/swap/complete", nil, nil)
		}, initialProd, initialStaging, storedProd, storedStaging, "running", "running"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.do()
			if diff := cmp.Diff(look("web.localhost"), st.wantProd); diff != "" {
				t.Errorf("production serves (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(look("web-staging.localhost"), st.wantStaging); diff != "" {
				t.Errorf("staging serves (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(s.storedSettings("web", "production"), st.storedP); diff != "" {
				t.Errorf("production settings (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(s.storedSettings("web", "staging"), st.storedS); diff != "" {
				t.Errorf("staging settings (-got +want):\n%s", diff)
			}
			var pv, sv struct{ State string }
			s.must(200, "GET", "/api/v1/apps/web/slots/production", nil, &pv)
			s.must(200, "GET", "/api/v1/apps/web/slots/staging", nil, &sv)
			if pv.State != st.wantProdSt || sv.State != st.wantStagSt {
				t.Errorf("states = %s/%s, want %s/%s", pv.State, sv.State, st.wantProdSt, st.wantStagSt)
			}
			if diff := cmp.Diff(s.keys("web", "production"), keysProd); diff != "" {
				t.Errorf("production keys changed:\n%s", diff)
			}
			if diff := cmp.Diff(s.keys("web", "staging"), keysStaging); diff != "" {
				t.Errorf("staging keys changed:\n%s", diff)
			}
		})
	}
}

// TestWarmupFailureAbortsSwap: a warm-up that fails leaves both slots
// exactly as they were and says why.
func TestWarmupFailureAbortsSwap(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	d1, d2 := newSwapApp(t, s)
	tests := []struct {
		name    string
		sticky  []string // production slot settings
		moving  []string // staging settings that travel
		wantMsg string
	}{
		{"wrong status", []string{"WEBSITE_SWAP_WARMUP_PING_PATH", "/api/warm", "WEBSITE_SWAP_WARMUP_PING_STATUSES", "200", "HOTSWAP_WARMUP_RETRIES", "1"},
			[]string{"WARM_STATUS", "500"}, "answered 500"},
		{"timeout", []string{"WEBSITE_SWAP_WARMUP_PING_PATH", "/api/warm", "HOTSWAP_WARMUP_TIMEOUT", "200ms", "HOTSWAP_WARMUP_RETRIES", "0"},
			[]string{"WARM_SLEEP", "3s"}, "timed out"},
		{"crash on start", nil, []string{"CRASH_IF_SLOT", "Production"}, "did not start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.sticky) > 0 {
				s.setSettings("web", "production", true, tc.sticky...)
			}
			s.setSettings("web", "staging", false, tc.moving...)
			prodBefore, stagingBefore := s.whoami("web.localhost"), s.whoami("web-staging.localhost")
			var res struct {
				Error struct{ Kind, Message string }
			}
			if got := s.call("POST", "/api/v1/apps/web/swap", map[string]any{"slot": "staging"}, &res); got != 412 {
				t.Fatalf("swap = %d, want 412: %+v", got, res)
			}
			if !strings.Contains(res.Error.Message, tc.wantMsg) {
				t.Errorf("message %q does not say %q", res.Error.Message, tc.wantMsg)
			}
			if got := s.whoami("web.localhost"); got != prodBefore {
				t.Errorf("production changed: %+v, was %+v", got, prodBefore)
			}
			if got := s.whoami("web-staging.localhost"); got != stagingBefore {
				t.Errorf("staging changed: %+v, was %+v", got, stagingBefore)
			}
			if p, st := s.slotDeployment("web", "production"), s.slotDeployment("web", "staging"); p != d1 || st != d2 {
				t.Errorf("store: production %s staging %s, want %s %s", p, st, d1, d2)
			}
			var ops struct {
				Operations []struct{ Kind, State, Detail string }
			}
			s.must(200, "GET", "/api/v1/apps/web/operations", nil, &ops)
			if o := ops.Operations[0]; o.Kind != "swap" || o.State != "failed" {
				t.Errorf("last operation = %+v, want a failed swap", o)
			}
			// Undo this case's settings for the next.
			var unsetP, unsetS []string
			for i := 0; i < len(tc.sticky); i += 2 {
				unsetP = append(unsetP, tc.sticky[i])
			}
			for i := 0; i < len(tc.moving); i += 2 {
				unsetS = append(unsetS, tc.moving[i])
			}
			if len(unsetP) > 0 {
				s.must(200, "PATCH", "/api/v1/apps/web/slots/production/settings", map[string]any{"unset": unsetP}, nil)
			}
			s.must(200, "PATCH", "/api/v1/apps/web/slots/staging/settings", map[string]any{"unset": unsetS}, nil)
		})
	}
	t.Run("a key-protected function can be the warm-up path", func(t *testing.T) {
		s.setSettings("web", "production", true, "WEBSITE_SWAP_WARMUP_PING_PATH", "/api/warm", "WEBSITE_SWAP_WARMUP_PING_STATUSES", "200")
		if resp, _ := s.fn("GET", "web.localhost", "/api/warm", nil, nil); resp.StatusCode != 401 {
			t.Fatalf("/api/warm without a key = %d, want 401", resp.StatusCode)
		}
		r := s.swap("web", "staging", false)
		if r.Phase != "completed" || s.whoami("web.localhost").Deployment != d2 {
			t.Errorf("swap = %+v, production serves %s, want %s", r, s.whoami("web.localhost").Deployment, d2)
		}
	})
}

// TestRevertWindow: swapping back inside the window starts no process;
// outside it, it still works.
func TestRevertWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		window   time.Duration
		wait     time.Duration
		samePIDs bool
	}{
		{"inside the window reuses warm processes", 10 * time.Minute, 0, true},
		{"outside the window starts new ones", 500 * time.Millisecond, 2500 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServerWith(t, "", func(m *Main) { m.Config.RevertWindow = tc.window })
			d1, d2 := newSwapApp(t, s)
			prod, staging := s.whoami("web.localhost"), s.whoami("web-staging.localhost")
			s.swap("web", "staging", false)
			if got := s.whoami("web.localhost").Deployment; got != d2 {
				t.Fatalf("after swap production serves %s, want %s", got, d2)
			}
			time.Sleep(tc.wait)
			r := s.swap("web", "staging", false)
			if r.ReusedWarm != tc.samePIDs {
				t.Errorf("reusedWarm = %v, want %v", r.ReusedWarm, tc.samePIDs)
			}
			prod2, staging2 := s.whoami("web.localhost"), s.whoami("web-staging.localhost")
			if prod2.Deployment != d1 || staging2.Deployment != d2 {
				t.Fatalf("after swap back: production %s staging %s, want %s %s", prod2.Deployment, staging2.Deployment, d1, d2)
			}
			if same := prod2.PID == prod.PID && staging2.PID == staging.PID; same != tc.samePIDs {
				t.Errorf("same processes after swap back = %v, want %v (pids %s/%s then %s/%s)", same, tc.samePIDs, prod.PID, staging.PID, prod2.PID, staging2.PID)
			}
		})
	}
}

// TestAutoSwap: after each successful deploy to the slot, the swap runs by
// itself and the deploy result says so.
func TestAutoSwap(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	d1, _ := newSwapApp(t, s)
	s.must(200, "PUT", "/api/v1/apps/web/slots/staging/autoswap", map[string]string{"target": "production"}, nil)
	var res struct {
		Deployment struct{ ID string }
		AutoSwap   *swapResult
	}
	s.must(200, "POST", "/api/v1/apps/web/slots/staging/deploy", zipDir(t, examplePackage(t, "envapp")), &res)
	if res.AutoSwap == nil || res.AutoSwap.Phase != "completed" {
		t.Fatalf("deploy result has no completed auto swap: %+v", res)
	}
	if got := s.whoami("web.localhost").Deployment; got != res.Deployment.ID {
		t.Errorf("production serves %s, want the new deployment %s", got, res.Deployment.ID)
	}
	if got := s.slotDeployment("web", "staging"); got == res.Deployment.ID || got == "" {
		t.Errorf("staging serves %q after the auto swap, want the previous production deployment", got)
	}
	_ = d1
	s.must(200, "PUT", "/api/v1/apps/web/slots/staging/autoswap", map[string]string{"target": ""}, nil)
	var res2 struct{ AutoSwap *swapResult }
	s.must(200, "POST", "/api/v1/apps/web/slots/staging/deploy", zipDir(t, examplePackage(t, "envapp")), &res2)
	if res2.AutoSwap != nil {
		t.Errorf("auto swap ran after --disable: %+v", res2.AutoSwap)
	}
}

// TestRollbackAndHistory: every deployment is kept with where and when it
// served; rollback puts any retained one back.
func TestRollbackAndHistory(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "", func(m *Main) { m.Config.Retention = 3 })
	d1, d2 := newSwapApp(t, s)
	s.swap("web", "staging", false) // production: d2, staging: d1
	pkg := zipDir(t, examplePackage(t, "envapp"))
	d3 := s.deploy("web", "staging", pkg)
	d4 := s.deploy("web", "staging", pkg)
	var hist struct {
		Deployments []struct {
			ID           string
			ServingSlots []string
			Served       []struct{ Slot string }
		}
	}
	s.must(200, "GET", "/api/v1/apps/web/deployments", nil, &hist)
	got := map[string][]string{}
	var ids []string
	for _, d := range hist.Deployments {
		ids = append(ids, d.ID)
		var served []string
		for _, sv := range d.Served {
			served = append(served, sv.Slot)
		}
		got[d.ID] = append(append([]string{}, d.ServingSlots...), "|")
		got[d.ID] = append(got[d.ID], served...)
	}
	want := map[string][]string{
		d4: {"staging", "|", "staging"},
		d3: {"|", "staging"},
		d2: {"production", "|", "production", "staging"},
		d1: {"|", "staging", "production"},
	}
	// Retention keeps 3 and anything served or warm; d1 is warm (retired
	// by d3's deploy inside the revert window), so all four remain.
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("history (-got +want):\n%s\nids %v", diff, ids)
	}
	var rb struct{ Deployment struct{ ID string } }
	s.must(200, "POST", "/api/v1/apps/web/slots/production/rollback", map[string]string{"deployment": d1}, &rb)
	if got := s.whoami("web.localhost").Deployment; got != d1 {
		t.Errorf("after rollback production serves %s, want %s", got, d1)
	}
	var bad struct{ Error struct{ Message string } }
	if code := s.call("POST", "/api/v1/apps/web/slots/production/rollback", map[string]string{"deployment": "d-nosuch"}, &bad); code != 404 {
		t.Errorf("rollback to an unknown deployment = %d, want 404 (%s)", code, bad.Error.Message)
	}
}

// TestOneOperationAtATime: a second operation while one runs gets 409
// naming the running one.
func TestOneOperationAtATime(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	newSwapApp(t, s)
	s.setSettings("web", "production", true, "WEBSITE_SWAP_WARMUP_PING_PATH", "/api/warm", "HOTSWAP_WARMUP_TIMEOUT", "10s")
	s.setSettings("web", "staging", false, "WARM_SLEEP", "3s")
	pkg := zipDir(t, examplePackage(t, "envapp")) // before the swap: zipping is slow under -race
	done := make(chan int)
	go func() {
		code := s.call("POST", "/api/v1/apps/web/swap", map[string]any{"slot": "staging"}, nil)
		done <- code
	}()
	time.Sleep(500 * time.Millisecond)
	var res struct {
		Error struct{ Kind, Message string }
	}
	code := s.call("POST", "/api/v1/apps/web/slots/staging/deploy", pkg, &res)
	if code != 409 || !strings.Contains(res.Error.Message, "swap") {
		t.Errorf("deploy during a swap = %d %+v, want 409 naming the swap", code, res)
	}
	if got := <-done; got != 200 {
		t.Errorf("the swap = %d, want 200", got)
	}
	_ = fmt.Sprint
	_ = http.StatusOK
}
