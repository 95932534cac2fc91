package router

import (
	"bytes"
	"errors"
)

// head is an HTTP/1.x request head parsed in place: every field is a slice
// of the connection's read buffer, valid until the head is discarded.
type head struct {
	raw      []byte // the whole head, through the blank line
	method   []byte
	target   []byte // request-target as sent: escaped path and query
	path     []byte // target before '?'
	query    []byte // after '?', without it
	minor    byte   // HTTP/1.<minor>
	host     []byte
	key      []byte // x-functions-key
	length   int64  // Content-Length, -1 when absent
	chunked  bool
	close    bool // Connection: close (or HTTP/1.0 without keep-alive)
	hopNames [][]byte
	// lines are the header lines to forward as they are (each without CRLF).
	lines [][]byte
	// setCookie is a Set-Cookie value for the response (a traffic
	// rule's choice), "" for none; set by Server.forward.
	setCookie string
	// scratch formats numbers and ids without allocating (the head is
	// pooled, so it is already on the heap).
	scratch [64]byte
}

var (
	errIncomplete = errors.New("incomplete head")
	// errFallback marks a request the lean path does not take; net/http
	// serves it (and rejects it when it is malformed).
	errFallback = errors.New("not for the lean path")
)

// parseHead parses a request head from b, which must hold it entirely
// (through CRLF CRLF). It returns errFallback for anything unusual: the lean
// path only takes clean HTTP/1.0 and 1.1 requests.
func parseHead(b []byte, h *head) error {
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		return errIncomplete
	}
	h.raw = b[:end+4]
	h.length = -1
	h.chunked, h.close, h.host, h.key = false, false, nil, nil
	h.lines, h.hopNames = h.lines[:0], h.hopNames[:0]
	rest := b[:end+2]
	i := bytes.IndexByte(rest, '\n')
	if i < 1 || rest[i-1] != '\r' {
		return errFallback
	}
	line := rest[:i-1]
	rest = rest[i+1:]
	// Request line: METHOD SP target SP HTTP/1.x
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errFallback
	}
	sp2 := bytes.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return errFallback
	}
	sp2 += sp1 + 1
	h.method, h.target = line[:sp1], line[sp1+1:sp2]
	proto := line[sp2+1:]
	if len(proto) != 8 || string(proto[:7]) != "HTTP/1." || proto[7] != '1' {
		return errFallback // HTTP/1.0 clients (no chunked responses) go to net/http
	}
	h.minor = proto[7] - '0'
	for _, c := range h.method {
		if c < 'A' || c > 'Z' {
			return errFallback
		}
	}
	if len(h.target) == 0 || h.target[0] != '/' {
		return errFallback // absolute-form, authority-form and * go to net/http
	}
	for _, c := range h.target {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return errFallback
		}
	}
	h.path, h.query = h.target, nil
	if q := bytes.IndexByte(h.target, '?'); q >= 0 {
		h.path, h.query = h.target[:q], h.target[q+1:]
	}
	keepAlive := false
	hosts, lengths := 0, 0
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 1 || rest[i-1] != '\r' {
			return errFallback
		}
		line := rest[:i-1]
		rest = rest[i+1:]
		if line[0] == ' ' || line[0] == '\t' {
			return errFallback // obsolete line folding
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errFallback
		}
		name := line[:colon]
		if !isToken(name) {
			return errFallback // net/http answers 400
		}
		value := trimOWS(line[colon+1:])
		for _, c := range value {
			if c < ' ' && c != '\t' || c == 0x7f {
				return errFallback
			}
		}
		switch {
		case equalFold(name, "host"):
			hosts++
			h.host = value
			h.lines = append(h.lines, line)
		case equalFold(name, "content-length"):
			lengths++
			n, ok := parseUint(value)
			if !ok {
				return errFallback
			}
			h.length = n
		case equalFold(name, "transfer-encoding"):
			if !equalFold(value, "chunked") || h.chunked {
				return errFallback
			}
			h.chunked = true
		case equalFold(name, "connection"):
			for _, tok := range bytes.Split(value, []byte{','}) {
				tok = trimOWS(tok)
				switch {
				case equalFold(tok, "close"):
					h.close = true
				case equalFold(tok, "keep-alive"):
					keepAlive = true
				case equalFold(tok, "upgrade"):
					return errFallback
				default:
					h.hopNames = append(h.hopNames, tok)
				}
			}
		case equalFold(name, "expect"), equalFold(name, "upgrade"), equalFold(name, "te"),
			equalFold(name, "trailer"):
			return errFallback
		case equalFold(name, "keep-alive"), equalFold(name, "proxy-connection"):
			// hop-by-hop: dropped
		case equalFold(name, "x-forwarded-for"), equalFold(name, "x-forwarded-host"), equalFold(name, "x-forwarded-proto"), equalFold(name, "forwarded"),
			equalFold(name, "x-azure-functions-invocationid"):
			// set by the host
		case equalFold(name, "x-functions-key"):
			if h.key == nil {
				h.key = value
			}
			h.lines = append(h.lines, line)
		default:
			h.lines = append(h.lines, line)
		}
	}
	if hosts != 1 || lengths > 1 || lengths == 1 && h.chunked {
		return errFallback
	}
	if h.minor == 0 && !keepAlive {
		h.close = true
	}
	if h.minor == 0 && h.chunked {
		return errFallback
	}
	if len(h.hopNames) > 0 {
		// Headers named in Connection are hop-by-hop: drop them.
		kept := h.lines[:0]
		for _, line := range h.lines {
			name := line[:bytes.IndexByte(line, ':')]
			drop := false
			for _, n := range h.hopNames {
				if equalFoldBytes(name, n) {
					drop = true
				}
			}
			if equalFold(name, "host") {
				drop = false
			}
			if !drop {
				kept = append(kept, line)
			}
		}
		h.lines = kept
	}
	return nil
}

var crlfcrlf = []byte("\r\n\r\n")

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares ASCII b to lower-case s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// parseUint parses a non-negative decimal of at most 18 digits.
func parseUint(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
