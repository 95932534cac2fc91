package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
)

// Progressive swaps (rollouts): swap --strategy starts one and follows it;
// the rollout commands list, show, follow and steer them (docs/api.md
// "Progressive swaps").

// rolloutPoll is how often a followed rollout is read again.
const rolloutPoll = 500 * time.Millisecond

// rolloutFlags registers swap's --strategy, --step and --analysis.
func rolloutFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.strategy, "strategy", "", "swap progressively by these `steps`: canary:10,25,50 (each a share of production's requests, held --step long), or a preset: Canary10Percent5Minutes, Linear10PercentEvery1Minute, AllAtOnce")
	fs.StringVar(&o.step, "step", "", "how long each step of --strategy canary:... lasts: a `duration` such as 2m (default 5m)")
	fs.StringVar(&o.analysis, "analysis", "", "what each step must show to go on: `limits` such as maxErrorRate=1%,maxP95=300ms,minRequests=200 (read against production's at the same time)")
}

// rolloutRequest is the body of POST /api/v1/apps/{app}/rollouts.
type rolloutRequest struct {
	Slot     string `json:"slot"`
	Target   string `json:"target,omitempty"`
	Strategy string `json:"strategy"`
	Step     string `json:"step,omitempty"`
	Analysis string `json:"analysis,omitempty"`
}

// progressiveSwap reports whether swap's flags ask for a progressive swap.
func progressiveSwap(o options) bool {
	return o.strategy != "" || o.step != "" || o.analysis != ""
}

// rolloutSwapCheck checks swap --strategy's flags, and parses the strategy
// and analysis as the server will, so that a mistake fails before any
// request.
func rolloutSwapCheck(x *cmdEnv) error {
	o := x.opts
	switch {
	case o.complete || o.cancel || o.preview:
		return &usageError{x.cmd, "--strategy swaps progressively: drop --preview, --complete and --cancel"}
	case o.force:
		return &usageError{x.cmd, "--force does not apply to a progressive swap: its swap respects a release's hold"}
	case o.expect.given:
		return &usageError{x.cmd, "--expect does not apply to a progressive swap: it swaps what its steps analysed, and fails if either slot changes"}
	case o.strategy == "":
		return &usageError{x.cmd, "--step and --analysis go with --strategy (canary:10,25,50, Canary10Percent5Minutes, Linear10PercentEvery1Minute or AllAtOnce)"}
	case o.slot == "":
		return &usageError{x.cmd, "--slot is required: the slot whose share of production's requests grows"}
	}
	var step time.Duration
	if o.step != "" {
		d, err := time.ParseDuration(o.step)
		if err != nil || d <= 0 {
			return &usageError{x.cmd, fmt.Sprintf("--step %q is not a duration such as 2m or 30s", o.step)}
		}
		step = d
	}
	if _, err := hotswap.ParseStrategy(o.strategy, step); err != nil {
		return &usageError{x.cmd, "--strategy: " + err.Error()}
	}
	if _, err := hotswap.ParseAnalysis(o.analysis); err != nil {
		return &usageError{x.cmd, "--analysis: " + err.Error()}
	}
	return nil
}

func rolloutsPath(app string) string { return appPath(app) + "/rollouts" }

func rolloutPath(app, id string) string { return rolloutsPath(app) + "/" + url.PathEscape(id) }

// swapProgressive starts a progressive swap and, unless --no-wait, follows
// it to its end.
func swapProgressive(ctx context.Context, x *cmdEnv, app string) error {
	o := x.opts
	body := rolloutRequest{Slot: o.slot, Target: o.target, Strategy: o.strategy, Step: o.step, Analysis: o.analysis}
	var raw json.RawMessage
	start, cancel := withTimeout(ctx)
	err := x.client.do(start, http.MethodPost, rolloutsPath(app), body, &raw)
	cancel()
	if err != nil {
		return err
	}
	var r hotswap.Rollout
	if err := json.Unmarshal(raw, &r); err != nil || r.ID == "" {
		return fmt.Errorf("the server's answer to the progressive swap is not a rollout: %.200s", raw)
	}
	if o.noWait {
		if x.json {
			return x.printAnswer(raw)
		}
		_, err := fmt.Fprintf(x.stdout, "%s started: %s\nfollow it with: hotswap rollout watch %s %s\n", describeRollout(r), planOf(r), r.App, r.ID)
		return err
	}
	return x.followRollout(ctx, r)
}

// followRollout prints r's plan, then reads it every rolloutPoll and prints
// each new step result and change of state, until it ends: a last line, or
// with -o json the rollout as the API gives it. A failed or aborted rollout
// is an error that says why.
func (x *cmdEnv) followRollout(ctx context.Context, r hotswap.Rollout) error {
	w := x.progressOut()
	fmt.Fprintf(w, "%s: %s\n", describeRollout(r), planOf(r))
	var f rolloutFollower
	var raw json.RawMessage
	for {
		f.show(w, r)
		if r.State.Done() {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: progressive swap %s goes on; follow it with hotswap rollout watch %s %s", ctx.Err(), r.ID, r.App, r.ID)
		case <-time.After(rolloutPoll):
		}
		get, cancel := withTimeout(ctx)
		err := x.client.do(get, http.MethodGet, rolloutPath(r.App, r.ID), nil, &raw)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: progressive swap %s goes on; follow it with hotswap rollout watch %s %s", ctx.Err(), r.ID, r.App, r.ID)
			}
			return fmt.Errorf("follow progressive swap %s: %w (it goes on; hotswap rollout watch %s %s follows it again)", r.ID, err, r.App, r.ID)
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("follow progressive swap %s: the server's answer is not a rollout: %w", r.ID, err)
		}
	}
	if x.json {
		if len(raw) == 0 {
			raw, _ = json.Marshal(r)
		}
		if err := x.printAnswer(raw); err != nil {
			return err
		}
	} else if _, err := fmt.Fprintln(x.stdout, rolloutOutcome(r)); err != nil {
		return err
	}
	return rolloutError(r)
}

// rolloutError is nil for a rollout that succeeded (or has not ended), and
// says why one failed or was aborted.
func rolloutError(r hotswap.Rollout) error {
	if r.State != hotswap.RolloutFailed && r.State != hotswap.RolloutAborted {
		return nil
	}
	return fmt.Errorf("%s %s: %s", describeRollout(r), r.State, orDash(r.Reason))
}

// rolloutOutcome says in one line how a rollout ended.
func rolloutOutcome(r hotswap.Rollout) string {
	took := fmtElapsed(r.Updated.Sub(r.Created))
	switch r.State {
	case hotswap.RolloutSucceeded:
		return fmt.Sprintf("swapped %s/%s into %s by progressive swap %s in %s (%s serves %s)", r.App, r.Slot, r.Target, r.ID, took, r.Target, orDash(r.Deployment))
	case hotswap.RolloutFailed, hotswap.RolloutAborted:
		return fmt.Sprintf("progressive swap %s %s after %s: %s and %s serve what they served, %s's share of production's requests is gone", r.ID, r.State, took, r.Slot, r.Target, r.Slot)
	}
	return fmt.Sprintf("progressive swap %s is %s", r.ID, r.State)
}

// describeRollout names a rollout: "progressive swap ro-1 of
// orders/staging into production".
func describeRollout(r hotswap.Rollout) string {
	return fmt.Sprintf("progressive swap %s of %s/%s into %s", r.ID, r.App, r.Slot, orDash(r.Target))
}

// planOf says what a rollout does: its steps and its analysis.
func planOf(r hotswap.Rollout) string {
	s := r.Strategy.String()
	if !r.Analysis.IsZero() {
		s += "; analysis " + r.Analysis.String()
	}
	return s
}

// rolloutFollower prints what changed in a followed rollout.
type rolloutFollower struct {
	seen    bool
	results int // results printed
	state   hotswap.RolloutState
	step    int
}

// show prints r's new step results, then its state if it changed: a step
// that begins (or resumes, or pauses), the swap, a rollback or an abort.
// Each line starts with the time since the rollout began.
func (f *rolloutFollower) show(w io.Writer, r hotswap.Rollout) {
	n := len(r.Strategy.Steps)
	for ; f.results < len(r.Results); f.results++ {
		res := r.Results[f.results]
		fmt.Fprintf(w, "  %7s  %s\n", fmtElapsed(since(r.Created, res.At)), resultLine(res, n))
	}
	if f.seen && r.State == f.state && r.Step == f.step {
		return
	}
	f.seen, f.state, f.step = true, r.State, r.Step
	var line string
	switch r.State {
	case hotswap.RolloutRunning:
		if r.Step >= n {
			return
		}
		x := r.Strategy.Steps[r.Step]
		line = fmt.Sprintf("step %d/%d  %s%%  running for %s", r.Step+1, n, hotswap.FormatPercent(x.Percent), hotswap.FormatDuration(time.Duration(x.Duration)))
	case hotswap.RolloutPaused:
		if r.Step >= n {
			return
		}
		line = fmt.Sprintf("step %d/%d  %s%%  paused: the share stays, no step ends until resumed", r.Step+1, n, hotswap.FormatPercent(r.Strategy.Steps[r.Step].Percent))
	case hotswap.RolloutSwapping:
		line = "swapping " + r.Slot + " into " + r.Target
	case hotswap.RolloutRollingBack:
		line = "rolling back: " + orDash(r.Reason)
	case hotswap.RolloutAborting:
		line = "aborting: " + orDash(r.Reason)
	default:
		return // an end: the caller's last line says how it ended
	}
	fmt.Fprintf(w, "  %7s  %s\n", fmtElapsed(since(r.Created, r.Updated)), line)
}

// since is to-from, never negative (a missing time counts as none).
func since(from, to time.Time) time.Duration {
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return 0
	}
	return to.Sub(from)
}

// resultLine is one step result: "step 1/3  10%  passed  staging: error
// rate 0% (0 of 412), p95 8ms; production: error rate 0%, p95 8ms".
func resultLine(res hotswap.StepResult, steps int) string {
	s := fmt.Sprintf("step %d/%d  %s%%  %s", res.Step+1, steps, hotswap.FormatPercent(res.Percent), orDash(res.Verdict))
	if res.Detail != "" {
		s += "  " + strings.ReplaceAll(res.Detail, "\n", " ")
	}
	return s
}

// rolloutArg returns the rollout the command names: args[1], else the
// app's newest one if it has not ended.
func (x *cmdEnv) rolloutArg(ctx context.Context, args []string) (string, error) {
	if len(args) > 1 {
		return args[1], nil
	}
	app := args[0]
	var ans struct {
		Rollouts []hotswap.Rollout `json:"rollouts"`
	}
	if err := x.client.do(ctx, http.MethodGet, rolloutsPath(app)+"?limit=1", nil, &ans); err != nil {
		return "", err
	}
	switch {
	case len(ans.Rollouts) == 0:
		return "", fmt.Errorf("%s has no progressive swap; start one with hotswap swap %s --slot SLOT --strategy canary:10,25,50", app, app)
	case ans.Rollouts[0].State.Done():
		last := ans.Rollouts[0]
		return "", fmt.Errorf("%s has no progressive swap running (the last, %s, %s); name one: hotswap rollout list %s", app, last.ID, last.State, app)
	}
	return ans.Rollouts[0].ID, nil
}

func rolloutList(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	p := rolloutsPath(args[0])
	if x.opts.limit > 0 {
		p += "?limit=" + strconv.Itoa(x.opts.limit)
	}
	var ans struct {
		Rollouts []hotswap.Rollout `json:"rollouts"`
	}
	if printed, err := x.call(ctx, http.MethodGet, p, nil, &ans); printed || err != nil {
		return err
	}
	tw := newTable(x.stdout)
	if x.wide {
		fmt.Fprintln(tw, "ID\tSLOT\tSTATE\tSTEP\tSTRATEGY\tANALYSIS\tACTOR\tCREATED\tUPDATED\tREASON")
	} else {
		fmt.Fprintln(tw, "ID\tSLOT\tSTATE\tSTEP\tSTRATEGY\tACTOR\tCREATED")
	}
	for _, r := range ans.Rollouts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t", r.ID, r.Slot+"->"+r.Target, r.State, stepOf(r), cell(r.Strategy.Name))
		if x.wide {
			fmt.Fprintf(tw, "%s\t", r.Analysis.String())
		}
		fmt.Fprintf(tw, "%s\t%s", cell(r.Actor), fmtTime(r.Created))
		if x.wide {
			fmt.Fprintf(tw, "\t%s\t%s", fmtTime(r.Updated), cell(r.Reason))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// stepOf says which step a rollout is at: "2/3", or "-" without steps.
func stepOf(r hotswap.Rollout) string {
	n := len(r.Strategy.Steps)
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", min(r.Step+1, n), n)
}

// getRollout reads the rollout the command names; with -o json it prints
// it and returns printed true.
func (x *cmdEnv) getRollout(ctx context.Context, args []string) (hotswap.Rollout, bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	id, err := x.rolloutArg(ctx, args)
	if err != nil {
		return hotswap.Rollout{}, false, err
	}
	var r hotswap.Rollout
	printed, err := x.call(ctx, http.MethodGet, rolloutPath(args[0], id), nil, &r)
	return r, printed, err
}

func rolloutShow(ctx context.Context, x *cmdEnv, args []string) error {
	r, printed, err := x.getRollout(ctx, args)
	if printed || err != nil {
		return err
	}
	return printRollout(x.stdout, r)
}

// printRollout prints a rollout and its step results.
func printRollout(w io.Writer, r hotswap.Rollout) error {
	state := string(r.State)
	if (r.State == hotswap.RolloutRunning || r.State == hotswap.RolloutPaused) && r.Step < len(r.Strategy.Steps) {
		state += fmt.Sprintf(", step %d of %d (%s%% of %s's requests)", r.Step+1, len(r.Strategy.Steps), hotswap.FormatPercent(r.Share()), r.Target)
	}
	fmt.Fprintf(w, "id:          %s\napp:         %s\nswap:        %s -> %s\nstrategy:    %s (%s)\nanalysis:    %s\nstate:       %s\n",
		r.ID, r.App, r.Slot, r.Target, orDash(r.Strategy.Name), r.Strategy.String(), r.Analysis.String(), state)
	if r.Reason != "" {
		fmt.Fprintf(w, "reason:      %s\n", r.Reason)
	}
	fmt.Fprintf(w, "deployment:  %s (%s serves %s)\nactor:       %s\ncreated:     %s\nupdated:     %s\n",
		orDash(r.Deployment), r.Target, orDash(r.TargetDeployment), orDash(r.Actor), fmtTime(r.Created), fmtTime(r.Updated))
	if r.Release != "" {
		fmt.Fprintf(w, "release:     %s\n", r.Release)
	}
	if len(r.Results) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	fmt.Fprintln(tw, "STEP\tPERCENT\tVERDICT\tAT\tDETAIL")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%d/%d\t%s%%\t%s\t%s\t%s\n", res.Step+1, len(r.Strategy.Steps), hotswap.FormatPercent(res.Percent), cell(res.Verdict), fmtTime(res.At), cell(res.Detail))
	}
	return tw.Flush()
}

func rolloutWatch(ctx context.Context, x *cmdEnv, args []string) error {
	get, cancel := withTimeout(ctx)
	defer cancel()
	id, err := x.rolloutArg(get, args)
	if err != nil {
		return err
	}
	var r hotswap.Rollout
	if err := x.client.do(get, http.MethodGet, rolloutPath(args[0], id), nil, &r); err != nil {
		return err
	}
	return x.followRollout(ctx, r)
}

// rolloutCommand returns the run function of rollout pause, resume,
// promote or abort.
func rolloutCommand(cmd hotswap.RolloutCommand) func(ctx context.Context, x *cmdEnv, args []string) error {
	return func(ctx context.Context, x *cmdEnv, args []string) error {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		id, err := x.rolloutArg(ctx, args)
		if err != nil {
			return err
		}
		var r hotswap.Rollout
		if printed, err := x.call(ctx, http.MethodPost, rolloutPath(args[0], id)+"/"+string(cmd), nil, &r); printed || err != nil {
			return err
		}
		_, err = fmt.Fprintf(x.stdout, "%s: %s\n", describeRollout(r), commanded(r))
		return err
	}
}

// commanded says where a rollout is after a command.
func commanded(r hotswap.Rollout) string {
	switch r.State {
	case hotswap.RolloutPaused:
		return fmt.Sprintf("paused at step %s (%s%%): the share stays until resumed", stepOf(r), hotswap.FormatPercent(r.Share()))
	case hotswap.RolloutRunning:
		return fmt.Sprintf("running: step %s (%s%%) starts again", stepOf(r), hotswap.FormatPercent(r.Share()))
	case hotswap.RolloutSwapping:
		return "swapping into " + r.Target + " now, the steps left skipped"
	case hotswap.RolloutAborting:
		return "aborting: " + r.Slot + "'s share goes back to " + r.Target + " and nothing is swapped"
	}
	s := string(r.State)
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}
