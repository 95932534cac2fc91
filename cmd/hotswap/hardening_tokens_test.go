package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenRotation rotates a user's token and the admin token through the
// API while the server runs: each earlier token stops working at once, in
// the API and for the portal sessions signed in with it, the new one works,
// and the admin token file holds the new admin token.
func TestTokenRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir)

	ciToken := s.createUser("ci", "deployer")
	ciSession := newPortalUser(t, s).signIn(ciToken)
	adminSession := newPortalUser(t, s).signIn(s.token)
	if !sessionWorks(t, s, ciSession) || !sessionWorks(t, s, adminSession) {
		t.Fatal("sessions do not work after signing in")
	}

	// A deployer may not rotate anyone's token.
	asCI := *s
	asCI.token = ciToken
	if got := asCI.call("POST", "/api/v1/users/ci/token", nil, nil); got != http.StatusForbidden {
		t.Errorf("deployer rotating a token = %d, want 403", got)
	}

	var rotated struct{ Name, Role, Token string }
	s.must(http.StatusOK, "POST", "/api/v1/users/ci/token", nil, &rotated)
	if rotated.Name != "ci" || rotated.Role != "deployer" || rotated.Token == "" || rotated.Token == ciToken {
		t.Fatalf("rotated = %+v", rotated)
	}
	if got := asCI.call("GET", "/api/v1/whoami", nil, nil); got != http.StatusUnauthorized {
		t.Errorf("the earlier ci token after rotation = %d, want 401", got)
	}
	asCI.token = rotated.Token
	if got := asCI.call("GET", "/api/v1/whoami", nil, nil); got != http.StatusOK {
		t.Errorf("the new ci token = %d, want 200", got)
	}
	if sessionWorks(t, s, ciSession) {
		t.Error("a portal session of ci's earlier token works after rotation")
	}
	if got := s.call("POST", "/api/v1/users/nobody/token", nil, nil); got != http.StatusNotFound {
		t.Errorf("rotating an unknown user's token = %d, want 404", got)
	}

	oldAdmin := s.token
	s.must(http.StatusOK, "POST", "/api/v1/users/admin/token", nil, &rotated)
	if rotated.Name != "admin" || rotated.Token == "" || rotated.Token == oldAdmin {
		t.Fatalf("rotated admin = %+v", rotated)
	}
	if got := s.call("GET", "/api/v1/whoami", nil, nil); got != http.StatusUnauthorized {
		t.Errorf("the earlier admin token after rotation = %d, want 401", got)
	}
	if sessionWorks(t, s, adminSession) {
		t.Error("a portal session of the earlier admin token works after rotation")
	}
	b, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != rotated.Token {
		t.Errorf("admin-token file holds %q, want the new token", got)
	}
	fi, err := os.Stat(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-token mode = %v, want 0600", fi.Mode().Perm())
	}
	s.token = rotated.Token
	if got := s.call("GET", "/api/v1/whoami", nil, nil); got != http.StatusOK {
		t.Errorf("the new admin token = %d, want 200", got)
	}
	if !sessionWorks(t, s, newPortalUser(t, s).signIn(s.token)) {
		t.Error("a session of the new admin token is refused")
	}
}
