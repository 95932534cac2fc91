package cli

// Progress of long operations. Deploy, swap, rollback and settings changes
// ask the server for the operation's phases as server-sent events (Accept:
// text/event-stream, docs/api.md "Progress") and print one line per phase
// with the operation's elapsed time; on a terminal the running phase has a
// spinner and a running clock. A server that does not stream answers plain
// JSON, which is printed as before. Uploads over uploadProgressMin show the
// bytes sent and the rate.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// uploadProgressMin is the package size from which an upload shows its
// progress: smaller ones take no noticeable time.
const uploadProgressMin = 4 << 20

// spinnerEvery is how often a terminal's live line is redrawn.
const spinnerEvery = 100 * time.Millisecond

// opEvent is one phase of a long operation: the API's OperationEvent.
type opEvent struct {
	OpID      string    `json:"opId"`
	App       string    `json:"app"`
	Slot      string    `json:"slot"`
	Kind      string    `json:"kind"`
	Phase     string    `json:"phase"`
	Detail    string    `json:"detail"`
	At        time.Time `json:"at"`
	ElapsedMs int64     `json:"elapsedMs"`
	End       bool      `json:"end"`
	State     string    `json:"state"`
}

func (ev opEvent) elapsed() time.Duration { return time.Duration(ev.ElapsedMs) * time.Millisecond }

// sseEvent is one server-sent event.
type sseEvent struct {
	name string // "message" when the event has no event field
	data []byte
}

// readEvents reads server-sent events (the WHATWG text/event-stream format)
// from r and calls fn for each, until r ends or fn returns an error, which
// readEvents returns. An event cut off by the end of r is dropped, as the
// format says; comments (keep-alives), id and retry fields are ignored.
func readEvents(r io.Reader, fn func(sseEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxAnswer)
	var (
		name    string
		data    []byte
		hasData bool
	)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if hasData {
				if name == "" {
					name = "message"
				}
				if err := fn(sseEvent{name: name, data: bytes.TrimSuffix(data, []byte("\n"))}); err != nil {
					return err
				}
			}
			name, data, hasData = "", nil, false
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			data = append(append(data, value...), '\n')
			hasData = true
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("an event of the server is longer than %d MiB", maxAnswer>>20)
		}
		return err
	}
	return nil
}

// errNoResult: the stream of a request ended before its result.
var errNoResult = errors.New("the server ended the progress stream without the result")

// send sends method path with body (as client.do takes it), accepting
// accept, and returns the response; the caller closes its body.
func (c *client) send(ctx context.Context, method, path string, body any, accept string) (*http.Response, error) {
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
			return nil, fmt.Errorf("encode request: %w", err)
		}
		r, ctype, size = bytes.NewReader(data), "application/json", int64(len(data))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", c.base, err)
	}
	if r != nil {
		req.Header.Set("Content-Type", ctype)
		if size >= 0 {
			req.ContentLength = size
		}
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	return resp, nil
}

// isEventStream reports whether resp is a stream of server-sent events.
func isEventStream(resp *http.Response) bool {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt == "text/event-stream"
}

// stream sends method path with body like client.do, asking for the
// operation's phases as server-sent events, and calls phase for each phase
// (and end) event. It returns the answer: the result event's JSON or, from a
// server that does not stream, its plain JSON answer. An error event or an
// error answer becomes an *apiError.
func (c *client) stream(ctx context.Context, method, path string, body any, phase func(opEvent)) (json.RawMessage, error) {
	resp, err := c.send(ctx, method, path, body, "text/event-stream")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 || !isEventStream(resp) {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		if err != nil {
			return nil, fmt.Errorf("read answer from %s: %w", c.base, err)
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return nil, decodeError(resp.StatusCode, data)
		}
		return data, nil
	}
	var answer json.RawMessage
	var opID string // the operation running, for the hint when interrupted
	done := errors.New("done")
	err = readEvents(resp.Body, func(e sseEvent) error {
		switch e.name {
		case "phase", "end":
			var ev opEvent
			if json.Unmarshal(e.data, &ev) == nil { // progress only: a bad event is skipped
				ev.End = ev.End || e.name == "end"
				opID = ev.OpID
				if ev.End {
					opID = ""
				}
				phase(ev)
			}
		case "result":
			answer = json.RawMessage(bytes.Clone(e.data))
			return done
		case "error":
			// The event carries the API's error JSON; the status was 200.
			return decodeError(http.StatusInternalServerError, e.data)
		}
		return nil
	})
	switch {
	case errors.Is(err, done):
		return answer, nil
	case err == nil:
		return nil, errNoResult
	case ctx.Err() != nil && opID != "":
		return nil, fmt.Errorf("%w: operation %s goes on; follow it with hotswap operation watch %s", ctx.Err(), opID, opID)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	}
	if _, ok := errors.AsType[*apiError](err); ok {
		return nil, err
	}
	return nil, fmt.Errorf("read progress from %s: %w", c.base, err)
}

// progressOut is where progress goes: stdout for a table, stderr with -o
// json so that stdout holds only the answer.
func (x *cmdEnv) progressOut() io.Writer {
	if x.json {
		return x.stderr
	}
	return x.stdout
}

// newProgress returns a progress printer for this command's output.
func (x *cmdEnv) newProgress() *progress {
	w := x.progressOut()
	return &progress{w: w, tty: isTerminal(w)}
}

// callStream is call for a long operation: it prints the operation's
// phases with p while the request runs, then handles the answer as call
// does. p is closed before the answer is printed.
func (x *cmdEnv) callStream(ctx context.Context, p *progress, method, path string, body, out any) (printed bool, err error) {
	raw, err := x.client.stream(ctx, method, path, body, p.phase)
	p.close()
	if err != nil {
		return false, err
	}
	return x.answer(raw, method, path, out)
}

// answer prints a raw answer as -o and --query ask, as call does, else
// decodes it into out.
func (x *cmdEnv) answer(raw json.RawMessage, method, path string, out any) (printed bool, err error) {
	if x.json {
		if out != nil && len(raw) > 0 {
			_ = json.Unmarshal(raw, out)
		}
		return true, x.printAnswer(raw)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return false, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return false, nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress prints the phases of long operations and the progress of an
// upload. Plain lines go to w; on a terminal (tty) the running phase or the
// upload is a live line with a spinner, redrawn by a goroutine that close
// ends. Its methods may be called from several goroutines (the upload is
// read by the HTTP transport).
type progress struct {
	w   io.Writer // nil: prints nothing
	tty bool
	now func() time.Time // nil: time.Now

	mu     sync.Mutex
	kind   string // the first operation's kind; others are named on their lines
	live   string // the live line's text after its clock, "" for none
	liveAt time.Duration
	since  time.Time // when live was set
	frame  int
	stop   chan struct{} // closed by close; nil until the spinner runs
	done   chan struct{} // closed when the spinner has ended
	closed bool

	// The upload.
	total, sent int64
	upStart     time.Time
	nextMark    int64 // the next quarter to print a line at (not a terminal)
}

func (p *progress) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

// phase prints one phase of an operation: a line with the operation's
// elapsed time when the phase began. The end event (phase done or failed)
// is a plain line; a failure's detail is left to the error that follows.
func (p *progress) phase(ev opEvent) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.endLiveLocked()
	if ev.Phase == "" {
		return
	}
	if p.kind == "" {
		p.kind = ev.Kind
	}
	label := ev.Phase
	if ev.Detail != "" && (!ev.End || ev.State == "succeeded") {
		label += " " + ev.Detail
	}
	if ev.Kind != "" && ev.Kind != p.kind {
		label = ev.Kind + ": " + label // the auto swap after a deploy
	}
	label = strings.ReplaceAll(label, "\n", " ")
	if !p.tty || ev.End {
		fmt.Fprintf(p.w, "  %7s  %s\n", fmtElapsed(ev.elapsed()), label)
		return
	}
	p.live, p.liveAt, p.since = label, ev.elapsed(), p.clock()
	p.drawLocked()
	p.spinLocked()
}

// endLiveLocked turns the live line, if any, into a plain line with the
// time its phase began.
func (p *progress) endLiveLocked() {
	if p.live == "" {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K  %7s  %s\n", fmtElapsed(p.liveAt), p.live)
	p.live = ""
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// drawLocked redraws the live line on a terminal.
func (p *progress) drawLocked() {
	f := spinnerFrames[p.frame%len(spinnerFrames)]
	switch {
	case p.live != "":
		fmt.Fprintf(p.w, "\r\033[K%s %7s  %s", f, fmtElapsed(p.liveAt+p.clock().Sub(p.since)), p.live)
	case p.total > 0 && p.sent < p.total:
		fmt.Fprintf(p.w, "\r\033[K%s %s", f, p.uploadText())
	}
}

// spinLocked starts the goroutine that redraws the live line, once.
func (p *progress) spinLocked() {
	if p.stop != nil {
		return
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(spinnerEvery)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				if !p.closed {
					p.frame++
					p.drawLocked()
				}
				p.mu.Unlock()
			}
		}
	}()
}

// close ends the live line and the spinner; later calls print nothing.
// It may be called more than once.
func (p *progress) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	if p.w != nil && p.tty {
		if p.live != "" {
			p.endLiveLocked()
		} else if p.total > 0 && p.sent < p.total {
			fmt.Fprint(p.w, "\r\033[K")
		}
	}
	stop, done := p.stop, p.done
	p.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// upload returns r, a package of size bytes, counting what the HTTP
// transport reads of it to show the upload's progress when size is at
// least uploadProgressMin.
func (p *progress) upload(r io.Reader, size int64) io.Reader {
	if p == nil || p.w == nil || size < uploadProgressMin {
		return r
	}
	p.mu.Lock()
	p.total, p.sent, p.upStart, p.nextMark = size, 0, p.clock(), 1
	p.mu.Unlock()
	return &uploadReader{r: r, p: p}
}

type uploadReader struct {
	r io.Reader
	p *progress
}

func (u *uploadReader) Read(b []byte) (int, error) {
	n, err := u.r.Read(b)
	if n > 0 {
		u.p.uploaded(int64(n))
	}
	return n, err
}

// uploaded counts n more bytes sent: on a terminal the live line shows
// them; otherwise a line is printed at each quarter.
func (p *progress) uploaded(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.sent = min(p.sent+n, p.total)
	if p.sent == p.total {
		if p.tty {
			fmt.Fprint(p.w, "\r\033[K")
		}
		d := p.clock().Sub(p.upStart)
		fmt.Fprintf(p.w, "  uploaded %s in %s, %s\n", fmtBytes(p.total), fmtElapsed(d), fmtRate(p.total, d))
		return
	}
	if p.tty {
		p.drawLocked()
		p.spinLocked()
		return
	}
	for p.nextMark < 4 && p.sent*4 >= p.total*p.nextMark {
		p.nextMark++
		fmt.Fprintf(p.w, "  %s\n", p.uploadText())
	}
}

// uploadText says how far the upload is: "uploading 10.0 of 40.0 MB
// (25%), 5.1 MB/s".
func (p *progress) uploadText() string {
	d := p.clock().Sub(p.upStart)
	return fmt.Sprintf("uploading %s of %s (%d%%), %s", fmtBytes(p.sent), fmtBytes(p.total), p.sent*100/p.total, fmtRate(p.sent, d))
}

// fmtElapsed formats a duration as people write it: 0.3s, 12.4s, 2m05s.
func fmtElapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
}

// fmtBytes formats a size in MB (10^6 bytes) with one decimal.
func fmtBytes(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

func fmtRate(n int64, d time.Duration) string {
	if d <= 0 {
		return "- MB/s"
	}
	return fmt.Sprintf("%.1f MB/s", float64(n)/1e6/d.Seconds())
}

// checkDeploy asks the server, before a package is uploaded, whether the
// token's user may deploy and app/slot exists, so that a missing role or a
// mistyped name fails at once instead of after a long upload.
func checkDeploy(ctx context.Context, x *cmdEnv, app, slot string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var who struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	err := x.client.do(ctx, http.MethodGet, "/api/v1/whoami", nil, &who)
	if ae, ok := errors.AsType[*apiError](err); ok && ae.Status == http.StatusNotFound {
		err = nil // a server without whoami: the deploy itself checks the role
	}
	if err != nil {
		return err
	}
	if who.Role != "" && who.Role != "admin" && who.Role != "deployer" {
		return fmt.Errorf("deploy to %s/%s needs the deployer or admin role; the token is %s's, whose role is %s", app, slot, who.Name, who.Role)
	}
	return x.client.do(ctx, http.MethodGet, slotPath(app, slot), nil, nil)
}
