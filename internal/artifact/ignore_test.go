package artifact

import (
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
