package router

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
)

// decodeChunked runs relayChunked over b and returns what it wrote, how
// many bytes of b it consumed, and its error.
func decodeChunked(b []byte) (out []byte, consumed int, err error) {
	src := bytes.NewReader(b)
	br := bufio.NewReaderSize(src, leanBufSize)
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	err = relayChunked(bw, br, bw.Flush)
	bw.Flush()
	return buf.Bytes(), len(b) - src.Len() - br.Buffered(), err
}

// referenceChunked decodes the chunks of b as net/http does (trailers are
// not its business) and returns the body and how many bytes it consumed.
func referenceChunked(b []byte) (body []byte, consumed int, err error) {
	src := bytes.NewReader(b)
	br := bufio.NewReaderSize(src, 4096)
	body, err = io.ReadAll(httputil.NewChunkedReader(br))
	return body, len(b) - src.Len() - br.Buffered(), err
}

func TestRelayChunked(t *testing.T) {
	tests := []struct {
		name, in string
		out      string // "" when malformed
		wantErr  error
	}{
		{"canonical", "5\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", nil},
		{"extensions dropped, sizes rewritten", "0005;a=b;c=\"d\"\r\nhello\r\n0A\t\r\n0123456789\r\n0;x\r\n\r\n", "5\r\nhello\r\na\r\n0123456789\r\n0\r\n\r\n", nil},
		{"trailers kept", "1\r\nx\r\n0\r\nX-A: 1\r\nX-B:\t2 \r\n\r\n", "1\r\nx\r\n0\r\nX-A: 1\r\nX-B:\t2 \r\n\r\n", nil},
		{"short line after the last chunk", "0\r\nX\n", "", errBadChunk},
		{"bare LF ends the trailers", "0\r\n\n", "", errBadChunk},
		{"CR inside a line", "5\r\r\nhello\r\n0\r\n\r\n", "", errBadChunk},
		{"no CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", "", errBadChunk},
		{"LF only after data", "5\r\nhello\n0\r\n\r\n", "", errBadChunk},
		{"empty size", "\r\n", "", errBadChunk},
		{"size with sign", "+5\r\nhello\r\n0\r\n\r\n", "", errBadChunk},
		{"size with space inside", "5 5\r\nhello\r\n0\r\n\r\n", "", errBadChunk},
		{"17 hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", "", errBadChunk},
		{"huge size", "ffffffffffffffff\r\n", "", errBadChunk},
		{"size line too long", "1;" + strings.Repeat("x", maxChunkLine) + "\r\nx\r\n0\r\n\r\n", "", errBadChunk},
		{"too much overhead", strings.Repeat("1;"+strings.Repeat("x", 200)+"\r\nx\r\n", 100) + "0\r\n\r\n", "", errBadChunk},
		{"trailers too long", "0\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 100)+"\r\n", 100) + "\r\n", "", errBadChunk},
		{"obsolete folding in trailers", "0\r\nX-A: 1\r\n folded\r\n\r\n", "", errBadChunk},
		{"control character in a trailer", "0\r\nX-A: 1\x00\r\n\r\n", "", errBadChunk},
		{"ends in the data", "5\r\nhel", "", io.ErrUnexpectedEOF},
		{"ends before the trailers end", "0\r\nX-A: 1\r\n", "", io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := decodeChunked([]byte(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && string(out) != tc.out {
				t.Errorf("out = %q, want %q", out, tc.out)
			}
		})
	}
}

func chunkedSeeds(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"5;ext=1\r\nhello\r\n6 \r\n world\r\n0\r\nX-T: 1\r\n\r\n",
		"0\r\nX\n",
		"5\r\nhelloXX0\r\n\r\n",
		"1;" + strings.Repeat("e", 4100) + "\r\nx\r\n0\r\n\r\n",
		"ffffffffffffffff\r\nx",
		"a\r\n0123456789\r\n0;x=y\r\n\r\n",
		"5\n\r\nhello\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
}

// FuzzChunkedRelay checks the relay's own promises: what it accepts it
// writes as canonical framing that decodes to the same body, and it never
// reads past the end of the body.
func FuzzChunkedRelay(f *testing.F) {
	chunkedSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		out, consumed, err := decodeChunked(b)
		if err != nil {
			return
		}
		again, consumed2, err := decodeChunked(out)
		if err != nil {
			t.Fatalf("re-encoded body %q does not decode: %v", out, err)
		}
		if !bytes.Equal(again, out) || consumed2 != len(out) {
			t.Fatalf("re-encoding is not canonical: %q then %q", out, again)
		}
		if consumed > len(b) {
			t.Fatalf("consumed %d of %d bytes", consumed, len(b))
		}
		// The rest of the input stays for the next request.
		withNext := append(append([]byte(nil), b[:consumed]...), "GET / HTTP/1.1\r\n"...)
		if _, c, err := decodeChunked(withNext); err != nil || c != consumed {
			t.Fatalf("with a following request: consumed %d, %v; want %d", c, err, consumed)
		}
	})
}

// FuzzChunkedDifferential holds the relay to net/http's chunked reader:
// both accept or reject the same chunk framing and agree on the body, and
// what the relay writes decodes, by net/http, to that body. net/http's
// reader stops at the last chunk and leaves trailers to its caller, so
// the relay is compared on the chunks, and on its own for trailers.
func FuzzChunkedDifferential(f *testing.F) {
	chunkedSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		out, _, err := decodeChunked(b)
		refBody, refConsumed, refErr := referenceChunked(b)
		if err == nil {
			if refErr != nil {
				t.Fatalf("the relay accepts what net/http rejects (%v): %q", refErr, b)
			}
			// The relay's output, decoded by net/http, is the same body.
			outBody, _, outErr := referenceChunked(out)
			if outErr != nil || !bytes.Equal(outBody, refBody) {
				t.Fatalf("re-encoded %q decodes by net/http to %q, %v; want %q", out, outBody, outErr, refBody)
			}
			return
		}
		if refErr != nil {
			return
		}
		// net/http accepts the chunks: so must the relay, given the same
		// chunks with an empty trailer section.
		chunks := append(append([]byte(nil), b[:refConsumed]...), "\r\n"...)
		out, _, err = decodeChunked(chunks)
		if err != nil {
			t.Fatalf("net/http accepts chunks %q, the relay rejects them: %v", b[:refConsumed], err)
		}
		outBody, _, outErr := referenceChunked(out)
		if outErr != nil || !bytes.Equal(outBody, refBody) {
			t.Fatalf("the relay's body %q (%v) differs from net/http's %q", outBody, outErr, refBody)
		}
	})
}

// FuzzResponseHead checks the response-head parser: what it accepts it
// writes as a head net/http reads with the same status and framing, with
// no hop-by-hop field and exactly one framing field.
func FuzzResponseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: keep-alive, close\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: 1\nY: 2\r\n\r\n",
		"HTTP/1.1 200\r\nKeep-Alive: 5\r\nUpgrade: h2c\r\n\r\n",
		"HTTP/1.1 101 Switching\r\n\r\n",
	} {
		f.Add([]byte(s), false, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, isHead, clientClose bool) {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		var scratch [64]byte
		rh, n, err := readResponseHead(bw, bufio.NewReaderSize(bytes.NewReader(b), leanBufSize), scratch[:0], isHead, clientClose)
		bw.Flush()
		if err != nil {
			return
		}
		if n != buf.Len() {
			t.Fatalf("n = %d, wrote %d", n, buf.Len())
		}
		method := "GET"
		if isHead {
			method = "HEAD"
		}
		resp, perr := http.ReadResponse(bufio.NewReader(bytes.NewReader(buf.Bytes())), &http.Request{Method: method})
		if perr != nil {
			t.Fatalf("wrote a head net/http cannot read (%v): %q", perr, buf.Bytes())
		}
		if resp.StatusCode != rh.status {
			t.Fatalf("status %d, net/http reads %d", rh.status, resp.StatusCode)
		}
		for _, h := range []string{"Keep-Alive", "Proxy-Connection", "Upgrade"} {
			if _, ok := resp.Header[h]; ok {
				t.Fatalf("hop-by-hop field %s relayed: %q", h, buf.Bytes())
			}
		}
		head := strings.ToLower(buf.String())
		framing := strings.Count(head, "\r\ncontent-length:") + strings.Count(head, "\r\ntransfer-encoding:")
		if framing > 1 || rh.chunked != (len(resp.TransferEncoding) > 0) {
			t.Fatalf("framing written %q, parsed chunked=%v", buf.Bytes(), rh.chunked)
		}
		if rh.length >= 0 && !rh.noBody && resp.ContentLength != rh.length {
			t.Fatalf("Content-Length %d, net/http reads %d", rh.length, resp.ContentLength)
		}
	})
}
