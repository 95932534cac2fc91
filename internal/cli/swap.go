package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
)

// Swap, auto swap, rollback, deployment history and activity (docs/api.md,
// last section).

// swapResult is the API's SwapResult.
type swapResult struct {
	App              string `json:"app"`
	Source           string `json:"source"`
	Target           string `json:"target"`
	Phase            string `json:"phase"` // completed, preview or cancelled
	SourceDeployment string `json:"sourceDeployment"`
	TargetDeployment string `json:"targetDeployment"`
	ReusedWarm       bool   `json:"reusedWarm"`
	DurationMs       int64  `json:"durationMs"`
	FlipMicros       int64  `json:"flipMicros"`
}

// swapBody is the body of POST /api/v1/apps/{app}/swap.
type swapBody struct {
	Slot    string      `json:"slot"`
	Target  string      `json:"target"`
	Preview bool        `json:"preview"`
	Expect  *swapExpect `json:"expect,omitempty"`
}

// swapExpect is what the source slot must serve for the swap to go on.
type swapExpect struct {
	Source string `json:"source"`
}

// swap starts a swap (or a preview), or completes or cancels the swap in
// preview. Like deploy it is bounded by ctx only: the server warms the
// source up first, for as long as the slots' warm-up settings allow.
func swap(ctx context.Context, x *cmdEnv, args []string) error {
	app, o := args[0], x.opts
	if progressiveSwap(o) {
		return swapProgressive(ctx, x, app)
	}
	var p, what string
	var body any
	switch {
	case o.complete:
		p, what = appPath(app)+"/swap/complete", "completing the swap of "+app
	case o.cancel:
		p, what = appPath(app)+"/swap/cancel", "cancelling the swap of "+app
	default:
		target := o.target
		if target == "" {
			target = hotswap.ProductionSlot
		}
		b := swapBody{Slot: o.slot, Target: target, Preview: o.preview}
		if o.expect.given {
			b.Expect = &swapExpect{Source: o.expect.value}
		}
		p, body = appPath(app)+"/swap", b
		what = "swap of " + app + "/" + o.slot + " into " + target
	}
	q := url.Values{}
	if o.force {
		q.Set("force", "true")
	}
	if o.noWait {
		q.Set("wait", "false")
	}
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var r swapResult
	var printed, started bool
	var err error
	if o.noWait {
		printed, started, err = x.callNoWait(ctx, http.MethodPost, p, body, &r, what)
	} else {
		printed, err = x.callStream(ctx, x.newProgress(), http.MethodPost, p, body, &r)
	}
	if printed || started || err != nil {
		return err
	}
	if r.App == "" {
		r.App = app
	}
	_, err = fmt.Fprintln(x.stdout, describeSwap(r))
	return err
}

func swapCheck(x *cmdEnv, args []string) error {
	o := x.opts
	if progressiveSwap(o) {
		return rolloutSwapCheck(x)
	}
	switch {
	case o.complete && o.cancel:
		return &usageError{x.cmd, "--complete and --cancel exclude each other"}
	case o.complete || o.cancel:
		flag := "--complete"
		if o.cancel {
			flag = "--cancel"
		}
		if o.slot != "" || o.target != "" || o.preview || o.expect.given {
			return &usageError{x.cmd, flag + " acts on the swap in preview: drop --slot, --target, --preview and --expect"}
		}
	case o.slot == "":
		return &usageError{x.cmd, "--slot is required: the slot to swap into the target"}
	case o.expect.given && o.expect.value == "":
		return &usageError{x.cmd, "--expect is empty: give the deployment " + o.slot + " must serve (was a variable left empty?)"}
	}
	return nil
}

// givenString is a string flag that remembers whether it was given, so
// that one given empty (a variable a script left empty) is refused rather
// than taken for "not given".
type givenString struct {
	value string
	given bool
}

func (g *givenString) String() string { return g.value }

func (g *givenString) Set(v string) error {
	g.value, g.given = v, true
	return nil
}

// describeSwap says in one line what a swap did.
func describeSwap(r swapResult) string {
	src := r.App + "/" + r.Source
	switch r.Phase {
	case "completed":
		s := fmt.Sprintf("swapped %s into %s in %s (%s now %s, %s serves %s)", src, r.Target,
			time.Duration(r.DurationMs)*time.Millisecond, r.Source, servesOrEmpty(r.TargetDeployment), r.Target, orDash(r.SourceDeployment))
		if r.ReusedWarm {
			s += " (instant revert: warm process sets reused)"
		}
		return s
	case "preview":
		return fmt.Sprintf("%s is in preview of %s: its URL serves the new content with %s's settings; run `hotswap swap %s --complete` or `--cancel`",
			src, r.Target, r.Target, r.App)
	case "cancelled":
		s := "swap cancelled: " + src
		if r.SourceDeployment != "" {
			s += " serves " + r.SourceDeployment
		} else {
			s += " serves what it served"
		}
		return s + " with its own settings again; " + r.Target + " unchanged"
	}
	return fmt.Sprintf("swap of %s into %s: %s", src, r.Target, orDash(r.Phase))
}

func servesOrEmpty(id string) string {
	if id == "" {
		return "is empty"
	}
	return "serves " + id
}

func autoSwapCheck(x *cmdEnv, args []string) error {
	o := x.opts
	switch {
	case o.slot == "":
		return &usageError{x.cmd, "--slot is required: the slot that swaps after each deploy"}
	case o.disable && o.target != "":
		return &usageError{x.cmd, "--target and --disable exclude each other"}
	case !o.disable && o.target == "":
		return &usageError{x.cmd, "give --target SLOT, or --disable"}
	}
	return nil
}

// autoSwap sets or clears a slot's auto-swap target.
func autoSwap(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	app, o := args[0], x.opts
	var s slotJSON
	p := slotPath(app, o.slot) + "/autoswap"
	if printed, err := x.call(ctx, http.MethodPut, p, map[string]string{"target": o.target}, &s); printed || err != nil {
		return err
	}
	if o.disable {
		_, err := fmt.Fprintf(x.stdout, "auto swap of %s/%s disabled\n", app, o.slot)
		return err
	}
	target := s.AutoSwapTarget
	if target == "" {
		target = o.target
	}
	_, err := fmt.Fprintf(x.stdout, "auto swap: %s/%s -> %s\n", app, o.slot, target)
	return err
}

func rollbackCheck(x *cmdEnv, args []string) error {
	switch {
	case x.opts.slot == "":
		return &usageError{x.cmd, "--slot is required"}
	case x.opts.to == "":
		return &usageError{x.cmd, "--to is required: the deployment to roll back to (see hotswap deployments " + args[0] + ")"}
	}
	return nil
}

// rollback redeploys an earlier deployment to a slot and, like deploy,
// waits (bounded by ctx only) until the slot serves it.
func rollback(ctx context.Context, x *cmdEnv, args []string) error {
	app, o := args[0], x.opts
	var ans deployAnswer
	p := slotPath(app, o.slot) + "/rollback"
	if o.force {
		p += "?force=true"
	}
	if printed, err := x.callStream(ctx, x.newProgress(), http.MethodPost, p, map[string]string{"deployment": o.to}, &ans); printed || err != nil {
		return err
	}
	id := ans.Deployment.ID
	if id == "" {
		id = o.to
	}
	_, err := fmt.Fprintf(x.stdout, "rolled back %s/%s to %s\n%s\n", app, o.slot, id, ans.URL)
	return err
}

// deploymentView is a Deployment plus where and when it served.
type deploymentView struct {
	hotswap.Deployment
	ServingSlots []string            `json:"servingSlots"`
	Served       []servedSpan        `json:"served"`
	Quarantine   *hotswap.Quarantine `json:"quarantine,omitempty"`
}

// servedSpan is one stretch of time a deployment served in a slot; To is
// empty while it still serves. Times stay strings so that an odd value
// shows as is instead of failing the whole listing.
type servedSpan struct {
	Slot string `json:"slot"`
	From string `json:"from"`
	To   string `json:"to"`
}

// fmtServed renders a deployment's history compactly, e.g.
// "staging 14:01-14:05, production 14:05-now". Times are UTC; a time gets
// its date (Jan 2 15:04) when it is not on the day before it: created (the
// CREATED column) for the first, the span's start for its end.
func fmtServed(spans []servedSpan, created time.Time) string {
	var parts []string
	prev := created.UTC()
	for _, s := range spans {
		from, fromT := compactTime(s.From, prev)
		if !fromT.IsZero() {
			prev = fromT
		}
		to := "now"
		if s.To != "" {
			to, _ = compactTime(s.To, prev)
		}
		parts = append(parts, fmt.Sprintf("%s %s-%s", orDash(s.Slot), from, to))
	}
	return orDash(strings.Join(parts, ", "))
}

// compactTime formats an RFC 3339 time as 15:04, or Jan 2 15:04 when it is
// not on ref's day (or ref is zero); an unparsable value is returned as is
// with a zero time.
func compactTime(s string, ref time.Time) (string, time.Time) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return orDash(s), time.Time{}
	}
	t = t.UTC()
	if y, m, d := t.Date(); ref.IsZero() || y != ref.Year() || m != ref.Month() || d != ref.Day() {
		return t.Format("Jan 2 15:04"), t
	}
	return t.Format("15:04"), t
}

func deploymentsList(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	p := appPath(args[0]) + "/deployments"
	if x.opts.slot != "" {
		p += "?" + url.Values{"slot": {x.opts.slot}}.Encode()
	}
	var ans struct {
		Deployments []deploymentView `json:"deployments"`
	}
	if printed, err := x.call(ctx, http.MethodGet, p, nil, &ans); printed || err != nil {
		return err
	}
	tw := newTable(x.stdout)
	if x.wide {
		fmt.Fprintln(tw, "ID\tSTATUS\tSERVING\tSERVED\tAUTHOR\tCREATED\tSTARTED\tENDED\tDIGEST\tMESSAGE")
	} else {
		fmt.Fprintln(tw, "ID\tSTATUS\tSERVING\tSERVED\tAUTHOR\tCREATED\tMESSAGE")
	}
	for _, d := range ans.Deployments {
		status := d.StatusText
		if status == "" {
			status = d.Status.String()
		}
		if d.Quarantine != nil {
			status += " (quarantined)"
		}
		msg, _, _ := strings.Cut(d.Message, "\n")
		if x.wide {
			msg = d.Message // whole, on one line
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t", d.ID, status, orDash(strings.Join(d.ServingSlots, ",")),
			fmtServed(d.Served, d.CreatedAt), orDash(d.Author), fmtTime(d.CreatedAt))
		if x.wide {
			fmt.Fprintf(tw, "%s\t%s\t%s\t", fmtTime(d.StartedAt), fmtTime(d.EndedAt), orDash(shortDigest(d.Digest)))
		}
		fmt.Fprintf(tw, "%s\n", cell(msg))
	}
	return tw.Flush()
}

// activityEntry is one line of an app's activity log. Detail is kept raw
// so that a structured detail prints as compact JSON.
type activityEntry struct {
	ID     int64           `json:"id"`
	Time   string          `json:"time"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Slot   string          `json:"slot"`
	Detail json.RawMessage `json:"detail"`
	Result string          `json:"result"`
}

// limitCheck refuses a negative --limit.
func limitCheck(x *cmdEnv, args []string) error {
	if x.opts.limit < 0 {
		return &usageError{x.cmd, "--limit must not be negative"}
	}
	return nil
}

func activityList(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	p := appPath(args[0]) + "/activity"
	if x.opts.limit > 0 {
		p += "?limit=" + strconv.Itoa(x.opts.limit)
	}
	var ans struct {
		Activity []activityEntry `json:"activity"`
	}
	if printed, err := x.call(ctx, http.MethodGet, p, nil, &ans); printed || err != nil {
		return err
	}
	tw := newTable(x.stdout)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tSLOT\tRESULT\tDETAIL")
	for _, a := range ans.Activity {
		when := a.Time
		if t, err := time.Parse(time.RFC3339Nano, a.Time); err == nil {
			when = fmtTime(t)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", orDash(when), cell(a.Actor), cell(a.Action), cell(a.Slot), cell(a.Result), cell(rawText(a.Detail)))
	}
	return tw.Flush()
}

// rawText returns a JSON string's text, or other JSON as is ("" for null).
func rawText(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// cell makes s fit one table cell: "-" when empty, tabs and line breaks as
// spaces.
func cell(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	return orDash(strings.TrimSpace(s))
}

// reportAutoSwap tells what the auto swap after a deploy did. An auto swap
// that failed is an error (exit 1), though the deploy itself succeeded.
func reportAutoSwap(w io.Writer, ans deployAnswer, app, slot string) error {
	if ans.AutoSwapError != "" {
		return fmt.Errorf("auto swap failed: %s (the deploy itself succeeded: deployment %s to %s/%s)", ans.AutoSwapError, orDash(ans.Deployment.ID), app, slot)
	}
	if r := ans.AutoSwap; r != nil {
		if r.App == "" {
			r.App = app
		}
		if r.Source == "" {
			r.Source = slot
		}
		var err error
		if r.Phase == "completed" {
			id := r.SourceDeployment
			if id == "" {
				id = ans.Deployment.ID
			}
			_, err = fmt.Fprintf(w, "auto swap: swapped into %s (%s)\n", r.Target, orDash(id))
		} else {
			_, err = fmt.Fprintf(w, "auto swap: %s\n", describeSwap(*r))
		}
		return err
	}
	return nil
}
