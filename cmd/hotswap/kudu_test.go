package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestKuduZipDeploy drives the Kudu endpoints as an existing script would:
// HTTP Basic with the token as password, sync and async zipdeploy, polling
// deployments/latest, and the <app>-<slot>.scm host form.
func TestKuduZipDeploy(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(201, "POST", "/api/v1/apps", map[string]string{"name": "legacy"}, nil)
	s.must(201, "POST", "/api/v1/apps/legacy/slots", map[string]string{"name": "staging"}, nil)
	pkg := zipDir(t, examplePackage(t, "goforward"))
	kudu := func(method, host, path string, body []byte, user, pass string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, s.api+path, bytes.NewReader(body))
		if host != "" {
			req.Host = host
		}
		if pass != "" {
			req.SetBasicAuth(user, pass)
		}
		// curl --data-binary sends this content type; it must not matter.
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp, buf.Bytes()
	}

	if resp, _ := kudu("POST", "", "/kudu/legacy/staging/api/zipdeploy", pkg, "$legacy", "wrong"); resp.StatusCode != 401 {
		t.Fatalf("zipdeploy with a wrong password = %d, want 401", resp.StatusCode)
	}
	resp, body := kudu("POST", "", "/kudu/legacy/staging/api/zipdeploy", pkg, "$legacy", s.token)
	if resp.StatusCode != 200 {
		t.Fatalf("sync zipdeploy = %d %s", resp.StatusCode, body)
	}
	if r, _ := s.fn("GET", "legacy-staging.localhost", "/api/health", nil, nil); r.StatusCode != 200 {
		t.Errorf("staging after zipdeploy = %d", r.StatusCode)
	}

	resp, body = kudu("POST", "", "/kudu/legacy/production/api/zipdeploy?isAsync=true", pkg, "x", s.token)
	if resp.StatusCode != 202 || resp.Header.Get("Location") == "" {
		t.Fatalf("async zipdeploy = %d, Location %q, %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("GET", resp.Header.Get("Location"), nil)
		req.SetBasicAuth("x", s.token)
		r, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			ID       string `json:"id"`
			Status   int    `json:"status"`
			Complete bool   `json:"complete"`
			Active   bool   `json:"active"`
		}
		json.NewDecoder(r.Body).Decode(&d)
		r.Body.Close()
		if r.StatusCode == 200 {
			if d.Status != 4 || !d.Complete || !d.Active {
				t.Fatalf("latest deployment = %+v, want status 4, complete, active", d)
			}
			break
		}
		if r.StatusCode != 202 || time.Now().After(deadline) {
			t.Fatalf("deployments/latest = %d %+v", r.StatusCode, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r, _ := s.fn("GET", "legacy.localhost", "/api/health", nil, nil); r.StatusCode != 200 {
		t.Errorf("production after async zipdeploy = %d", r.StatusCode)
	}

	// The scm host form: only the address changes.
	resp, body = kudu("GET", "legacy-staging.scm.localhost", "/api/deployments", nil, "x", s.token)
	var list []struct {
		ID     string `json:"id"`
		Active bool   `json:"active"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &list) != nil || len(list) != 1 || !list[0].Active {
		t.Errorf("scm host deployments = %d %s", resp.StatusCode, body)
	}
	// A bad package through Kudu: 400, and the slot keeps serving.
	resp, _ = kudu("POST", "legacy-staging.scm.localhost", "/api/zipdeploy", []byte("not a zip"), "x", s.token)
	if resp.StatusCode != 400 {
		t.Errorf("bad zipdeploy = %d, want 400", resp.StatusCode)
	}
	if r, _ := s.fn("GET", "legacy-staging.localhost", "/api/health", nil, nil); r.StatusCode != 200 {
		t.Errorf("staging after a bad zipdeploy = %d", r.StatusCode)
	}
}
