package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotswap/hotswap/internal/cli"
)

// TestQuarantineEndToEnd: a deployment rolled back by hand is quarantined
// with the CLI; a deploy of the same zip is then refused with the reason
// and who quarantined it, deployments marks it, the API's deployment shows
// it; --force deploys it anyway, and --lift ends the quarantine.
func TestQuarantineEndToEnd(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "qa"}, nil)
	good := zipDir(t, examplePackage(t, "goforward"))
	badDir := copyPackage(t, "goforward")
	if err := os.WriteFile(filepath.Join(badDir, "build.txt"), []byte("the bad build"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := zipDir(t, badDir)
	badZip := filepath.Join(t.TempDir(), "bad.zip")
	if err := os.WriteFile(badZip, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	d1 := s.deploy("qa", "production", good)
	d2 := s.deploy("qa", "production", bad)
	s.must(http.StatusOK, "POST", "/api/v1/apps/qa/slots/production/rollback", map[string]string{"deployment": d1}, nil)

	cliRun := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), append([]string{"--server", s.api, "--token", s.token}, args...),
			cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, WorkDir: t.TempDir()})
		return code, out.String(), errb.String()
	}
	if code, out, errs := cliRun("quarantine", "qa", d2, "--reason", "500s on checkout"); code != 0 {
		t.Fatalf("quarantine: exit %d: %s%s", code, out, errs)
	}
	code, out, errs := cliRun("deploy", "qa", badZip, "--slot", "production")
	if code == 0 {
		t.Fatalf("deploy of the quarantined zip passed: %s", out)
	}
	for _, want := range []string{"quarantined", "500s on checkout", d2, "admin"} {
		if !strings.Contains(errs, want) {
			t.Errorf("deploy refused with %q; want it to say %q", errs, want)
		}
	}
	code, out, errs = cliRun("deployments", "qa")
	if code != 0 {
		t.Fatalf("deployments: exit %d: %s", code, errs)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		// The refused upload's failed deployment says why, but is not
		// itself marked.
		if strings.HasPrefix(line, d2) != strings.Contains(line, "(quarantined)") {
			t.Errorf("deployments line %q: want only %s marked quarantined", line, d2)
		}
	}
	var shown struct {
		Quarantine *struct{ Reason, Actor string }
	}
	s.must(http.StatusOK, "GET", "/api/v1/apps/qa/deployments/"+d2, nil, &shown)
	if shown.Quarantine == nil || shown.Quarantine.Reason != "500s on checkout" {
		t.Errorf("GET deployment %s: quarantine %+v; want the reason", d2, shown.Quarantine)
	}

	if code, out, errs := cliRun("deploy", "qa", badZip, "--slot", "production", "--force"); code != 0 {
		t.Fatalf("deploy --force of the quarantined zip: exit %d: %s%s", code, out, errs)
	}
	if code, out, errs := cliRun("quarantine", "qa", d2, "--lift"); code != 0 {
		t.Fatalf("quarantine --lift: exit %d: %s%s", code, out, errs)
	}
	if code, out, errs := cliRun("deploy", "qa", badZip, "--slot", "production"); code != 0 {
		t.Fatalf("deploy after the quarantine was lifted: exit %d: %s%s", code, out, errs)
	}
}
