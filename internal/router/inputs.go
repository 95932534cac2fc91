package router

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"

	"github.com/hotswap/hotswap/internal/binding"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// httpBindingValues are the names an HTTP trigger binds for the binding
// expressions of a function's other bindings, as the Azure Functions host
// binds them: the top-level string, number and boolean properties of a JSON
// object body, then the query as {Query.name} (and as {name}, which route
// parameters and body properties win over), then the route parameters,
// which win over everything.
func httpBindingValues(params, query map[string]string, body []byte) map[string]string {
	vals := make(map[string]string, len(params)+2*len(query))
	for k, v := range query {
		vals[k] = v
		vals["Query."+k] = v
	}
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '{' {
		var obj map[string]json.RawMessage
		if json.Unmarshal(b, &obj) == nil {
			for k, raw := range obj {
				if v, ok := scalar(raw); ok {
					vals[k] = v
				}
			}
		}
	}
	for k, v := range params {
		vals[k] = v
	}
	return vals
}

// scalar is a JSON string, number or boolean as the text it binds.
func scalar(raw json.RawMessage) (string, bool) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		return string(bytes.TrimSpace(raw)), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// readInputs reads fn's blob input bindings for one payload-mode
// invocation, each at most the payload body limit; nil when fn has none.
func (h *Handler) readInputs(ctx context.Context, s *Slot, fn *funcapp.Function, vals map[string]string) (map[string]json.RawMessage, error) {
	if len(fn.Inputs) == 0 {
		return nil, nil
	}
	in := make(map[string]json.RawMessage, len(fn.Inputs))
	if err := binding.ReadInputs(ctx, fn, s.Settings, vals, h.maxBody, in); err != nil {
		return nil, err
	}
	return in, nil
}
