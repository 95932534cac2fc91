package cli

import (
	"strings"
	"testing"
)

// TestQuarantine: quarantine posts the reason to the deployment's
// quarantine, --lift deletes it, --reason with --lift is a usage error, and
// deployments marks a quarantined deployment.
func TestQuarantine(t *testing.T) {
	srv := newAPIServer(t, 200, `{"quarantine":{"app":"orders","deploymentId":"d-1","digest":"0123456789abcdef0123","version":"1.4.0","reason":"500s","actor":"alice","at":"2026-12-01T10:00:00Z"}}`)
	code, stdout, stderr := run(t, []string{"quarantine", "orders", "d-1", "--reason", "500s", "--server", srv.URL, "--token", testToken}, nil, "")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	req := srv.Requests()[0]
	if req.Method != "POST" || req.Path != "/api/v1/apps/orders/deployments/d-1/quarantine" || !strings.Contains(req.Body, `"reason":"500s"`) {
		t.Errorf("request %s %s %s; want POST of the reason to the deployment's quarantine", req.Method, req.Path, req.Body)
	}
	for _, want := range []string{"d-1", "quarantined", "version 1.4.0", "500s"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output %q does not say %q", stdout, want)
		}
	}

	lift := newAPIServer(t, 204, "")
	if code, _, stderr := run(t, []string{"quarantine", "orders", "d-1", "--lift", "--server", lift.URL, "--token", testToken}, nil, ""); code != 0 {
		t.Fatalf("--lift: exit %d: %s", code, stderr)
	}
	if req := lift.Requests()[0]; req.Method != "DELETE" || req.Path != "/api/v1/apps/orders/deployments/d-1/quarantine" {
		t.Errorf("--lift sent %s %s; want DELETE of the quarantine", req.Method, req.Path)
	}
	if code, _, stderr := run(t, []string{"quarantine", "orders", "d-1", "--lift", "--reason", "x", "--server", lift.URL, "--token", testToken}, nil, ""); code != 2 || !strings.Contains(stderr, "--reason") {
		t.Errorf("--lift with --reason: exit %d, %q; want a usage error", code, stderr)
	}

	list := newAPIServer(t, 200, `{"deployments":[{"id":"d-2","app":"orders","slot":"staging","digest":"ab","status":"success","statusText":"success","createdAt":"2026-01-02T03:04:05Z","servingSlots":[],"served":[]},`+
		`{"id":"d-1","app":"orders","slot":"staging","digest":"cd","status":"success","statusText":"success","createdAt":"2026-01-02T03:04:05Z","servingSlots":[],"served":[],"quarantine":{"deploymentId":"d-1","reason":"500s"}}]}`)
	code, stdout, stderr = run(t, []string{"deployments", "orders", "--server", list.URL, "--token", testToken}, nil, "")
	if code != 0 {
		t.Fatalf("deployments: exit %d: %s", code, stderr)
	}
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "d-1") != strings.Contains(line, "quarantined") {
			t.Errorf("deployments line %q: want only d-1 marked quarantined", line)
		}
	}
}
