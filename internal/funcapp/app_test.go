package funcapp

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadGood(t *testing.T) {
	app, err := Load(filepath.Join("testdata", "apps", "good"))
	if err != nil {
		t.Fatal(err)
	}
	wantHost := &Host{ExecutablePath: "handler", Arguments: []string{"--port", "%PORT%"}, EnableForwarding: true, RoutePrefix: "api", Queues: DefaultQueueOptions()}
	if diff := cmp.Diff(app.Host, wantHost); diff != "" {
		t.Errorf("host mismatch (-got +want):\n%s", diff)
	}
	type summary struct {
		Name, Trigger, Route, Reason string
		Runnable, Forward            bool
	}
	var got []summary
	for _, f := range app.Functions {
		got = append(got, summary{f.Name, f.Trigger, f.Route, f.Reason, f.Runnable, f.Forward})
	}
	want := []summary{
		{Name: "Cleanup", Trigger: "timer", Runnable: true},
		{Name: "Hello", Trigger: "http", Route: "Hello", Runnable: true, Forward: true},
		{Name: "Products", Trigger: "http", Route: "products/{category:alpha}/{id:int?}", Runnable: true},
		{Name: "Worker", Trigger: "queue", Runnable: true},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("functions mismatch (-got +want):\n%s", diff)
	}
	if f := app.Function("hello"); f == nil || f.Name != "Hello" {
		t.Errorf(`Function("hello") = %v, want Hello`, f)
	}
}

func TestLoadBad(t *testing.T) {
	tests := []struct {
		dir  string
		want string
	}{
		{"nohost", `host.json is missing`},
		{"badhostjson", `host.json: invalid JSON at line 1, column 71: invalid character '}' looking for beginning of object key string`},
		{"missingexe", `host.json: customHandler.description.defaultExecutablePath "bin/handler" is not a file in the package (looked under the app root)`},
		{"badfunction", `Admin/function.json: binding "req": authLevel "root" is not one of anonymous, function, admin`},
		{"badroute", `Items/function.json: binding "req": route "items/{id": unbalanced braces: missing }`},
		{"badname", `my.func/function.json: function name "my.func": character '.' is not allowed (use letters, digits, _ and -)`},
		{"conflict", `functions "GetItem" and "ItemByName" both serve route "api/Items/{name}" for GET`},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			app, err := Load(filepath.Join("testdata", "apps", tc.dir))
			checkInvalid(t, err, tc.want)
			if app != nil {
				t.Errorf("app = %+v, want nil", app)
			}
		})
	}
}

// writeApp creates an app in a temporary directory from a map of slash
// paths to contents and returns the directory.
func writeApp(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	hostHandler = `{"customHandler": {"description": {"defaultExecutablePath": "handler"}}}`
	httpFn      = `{"bindings": [{"type": "httpTrigger", "name": "req"}]}`
)

func TestLoadTemp(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string // error; "" for success
		fns   int
	}{
		{"no functions", map[string]string{"host.json": hostHandler, "handler": "x"}, "", 0},
		{"command on PATH", map[string]string{"host.json": `{"customHandler": {"description": {"defaultExecutablePath": "sh", "arguments": ["run.sh"]}}}`}, "", 0},
		{"command not on PATH", map[string]string{"host.json": `{"customHandler": {"description": {"defaultExecutablePath": "no-such-command-hotswap"}}}`},
			`host.json: customHandler.description.defaultExecutablePath "no-such-command-hotswap" is neither a file in the package nor a command on PATH`, 0},
		{"executable in working directory", map[string]string{
			"host.json":  `{"customHandler": {"description": {"defaultExecutablePath": "server", "workingDirectory": "app"}}}`,
			"app/server": "x", "F/function.json": httpFn}, "", 1},
		{"executable in root with working directory", map[string]string{
			"host.json":  `{"customHandler": {"description": {"defaultExecutablePath": "bin/server", "workingDirectory": "app"}}}`,
			"bin/server": "x", "app/x": "x"}, "", 0},
		{"missing working directory", map[string]string{
			"host.json": `{"customHandler": {"description": {"defaultExecutablePath": "server", "workingDirectory": "app"}}}`, "server": "x"},
			`host.json: customHandler.description.workingDirectory "app" is not a directory in the package`, 0},
		{"executable is a directory", map[string]string{"host.json": hostHandler, "handler/x": "x"},
			`host.json: customHandler.description.defaultExecutablePath "handler": handler is not a regular file`, 0},
		{"bare name in working directory not found", map[string]string{
			"host.json": `{"customHandler": {"description": {"defaultExecutablePath": "./server", "workingDirectory": "app"}}}`, "app/x": "x"},
			`host.json: customHandler.description.defaultExecutablePath "./server" is not a file in the package (looked under the working directory "app" or the app root)`, 0},
		{"names differing in case", map[string]string{"host.json": hostHandler, "handler": "x",
			"Hello/function.json": `{"bindings": [{"type": "httpTrigger", "name": "req", "route": "a"}]}`,
			"hello/function.json": `{"bindings": [{"type": "httpTrigger", "name": "req", "route": "b"}]}`},
			`hello/function.json: function names "Hello" and "hello" differ only in case`, 0},
		{"same route, disjoint methods", map[string]string{"host.json": hostHandler, "handler": "x",
			"A/function.json": `{"bindings": [{"type": "httpTrigger", "name": "req", "route": "x/{id}", "methods": ["get"]}]}`,
			"B/function.json": `{"bindings": [{"type": "httpTrigger", "name": "req", "route": "X/{name}", "methods": ["post", "put"]}]}`}, "", 2},
		{"same route, one not runnable", map[string]string{"host.json": hostHandler, "handler": "x",
			"A/function.json": `{"bindings": [{"type": "httpTrigger", "name": "req", "route": "x"}]}`,
			"B/function.json": `{"bindings": [{"type": "httpTrigger", "name": "req", "route": "x"}, {"type": "queue", "direction": "out", "name": "q"}]}`}, "", 2},
		{"same route, all methods", map[string]string{"host.json": hostHandler, "handler": "x",
			"A/function.json": `{"bindings": [{"type": "httpTrigger", "name": "req", "route": "x"}]}`,
			"B/function.json": `{"bindings": [{"type": "httpTrigger", "name": "req", "route": "/X/"}]}`},
			`functions "A" and "B" both serve route "api/X" for all methods`, 0},
		{"default route equals another route", map[string]string{"host.json": hostHandler, "handler": "x",
			"Items/function.json": httpFn,
			"B/function.json":     `{"bindings": [{"type": "httpTrigger", "name": "req", "route": "items", "methods": ["delete"]}]}`},
			`functions "B" and "Items" both serve route "api/Items" for DELETE`, 0},
		{"function.json is a directory", map[string]string{"host.json": hostHandler, "handler": "x", "F/function.json/x": "x"},
			`F/function.json is not a regular file`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app, err := Load(writeApp(t, tc.files))
			if tc.want != "" {
				checkInvalid(t, err, tc.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(app.Functions); got != tc.fns {
				t.Errorf("got %d functions, want %d", got, tc.fns)
			}
		})
	}
}

func TestLoadSymlinkEscape(t *testing.T) {
	outside := writeApp(t, map[string]string{"handler": "x"})
	dir := writeApp(t, map[string]string{"host.json": hostHandler})
	if err := os.Symlink(filepath.Join(outside, "handler"), filepath.Join(dir, "handler")); err != nil {
		t.Skip(err)
	}
	_, err := Load(dir)
	checkInvalid(t, err, `host.json: customHandler.description.defaultExecutablePath "handler" is neither a file in the package nor a command on PATH`)
}
