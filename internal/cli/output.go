package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Output formats (-o) and field selection (--query).

// outputFormats are the values -o takes.
var outputFormats = []string{"table", "wide", "json", "yaml"}

// queryHelp documents the --query syntax, in the flag's help.
const queryHelp = "print only the fields at `path` of the API's answer: a dotted path, [] for every element of a list, [N] for one (apps[].name, deployment.status, slots[0].url); one value per line, or JSON/YAML with -o json/yaml"

// printAnswer prints an API answer as -o and --query ask: the answer (or
// the selected fields) as JSON or YAML, or the selected values one per line.
func (x *cmdEnv) printAnswer(raw json.RawMessage) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil // 204: nothing to print
	}
	if x.query != "" {
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("server answered invalid JSON: %w", err)
		}
		sel, err := selectQuery(v, x.query)
		if err != nil {
			return err
		}
		switch x.format {
		case "json", "yaml":
			if raw, err = json.Marshal(sel); err != nil {
				return err
			}
		default:
			return printValues(x.stdout, sel, x.query)
		}
	}
	if x.format == "yaml" {
		return printYAML(x.stdout, raw)
	}
	return printJSON(x.stdout, raw)
}

// printValues prints the selected values one per line: strings as they
// are, objects and lists as compact JSON.
func printValues(w io.Writer, sel any, query string) error {
	vals, ok := sel.([]any)
	if !ok || !strings.Contains(query, "[]") && !strings.Contains(query, "[*]") {
		vals = []any{sel}
	}
	var b strings.Builder
	for _, v := range vals {
		switch v := v.(type) {
		case string:
			b.WriteString(v)
		case nil:
		case json.Number:
			b.WriteString(v.String())
		case bool:
			b.WriteString(strconv.FormatBool(v))
		default:
			data, err := json.Marshal(v)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// printYAML prints a JSON answer as YAML, keeping the order of its fields.
func printYAML(w io.Writer, raw json.RawMessage) error {
	var n yaml.Node
	if err := yaml.Unmarshal(raw, &n); err != nil { // JSON is YAML
		return fmt.Errorf("server answered invalid JSON: %w", err)
	}
	blockStyle(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return fmt.Errorf("write YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write YAML: %w", err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// blockStyle drops the JSON flow style and quoting, so that the encoder
// writes block YAML and quotes only the strings that need it.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// selectQuery returns the values at path in v. A path is a dotted list of
// field names, each optionally followed by [] (every element of the list)
// or [N] (element N); a leading "." and kubectl's {...} and [*] are
// accepted too. With [] the result is the list of the values found.
func selectQuery(v any, path string) (any, error) {
	p := strings.TrimSpace(path)
	p = strings.TrimSuffix(strings.TrimPrefix(p, "{"), "}")
	p = strings.ReplaceAll(strings.TrimPrefix(p, "."), "[*]", "[]")
	if p == "" {
		return v, nil
	}
	cur := []any{v}
	many := false
	var missing string // a field some object lacked, for the error
	for _, part := range strings.Split(p, ".") {
		name, index, _ := strings.Cut(part, "[")
		if name != "" {
			var next []any
			for _, c := range cur {
				obj, ok := c.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("--query %s: %q is not an object, so it has no field %q", path, shortJSON(c), name)
				}
				f, ok := obj[name]
				if !ok {
					if missing == "" {
						missing = fmt.Sprintf("--query %s: no field %q in the answer (fields there: %s)", path, name, fieldNames(obj))
					}
					continue
				}
				next = append(next, f)
			}
			cur = next
		}
		for index != "" {
			var sel string
			var ok bool
			sel, index, ok = strings.Cut(index, "]")
			if !ok {
				return nil, fmt.Errorf("--query %s: [ without ]", path)
			}
			index = strings.TrimPrefix(index, "[")
			var next []any
			for _, c := range cur {
				list, ok := c.([]any)
				if !ok {
					return nil, fmt.Errorf("--query %s: %q is not a list, so [%s] selects nothing", path, shortJSON(c), sel)
				}
				if sel == "" {
					many = true
					next = append(next, list...)
					continue
				}
				i, err := strconv.Atoi(sel)
				if err != nil {
					return nil, fmt.Errorf("--query %s: [%s] is not [] or [N]", path, sel)
				}
				if i < 0 {
					i += len(list)
				}
				if i >= 0 && i < len(list) {
					next = append(next, list[i])
				}
			}
			cur = next
		}
	}
	if len(cur) == 0 && missing != "" {
		return nil, fmt.Errorf("%s", missing)
	}
	if many {
		if cur == nil {
			cur = []any{}
		}
		return cur, nil
	}
	if len(cur) == 0 {
		return nil, nil
	}
	return cur[0], nil
}

func fieldNames(obj map[string]any) string {
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func shortJSON(v any) string {
	data, _ := json.Marshal(v)
	if len(data) > 40 {
		return string(data[:40]) + "..."
	}
	return string(data)
}
