package artifact

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestIgnoreMatch(t *testing.T) {
	tests := []struct {
		patterns string
		path     string
		dir      bool
		want     bool
	}{
		{"*.ts", "a.ts", false, true},
		{"*.ts", "src/deep/a.ts", false, true},
		{"*.ts\n!keep.ts", "keep.ts", false, false},
		{"*.ts\n!keep.ts", "src/keep.ts", false, false},
		{"/notes.md", "notes.md", false, true},
		{"/notes.md", "docs/notes.md", false, false},
		{"test/", "test", true, true},
		{"test/", "test", false, false}, // a file named test
		{"test/", "a/test", true, true},
		{"docs/*.md", "docs/a.md", false, true},
		{"docs/*.md", "docs/x/a.md", false, false},
		{"docs/*.md", "x/docs/a.md", false, false}, // a slash anchors
		{"**/obj", "obj", true, true},
		{"**/obj", "a/b/obj", true, true},
		{"out/**", "out/a/b", false, true},
		{"a/**/z", "a/z", false, true},
		{"a/**/z", "a/b/c/z", false, true},
		{"?.js", "a.js", false, true},
		{"?.js", "ab.js", false, false},
		{"[ab].js", "b.js", false, true},
		{"[!ab].js", "b.js", false, false},
		{"[!ab].js", "c.js", false, true},
		{`\#x`, "#x", false, true},
		{`\!x`, "!x", false, true},
		{"# only a comment\n\n", "x", false, false},
		{"local.settings.json", "local.settings.json", false, true},
		{".vscode", ".vscode", true, true},
		{"*.py[cod]", "x.pyc", false, true},
		{"a.b", "axb", false, false}, // the dot is literal
		// Whitespace around a pattern goes, as Core Tools trims it, so a
		// stray tab or indent does not publish the secrets it names.
		{"secrets.json\t", "secrets.json", false, true},
		{"secrets.json \t \r", "secrets.json", false, true},
		{"  secrets.json", "secrets.json", false, true},
		{"\tsecrets.json", "secrets.json", false, true},
		{"x\\ ", "x ", false, true}, // an escaped trailing space stays
		{"x\\ ", "x", false, false},
		{"  # comment", "# comment", false, false},
		{"\uFEFFsecrets.json\nother", "secrets.json", false, true},
		{"\uFEFF# comment\nx", "x", false, true},
		// Core Tools matches prefixes from the root: what begins with a
		// pattern is left out too.
		{".env", ".env.production", false, true},
		{".env", ".env", false, true},
		{".env", "sub/.env", false, true},
		{".env", ".environment", true, true},
		{".env\n!.env.example", ".env.example", false, false},
		{".env\n!.env.example", ".env.local", false, true},
		{"*.ts", "a.tsx", false, true},
		{"secrets/*.json", "secrets/a.json.bak", false, true},
		{"test/", "testing", true, false}, // folder-only rules stay exact
		{"!x", "xy", false, false},
	}
	for _, tc := range tests {
		ig, err := ParseIgnore(strings.NewReader(tc.patterns))
		if err != nil {
			t.Fatalf("ParseIgnore(%q): %v", tc.patterns, err)
		}
		if got := ig.Match(tc.path, tc.dir); got != tc.want {
			t.Errorf("patterns %q: Match(%q, dir=%t) = %t, want %t", tc.patterns, tc.path, tc.dir, got, tc.want)
		}
	}
}

func TestZipProjectNeverPackaged(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"host.json":                        "{}",
		"app/main.js":                      "x",
		"local.settings.json":              "secret",
		"sub/local.settings.json":          "secret",
		"Local.Settings.JSON":              "secret",
		"sub/LOCAL.SETTINGS.JSON":          "secret",
		".vscode/settings.json":            "{}",
		"sub/.vscode/launch.json":          "{}",
		".git/config":                      "x",
		"sub/.git/config":                  "x",
		"sub/.GIT/config":                  "x",
		".env.production":                  "secret",
		"secrets.json":                     "secret",
		"keys/secrets.json":                "secret",
		"local.settings.json.example/keep": "x",
		IgnoreFile:                         "\uFEFF.env\nsecrets.json\t\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := ZipProject(dir, &buf); err != nil {
		t.Fatalf("ZipProject: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, "/") {
			got = append(got, f.Name)
		}
	}
	slices.Sort(got)
	want := []string{IgnoreFile, "app/main.js", "host.json", "local.settings.json.example/keep"}
	if !slices.Equal(got, want) {
		t.Errorf("packaged %q, want %q", got, want)
	}
}

func TestParseIgnoreError(t *testing.T) {
	_, err := ParseIgnore(strings.NewReader("ok\n[unclosed\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err = %v, want one naming line 2", err)
	}
}

func FuzzParseIgnore(f *testing.F) {
	f.Add("*.ts\n!keep.ts\ntest/\n/notes.md\n", "src/a.ts")
	f.Add("**/obj\nout/**\na/**/z\n[!ab].js\n\\#x\n", "a/b/obj")
	f.Fuzz(func(t *testing.T, patterns, path string) {
		ig, err := ParseIgnore(strings.NewReader(patterns))
		if err != nil {
			return
		}
		ig.Match(path, false)
		ig.Match(path, true)
	})
}
