package invoke

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeHTTPOutput(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\xff\xfe binary")
	long := bytes.Repeat([]byte{0, 1, 2, 250, 251, 252, 253}, 3000)
	for _, tc := range []struct {
		name   string
		raw    string
		status int
		hdr    http.Header
		body   []byte
		err    string
	}{
		{name: "string body", raw: `{"statusCode":201,"body":"hi","headers":{"X-A":"1","X-B":["2","3"]}}`,
			status: 201, hdr: http.Header{"X-A": {"1"}, "X-B": {"2", "3"}}, body: []byte("hi")},
		{name: "status as string", raw: `{"statusCode":"404","body":""}`, status: 404, hdr: http.Header{}},
		{name: "status field", raw: `{"status":202}`, status: 202, hdr: http.Header{}},
		{name: "default status", raw: `{"body":"x"}`, status: 200, hdr: http.Header{}, body: []byte("x")},
		{name: "escapes", raw: `{"body":"a\"b\\c\/d\n\t\u00e9\u2713\ud834\udd1e\u0000 \ud800x"}`,
			status: 200, hdr: http.Header{}, body: []byte("a\"b\\c/d\n\té✓𝄞\x00 \uFFFDx")},
		{name: "raw bytes that are not utf-8 pass", raw: "{\"body\":\"a\xffb\"}", status: 200, hdr: http.Header{}, body: []byte("a\xffb")},
		{name: "base64", raw: `{"body":"` + base64.StdEncoding.EncodeToString(png) + `","bodyEncoding":"base64","headers":{"Content-Type":"image/png"}}`,
			status: 200, hdr: http.Header{"Content-Type": {"image/png"}}, body: png},
		{name: "long base64 with line breaks", raw: `{"body":"` + strings.ReplaceAll(wrap76(base64.StdEncoding.EncodeToString(long)), "\n", `\r\n`) + `","bodyEncoding":"base64"}`,
			status: 200, hdr: http.Header{}, body: long},
		{name: "json body", raw: `{"body":{"a":[1,2]}}`, status: 200,
			hdr: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, body: []byte(`{"a":[1,2]}`)},
		{name: "not base64", raw: `{"body":"not*base64","bodyEncoding":"base64"}`, err: "not base64"},
		{name: "unknown encoding", raw: `{"body":"x","bodyEncoding":"gzip"}`, err: "bodyEncoding"},
		{name: "bad status", raw: `{"statusCode":"abc"}`, err: "not an HTTP status"},
		{name: "status out of range", raw: `{"statusCode":42}`, err: "not an HTTP status"},
		{name: "not an object", raw: `"just a string"`, err: "not an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body, err := DecodeHTTPOutput(json.RawMessage(tc.raw))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Errorf("status = %d, want %d", status, tc.status)
			}
			if diff := cmp.Diff(hdr, tc.hdr); diff != "" {
				t.Errorf("headers (-got +want):\n%s", diff)
			}
			if !bytes.Equal(body, tc.body) {
				t.Errorf("body = %q, want %q", body, tc.body)
			}
		})
	}
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

// FuzzParseAnswer feeds handler answers to the answer parser and the http
// output decoder: they must not panic, and a body that is a UTF-8 JSON
// string must decode as encoding/json decodes it.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{
		`{"Outputs":{"res":{"statusCode":200,"body":"hi","headers":{"A":"b"}}},"Logs":["x"],"ReturnValue":null}`,
		`{"Outputs":{},"Logs":[],"ReturnValue":{"statusCode":"201","body":"aGk=","bodyEncoding":"base64"}}`,
		`{"ReturnValue":{"body":"\u00e9\ud834\udd1e\ud800\\\"\/"}}`,
		`{"Outputs":{"res":{"body":{"a":1}}}}`,
		`{"Outputs":{"res":{"status":"x"}}}`,
		`[]`, `null`, `{"Outputs":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnswer(bytes.Clone(b))
		if err != nil {
			return
		}
		outs := []json.RawMessage{a.ReturnValue}
		for _, o := range a.Outputs {
			outs = append(outs, o)
		}
		for _, raw := range outs {
			if Null(raw) {
				continue
			}
			var want struct {
				Body         json.RawMessage `json:"body"`
				BodyEncoding string          `json:"bodyEncoding"`
			}
			wantErr := json.Unmarshal(raw, &want)
			_, _, body, err := DecodeHTTPOutput(bytes.Clone(raw))
			if wantErr != nil {
				if err == nil {
					t.Fatalf("DecodeHTTPOutput(%q) accepted what encoding/json refused: %v", raw, wantErr)
				}
				continue
			}
			if err != nil || want.BodyEncoding != "" || len(want.Body) == 0 || want.Body[0] != '"' || !utf8.Valid(want.Body) {
				continue
			}
			var s string
			if err := json.Unmarshal(want.Body, &s); err != nil {
				t.Fatal(err)
			}
			if string(body) != s {
				t.Fatalf("body of %q = %q, encoding/json says %q", raw, body, s)
			}
		}
	})
}
