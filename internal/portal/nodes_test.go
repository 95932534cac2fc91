package portal

import (
	"net/http"
	"testing"
)

// TestNodesPage: every signed-in user sees the nodes page, linked from the
// header; a single server lists itself as serving.
func TestNodesPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.addUser("viewer1", "approver"))
	code, body := b.get("/apps")
	if code != http.StatusOK {
		t.Fatalf("GET /apps: %d", code)
	}
	mustContain(t, body, `href="/nodes" id="nav-nodes"`)
	code, body = b.get("/nodes")
	if code != http.StatusOK {
		t.Fatalf("GET /nodes: %d\n%s", code, body)
	}
	mustContain(t, body, `id="nodes-table"`, `One server with its own store`, `badge state-serving`)
}
