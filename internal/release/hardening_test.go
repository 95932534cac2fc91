package release

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
	"github.com/hotswap/hotswap/internal/sqlite"
)

// testEngine is an engine over a real store and ops service, with an app
// orders (slots production and staging, nothing deployed), users qa-lead
// (approver) and ci (deployer), and an artifact orders 1.0.0.
type testEngine struct {
	*Engine
	db  *sqlite.DB
	dir string // holds hotswap.db
}

var (
	admin = Actor{Name: "admin", Role: "admin"}
	ci    = Actor{Name: "ci", Role: "deployer"}
	qa    = Actor{Name: "qa-lead", Role: "approver"}
)

func newTestEngine(t testing.TB) *testEngine {
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
		Router: router.New(router.Config{Domain: "localhost"}), DrainGrace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(ctx, Config{Store: db, Ops: o, Tick: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		o.Close()
		rt.Close()
		db.Close()
	})
	if _, err := o.CreateApp(ctx, "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.CreateSlot(ctx, "admin", "orders", "staging", ""); err != nil {
		t.Fatal(err)
	}
	for _, u := range []Actor{ci, qa} {
		if err := db.CreateUser(ctx, hotswap.User{Name: u.Name, Role: u.Role, TokenHash: u.Name}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.PutArtifact(ctx, hotswap.Artifact{Feed: "orders", Version: "1.0.0", Digest: "0000"}); err != nil {
		t.Fatal(err)
	}
	return &testEngine{Engine: e, db: db, dir: dir}
}

// approvalPipeline has one stage waiting for approval before a swap.
func approvalPipeline(name, approval string) string {
	return "name: " + name + `
artifact: {feed: orders}
stages:
  - name: production
    approval: ` + approval + `
    swap: {app: orders, slot: staging, target: production}
`
}

func (e *testEngine) waitStage(t testing.TB, id, stage, state string) *Release {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st := r.stage(stage); st != nil && st.State == state {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("stage %s of %s is %q, want %q", stage, r.Name, r.stage(stage).State, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestApprovalRulesNeedAdmin: a deployer may not rewrite who approves, nor
// name itself an approver; an admin may; other edits stay open.
func TestApprovalRulesNeedAdmin(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	orig := approvalPipeline("orders-release", "{approvers: [qa-lead]}")
	if _, err := e.ApplyPipeline(ctx, ci, []byte(orig)); err != nil {
		t.Fatalf("a deployer creating a pipeline others approve: %v", err)
	}
	tests := []struct {
		name     string
		who      Actor
		def      string
		wantKind hotswap.Kind // Internal: no error
	}{
		{"deployer makes itself approver", ci, approvalPipeline("orders-release", "{approvers: [ci], requesterCanApprove: true}"), hotswap.Forbidden},
		{"deployer lets the requester approve", ci, approvalPipeline("orders-release", "{approvers: [qa-lead], requesterCanApprove: true}"), hotswap.Forbidden},
		{"deployer drops the approval", ci, strings.Replace(orig, "    approval: {approvers: [qa-lead]}\n", "", 1), hotswap.Forbidden},
		{"deployer creates a pipeline it approves itself", ci, approvalPipeline("other", "{approvers: [ci], requesterCanApprove: true}"), hotswap.Forbidden},
		{"deployer creates a pipeline it approves for others", ci, approvalPipeline("another", "{approvers: [ci, qa-lead]}"), hotswap.Forbidden},
		{"deployer edits something else", ci, strings.Replace(orig, "artifact:", "description: orders to production\nartifact:", 1), hotswap.Internal},
		{"admin changes the approvers", admin, approvalPipeline("orders-release", "{approvers: [qa-lead, ci], required: 2}"), hotswap.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.ApplyPipeline(ctx, tc.who, []byte(tc.def))
			switch {
			case tc.wantKind == hotswap.Internal && err != nil:
				t.Errorf("err = %v, want none", err)
			case tc.wantKind != hotswap.Internal && hotswap.ErrorKind(err) != tc.wantKind:
				t.Errorf("err = %v (%v), want %v", err, hotswap.ErrorKind(err), tc.wantKind)
			case err != nil && !strings.Contains(hotswap.ErrorMessage(err), "admin"):
				t.Errorf("message %q does not say the admin role is needed", hotswap.ErrorMessage(err))
			}
		})
	}
}

// TestDecisionsInActivityLog: approvals and rejections are in the app's
// activity log with who, which release and stage, and the comment.
func TestDecisionsInActivityLog(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	if _, err := e.ApplyPipeline(ctx, admin, []byte(approvalPipeline("orders-release", "{approvers: [qa-lead]}"))); err != nil {
		t.Fatal(err)
	}
	for i, approve := range []bool{true, false} {
		r, err := e.CreateRelease(ctx, ci, "orders-release", "")
		if err != nil {
			t.Fatal(err)
		}
		e.waitStage(t, r.ID, "production", StageApproval)
		comment := []string{"ship it", "not today"}[i]
		if _, err := e.Decide(ctx, qa, r.ID, "production", approve, comment); err != nil {
			t.Fatal(err)
		}
	}
	acts, err := e.db.ListActivity(ctx, "orders", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range acts {
		if strings.HasPrefix(a.Action, "release.") {
			got = append(got, a.Actor+" "+a.Action+" "+a.Slot+" "+a.Detail+" "+a.Result)
		}
	}
	want := []string{
		"qa-lead release.reject production release orders-release-2 stage production (orders 1.0.0): not today rejected",
		"qa-lead release.approve production release orders-release-1 stage production (orders 1.0.0): ship it approved",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("release activity:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReleaseNameSurvivesRename: a release keeps answering to the name it
// was created with after its pipeline is renamed, and to the new one.
func TestReleaseNameSurvivesRename(t *testing.T) {
	e := newTestEngine(t)
	ctx := context.Background()
	if _, err := e.ApplyPipeline(ctx, admin, []byte(approvalPipeline("orders", "{approvers: [qa-lead]}"))); err != nil {
		t.Fatal(err)
	}
	r, err := e.CreateRelease(ctx, ci, "orders", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Abandon(ctx, ci, r.ID); err != nil { // ended: only in the store
		t.Fatal(err)
	}
	if _, err := e.RenamePipeline(ctx, admin, "orders", "shop"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"orders-1", "shop-1", r.ID} {
		got, err := e.Get(ctx, name)
		if err != nil || got.ID != r.ID {
			t.Errorf("Get(%q) = %v, %v; want release %s", name, got, err, r.ID)
		}
	}
	for _, p := range []string{"orders", "shop"} {
		rels, err := e.List(ctx, p, 10)
		if err != nil || len(rels) != 1 || rels[0].ID != r.ID {
			t.Errorf("List(%q) = %d releases, %v; want the one", p, len(rels), err)
		}
	}
}

// TestNotifierSlowWebhookDelaysOnlyItsPipeline: one pipeline's webhook that
// hangs does not hold up another pipeline's events.
func TestNotifierSlowWebhookDelaysOnlyItsPipeline(t *testing.T) {
	unblock := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-unblock:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close) // runs last
	got := make(chan Event, 1)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- Event{Release: r.URL.Query().Get("r")}
	}))
	defer fast.Close()
	n := NewNotifier(nil)
	n.Client.Timeout = 20 * time.Second
	t.Cleanup(n.Close)
	t.Cleanup(func() { close(unblock) }) // runs first: the slow webhook answers
	for range 5 {
		n.Send("p-slow", slow.URL+"/hook", Event{Release: "slow"})
	}
	start := time.Now()
	n.Send("p-fast", fast.URL+"/hook?r=fast", Event{Release: "fast"})
	select {
	case ev := <-got:
		if ev.Release != "fast" {
			t.Errorf("got %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fast pipeline's event waited behind the slow webhook")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the fast pipeline's event took %v", d)
	}
}

// TestNotifierLogsStatusNotURL: a non-2xx answer is logged with its status,
// and the log never holds the webhook's path, query or user info.
func TestNotifierLogsStatusNotURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	n := NewNotifier(log)
	n.Retry = time.Millisecond
	secret := strings.Replace(srv.URL, "http://", "http://user:pw@", 1) + "/hooks/T0/B1/s3cr3t?token=s3cr3t"
	n.Send("p-1", secret, Event{Release: "orders-1", Event: "release"})
	n.Close()
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "HTTP 403") {
		t.Errorf("log does not name the status:\n%s", out)
	}
	if strings.Contains(out, "s3cr3t") || strings.Contains(out, "pw@") || strings.Contains(out, "err=<nil>") {
		t.Errorf("log leaks the webhook URL or hides the error:\n%s", out)
	}
	if !strings.Contains(out, strings.TrimPrefix(srv.URL, "http://")) {
		t.Errorf("log does not name the webhook's host:\n%s", out)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://hooks.example.com/services/T0/B1/secret", "https://hooks.example.com/…"},
		{"https://user:pw@hooks.example.com", "https://hooks.example.com/…"},
		{"https://hooks.example.com/?token=x", "https://hooks.example.com/…"},
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"http://127.0.0.1:9000/", "http://127.0.0.1:9000"},
		{"not a url", "(webhook URL)"},
	}
	for _, tc := range tests {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
