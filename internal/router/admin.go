package router

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/apierr"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// admin serves the Azure-shaped host admin API on a slot's host name. Every
// endpoint needs the slot's master key.
func (h *Handler) admin(w http.ResponseWriter, r *http.Request, s *Slot) {
	if s.Keys.Level("", RequestKey(r)) < LevelAdmin {
		unauthorized(w)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")[1:] // drop "admin"
	switch {
	case len(parts) == 2 && parts[0] == "host" && parts[1] == "status":
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		state := "Running"
		if s.Upstream == nil {
			state = "Default" // nothing deployed
		} else if _, ok := s.Upstream.Addr(); !ok {
			state = "Error"
		}
		uptime := int64(0)
		if !s.Started.IsZero() {
			uptime = time.Since(s.Started).Milliseconds()
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id":            hotswap.HostLabel(s.App, s.Name),
			"state":         state,
			"version":       h.version,
			"deployment":    s.Deployment,
			"processUptime": uptime,
		})
	case len(parts) == 1 && parts[0] == "functions":
		h.adminFunctions(w, r, s)
	case len(parts) >= 2 && parts[0] == "host" && parts[1] == "keys":
		h.adminKeys(w, r, s, hotswap.ScopeHost, "", parts[2:])
	case len(parts) >= 3 && parts[0] == "host" && parts[1] == "systemkeys":
		h.adminKeys(w, r, s, hotswap.ScopeHost, "", parts[2:])
	case len(parts) >= 3 && parts[0] == "functions" && parts[2] == "keys":
		fn := parts[1]
		if s.Package == nil || !hasFunction(s, fn) {
			http.Error(w, "function not found", http.StatusNotFound)
			return
		}
		h.adminKeys(w, r, s, hotswap.ScopeFunction, fn, parts[3:])
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func hasFunction(s *Slot, name string) bool {
	for _, f := range s.Package.Functions {
		if f.Name == name {
			return true
		}
	}
	return false
}

type keyJSON struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

func (h *Handler) adminFunctions(w http.ResponseWriter, r *http.Request, s *Slot) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	type fnJSON struct {
		Name              string         `json:"name"`
		InvokeURLTemplate string         `json:"invoke_url_template,omitempty"`
		Language          string         `json:"language"`
		Config            map[string]any `json:"config"`
		IsDisabled        bool           `json:"isDisabled"`
		Runnable          bool           `json:"runnable"`
		Reason            string         `json:"reason,omitempty"`
		Listener          any            `json:"listener,omitempty"` // queue and blob triggers
	}
	out := []fnJSON{}
	var listeners map[string]any
	if h.listeners != nil {
		listeners = h.listeners.Listeners(s.App, s.Name)
	}
	if s.Package != nil {
		prefix := s.Package.Host.RoutePrefix
		for _, f := range s.Package.Functions {
			j := fnJSON{
				Name:       f.Name,
				Language:   "custom",
				Config:     map[string]any{"bindings": bindingsJSON(f)},
				IsDisabled: s.Disabled[f.Name],
				Runnable:   f.Runnable,
				Reason:     f.Reason,
			}
			if why, broken := s.Broken[f.Name]; broken && f.Runnable {
				j.Runnable, j.Reason = false, why
			}
			if f.Trigger == "http" {
				j.InvokeURLTemplate = InvokeURL(s.BaseURL, prefix, f.Route)
			}
			if l, ok := listeners[f.Name]; ok {
				j.Listener = l
			}
			out = append(out, j)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// bindingsJSON is a function's bindings exactly as its function.json has
// them, as the Azure host returns them.
func bindingsJSON(f *funcapp.Function) any {
	if f.RawBindings == nil {
		return f.Bindings // built in code, not parsed from a file
	}
	return f.RawBindings
}

// InvokeURL joins a slot's base URL, route prefix and route template.
func InvokeURL(base, prefix, route string) string {
	u := base + "/"
	if prefix != "" {
		u += prefix + "/"
	}
	return u + strings.TrimPrefix(route, "/")
}

func (h *Handler) adminKeys(w http.ResponseWriter, r *http.Request, s *Slot, scope, fn string, rest []string) {
	self := s.BaseURL + strings.TrimSuffix(r.URL.Path, "/")
	if len(rest) == 0 {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		keys := []keyJSON{}
		for _, k := range s.Keys.All() {
			if k.Scope == scope && k.Function == fn {
				keys = append(keys, keyJSON{k.Name, k.Value})
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": keys, "links": []link{{"self", self}}})
		return
	}
	if len(rest) != 1 {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	name := rest[0]
	if name == hotswap.MasterKeyName && scope == hotswap.ScopeHost {
		scope = hotswap.ScopeMaster
	}
	find := func() (hotswap.Key, bool) {
		for _, k := range s.Keys.All() {
			if k.Scope == scope && k.Function == fn && k.Name == name {
				return k, true
			}
		}
		return hotswap.Key{}, false
	}
	switch r.Method {
	case http.MethodGet:
		k, ok := find()
		if !ok {
			http.Error(w, "key not found", http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": k.Name, "value": k.Value, "links": []link{{"self", self}}})
	case http.MethodPut, http.MethodPost:
		if h.keys == nil {
			http.Error(w, "key changes are not available", http.StatusNotImplemented)
			return
		}
		var in keyJSON
		if r.Method == http.MethodPut {
			dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
			if err := dec.Decode(&in); err != nil {
				http.Error(w, "body must be JSON {\"name\":..., \"value\":...}", http.StatusBadRequest)
				return
			}
			if in.Name != "" && in.Name != name {
				http.Error(w, "body name does not match the key name in the path", http.StatusBadRequest)
				return
			}
		}
		_, existed := find()
		k, err := h.keys.PutKey(r.Context(), s.App, s.Name, hotswap.Key{Scope: scope, Function: fn, Name: name, Value: in.Value})
		if err != nil {
			writeError(w, err)
			return
		}
		status := http.StatusOK
		if !existed {
			status = http.StatusCreated
		}
		writeJSON(w, status, map[string]any{"name": k.Name, "value": k.Value, "links": []link{{"self", self}}})
	case http.MethodDelete:
		if h.keys == nil {
			http.Error(w, "key changes are not available", http.StatusNotImplemented)
			return
		}
		if err := h.keys.DeleteKey(r.Context(), s.App, s.Name, scope, fn, name); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) { apierr.Text(w, err) }
