package router

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"sort"
	"strings"
	"unicode/utf8"
)

// envelope is the JSON body of one payload-mode invocation of an HTTP
// function:
//
//	{"Data":{"<trigger>":{"Url","Method","Query","Headers","Params","Body"[,"BodyEncoding"]}[,"<input>":...]},"Metadata":{...}}
//
// The small parts are marshalled up front; the request body is escaped (or
// base64-encoded) on the fly, as the upstream request reads it, straight from
// the one buffer that holds it. Its length is known in advance, so the
// handler gets a Content-Length, and no second copy of the body is made.
type envelope struct {
	head []byte // up to and including the opening quote of Body
	body []byte
	b64  bool   // body is sent base64-encoded
	tail []byte // from the closing quote of Body to the end
	size int64
}

// envelopeRequest is what an envelope is built from.
type envelopeRequest struct {
	Trigger     string
	URL         string
	Method      string
	ContentType string
	Query       map[string]string
	Headers     map[string][]string
	Params      map[string]string
	Metadata    map[string]any
	Body        []byte
	// Inputs are the input bindings' values, beside the trigger in Data.
	Inputs map[string]json.RawMessage
}

// newEnvelope builds the envelope of r. The body is sent as a JSON string
// when it is UTF-8 text; it is base64-encoded, with "BodyEncoding":"base64"
// beside it, when the Content-Type is application/octet-stream or
// multipart/* (the Azure Functions host sends those as base64 too) or when
// the bytes are not valid UTF-8 (which a JSON string cannot carry: the Azure
// host would replace them with U+FFFD).
func newEnvelope(r envelopeRequest) (*envelope, error) {
	e := &envelope{body: r.Body, b64: binaryBody(r.ContentType, r.Body)}
	var h bytes.Buffer
	h.WriteString(`{"Data":{`)
	if err := appendJSON(&h, r.Trigger); err != nil {
		return nil, err
	}
	h.WriteString(`:{"Url":`)
	for _, part := range []struct {
		sep string
		v   any
	}{
		{"", r.URL}, {`,"Method":`, r.Method}, {`,"Query":`, r.Query},
		{`,"Headers":`, r.Headers}, {`,"Params":`, r.Params},
	} {
		h.WriteString(part.sep)
		if err := appendJSON(&h, part.v); err != nil {
			return nil, err
		}
	}
	h.WriteString(`,"Body":"`)
	e.head = h.Bytes()

	var t bytes.Buffer
	t.WriteByte('"')
	if e.b64 {
		t.WriteString(`,"BodyEncoding":"base64"`)
	}
	t.WriteByte('}')
	names := make([]string, 0, len(r.Inputs))
	for k := range r.Inputs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t.WriteByte(',')
		if err := appendJSON(&t, k); err != nil {
			return nil, err
		}
		t.WriteByte(':')
		if err := appendJSON(&t, r.Inputs[k]); err != nil {
			return nil, err
		}
	}
	t.WriteString(`},"Metadata":`)
	if err := appendJSON(&t, r.Metadata); err != nil {
		return nil, err
	}
	t.WriteByte('}')
	e.tail = t.Bytes()

	var n int64
	if e.b64 {
		n = int64(base64.StdEncoding.EncodedLen(len(e.body)))
	} else {
		n = escapedLen(e.body)
	}
	e.size = int64(len(e.head)) + n + int64(len(e.tail))
	return e, nil
}

// appendJSON appends the JSON encoding of v to b, without a newline and
// without HTML escaping.
func appendJSON(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	return nil
}

// Size returns the length of the envelope in bytes.
func (e *envelope) Size() int64 { return e.size }

// Reader returns a new reader of the whole envelope. Readers share the body
// buffer and may be used one after the other (for a retried request).
func (e *envelope) Reader() io.Reader {
	var body io.Reader
	if e.b64 {
		body = &chunkReader{fill: base64Chunk, src: e.body}
	} else {
		body = &chunkReader{fill: escapeChunk, src: e.body}
	}
	return io.MultiReader(bytes.NewReader(e.head), body, bytes.NewReader(e.tail))
}

// binaryBody reports whether a request body goes base64-encoded.
func binaryBody(contentType string, body []byte) bool {
	if len(body) == 0 {
		return false
	}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		if mt == "application/octet-stream" || strings.HasPrefix(mt, "multipart/") {
			return true
		}
	}
	return !utf8.Valid(body)
}

// chunkReader encodes src piece by piece through a small buffer: fill
// encodes a prefix of src into dst and returns how many bytes of each it
// used.
type chunkReader struct {
	fill func(dst, src []byte) (nd, ns int)
	src  []byte
	buf  [4096]byte
	r, w int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.r == c.w {
		if len(c.src) == 0 {
			return 0, io.EOF
		}
		nd, ns := c.fill(c.buf[:], c.src)
		c.src = c.src[ns:]
		c.r, c.w = 0, nd
	}
	n := copy(p, c.buf[c.r:c.w])
	c.r += n
	return n, nil
}

// base64Chunk base64-encodes as much of src as fits in dst (len(dst) >= 4),
// padding only at the very end of src.
func base64Chunk(dst, src []byte) (nd, ns int) {
	ns = min(len(dst)/4*3, len(src))
	base64.StdEncoding.Encode(dst, src[:ns])
	return base64.StdEncoding.EncodedLen(ns), ns
}

// escapeChunk writes the JSON string escaping of as much of the UTF-8 text
// src as fits in dst (len(dst) >= 6). Quotes, backslashes and control
// characters are escaped; every other byte is copied.
func escapeChunk(dst, src []byte) (nd, ns int) {
	for ns < len(src) && nd+6 <= len(dst) {
		c := src[ns]
		ns++
		if c >= 0x20 && c != '"' && c != '\\' {
			dst[nd] = c
			nd++
			continue
		}
		dst[nd] = '\\'
		switch c {
		case '"', '\\':
			dst[nd+1] = c
			nd += 2
		case '\n':
			dst[nd+1] = 'n'
			nd += 2
		case '\r':
			dst[nd+1] = 'r'
			nd += 2
		case '\t':
			dst[nd+1] = 't'
			nd += 2
		default:
			dst[nd+1], dst[nd+2], dst[nd+3] = 'u', '0', '0'
			dst[nd+4], dst[nd+5] = jsonHex[c>>4], jsonHex[c&0xf]
			nd += 6
		}
	}
	return nd, ns
}

// escapedLen returns the length of escapeChunk's output for all of src.
func escapedLen(src []byte) int64 {
	n := int64(len(src))
	for _, c := range src {
		switch {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
			n++
		case c < 0x20:
			n += 5
		}
	}
	return n
}

const jsonHex = "0123456789abcdef"
