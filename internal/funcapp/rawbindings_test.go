package funcapp

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRawBindings: every binding is kept as function.json has it, with the
// properties hotswap does not model (queueName, connection, path, and
// unknown ones), so the host admin API can return them.
func TestRawBindings(t *testing.T) {
	const fj = `{
  "bindings": [
    {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "function", "methods": ["post"], "x-custom": {"a": [1, 2]}},
    {"type": "queue", "direction": "out", "name": "msg", "queueName": "orders", "connection": "AzureWebJobsStorage"},
    {"type": "blob", "direction": "out", "name": "doc", "path": "docs/{rand-guid}.json", "connection": "Storage"},
    {"type": "http", "direction": "out", "name": "res"}
  ]
}`
	f, err := ParseFunction("Order", []byte(fj))
	if err != nil {
		t.Fatal(err)
	}
	var want struct{ Bindings []map[string]any }
	if err := json.Unmarshal([]byte(fj), &want); err != nil {
		t.Fatal(err)
	}
	if len(f.RawBindings) != len(f.Bindings) {
		t.Fatalf("%d raw bindings for %d bindings", len(f.RawBindings), len(f.Bindings))
	}
	var got []map[string]any
	for _, raw := range f.RawBindings {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("raw binding %s: %v", raw, err)
		}
		got = append(got, m)
	}
	if diff := cmp.Diff(got, want.Bindings); diff != "" {
		t.Errorf("raw bindings (-got +want):\n%s", diff)
	}
}
