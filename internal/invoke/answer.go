package invoke

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// span is a JSON value as it appears in a handler's answer. Unmarshal hands
// UnmarshalJSON a slice of the input, and span keeps that slice instead of
// copying it (as json.RawMessage would), so the answer is held once however
// deeply it is read. The answer buffer belongs to the invocation; nothing
// else reuses it.
type span []byte

// UnmarshalJSON implements json.Unmarshaler without copying.
func (s *span) UnmarshalJSON(b []byte) error {
	*s = b
	return nil
}

func (s span) null() bool { return Null(json.RawMessage(s)) }

// Null reports whether raw is absent or JSON null: an output with no value.
func Null(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// answer is what a handler answers in payload mode.
type answer struct {
	Outputs     map[string]span `json:"Outputs"`
	Logs        []string        `json:"Logs"`
	ReturnValue span            `json:"ReturnValue"`
}

// httpOutput is an http output binding's value. BodyEncoding "base64" marks
// a binary body sent as a base64 string, as the host sends binary request
// bodies.
type httpOutput struct {
	StatusCode   span           `json:"statusCode"`
	Status       span           `json:"status"`
	Body         span           `json:"body"`
	BodyEncoding string         `json:"bodyEncoding"`
	Headers      map[string]any `json:"headers"`
}

// ParseAnswer reads a handler's answer in payload mode:
//
//	{"Outputs":{"<binding>":<value>,...},"Logs":["..."],"ReturnValue":<value>}
//
// The values it returns are slices of b, not copies, and DecodeHTTPOutput
// may change them in place later: b belongs to the result.
func ParseAnswer(b []byte) (Result, error) {
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		return Result{}, err
	}
	r := Result{Logs: a.Logs, ReturnValue: json.RawMessage(a.ReturnValue)}
	if a.Outputs != nil {
		r.Outputs = make(map[string]json.RawMessage, len(a.Outputs))
		for k, v := range a.Outputs {
			r.Outputs[k] = json.RawMessage(v)
		}
	}
	return r, nil
}

// Output returns the value of the output binding name: ReturnValue for
// "$return", else Outputs[name]; nil when the handler gave none.
func (r Result) Output(name string) json.RawMessage {
	if name == "$return" {
		return r.ReturnValue
	}
	return r.Outputs[name]
}

// DecodeHTTPOutput reads an http output binding value: statusCode (number or
// string, default 200; "status" is accepted too), headers (string or list
// values), and body: a string as is, or decoded from base64 when
// bodyEncoding is "base64"; any other JSON value is sent as JSON, with a JSON
// content type. The body is decoded in place in raw, which it returns a
// slice of.
func DecodeHTTPOutput(raw json.RawMessage) (int, http.Header, []byte, error) {
	var o httpOutput
	if err := json.Unmarshal(raw, &o); err != nil {
		return 0, nil, nil, fmt.Errorf("not an object with statusCode, headers and body: %w", err)
	}
	status := http.StatusOK
	code := o.StatusCode
	if code.null() {
		code = o.Status
	}
	if !code.null() {
		s := string(code)
		if len(s) >= 2 && s[0] == '"' {
			var err error
			if s, err = strconv.Unquote(s); err != nil {
				return 0, nil, nil, fmt.Errorf("statusCode %.40s is not an HTTP status", code)
			}
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 || n > 999 {
			return 0, nil, nil, fmt.Errorf("statusCode %.40s is not an HTTP status", code)
		}
		status = n
	}
	hdr := make(http.Header, len(o.Headers))
	for k, v := range o.Headers {
		switch v := v.(type) {
		case string:
			hdr.Add(k, v)
		case []any:
			for _, e := range v {
				hdr.Add(k, fmt.Sprint(e))
			}
		case nil:
		default:
			hdr.Add(k, fmt.Sprint(v))
		}
	}
	var body []byte
	switch {
	case o.Body.null():
	case o.Body[0] == '"':
		body = unquoteInPlace(o.Body)
		switch o.BodyEncoding {
		case "", "utf8", "utf-8":
		case "base64":
			var err error
			if body, err = base64InPlace(body); err != nil {
				return 0, nil, nil, fmt.Errorf("body is not base64 (bodyEncoding is base64): %w", err)
			}
		default:
			return 0, nil, nil, fmt.Errorf("bodyEncoding %q is not base64", o.BodyEncoding)
		}
	default:
		if o.BodyEncoding != "" {
			return 0, nil, nil, errors.New("bodyEncoding is set but body is not a string")
		}
		body = o.Body
		if hdr.Get("Content-Type") == "" {
			hdr.Set("Content-Type", "application/json; charset=utf-8")
		}
	}
	return status, hdr, body, nil
}

// unquoteInPlace decodes the JSON string q (quotes included, already
// validated by Unmarshal) into q's own bytes and returns the decoded prefix:
// an unescaped string is never longer than its escaped form. Unpaired
// surrogate escapes become U+FFFD, as with encoding/json; raw bytes that are
// not UTF-8 (not JSON, but what a careless handler writes) pass through
// unchanged instead of becoming U+FFFD, so no byte is lost.
func unquoteInPlace(q []byte) []byte {
	s := q[1 : len(q)-1]
	r := bytes.IndexByte(s, '\\')
	if r < 0 {
		return s
	}
	w := r
	for r < len(s) {
		c := s[r]
		if c != '\\' || r+1 >= len(s) {
			s[w] = c
			w++
			r++
			continue
		}
		e := s[r+1]
		if e != 'u' {
			s[w] = unescapeByte(e)
			w++
			r += 2
			continue
		}
		rn := hex4(s[r+2:])
		r += 6
		if rn < 0 {
			rn = utf8.RuneError
		} else if utf16.IsSurrogate(rn) {
			rn2 := rune(-1)
			if r+6 <= len(s) && s[r] == '\\' && s[r+1] == 'u' {
				rn2 = hex4(s[r+2:])
			}
			if dec := utf16.DecodeRune(rn, rn2); dec != utf8.RuneError {
				rn = dec
				r += 6
			} else {
				rn = utf8.RuneError
			}
		}
		w += utf8.EncodeRune(s[w:], rn)
	}
	return s[:w]
}

// hex4 reads four hex digits (validated by Unmarshal); -1 if they are not.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

func unescapeByte(e byte) byte {
	switch e {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return e // '"', '\\', '/'
}

// base64InPlace decodes standard base64 (line breaks allowed) from b into
// b's own bytes and returns the decoded prefix. Each chunk is read before
// its decoded bytes, fewer than it, are written behind it.
func base64InPlace(b []byte) ([]byte, error) {
	// Drop line breaks first, so chunks are whole 4-byte groups.
	n := 0
	for _, c := range b {
		if c != '\r' && c != '\n' {
			b[n] = c
			n++
		}
	}
	b = b[:n]
	var tmp [3 << 10]byte
	w := 0
	for r := 0; r < len(b); {
		end := min(r+4<<10, len(b))
		m, err := base64.StdEncoding.Decode(tmp[:], b[r:end])
		if err != nil {
			if ce, ok := err.(base64.CorruptInputError); ok {
				return nil, fmt.Errorf("at byte %d: %w", int64(r)+int64(ce), base64.CorruptInputError(int64(r)+int64(ce)))
			}
			return nil, err
		}
		w += copy(b[w:], tmp[:m])
		r = end
	}
	return b[:w], nil
}
