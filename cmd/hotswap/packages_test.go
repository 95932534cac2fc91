package main

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// zipEntry is one entry of a hand-made zip.
type zipEntry struct {
	name    string
	body    string
	mode    fs.FileMode
	symlink bool
}

func makeZip(t testing.TB, entries []zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		if e.symlink {
			mode = fs.ModeSymlink | 0o777
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// packageEntries returns the goforward example (handler built) as zip
// entries, so a test can break one thing in an otherwise valid package.
func packageEntries(t testing.TB) []zipEntry {
	t.Helper()
	dir := examplePackage(t, "goforward")
	var out []zipEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		out = append(out, zipEntry{name: filepath.ToSlash(rel), body: string(b), mode: info.Mode().Perm()})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func replaceEntry(entries []zipEntry, name, body string) []zipEntry {
	out := make([]zipEntry, 0, len(entries))
	for _, e := range entries {
		if e.name == name {
			if body == "\x00remove" {
				continue
			}
			e.body = body
		}
		out = append(out, e)
	}
	return out
}

const httpFn = `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req","authLevel":"anonymous","methods":["get"],"route":"%s"},{"type":"http","direction":"out","name":"res"}]}`

// TestBadPackages deploys broken packages over a good one: each is refused
// with an error naming the file and the problem, and the slot keeps serving
// the good deployment; nothing of the bad package stays on disk.
func TestBadPackages(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	s := startServerWith(t, dataDir, func(m *Main) {
		m.Config.MaxPackageBytes = 32 << 20
		m.Config.MaxPackageFiles = 100
	})
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "shop"}, nil)
	good := s.deploy("shop", "production", zipDir(t, examplePackage(t, "goforward")))
	base := packageEntries(t)
	packagesBefore := listDir(t, filepath.Join(dataDir, "packages"))

	many := append([]zipEntry{}, base...)
	for i := range 120 {
		many = append(many, zipEntry{name: "junk/" + strings.Repeat("x", 3) + string(rune('a'+i%26)) + strings.Repeat("y", i/26), body: "x"})
	}
	tests := []struct {
		name string
		zip  []byte
		want []string // substrings of the error message
	}{
		{"not a zip", []byte("this is not a zip file at all"), []string{"zip"}},
		{"truncated zip", zipDir(t, examplePackage(t, "goforward"))[:2000], []string{"zip"}},
		{"parent path", makeZip(t, append(base, zipEntry{name: "../evil.txt", body: "x"})), []string{"../evil.txt"}},
		{"absolute path", makeZip(t, append(base, zipEntry{name: "/etc/evil", body: "x"})), []string{"/etc/evil"}},
		{"link outside", makeZip(t, append(base, zipEntry{name: "passwd", body: "../../../../etc/passwd", symlink: true})), []string{"passwd", "outside"}},
		{"too many files", makeZip(t, many), []string{"100"}},
		{"too large", bytes.Repeat([]byte("z"), 33<<20), []string{"larger than the limit of 33554432 bytes"}},
		{"missing host.json", makeZip(t, replaceEntry(base, "host.json", "\x00remove")), []string{"host.json"}},
		{"invalid host.json", makeZip(t, replaceEntry(base, "host.json", `{"customHandler": [`)), []string{"host.json"}},
		{"host.json without executable", makeZip(t, replaceEntry(base, "host.json", `{"version":"2.0","customHandler":{"description":{}}}`)), []string{"host.json", "defaultExecutablePath"}},
		{"missing executable", makeZip(t, replaceEntry(base, "handler", "\x00remove")), []string{"handler"}},
		{"invalid function.json", makeZip(t, replaceEntry(base, "hello/function.json", `{"bindings": 7}`)), []string{"hello/function.json"}},
		{"bad route template", makeZip(t, replaceEntry(base, "hello/function.json", strings.Replace(httpFn, "%s", "a/{id:nosuch}", 1))), []string{"hello/function.json"}},
		{"two functions one route", makeZip(t, replaceEntry(base, "hello/function.json", strings.Replace(httpFn, "%s", "health", 1))), []string{"health", "hello"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var res struct {
				Error struct{ Kind, Message string }
			}
			status := s.call("POST", "/api/v1/apps/shop/slots/production/deploy", tc.zip, &res)
			want := http.StatusBadRequest
			if tc.name == "too large" {
				want = http.StatusRequestEntityTooLarge // like Spool and the Kudu pre-check
			}
			if status != want {
				t.Fatalf("status = %d, want %d (%+v)", status, want, res)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.Error.Message, w) {
					t.Errorf("message %q does not mention %q", res.Error.Message, w)
				}
			}
			t.Logf("message: %s", res.Error.Message)
			var slot struct{ DeploymentID string }
			s.must(http.StatusOK, "GET", "/api/v1/apps/shop/slots/production", nil, &slot)
			if slot.DeploymentID != good {
				t.Errorf("slot points at %q, want the good deployment %q", slot.DeploymentID, good)
			}
			if resp, _ := s.fn("GET", "shop.localhost", "/api/health", nil, nil); resp.StatusCode != 200 {
				t.Errorf("the good deployment stopped serving: %d", resp.StatusCode)
			}
			if got := listDir(t, filepath.Join(dataDir, "packages")); strings.Join(got, ",") != strings.Join(packagesBefore, ",") {
				t.Errorf("package store changed: %v, was %v", got, packagesBefore)
			}
			if tmp := listDir(t, filepath.Join(dataDir, "packages", "tmp")); len(tmp) != 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}

	t.Run("unsupported trigger is listed, the rest works", func(t *testing.T) {
		entries := append(append([]zipEntry{}, base...), zipEntry{name: "onqueue/function.json",
			body: `{"bindings":[{"type":"eventHubTrigger","direction":"in","name":"msg","eventHubName":"orders"}]}`})
		s.deploy("shop", "production", makeZip(t, entries))
		var fn struct {
			Runnable bool
			Reason   string
		}
		s.must(http.StatusOK, "GET", "/api/v1/apps/shop/slots/production/functions/onqueue", nil, &fn)
		if fn.Runnable || !strings.Contains(fn.Reason, "eventHubTrigger") {
			t.Errorf("onqueue = %+v, want not runnable naming eventHubTrigger", fn)
		}
		if resp, _ := s.fn("GET", "shop.localhost", "/api/health", nil, nil); resp.StatusCode != 200 {
			t.Errorf("health = %d, want 200", resp.StatusCode)
		}
	})
}

func listDir(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
