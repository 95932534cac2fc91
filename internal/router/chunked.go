package router

import (
	"bufio"
	"errors"
	"io"
)

// Chunked framing on the lean path (RFC 9112 7.1). A chunked body is
// decoded strictly and re-encoded, never relayed as it came: framing the
// handler and the host read differently is how requests are smuggled.
// The chunk-size line is read as net/http reads it (FuzzChunkedDifferential
// holds the two to the same answers); trailers are checked field by field.
const (
	// maxChunkLine bounds a chunk-size line with its extensions and CRLF,
	// as net/http does (4096).
	maxChunkLine = 4096
	// maxChunkOverhead bounds framing bytes beyond 16 per chunk plus twice
	// the data, as net/http does: one-byte chunks with long extensions
	// would otherwise cost far more than they carry.
	maxChunkOverhead = 16 << 10
	// maxTrailers bounds the trailer section, its closing CRLF included.
	maxTrailers = 8 << 10
)

var (
	// errBadChunk is malformed chunked framing: the request gets 400, the
	// response is cut, and the handler connection is not reused.
	errBadChunk = errors.New("malformed chunked body")
)

// relayChunked reads a chunked body from src and writes it to dst as
// canonical chunked framing: each chunk's size in lower-case hex, no
// extensions, the data, CRLF; then the last chunk, the trailer fields as
// sent, and the empty line. flush is called after each chunk, so streams
// keep flowing. Malformed framing returns errBadChunk; a source that ends
// early, io.ErrUnexpectedEOF.
func relayChunked(dst *bufio.Writer, src *bufio.Reader, flush func() error) error {
	var excess int64
	for {
		size, err := readChunkSize(src, &excess)
		if err != nil {
			return err
		}
		if size == 0 {
			dst.WriteString("0\r\n")
			if err := relayTrailers(dst, src); err != nil {
				return err
			}
			return flush()
		}
		writeHex(dst, size)
		dst.WriteString("\r\n")
		if err := copyNFlush(dst, src, size); err != nil {
			return err
		}
		crlf, err := src.Peek(2)
		if err != nil {
			return unexpected(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return errBadChunk
		}
		src.Discard(2)
		dst.WriteString("\r\n")
		if err := flush(); err != nil {
			return err
		}
	}
}

// readChunkSize reads a chunk-size line and returns the size. excess
// carries the framing overhead across chunks.
func readChunkSize(src *bufio.Reader, excess *int64) (int64, error) {
	line, err := src.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, errBadChunk
		}
		return 0, unexpected(err)
	}
	if len(line) > maxChunkLine || !endsCRLFOnly(line) {
		return 0, errBadChunk
	}
	line = line[:len(line)-2]
	*excess += int64(len(line)) + 2
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if i := indexByteB(line, ';'); i >= 0 {
		line = line[:i] // extensions are dropped
	}
	if len(line) == 0 || len(line) > 16 {
		return 0, errBadChunk
	}
	var n uint64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, errBadChunk
		}
		n = n<<4 | uint64(c)
	}
	if n > 1<<62 {
		return 0, errBadChunk
	}
	*excess -= 16 + 2*int64(n)
	*excess = max(*excess, 0)
	if *excess > maxChunkOverhead {
		return 0, errBadChunk
	}
	return int64(n), nil
}

// relayTrailers reads the trailer section after the last chunk, through
// the empty line, and writes it to dst. Each field must be a well-formed
// field line ending in CRLF.
func relayTrailers(dst *bufio.Writer, src *bufio.Reader) error {
	total := 0
	for {
		line, err := src.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return errBadChunk
			}
			return unexpected(err)
		}
		total += len(line)
		if total > maxTrailers || !endsCRLFOnly(line) {
			return errBadChunk
		}
		if len(line) == 2 {
			dst.WriteString("\r\n")
			return nil
		}
		if !validFieldLine(line[:len(line)-2]) {
			return errBadChunk
		}
		dst.Write(line)
	}
}

// endsCRLFOnly reports whether line ends in CRLF and holds no other CR.
func endsCRLFOnly(line []byte) bool {
	n := len(line)
	if n < 2 || line[n-2] != '\r' || line[n-1] != '\n' {
		return false
	}
	return indexByteB(line[:n-2], '\r') < 0
}

// validFieldLine reports whether line (without CRLF) is name ":" value
// with a token name and a value free of control characters (RFC 9110 5.1,
// 5.5).
func validFieldLine(line []byte) bool {
	colon := indexByteB(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return false
	}
	for _, c := range line[colon+1:] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isToken reports whether b is a non-empty RFC 9110 token (1*tchar).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// tchar is RFC 9110's tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
// "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// writeHex writes n in lower-case hex without allocating.
func writeHex(w *bufio.Writer, n int64) {
	shift := 60
	for shift > 0 && n>>shift == 0 {
		shift -= 4
	}
	for ; shift >= 0; shift -= 4 {
		w.WriteByte(hexDigits[n>>shift&0xf])
	}
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
