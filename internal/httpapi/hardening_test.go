package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/release"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
	"github.com/hotswap/hotswap/internal/sqlite"
)

const adminToken = "hs_admin-token-for-tests-0123456789"

// env is the API over the real components: SQLite in a temp dir, the
// artifact store, handler processes and the release engine.
type env struct {
	t   testing.TB
	db  *sqlite.DB
	ops *ops.Service
	rel *release.Engine
	srv *httptest.Server
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "hotswap.db"))
	if err != nil {
		t.Fatal(err)
	}
	arts, err := artifact.Open(filepath.Join(dir, "packages"), artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rt := runtime.NewManager(nil)
	o, err := ops.Open(ctx, ops.Config{
		Domain: "localhost", PublicAddr: "127.0.0.1:8080", Store: db, Artifacts: arts, Runtime: rt,
		Router: router.New(router.Config{Domain: "localhost"}), StartTimeout: 20 * time.Second, DrainGrace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := release.Open(ctx, release.Config{Store: db, Ops: o, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{Ops: o, AdminToken: adminToken, Domain: "localhost", Store: db, Releases: e}))
	t.Cleanup(func() {
		srv.Close()
		e.Close()
		o.Close()
		rt.Close()
		db.Close()
	})
	return &env{t: t, db: db, ops: o, rel: e, srv: srv}
}

// addUser creates a user and returns its token.
func (e *env) addUser(name, role string) string {
	e.t.Helper()
	token := "tok-" + name + "-0123456789abcdef"
	sum := sha256.Sum256([]byte(token))
	if err := e.db.CreateUser(context.Background(), hotswap.User{Name: name, Role: role, TokenHash: hex.EncodeToString(sum[:])}); err != nil {
		e.t.Fatal(err)
	}
	return token
}

// call sends one request with token and decodes a JSON answer into out
// (when not nil); it returns the status and the raw body.
func (e *env) call(token, method, path string, body any, out any) (int, string) {
	e.t.Helper()
	return e.callHost(token, "", method, path, body, out)
}

func (e *env) callHost(token, host, method, path string, body any, out any) (int, string) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %v\n%s", method, path, err, raw)
		}
	}
	return resp.StatusCode, string(raw)
}

func (e *env) must(token string, want int, method, path string, body, out any) string {
	e.t.Helper()
	code, raw := e.call(token, method, path, body, out)
	if code != want {
		e.t.Fatalf("%s %s = %d, want %d: %s", method, path, code, want, raw)
	}
	return raw
}

var (
	buildOnce sync.Once
	goforward []byte
	buildErr  error
)

// goforwardZip builds examples/goforward once and returns it zipped.
func goforwardZip(t testing.TB) []byte {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := goruntime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "httpapi-goforward-*")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		pkg := filepath.Join(dir, "goforward")
		if buildErr = os.CopyFS(pkg, os.DirFS(filepath.Join(root, "examples", "goforward"))); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(pkg, "handler"), "./examples/goforward")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build goforward: %v\n%s", err, out)
			return
		}
		var buf bytes.Buffer
		buildErr = artifact.ZipDir(pkg, &buf)
		goforward = buf.Bytes()
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return goforward
}

// ordersApp creates app orders with a staging slot and deploys goforward to
// production; it returns that deployment's id.
func (e *env) ordersApp() string {
	e.t.Helper()
	e.must(adminToken, 201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	e.must(adminToken, 201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	var res struct{ Deployment struct{ ID string } }
	e.must(adminToken, 200, "POST", "/api/v1/apps/orders/slots/production/deploy", goforwardZip(e.t), &res)
	return res.Deployment.ID
}

// TestInvokeURLKeysByRole: only the roles that may read keys get invoke
// URLs with ?code=; an anonymous function's URL never carries one.
func TestInvokeURLKeysByRole(t *testing.T) {
	e := newEnv(t)
	e.ordersApp()
	tokens := map[string]string{"admin": adminToken, "deployer": e.addUser("ci", "deployer"), "approver": e.addUser("qa-lead", "approver")}
	// Whether each function's URL carries a key, by role.
	want := map[string]map[string]bool{
		"admin":    {"hello": true, "admin-only": true, "health": false, "echo": false},
		"deployer": {"hello": true, "admin-only": true, "health": false, "echo": false},
		"approver": {"hello": false, "admin-only": false, "health": false, "echo": false},
	}
	for role, token := range tokens {
		var slot ops.SlotView
		e.must(token, 200, "GET", "/api/v1/apps/orders/slots/production", nil, &slot)
		if len(slot.Functions) == 0 {
			t.Fatalf("%s: no functions in %+v", role, slot)
		}
		for _, f := range slot.Functions {
			w, ok := want[role][f.Name]
			if !ok {
				continue
			}
			if got := strings.Contains(f.InvokeURL, "code="); got != w {
				t.Errorf("%s: slot view: %s invokeUrl %q carries a key: %t, want %t", role, f.Name, f.InvokeURL, got, w)
			}
			var fn ops.FunctionView
			e.must(token, 200, "GET", "/api/v1/apps/orders/slots/production/functions/"+f.Name, nil, &fn)
			if got := strings.Contains(fn.InvokeURL, "code="); got != w {
				t.Errorf("%s: function view: %s invokeUrl %q carries a key: %t, want %t", role, f.Name, fn.InvokeURL, got, w)
			}
		}
	}
}

const heldPipeline = `name: orders-release
artifact: {feed: orders}
stages:
  - name: staging
    deploy: {app: orders, slot: staging}
  - name: production
    after: [staging]
    approval: {approvers: [qa-lead]}
    swap: {app: orders, slot: staging, target: production}
`

// waitRelease polls a release until cond holds.
func (e *env) waitRelease(id string, cond func(r *release.Release) bool) *release.Release {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := e.rel.Get(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("release %s: condition not met: state %s, holds %v, stages %+v", r.Name, r.State, r.Holds, r.Stages)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stageState(r *release.Release, name string) string {
	for _, st := range r.Stages {
		if st.Name == name {
			return st.State
		}
	}
	return ""
}

func releaseLog(r *release.Release) string {
	var b strings.Builder
	for _, st := range r.Stages {
		for _, l := range st.Log {
			b.WriteString(st.Name + ": " + l.Text + "\n")
		}
	}
	return b.String()
}

// TestHeldSlot: with auto swap on for staging, a release's staging deploy
// does not swap into production; while the release waits for approval,
// deploys, swaps, rollbacks and Kudu deploys onto its slot are refused
// with 409 naming it, and a forced deploy abandons it visibly.
func TestHeldSlot(t *testing.T) {
	e := newEnv(t)
	prod0 := e.ordersApp()
	e.addUser("qa-lead", "approver")
	ci := e.addUser("ci", "deployer")
	e.must(adminToken, 200, "PUT", "/api/v1/apps/orders/slots/staging/autoswap", map[string]string{"target": "production"}, nil)
	e.must(adminToken, 201, "POST", "/api/v1/pipelines", heldPipeline, nil)
	if _, _, err := e.rel.PushArtifact(context.Background(), release.Actor{Name: "ci", Role: "deployer"}, hotswap.Artifact{Feed: "orders", Version: "1.0.0"}, bytes.NewReader(goforwardZip(t))); err != nil {
		t.Fatal(err)
	}
	var rel release.Release
	e.must(ci, 201, "POST", "/api/v1/releases", map[string]string{"pipeline": "orders-release"}, &rel)
	r := e.waitRelease(rel.ID, func(r *release.Release) bool {
		return stageState(r, "production") == release.StageApproval && len(r.Holds) > 0
	})

	// Item 15: the release's deploy did not auto swap.
	var prod ops.SlotView
	e.must(adminToken, 200, "GET", "/api/v1/apps/orders/slots/production", nil, &prod)
	if prod.DeploymentID != prod0 {
		t.Errorf("production serves %s, want %s: the release's deploy auto swapped before approval", prod.DeploymentID, prod0)
	}
	if !strings.Contains(releaseLog(r), "auto swap of orders/staging into production skipped") {
		t.Errorf("the release log does not say the auto swap was skipped:\n%s", releaseLog(r))
	}

	// Item 16: the slot shows its hold, and changes to it are refused.
	var staging ops.SlotView
	e.must(adminToken, 200, "GET", "/api/v1/apps/orders/slots/staging", nil, &staging)
	if staging.HeldBy == nil || staging.HeldBy.Release != r.Name {
		t.Errorf("staging heldBy = %+v, want release %s", staging.HeldBy, r.Name)
	}
	refused := []struct {
		name, host, method, path string
		body                     any
	}{
		{"deploy", "", "POST", "/api/v1/apps/orders/slots/staging/deploy", goforwardZip(t)},
		{"swap", "", "POST", "/api/v1/apps/orders/swap", map[string]string{"slot": "staging", "target": "production"}},
		{"swap into", "", "POST", "/api/v1/apps/orders/swap", map[string]any{"slot": "production", "target": "staging"}},
		{"rollback", "", "POST", "/api/v1/apps/orders/slots/staging/rollback", map[string]string{"deployment": prod0}},
		{"kudu zipdeploy", "orders-staging.scm.localhost", "POST", "/api/zipdeploy", goforwardZip(t)},
		{"kudu async zipdeploy", "orders-staging.scm.localhost", "POST", "/api/zipdeploy?isAsync=true", goforwardZip(t)},
	}
	for _, tc := range refused {
		code, raw := e.callHost(ci, tc.host, tc.method, tc.path, tc.body, nil)
		if code != http.StatusConflict || !strings.Contains(raw, "held by release "+r.Name) || !strings.Contains(raw, "force") {
			t.Errorf("%s onto the held slot = %d %s, want 409 naming release %s and --force", tc.name, code, raw, r.Name)
		}
	}
	if got := e.waitRelease(rel.ID, func(*release.Release) bool { return true }); got.State != release.Active {
		t.Fatalf("release %s after refused changes, want still active", got.State)
	}
	// A forced swap refused for another reason (its expectation) abandons
	// nothing.
	forcedSwap := map[string]any{"slot": "staging", "expect": map[string]string{"source": "d-tested"}}
	if code, raw := e.call(ci, "POST", "/api/v1/apps/orders/swap?force=true", forcedSwap, nil); code != http.StatusPreconditionFailed || !strings.Contains(raw, "not d-tested") {
		t.Errorf("forced swap expecting another build = %d %s, want 412 naming it", code, raw)
	}
	if got := e.waitRelease(rel.ID, func(*release.Release) bool { return true }); got.State != release.Active {
		t.Fatalf("release %s (%s) after a forced swap that was refused, want still active", got.State, got.Detail)
	}

	// A forced deploy abandons the release and says who forced it.
	e.must(ci, 200, "POST", "/api/v1/apps/orders/slots/staging/deploy?force=true", goforwardZip(t), nil)
	r = e.waitRelease(rel.ID, func(r *release.Release) bool { return r.State != release.Active })
	if r.State != release.Abandoned || !strings.Contains(r.Detail, "ci forced a deploy to orders/staging") {
		t.Errorf("release after a forced deploy: %s %q, want abandoned naming ci", r.State, r.Detail)
	}
	if !strings.Contains(releaseLog(r), "ci forced a deploy to orders/staging") {
		t.Errorf("release log does not say who forced it:\n%s", releaseLog(r))
	}
	var acts struct {
		Activity []hotswap.Activity `json:"activity"`
	}
	e.must(adminToken, 200, "GET", "/api/v1/apps/orders/activity", nil, &acts)
	found := false
	for _, a := range acts.Activity {
		if a.Action == "release.abandon" && a.Actor == "ci" && a.Slot == "staging" && strings.Contains(a.Detail, r.Name) {
			found = true
		}
	}
	if !found {
		t.Errorf("no release.abandon entry by ci in the activity log: %+v", acts.Activity)
	}
	if code, raw := e.call(ci, "POST", "/api/v1/apps/orders/swap?force=maybe", map[string]string{"slot": "staging"}, nil); code != 400 || !strings.Contains(raw, "force") {
		t.Errorf("force=maybe = %d %s, want 400 naming force", code, raw)
	}
}

// TestWebhookShownOnlyToAdmins: a pipeline's webhook URL (its secret) is
// shown whole only to admins; others see scheme://host/….
func TestWebhookShownOnlyToAdmins(t *testing.T) {
	e := newEnv(t)
	e.ordersApp()
	e.addUser("qa-lead", "approver")
	qa := e.addUser("qa", "approver")
	ci := e.addUser("ci", "deployer")
	def := heldPipeline + "notify:\n  webhook: https://hooks.example.com/services/T0/B1/s3cr3t?token=s3cr3t\n"
	e.must(adminToken, 201, "POST", "/api/v1/pipelines", def, nil)
	if _, _, err := e.rel.PushArtifact(context.Background(), release.Actor{Name: "ci", Role: "deployer"}, hotswap.Artifact{Feed: "orders", Version: "1.0.0"}, bytes.NewReader(goforwardZip(t))); err != nil {
		t.Fatal(err)
	}
	var rel release.Release
	e.must(ci, 201, "POST", "/api/v1/releases", map[string]string{"pipeline": "orders-release"}, &rel)
	for _, path := range []string{"/api/v1/pipelines", "/api/v1/pipelines/orders-release", "/api/v1/releases", "/api/v1/releases/" + rel.ID} {
		for who, token := range map[string]string{"approver": qa, "deployer": ci} {
			raw := e.must(token, 200, "GET", path, nil, nil)
			if strings.Contains(raw, "s3cr3t") || !strings.Contains(raw, "https://hooks.example.com/…") {
				t.Errorf("%s GET %s shows the webhook: %s", who, path, raw)
			}
		}
		if raw := e.must(adminToken, 200, "GET", path, nil, nil); !strings.Contains(raw, "s3cr3t") {
			t.Errorf("admin GET %s does not show the webhook", path)
		}
	}
}
