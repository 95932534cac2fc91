// Package invoke implements the custom-handler payload protocol of Azure
// Functions for every invocation that is not forwarded as plain HTTP: timers,
// queue and blob triggers (and the answer side of HTTP payload mode, which
// streams its own request envelope).
//
// A handler is called with POST /<function> and a JSON body
//
//	{"Data":{"<binding>":<value>,...},"Metadata":{"<name>":<value>,...,"sys":{"MethodName","UtcNow","RandGuid"}}}
//
// and the header X-Azure-Functions-InvocationId, and answers
//
//	{"Outputs":{"<binding>":<value>,...},"Logs":["..."],"ReturnValue":<value>}
package invoke

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Defaults for the zero fields of Invoker.
const (
	// DefaultTimeout bounds one invocation, answer included, as the Azure
	// host's default functionTimeout does (5 minutes on the consumption plan).
	DefaultTimeout = 5 * time.Minute
	// DefaultMaxAnswer is the largest handler answer read.
	DefaultMaxAnswer = 16 << 20
)

// Request is one invocation.
type Request struct {
	Function     string                     // POSTed to /<Function>
	InvocationID string                     // X-Azure-Functions-InvocationId; "" makes a new one
	Data         map[string]json.RawMessage // trigger and input bindings by name
	// Metadata is the trigger's metadata. "sys" is added (MethodName,
	// UtcNow, RandGuid) unless it is set.
	Metadata map[string]json.RawMessage
}

// Result is a handler's answer.
type Result struct {
	Outputs     map[string]json.RawMessage // output bindings by name
	Logs        []string
	ReturnValue json.RawMessage // the $return output
}

// Invoker calls handlers in payload mode. The zero value is ready to use.
type Invoker struct {
	Client    *http.Client  // nil: defaultClient, which follows no redirect
	Timeout   time.Duration // per invocation, answer read included; zero = DefaultTimeout
	MaxAnswer int64         // largest answer read; zero = DefaultMaxAnswer
	// Now is the clock of sys.UtcNow; nil is time.Now.
	Now func() time.Time
}

// defaultClient is http.DefaultClient's transport without following
// redirects: a handler that answers an invocation with one has failed it
// (a StatusError); following would send the invocation, and the trigger's
// data in it, wherever the handler points, from the server.
var defaultClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// StatusError is Invoke's error when the handler answered a status other
// than 2xx: the function failed.
type StatusError struct {
	Status  int
	Excerpt string // the start of the answer, for the log
}

func (e *StatusError) Error() string {
	if e.Excerpt == "" {
		return fmt.Sprintf("the handler answered %d", e.Status)
	}
	return fmt.Sprintf("the handler answered %d: %s", e.Status, e.Excerpt)
}

// ErrTooLarge is Invoke's error when an answer is larger than MaxAnswer.
var ErrTooLarge = errors.New("the handler's answer is too large")

// excerptLen bounds the part of a failed answer kept in a StatusError.
const excerptLen = 200

// Invoke calls req.Function on the handler at addr (host:port) and returns
// its answer. A non-2xx status is a *StatusError; an answer over MaxAnswer
// wraps ErrTooLarge; an answer that is not JSON is an error too.
func (iv *Invoker) Invoke(ctx context.Context, addr string, req Request) (Result, error) {
	id := req.InvocationID
	if id == "" {
		id = NewID()
	}
	now := time.Now
	if iv.Now != nil {
		now = iv.Now
	}
	meta := req.Metadata
	if _, ok := meta["sys"]; !ok {
		sys, err := json.Marshal(struct {
			MethodName string
			UtcNow     string
			RandGuid   string
		}{req.Function, now().UTC().Format(time.RFC3339Nano), NewID()})
		if err != nil {
			return Result{}, err
		}
		meta = make(map[string]json.RawMessage, len(req.Metadata)+1)
		for k, v := range req.Metadata {
			meta[k] = v
		}
		meta["sys"] = sys
	}
	data := req.Data
	if data == nil {
		data = map[string]json.RawMessage{}
	}
	body, err := json.Marshal(struct {
		Data     map[string]json.RawMessage
		Metadata map[string]json.RawMessage
	}{data, meta})
	if err != nil {
		return Result{}, fmt.Errorf("encode the invocation of %s: %w", req.Function, err)
	}
	timeout := iv.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/"+req.Function, bytes.NewReader(body))
	if err != nil {
		return Result{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("X-Azure-Functions-InvocationId", id)
	client := iv.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(hr)
	if err != nil {
		return Result{}, err
	}
	defer resp.Body.Close()
	res, err := readResult(resp, iv.MaxAnswer)
	if err != nil {
		return Result{}, answeredError{err}
	}
	return res, nil
}

// answeredError is an error after the handler answered.
type answeredError struct{ err error }

func (e answeredError) Error() string { return e.err.Error() }
func (e answeredError) Unwrap() error { return e.err }

// Answered reports whether the handler answered the invocation that
// failed with err, so the function ran (or was refused by the handler): a
// *StatusError, an answer too large or not valid JSON. It is false when the
// handler could not be reached or did not answer in time.
func Answered(err error) bool {
	var a answeredError
	return errors.As(err, &a)
}

// readResult reads and parses a handler's answer.
func readResult(resp *http.Response, limit int64) (Result, error) {
	if limit <= 0 {
		limit = DefaultMaxAnswer
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// A failed function: the start of its answer is an excerpt.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4*excerptLen))
		return Result{}, &StatusError{Status: resp.StatusCode, Excerpt: excerpt(b)}
	}
	out, err := ReadAnswer(resp.Body, resp.ContentLength, limit)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return Result{}, fmt.Errorf("%w (over %d bytes)", ErrTooLarge, limit)
		}
		return Result{}, fmt.Errorf("read the handler's answer: %w", err)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		// Nothing to apply: a handler may answer 200 with no body.
		return Result{}, nil
	}
	res, err := ParseAnswer(out)
	if err != nil {
		return Result{}, fmt.Errorf("the handler's answer is not valid JSON: %w", err)
	}
	return res, nil
}

func excerpt(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > excerptLen {
		b = b[:excerptLen]
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}

// ReadAnswer reads all of a handler's answer into one buffer, of exactly
// size bytes when size >= 0, else grown as it comes. It reads at most limit
// bytes and returns ErrTooLarge past them.
func ReadAnswer(r io.Reader, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, ErrTooLarge
	}
	initial := int64(32 << 10)
	if size >= 0 {
		initial = size
	}
	b := make([]byte, 0, initial)
	for {
		if size >= 0 && int64(len(b)) == size {
			return b, nil
		}
		if len(b) == cap(b) {
			c := max(2*int64(cap(b)), 512)
			if size >= 0 {
				c = min(c, size)
			} else {
				c = min(c, limit+1)
			}
			nb := make([]byte, len(b), c)
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return b[:limit], ErrTooLarge
		}
		if err == io.EOF {
			if size >= 0 && int64(len(b)) < size {
				return b, io.ErrUnexpectedEOF
			}
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// NewID returns a random UUID (version 4), for invocation ids and
// sys.RandGuid.
func NewID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
