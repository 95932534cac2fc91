package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// operationWatch follows an operation's phases (GET
// /api/v1/operations/{id}/events) until it ends: exit status 0 when it
// succeeded, 1 when it failed. With -o json each event is printed as one
// line of JSON.
func operationWatch(ctx context.Context, x *cmdEnv, args []string) error {
	id := args[0]
	resp, err := x.client.send(ctx, http.MethodGet, "/api/v1/operations/"+url.PathEscape(id)+"/events", nil, "text/event-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		err := decodeError(resp.StatusCode, data)
		if ae, ok := errors.AsType[*apiError](err); ok && ae.Status == http.StatusNotFound && ae.Kind == "" {
			// Not the API's own not-found answer: the route is missing.
			return fmt.Errorf("the server at %s cannot follow operations (an older version?): %w", x.client.base, err)
		}
		return err
	}
	if !isEventStream(resp) {
		return fmt.Errorf("the server at %s answered operation %s's events with %q, not a stream of events", x.client.base, id, resp.Header.Get("Content-Type"))
	}

	p := x.newProgress()
	if x.json {
		p.w = nil // the events themselves are the output
	}
	defer p.close()
	var last opEvent
	ended := errors.New("ended")
	err = readEvents(resp.Body, func(e sseEvent) error {
		if e.name != "phase" && e.name != "end" {
			return nil
		}
		var ev opEvent
		if err := json.Unmarshal(e.data, &ev); err != nil {
			return fmt.Errorf("the server sent an invalid %s event: %w", e.name, err)
		}
		ev.End = ev.End || e.name == "end"
		if x.json {
			line, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(x.stdout, "%s\n", line); err != nil {
				return err
			}
		}
		p.phase(ev)
		last = ev
		if ev.End {
			return ended
		}
		return nil
	})
	p.close()
	switch {
	case errors.Is(err, ended):
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("follow operation %s: %w", id, err)
	default:
		return fmt.Errorf("the server ended the events of operation %s before the operation ended; run hotswap operation watch %s again", id, id)
	}
	what := describeOp(id, last)
	if last.State != "succeeded" {
		msg := fmt.Sprintf("%s %s after %s", what, orDash(last.State), fmtElapsed(last.elapsed()))
		if last.Detail != "" {
			msg += ": " + last.Detail
		}
		return errors.New(msg)
	}
	if x.json {
		return nil
	}
	_, err = fmt.Fprintf(x.stdout, "%s succeeded in %s\n", what, fmtElapsed(last.elapsed()))
	return err
}

// describeOp names an operation for people: "deploy op-1 of orders/staging".
func describeOp(id string, ev opEvent) string {
	s := "operation " + id
	if ev.Kind != "" {
		s = ev.Kind + " " + id
	}
	switch {
	case ev.App != "" && ev.Slot != "":
		s += " of " + ev.App + "/" + ev.Slot
	case ev.App != "":
		s += " of " + ev.App
	}
	return s
}

// startedAnswer is the answer to a deploy or swap with ?wait=false: 202
// with the operation that goes on.
type startedAnswer struct {
	Operation  json.RawMessage `json:"operation"` // its ID, or an object with one
	Deployment struct {
		ID string `json:"id"`
	} `json:"deployment"`
}

// operationID returns the ID of the operation in the answer, or "".
func (a startedAnswer) operationID() string {
	var id string
	if json.Unmarshal(a.Operation, &id) == nil {
		return id
	}
	var op struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(a.Operation, &op) == nil {
		return op.ID
	}
	return ""
}

// callNoWait sends a deploy or swap whose path asks for wait=false and,
// if the server started the operation without waiting for it, prints its ID
// and how to follow it and returns started true. A server that waited
// anyway answers the usual result, handled as call does. Like the waiting
// call it is bounded by ctx only: a deploy uploads first.
func (x *cmdEnv) callNoWait(ctx context.Context, method, path string, body, out any, what string) (printed, started bool, err error) {
	var raw json.RawMessage
	if err := x.client.do(ctx, method, path, body, &raw); err != nil {
		return false, false, err
	}
	var a startedAnswer
	if json.Unmarshal(raw, &a) == nil {
		if id := a.operationID(); id != "" {
			if x.json {
				return true, true, x.printAnswer(raw)
			}
			dep := ""
			if a.Deployment.ID != "" {
				dep = " (deployment " + a.Deployment.ID + ")"
			}
			_, err := fmt.Fprintf(x.stdout, "%s started: operation %s%s\nfollow it with: hotswap operation watch %s\n", what, id, dep, id)
			return false, true, err
		}
	}
	printed, err = x.answer(raw, method, path, out)
	return printed, false, err
}
