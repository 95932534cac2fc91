// Package funcapp parses the Azure Functions custom-handler package layout
// (host.json at the root, one folder per function holding function.json),
// validates a whole function app, compiles ASP.NET-style route templates and
// NCRONTAB timer schedules, and resolves request paths to functions.
//
// Every validation error is a *hotswap.Error of kind hotswap.Invalid whose
// message names the file and the field at fault, so it can be shown to the
// user who deployed the package as is.
package funcapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"

	"github.com/hotswap/hotswap"
)

// DefaultRoutePrefix is the route prefix used when host.json sets none.
const DefaultRoutePrefix = "api"

// maxFileSize bounds host.json and function.json: they are small by nature
// and come from uploaded packages.
const maxFileSize = 1 << 20

// Host is the part of host.json that hotswap acts on.
type Host struct {
	ExecutablePath   string       // customHandler.description.defaultExecutablePath (required)
	WorkingDirectory string       // customHandler.description.workingDirectory, cleaned, relative to the app root; "" = root
	Arguments        []string     // customHandler.description.arguments, raw; %SETTING% is expanded later by ExpandArgs
	EnableForwarding bool         // customHandler.enableForwardingHttpRequest
	RoutePrefix      string       // extensions.http.routePrefix; "api" when absent, "" when explicitly empty; no leading or trailing slashes
	Queues           QueueOptions // extensions.queues, defaults filled in
}

type hostJSON struct {
	Version       *string `json:"version"`
	CustomHandler *struct {
		Description *struct {
			DefaultExecutablePath string   `json:"defaultExecutablePath"`
			WorkingDirectory      string   `json:"workingDirectory"`
			Arguments             []string `json:"arguments"`
		} `json:"description"`
		EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest"`
	} `json:"customHandler"`
	Extensions *struct {
		HTTP *struct {
			RoutePrefix *string `json:"routePrefix"`
		} `json:"http"`
		Queues *queuesJSON `json:"queues"`
	} `json:"extensions"`
}

// ParseHost parses and validates the content of host.json. Errors start with
// "host.json: " and name the field at fault. It checks only what can be
// checked without the package: Load also checks that the executable exists.
func ParseHost(data []byte) (*Host, error) {
	const file = "host.json"
	var j hostJSON
	if err := unmarshal(file, data, &j); err != nil {
		return nil, err
	}
	if j.Version != nil && *j.Version != "2.0" {
		return nil, hotswap.Errorf(hotswap.Invalid, "%s: version %q is not supported (want \"2.0\")", file, *j.Version)
	}
	if j.CustomHandler == nil {
		return nil, hotswap.Errorf(hotswap.Invalid, "%s: customHandler is missing", file)
	}
	d := j.CustomHandler.Description
	if d == nil {
		return nil, hotswap.Errorf(hotswap.Invalid, "%s: customHandler.description is missing", file)
	}
	h := &Host{
		ExecutablePath:   d.DefaultExecutablePath,
		Arguments:        d.Arguments,
		EnableForwarding: j.CustomHandler.EnableForwardingHTTPRequest,
		RoutePrefix:      DefaultRoutePrefix,
	}
	if strings.TrimSpace(h.ExecutablePath) == "" {
		return nil, hotswap.Errorf(hotswap.Invalid, "%s: customHandler.description.defaultExecutablePath is missing", file)
	}
	if strings.ContainsRune(h.ExecutablePath, 0) {
		return nil, hotswap.Errorf(hotswap.Invalid, "%s: customHandler.description.defaultExecutablePath %q contains a NUL byte", file, h.ExecutablePath)
	}
	wd := strings.ReplaceAll(d.WorkingDirectory, `\`, "/")
	if wd != "" {
		if path.IsAbs(wd) || strings.ContainsRune(wd, 0) {
			return nil, hotswap.Errorf(hotswap.Invalid, "%s: customHandler.description.workingDirectory %q must be a path relative to the app root", file, d.WorkingDirectory)
		}
		wd = path.Clean(wd)
		if wd == ".." || strings.HasPrefix(wd, "../") {
			return nil, hotswap.Errorf(hotswap.Invalid, "%s: customHandler.description.workingDirectory %q escapes the app root", file, d.WorkingDirectory)
		}
		if wd == "." {
			wd = ""
		}
	}
	h.WorkingDirectory = wd
	exe := strings.ReplaceAll(h.ExecutablePath, `\`, "/")
	if path.IsAbs(exe) {
		return nil, hotswap.Errorf(hotswap.Invalid, "%s: customHandler.description.defaultExecutablePath %q must be relative to the app root or a command name", file, h.ExecutablePath)
	}
	if len(executableCandidates(h)) == 0 {
		return nil, hotswap.Errorf(hotswap.Invalid, "%s: customHandler.description.defaultExecutablePath %q escapes the app root", file, h.ExecutablePath)
	}
	for i, a := range h.Arguments {
		if strings.ContainsRune(a, 0) {
			return nil, hotswap.Errorf(hotswap.Invalid, "%s: customHandler.description.arguments[%d] contains a NUL byte", file, i)
		}
	}
	if j.Extensions != nil && j.Extensions.HTTP != nil && j.Extensions.HTTP.RoutePrefix != nil {
		p, err := cleanPrefix(*j.Extensions.HTTP.RoutePrefix)
		if err != nil {
			return nil, hotswap.Errorf(hotswap.Invalid, "%s: extensions.http.routePrefix %s", file, err)
		}
		h.RoutePrefix = p
	}
	var q *queuesJSON
	if j.Extensions != nil {
		q = j.Extensions.Queues
	}
	qo, err := parseQueues(q)
	if err != nil {
		return nil, hotswap.Errorf(hotswap.Invalid, "%s: %s", file, err)
	}
	h.Queues = qo
	return h, nil
}

// executableCandidates returns the slash-separated paths, relative to the app
// root, where the executable may be: under the working directory first, then
// under the root. Paths that would escape the root are left out.
func executableCandidates(h *Host) []string {
	exe := strings.ReplaceAll(h.ExecutablePath, `\`, "/")
	var out []string
	for _, p := range []string{path.Join(h.WorkingDirectory, exe), path.Clean(exe)} {
		if p == "." || p == ".." || strings.HasPrefix(p, "../") || path.IsAbs(p) {
			continue
		}
		if len(out) == 0 || out[0] != p {
			out = append(out, p)
		}
	}
	return out
}

// cleanPrefix validates a route prefix and strips its leading and trailing
// slashes. The returned error completes a sentence about the prefix.
func cleanPrefix(p string) (string, error) {
	s := strings.Trim(p, "/")
	if s == "" {
		return "", nil
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "" {
			return "", fmt.Errorf("%q has an empty segment", p)
		}
		if i := strings.IndexAny(seg, "{}?#%\\ \t\r\n\x00"); i >= 0 {
			return "", fmt.Errorf("%q: character %q is not allowed", p, seg[i])
		}
	}
	return s, nil
}

// ExpandArgs returns a copy of args where every %NAME% is replaced by the
// value lookup reports for NAME; an unknown %NAME% is left as is, and "%%"
// stands for a single "%". It is how host.json arguments refer to app settings.
func ExpandArgs(args []string, lookup func(string) (string, bool)) []string {
	if args == nil {
		return nil
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = expand(a, lookup)
	}
	return out
}

func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		j := strings.IndexByte(s, '%')
		if j < 0 {
			// A lone '%' with no closing one is kept.
			b.WriteByte('%')
			b.WriteString(s)
			return b.String()
		}
		name := s[:j]
		s = s[j+1:]
		if name == "" {
			b.WriteByte('%')
			continue
		}
		if v, ok := lookup(name); ok {
			b.WriteString(v)
		} else {
			b.WriteString("%" + name + "%")
		}
	}
}

// unmarshal decodes a JSON object and turns decoding errors into Invalid
// errors naming file and, for type mismatches, the field.
func unmarshal(file string, data []byte, v any) error {
	if len(data) > maxFileSize {
		return hotswap.Errorf(hotswap.Invalid, "%s: file is larger than %d bytes", file, maxFileSize)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return hotswap.Errorf(hotswap.Invalid, "%s: file is empty", file)
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// Offset counts the bytes read, including the offending one.
		line, col := position(data, syn.Offset-1)
		return hotswap.Errorf(hotswap.Invalid, "%s: invalid JSON at line %d, column %d: %s", file, line, col, syn.Error())
	case errors.As(err, &typ):
		if typ.Field == "" {
			return hotswap.Errorf(hotswap.Invalid, "%s: want a JSON object, got %s", file, typ.Value)
		}
		return hotswap.Errorf(hotswap.Invalid, "%s: %s: want %s, got %s", file, typ.Field, kindName(typ.Type), typ.Value)
	}
	return hotswap.Errorf(hotswap.Invalid, "%s: invalid JSON: %s", file, err)
}

func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}

// position converts a byte offset into a 1-based line and column.
func position(data []byte, off int64) (line, col int) {
	off = max(0, min(off, int64(len(data))))
	line, col = 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
