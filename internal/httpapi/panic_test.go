package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStreamedRequestPanics: a handler that panics while its request is
// streamed (Accept: text/event-stream runs it in a goroutine of its own,
// which net/http does not guard) answers 500 and leaves the server up.
func TestStreamedRequestPanics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := New(Config{Ops: e.ops, AdminToken: adminToken, Domain: "localhost"})
	h := s.progress(func(http.ResponseWriter, *http.Request, actor) { panic("boom (test)") }, nil)
	req := httptest.NewRequest("POST", "/api/v1/apps/x/swap", nil)
	req.Header.Set("Accept", "text/event-stream")
	w := httptest.NewRecorder()
	h(w, req, actor{Name: "admin", Role: "admin"})
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "internal error") {
		t.Fatalf("a panicking streamed request answered %d %q, want 500 internal error", w.Code, w.Body)
	}
}
