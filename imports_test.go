package hotswap_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportRules keeps the layering of the wtf/litestream shape: the domain
// (this package) imports only the standard library, and no package but the
// binary's main, the stores themselves and their test support imports a store
// package, so ops, release and the faces (httpapi, portal, cli) work with
// either store through their own small interfaces.
func TestImportRules(t *testing.T) {
	const module = "github.com/hotswap/hotswap"
	stores := map[string]bool{module + "/internal/sqlite": true, module + "/internal/postgres": true}
	mayImportStores := map[string]bool{
		".": false, "cmd/hotswap": true, "bench": true,
		"internal/sqlite": true, "internal/postgres": true, "internal/storetest": true, "internal/pgtest": true,
	}
	checked := 0
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata" || d.Name() == "examples" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			checked++
			if dir == "." && strings.Contains(strings.Split(p, "/")[0], ".") {
				t.Errorf("%s: the domain package imports %s; it may import only the standard library", path, p)
			}
			if stores[p] && !mayImportStores[dir] {
				t.Errorf("%s imports the store package %s; declare the methods it needs as an interface instead", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d imports; is the walk rooted at the module?", checked)
	}
}
