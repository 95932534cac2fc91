package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Users, artifact feeds, pipelines and releases (docs/api.md, the sections
// from "Users and roles" on).

// Wire shapes.

type userJSON struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Token     string    `json:"token"` // only in the answer of user create
	CreatedAt time.Time `json:"createdAt"`
}

type artifactJSON struct {
	Feed      string    `json:"feed"`
	Version   string    `json:"version"`
	Branch    string    `json:"branch"`
	Commit    string    `json:"commit"`
	Digest    string    `json:"digest"`
	Actor     string    `json:"actor"`
	CreatedAt time.Time `json:"createdAt"`
}

type pipelineJSON struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Version    int       `json:"version"`
	Definition string    `json:"definition"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

type pipelineVersionJSON struct {
	Version    int       `json:"version"`
	Name       string    `json:"name"`
	Definition string    `json:"definition"`
	Actor      string    `json:"actor"`
	CreatedAt  time.Time `json:"createdAt"`
}

type releaseJSON struct {
	ID              string      `json:"id"`
	Name            string      `json:"name"`
	Number          int         `json:"number"`
	Pipeline        string      `json:"pipeline"`
	PipelineVersion int         `json:"pipelineVersion"`
	Feed            string      `json:"feed"`
	Version         string      `json:"version"`
	Branch          string      `json:"branch"`
	Commit          string      `json:"commit"`
	Requester       string      `json:"requester"`
	Reason          string      `json:"reason"`
	State           string      `json:"state"`
	Detail          string      `json:"detail"`
	CreatedAt       time.Time   `json:"createdAt"`
	EndedAt         time.Time   `json:"endedAt"`
	Holds           []string    `json:"holds"`
	Stages          []stageJSON `json:"stages"`
}

type stageJSON struct {
	Name         string         `json:"name"`
	State        string         `json:"state"`
	Attempt      int            `json:"attempt"`
	Detail       string         `json:"detail"`
	DeploymentID string         `json:"deploymentId"`
	Approvals    []approvalJSON `json:"approvals"`
	Gates        []gateJSON     `json:"gates"`
	Log          []stageLogLine `json:"log"`
}

type approvalJSON struct {
	User     string    `json:"user"`
	Decision string    `json:"decision"`
	Comment  string    `json:"comment"`
	Attempt  int       `json:"attempt"`
	At       time.Time `json:"at"`
}

type gateJSON struct {
	Passed       bool      `json:"passed"`
	Last         string    `json:"last"`
	FirstSuccess time.Time `json:"firstSuccess"`
	LastEval     time.Time `json:"lastEval"`
}

type stageLogLine struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

func shortDigest(d string) string {
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// Users

// userCreateCheck wants a role; the server judges which roles exist.
func userCreateCheck(x *cmdEnv, args []string) error {
	if x.opts.role == "" {
		return &usageError{x.cmd, "--role is required: admin, deployer or approver"}
	}
	return nil
}

func userCreate(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var u userJSON
	body := map[string]string{"name": args[0], "role": x.opts.role}
	if printed, err := x.call(ctx, http.MethodPost, "/api/v1/users", body, &u); printed || err != nil {
		return err
	}
	_, err := fmt.Fprintf(x.stdout, "created user %s (%s)\ntoken: %s (shown once; keep it)\n", u.Name, u.Role, u.Token)
	return err
}

func userRotate(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var u userJSON
	if printed, err := x.call(ctx, http.MethodPost, "/api/v1/users/"+url.PathEscape(args[0])+"/token", nil, &u); printed || err != nil {
		return err
	}
	where := ""
	if u.Name == "admin" {
		where = "; the server keeps it in <data>/admin-token"
	}
	_, err := fmt.Fprintf(x.stdout, "new token for %s (%s): %s (shown once; keep it%s)\nthe earlier token and the portal sessions signed in with it no longer work\n", u.Name, u.Role, u.Token, where)
	return err
}

func userList(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ans struct {
		Users []userJSON `json:"users"`
	}
	if printed, err := x.call(ctx, http.MethodGet, "/api/v1/users", nil, &ans); printed || err != nil {
		return err
	}
	tw := newTable(x.stdout)
	fmt.Fprintln(tw, "NAME\tROLE\tCREATED")
	for _, u := range ans.Users {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, orDash(u.Role), fmtTime(u.CreatedAt))
	}
	return tw.Flush()
}

func userDelete(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if printed, err := x.call(ctx, http.MethodDelete, "/api/v1/users/"+url.PathEscape(args[0]), nil, nil); printed || err != nil {
		return err
	}
	_, err := fmt.Fprintf(x.stdout, "deleted user %s\n", args[0])
	return err
}

func whoami(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var u userJSON
	if printed, err := x.call(ctx, http.MethodGet, "/api/v1/whoami", nil, &u); printed || err != nil {
		return err
	}
	_, err := fmt.Fprintf(x.stdout, "%s (%s)\n", u.Name, orDash(u.Role))
	return err
}

// Artifact feeds

func feedPath(feed string) string {
	return "/api/v1/feeds/" + url.PathEscape(feed) + "/artifacts"
}

func artifactPushCheck(x *cmdEnv, args []string) error {
	if x.opts.version == "" {
		return &usageError{x.cmd, "--version is required: the version the artifact is pushed as"}
	}
	return nil
}

// artifactPush uploads a .zip file or a zipped folder to a feed. Like deploy
// it is bounded by ctx only: the package may be large.
func artifactPush(ctx context.Context, x *cmdEnv, args []string) error {
	feed, path, o := args[0], args[1], x.opts
	f, size, err := openPackage("artifact push", path)
	if err != nil {
		return err
	}
	defer f.close()

	q := url.Values{"version": {o.version}}
	if o.branch != "" {
		q.Set("branch", o.branch)
	}
	if o.commit != "" {
		q.Set("commit", o.commit)
	}
	var ans struct {
		Artifact artifactJSON `json:"artifact"`
		Releases []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"releases"`
	}
	prog := x.newProgress()
	body := rawBody{r: prog.upload(f, size), size: size, contentType: "application/zip"}
	printed, err := x.call(ctx, http.MethodPost, feedPath(feed)+"?"+q.Encode(), body, &ans)
	prog.close()
	if printed || err != nil {
		return err
	}
	a := ans.Artifact
	if a.Feed == "" {
		a.Feed = feed
	}
	if a.Version == "" {
		a.Version = o.version
	}
	if _, err := fmt.Fprintf(x.stdout, "pushed %s %s (sha256 %s)\n", a.Feed, a.Version, orDash(shortDigest(a.Digest))); err != nil {
		return err
	}
	for _, r := range ans.Releases {
		name := r.Name
		if name == "" {
			name = r.ID
		}
		if _, err := fmt.Fprintf(x.stdout, "release %s created\n", name); err != nil {
			return err
		}
	}
	return nil
}

func artifactList(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ans struct {
		Artifacts []artifactJSON `json:"artifacts"`
	}
	if printed, err := x.call(ctx, http.MethodGet, feedPath(args[0]), nil, &ans); printed || err != nil {
		return err
	}
	tw := newTable(x.stdout)
	fmt.Fprintln(tw, "VERSION\tBRANCH\tCOMMIT\tDIGEST\tACTOR\tCREATED")
	for _, a := range ans.Artifacts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(a.Version), cell(a.Branch), cell(a.Commit),
			orDash(shortDigest(a.Digest)), cell(a.Actor), fmtTime(a.CreatedAt))
	}
	return tw.Flush()
}

// Pipelines

func pipelinePath(name string) string {
	return "/api/v1/pipelines/" + url.PathEscape(name)
}

func pipelineApplyCheck(x *cmdEnv, args []string) error {
	if x.opts.file == "" {
		return &usageError{x.cmd, "-f is required: the definition file, or - for standard input"}
	}
	return nil
}

func pipelineApply(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	file := x.opts.file
	var (
		def  []byte
		err  error
		name = file
	)
	if file == "-" {
		name = "standard input"
		def, err = io.ReadAll(x.stdin)
	} else {
		def, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("pipeline apply: %w", err)
	}
	if strings.TrimSpace(string(def)) == "" {
		return fmt.Errorf("pipeline apply: %s is empty", name)
	}
	var p pipelineJSON
	body := rawBody{r: strings.NewReader(string(def)), size: int64(len(def)), contentType: "application/yaml"}
	printed, err := x.call(ctx, http.MethodPost, "/api/v1/pipelines", body, &p)
	if ae, ok := errors.AsType[*apiError](err); ok && ae.Status == http.StatusBadRequest && strings.Contains(ae.Message, "\n") {
		// One problem per line, each with its position: keep the lines.
		return fmt.Errorf("%s is not a valid pipeline:\n%s", name, ae.Message)
	}
	if printed || err != nil {
		return err
	}
	what := "updated"
	if p.Version == 1 {
		what = "created"
	}
	_, err = fmt.Fprintf(x.stdout, "pipeline %s %s (version %d)\n", p.Name, what, p.Version)
	return err
}

func pipelineList(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ans struct {
		Pipelines []pipelineJSON `json:"pipelines"`
	}
	if printed, err := x.call(ctx, http.MethodGet, "/api/v1/pipelines", nil, &ans); printed || err != nil {
		return err
	}
	tw := newTable(x.stdout)
	fmt.Fprintln(tw, "NAME\tVERSION\tUPDATED")
	for _, p := range ans.Pipelines {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", p.Name, p.Version, fmtTime(p.UpdatedAt))
	}
	return tw.Flush()
}

func pipelineShow(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ans struct {
		Pipeline pipelineJSON          `json:"pipeline"`
		Versions []pipelineVersionJSON `json:"versions"`
	}
	if printed, err := x.call(ctx, http.MethodGet, pipelinePath(args[0]), nil, &ans); printed || err != nil {
		return err
	}
	p := ans.Pipeline
	def := p.Definition
	if def != "" && !strings.HasSuffix(def, "\n") {
		def += "\n"
	}
	fmt.Fprintf(x.stdout, "pipeline:  %s\nversion:   %d\nupdated:   %s\n\n%s\n", p.Name, p.Version, fmtTime(p.UpdatedAt), def)
	tw := newTable(x.stdout)
	fmt.Fprintln(tw, "VERSION\tNAME\tACTOR\tCREATED")
	for _, v := range ans.Versions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", v.Version, v.Name, cell(v.Actor), fmtTime(v.CreatedAt))
	}
	return tw.Flush()
}

func pipelineRename(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var p pipelineJSON
	body := map[string]string{"name": args[1]}
	if printed, err := x.call(ctx, http.MethodPost, pipelinePath(args[0])+"/rename", body, &p); printed || err != nil {
		return err
	}
	name := p.Name
	if name == "" {
		name = args[1]
	}
	_, err := fmt.Fprintf(x.stdout, "renamed pipeline %s to %s (version %d)\n", args[0], name, p.Version)
	return err
}

// Releases

func releasePath(release string) string {
	return "/api/v1/releases/" + url.PathEscape(release)
}

func stageFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.stage, "stage", "", "the stage `name`")
}

func decisionFlags(fs *flag.FlagSet, o *options) {
	stageFlag(fs, o)
	fs.StringVar(&o.comment, "comment", "", "a `comment` kept with the decision")
}

func stageCheck(x *cmdEnv, args []string) error {
	if x.opts.stage == "" {
		return &usageError{x.cmd, "--stage is required (see hotswap release show " + args[0] + ")"}
	}
	return nil
}

func releaseCreate(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	body := struct {
		Pipeline string `json:"pipeline"`
		Version  string `json:"version,omitempty"`
	}{args[0], x.opts.version}
	var r releaseJSON
	if printed, err := x.call(ctx, http.MethodPost, "/api/v1/releases", body, &r); printed || err != nil {
		return err
	}
	_, err := fmt.Fprintf(x.stdout, "release %s created (%s %s)\n", orDash(r.Name), orDash(r.Feed), orDash(r.Version))
	return err
}

// fmtStages renders the stages' states, e.g.
// "staging:succeeded production:waiting for approval".
func fmtStages(stages []stageJSON) string {
	parts := make([]string, 0, len(stages))
	for _, s := range stages {
		parts = append(parts, s.Name+":"+s.State)
	}
	return cell(strings.Join(parts, " "))
}

func releaseList(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	q := url.Values{}
	if len(args) > 0 {
		q.Set("pipeline", args[0])
	}
	if x.opts.limit > 0 {
		q.Set("limit", strconv.Itoa(x.opts.limit))
	}
	p := "/api/v1/releases"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var ans struct {
		Releases []releaseJSON `json:"releases"`
	}
	if printed, err := x.call(ctx, http.MethodGet, p, nil, &ans); printed || err != nil {
		return err
	}
	tw := newTable(x.stdout)
	fmt.Fprintln(tw, "NAME\tSTATE\tVERSION\tBRANCH\tREQUESTER\tCREATED\tSTAGES")
	for _, r := range ans.Releases {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, cell(r.State), cell(r.Version), cell(r.Branch),
			cell(r.Requester), fmtTime(r.CreatedAt), fmtStages(r.Stages))
	}
	return tw.Flush()
}

func releaseShow(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var r releaseJSON
	if printed, err := x.call(ctx, http.MethodGet, releasePath(args[0]), nil, &r); printed || err != nil {
		return err
	}
	return printRelease(x.stdout, r)
}

func printRelease(w io.Writer, r releaseJSON) error {
	var b strings.Builder
	field := func(indent, name, value string) {
		line := fmt.Sprintf("%s%-12s%s", indent, name+":", value)
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	field("", "release", fmt.Sprintf("%s (%s)", orDash(r.Name), orDash(r.ID)))
	field("", "pipeline", fmt.Sprintf("%s (version %d)", orDash(r.Pipeline), r.PipelineVersion))
	field("", "artifact", fmt.Sprintf("%s %s (branch %s, commit %s)", orDash(r.Feed), orDash(r.Version), orDash(r.Branch), orDash(r.Commit)))
	field("", "requester", fmt.Sprintf("%s (%s)", orDash(r.Requester), orDash(r.Reason)))
	field("", "state", orDash(r.State))
	if r.Detail != "" {
		field("", "detail", r.Detail)
	}
	field("", "created", fmtTime(r.CreatedAt))
	if !r.EndedAt.IsZero() {
		field("", "ended", fmtTime(r.EndedAt))
	}
	if len(r.Holds) > 0 {
		field("", "holds", strings.Join(r.Holds, ", "))
	}
	for _, s := range r.Stages {
		fmt.Fprintf(&b, "\nstage %s\n", s.Name)
		field("  ", "state", orDash(s.State))
		field("  ", "attempt", strconv.Itoa(s.Attempt))
		field("  ", "detail", orDash(s.Detail))
		field("  ", "deployment", orDash(s.DeploymentID))
		if len(s.Approvals) == 0 {
			field("  ", "approvals", "-")
		} else {
			field("  ", "approvals", "")
			for _, a := range s.Approvals {
				fmt.Fprintf(&b, "    %s %s %s (attempt %d)", fmtTime(a.At), orDash(a.User), orDash(a.Decision), a.Attempt)
				if a.Comment != "" {
					fmt.Fprintf(&b, ": %s", a.Comment)
				}
				b.WriteByte('\n')
			}
		}
		field("  ", "gates", gatesSummary(s.Gates))
		if len(s.Gates) > 1 || len(s.Gates) == 1 && s.Gates[0].Last != "" {
			for i, g := range s.Gates {
				state := "not passed"
				if g.Passed {
					state = "passed"
				}
				fmt.Fprintf(&b, "    gate %d: %s", i+1, state)
				if g.Last != "" {
					fmt.Fprintf(&b, "; last: %s", g.Last)
				}
				if !g.LastEval.IsZero() {
					fmt.Fprintf(&b, " (%s)", fmtTime(g.LastEval))
				}
				b.WriteByte('\n')
			}
		}
		if len(s.Log) == 0 {
			field("  ", "log", "-")
		} else {
			field("  ", "log", "")
			for _, l := range s.Log {
				fmt.Fprintf(&b, "    %s %s\n", fmtTime(l.Time), l.Text)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func gatesSummary(gates []gateJSON) string {
	if len(gates) == 0 {
		return "-"
	}
	passed := 0
	for _, g := range gates {
		if g.Passed {
			passed++
		}
	}
	return fmt.Sprintf("%d of %d passed", passed, len(gates))
}

// releaseAction posts to one of a release's actions and prints the
// resulting state of stage, or of the release when stage is empty.
func releaseAction(ctx context.Context, x *cmdEnv, release, action, stage string, body any) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var r releaseJSON
	if printed, err := x.call(ctx, http.MethodPost, releasePath(release)+"/"+action, body, &r); printed || err != nil {
		return err
	}
	name := r.Name
	if name == "" {
		name = release
	}
	state, detail := r.State, r.Detail
	if stage != "" {
		state, detail = "", ""
		for _, s := range r.Stages {
			if s.Name == stage {
				state, detail = s.State, s.Detail
				break
			}
		}
		name += " " + stage
	}
	line := name + ": " + orDash(state)
	if detail != "" {
		line += " (" + detail + ")"
	}
	_, err := fmt.Fprintln(x.stdout, line)
	return err
}

type decisionBody struct {
	Stage   string `json:"stage"`
	Comment string `json:"comment,omitempty"`
}

func releaseApprove(ctx context.Context, x *cmdEnv, args []string) error {
	return releaseAction(ctx, x, args[0], "approve", x.opts.stage, decisionBody{x.opts.stage, x.opts.comment})
}

func releaseReject(ctx context.Context, x *cmdEnv, args []string) error {
	return releaseAction(ctx, x, args[0], "reject", x.opts.stage, decisionBody{x.opts.stage, x.opts.comment})
}

func releaseRedeploy(ctx context.Context, x *cmdEnv, args []string) error {
	return releaseAction(ctx, x, args[0], "redeploy", x.opts.stage, map[string]string{"stage": x.opts.stage})
}

func releaseAbandon(ctx context.Context, x *cmdEnv, args []string) error {
	return releaseAction(ctx, x, args[0], "abandon", "", nil)
}
