package router

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// TestSlotIndex: a browser opening a slot's URL gets a small page with the
// HTTP functions it may call without a key, and a count of the others
// (never their names); other callers and other paths get the plain 404.
func TestSlotIndex(t *testing.T) {
	fn := func(name, auth, route string, methods ...string) *funcapp.Function {
		return &funcapp.Function{Name: name, Trigger: "http", AuthLevel: auth, Route: route, Methods: methods, Runnable: true}
	}
	fns := []*funcapp.Function{
		fn("health", "anonymous", "health", "GET"),
		fn("files", "anonymous", "files/{*path}", "GET"),
		fn("echo", "anonymous", "echo", "POST"),
		fn("secret-report", "function", "reports/secret"),
		fn("admin-op", "admin", "ops"),
		fn("off", "anonymous", "off", "GET"),
		{Name: "nightly", Trigger: "timer", Runnable: true},
	}
	routes, err := funcapp.NewRouter("api", fns)
	if err != nil {
		t.Fatal(err)
	}
	h := New(Config{Domain: "test"})
	h.Publish(NewTable("test", []*Slot{{
		App: "shop", Name: "staging", HostName: "shop-staging.test", BaseURL: "http://shop-staging.test",
		Keys:       NewKeys([]hotswap.Key{{Scope: hotswap.ScopeMaster, Name: "_master", Value: "master-key-0123456789"}}),
		Deployment: "d-1", Package: &funcapp.App{Host: &funcapp.Host{RoutePrefix: "api"}, Functions: fns},
		Routes: routes, Disabled: map[string]bool{"off": true}, Upstream: &fakeSet{addr: "127.0.0.1:1"},
	}}, h.Transport()))
	get := func(path, accept string) (int, string, string) {
		req := httptest.NewRequest("GET", "http://shop-staging.test"+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
	}

	code, ctype, body := get("/", "text/html,application/xhtml+xml,*/*;q=0.8")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("browser GET / = %d %s, want 200 text/html:\n%s", code, ctype, body)
	}
	for _, want := range []string{
		"<title>shop / staging</title>", "deployment d-1",
		`health: <a href="/api/health"><code>/api/health</code></a> (GET)`,
		`files: <code>/api/files/{*path}</code> (GET)`,
		`echo: <code>/api/echo</code> (POST)`,
		"2 more HTTP functions need a key",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q:\n%s", want, body)
		}
	}
	for _, hidden := range []string{"secret-report", "reports/secret", "admin-op", "off", "nightly"} {
		if strings.Contains(body, hidden) {
			t.Errorf("the page names %q:\n%s", hidden, body)
		}
	}
	if code, _, body := get("/", "application/json"); code != http.StatusNotFound || strings.TrimSpace(body) != "not found" {
		t.Errorf("GET / for JSON = %d %q, want the plain 404", code, body)
	}
	if code, _, _ := get("/nope", "text/html"); code != http.StatusNotFound {
		t.Errorf("browser GET /nope = %d, want 404", code)
	}
}
