package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// client calls the control-plane API at base with the admin token.
type client struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	token string // never printed
	// tokenSource says where the token came from (--token, HOTSWAP_TOKEN,
	// the token file PATH), for the error when the server refuses it.
	tokenSource string
	http        *http.Client
}

// rawBody is a request body sent as is, not encoded as JSON.
type rawBody struct {
	r           io.Reader
	size        int64 // -1: unknown
	contentType string
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Kind    string
	Message string
}

func (e *apiError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	if e.Kind != "" {
		return fmt.Sprintf("server answered %d %s", e.Status, e.Kind)
	}
	return fmt.Sprintf("server answered %d %s", e.Status, http.StatusText(e.Status))
}

// maxAnswer bounds the size of an answer read into memory.
const maxAnswer = 64 << 20

// do sends method path (escaped, with its query) with body: nil, a rawBody,
// or a value encoded as JSON. A success answer is decoded into out unless out
// is nil or the answer is empty; an error answer becomes an *apiError.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var (
		r     io.Reader
		ctype string
		size  int64 = -1
	)
	switch b := body.(type) {
	case nil:
	case rawBody:
		r, ctype, size = b.r, b.contentType, b.size
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		r, ctype, size = bytes.NewReader(data), "application/json", int64(len(data))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return fmt.Errorf("server %q: %w", c.base, err)
	}
	if r != nil {
		req.Header.Set("Content-Type", ctype)
		if size >= 0 {
			req.ContentLength = size
		}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)

	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The *url.Error repeats the method and URL; keep the cause only.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("read answer from %s: %w", c.base, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp.StatusCode, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, req.URL.Path, err)
	}
	return nil
}

// refused says, for a 401 answer, which token the server refused and where
// it came from; other errors are returned as they are.
func (c *client) refused(err error) error {
	ae, ok := errors.AsType[*apiError](err)
	if !ok || ae.Status != http.StatusUnauthorized || c.tokenSource == "" {
		return err
	}
	ae.Message = fmt.Sprintf("%s refused the token from %s: it is neither the admin token nor a user's token (a rotated or deleted user's token no longer works; see hotswap whoami)", c.base, c.tokenSource)
	return ae
}

// decodeError reads the API's {"error":{"kind","message"}} body, or falls
// back to the status and the start of a plain-text body (from a proxy, say).
func decodeError(status int, data []byte) error {
	var body struct {
		Error struct {
			Kind    string `json:"kind"`
			Message string `json:"message"`
		} `json:"error"`
	}
	e := &apiError{Status: status}
	if json.Unmarshal(data, &body) == nil && (body.Error.Kind != "" || body.Error.Message != "") {
		e.Kind, e.Message = body.Error.Kind, body.Error.Message
		return e
	}
	text, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	if text != "" && !strings.HasPrefix(text, "<") {
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		e.Message = fmt.Sprintf("server answered %d %s: %s", status, http.StatusText(status), text)
	}
	return e
}

// Path builders: every segment is escaped.

func appPath(app string) string {
	return "/api/v1/apps/" + url.PathEscape(app)
}

func slotPath(app, slot string) string {
	return appPath(app) + "/slots/" + url.PathEscape(slot)
}
