package ops

import (
	"context"
	"encoding/json"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/binding"
	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/invoke"
	"github.com/hotswap/hotswap/internal/trigger"
)

// OutputWriter writes an invocation's queue and blob outputs (see
// funcapp.Function.Outputs) with the slot's app settings; vals are the
// names the trigger bound, for binding expressions.
type OutputWriter interface {
	WriteOutputs(ctx context.Context, app *funcapp.App, settings map[string]string, fn *funcapp.Function, res invoke.Result, vals map[string]string) error
}

// settingsMap returns the app settings by name, a new map: it is published
// in routing tables, never written afterwards.
func settingsMap(settings []hotswap.Setting) map[string]string {
	m := make(map[string]string, len(settings))
	for _, st := range settings {
		m[st.Name] = st.Value
	}
	return m
}

// broken returns the functions of pkg that cannot run under the settings
// (an output binding's or a queue or blob trigger's connection missing or
// invalid), with the reason; the deployment itself stands.
func broken(pkg *funcapp.App, settings map[string]string) map[string]string {
	m := binding.Reasons(pkg, settings)
	for name, why := range trigger.Reasons(pkg, settings) {
		if m == nil {
			m = make(map[string]string)
		}
		if _, ok := m[name]; !ok {
			m[name] = why
		}
	}
	return m
}

// jsonRaw marshals v for invocation data; v is built here, so it always
// marshals.
func jsonRaw(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
