package portal

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pipeline"
	"github.com/hotswap/hotswap/internal/release"
)

func pipelineURL(name string) string { return "/pipelines/" + url.PathEscape(name) }

func releaseURL(id string) string { return "/releases/" + url.PathEscape(id) }

// pipelineRow is a pipeline in the list.
type pipelineRow struct {
	hotswap.Pipeline
	Feed   string
	Stages int
}

func (p *Portal) pipelinesPage(w http.ResponseWriter, r *http.Request) {
	list, err := p.cfg.Store.ListPipelines(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	rows := make([]pipelineRow, 0, len(list))
	for _, pl := range list {
		row := pipelineRow{Pipeline: pl}
		if def, err := pipeline.Parse([]byte(pl.Definition), nil); err == nil {
			row.Feed, row.Stages = def.Feed, len(def.Stages)
		}
		rows = append(rows, row)
	}
	p.render(w, r, http.StatusOK, "pipelines", &view{Title: "Release pipelines", Nav: "pipelines", Data: rows})
}

// stageBox is a stage drawn in the chain.
type stageBox struct {
	*pipeline.Stage
	GateText []string
}

func stageBoxes(def *pipeline.Pipeline) []stageBox {
	var out []stageBox
	for _, s := range def.Order() {
		b := stageBox{Stage: s}
		for _, g := range s.Gates {
			switch {
			case g.HTTP != nil:
				b.GateText = append(b.GateText, fmt.Sprintf("HTTP %s/%s%s every %s for %s", g.HTTP.App, g.HTTP.Slot, g.HTTP.Path, humanDur(g.Every), humanDur(g.MinSuccess)))
			case g.Metric != nil:
				t := fmt.Sprintf("metrics of %s/%s over %s", g.Metric.App, g.Metric.Slot, humanDur(g.Metric.Window))
				if g.Metric.MaxErrorRate < 1 {
					t += fmt.Sprintf(", errors ≤ %g%%", g.Metric.MaxErrorRate*100)
				}
				if g.Metric.MaxP95 > 0 {
					t += ", p95 ≤ " + humanDur(g.Metric.MaxP95)
				}
				b.GateText = append(b.GateText, t)
			}
		}
		out = append(out, b)
	}
	return out
}

// pipelineData is the pipeline page's data.
type pipelineData struct {
	Pipeline  hotswap.Pipeline
	Def       *pipeline.Pipeline
	Stages    []stageBox
	Artifacts []hotswap.Artifact
	Releases  []*release.Release
	Versions  []hotswap.PipelineVersion
}

func (p *Portal) pipelinePage(w http.ResponseWriter, r *http.Request) {
	p.renderPipeline(w, r, http.StatusOK, nil)
}

func (p *Portal) renderPipeline(w http.ResponseWriter, r *http.Request, status int, f *form) {
	ctx := r.Context()
	pl, err := p.cfg.Store.GetPipeline(ctx, r.PathValue("name"), false)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	def, err := pipeline.Parse([]byte(pl.Definition), nil)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d := pipelineData{Pipeline: pl, Def: def, Stages: stageBoxes(def)}
	if d.Artifacts, err = p.cfg.Store.ListArtifacts(ctx, def.Feed); err != nil {
		p.fail(w, r, err)
		return
	}
	if d.Releases, err = p.cfg.Releases.List(ctx, pl.Name, 50); err != nil {
		p.fail(w, r, err)
		return
	}
	if d.Versions, err = p.cfg.Store.PipelineVersions(ctx, pl.ID); err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, status, "pipeline", &view{Title: pl.Name + " · Release pipeline", Nav: "pipelines", Form: f, Data: d})
}

// editorData is the pipeline editor's data.
type editorData struct {
	Name       string // the pipeline edited; empty for a new one
	Definition string
	Problems   []pipeline.Problem
	Error      string // a problem without a line
}

const newPipelineTemplate = `name: orders-release
artifact: {feed: orders}
trigger: {continuous: true, branches: [main]}
stages:
  - name: staging
    deploy: {app: orders, slot: staging}
    checks:
      - http: {path: /api/health, expect: [200]}
  - name: production
    after: [staging]
    approval: {approvers: [qa-lead], required: 1}
    swap: {app: orders, slot: staging, target: production}
`

func (p *Portal) newPipelinePage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "editor", &view{Title: "New release pipeline", Nav: "pipelines", Data: editorData{Definition: newPipelineTemplate}})
}

func (p *Portal) editPipelinePage(w http.ResponseWriter, r *http.Request) {
	pl, err := p.cfg.Store.GetPipeline(r.Context(), r.PathValue("name"), false)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	def := pl.Definition
	if actor(r).Role != "admin" {
		// The webhook URL usually carries a secret; applying the redacted
		// text back keeps the webhook (release.Engine.ApplyPipeline).
		def = release.RedactDefinition(def)
	}
	p.render(w, r, http.StatusOK, "editor", &view{Title: "Edit " + pl.Name, Nav: "pipelines", Data: editorData{Name: pl.Name, Definition: def}})
}

// applyPipeline stores a definition; on error the editor comes back with the
// user's text and every problem by line.
func (p *Portal) applyPipeline(w http.ResponseWriter, r *http.Request) {
	text := strings.ReplaceAll(r.PostFormValue("definition"), "\r\n", "\n")
	pl, err := p.cfg.Releases.ApplyPipeline(r.Context(), actor(r), []byte(text))
	if err != nil {
		d := editorData{Name: r.PathValue("name"), Definition: text}
		var perr *pipeline.Error
		if errors.As(err, &perr) {
			d.Problems = perr.Problems
		} else {
			d.Error = hotswap.ErrorMessage(err)
		}
		title := "New release pipeline"
		if d.Name != "" {
			title = "Edit " + d.Name
		}
		p.render(w, r, statusOf(err), "editor", &view{Title: title, Nav: "pipelines", Data: d})
		return
	}
	p.done(w, r, pipelineURL(pl.Name), fmt.Sprintf("Pipeline %s saved (version %d)", pl.Name, pl.Version))
}

func (p *Portal) renamePipeline(w http.ResponseWriter, r *http.Request) {
	name, newName := r.PathValue("name"), strings.TrimSpace(r.PostFormValue("name"))
	pl, err := p.cfg.Releases.RenamePipeline(r.Context(), actor(r), name, newName)
	if err != nil {
		p.renderPipeline(w, r, statusOf(err), failForm(r, "rename", "name", err))
		return
	}
	p.done(w, r, pipelineURL(pl.Name), "Pipeline "+name+" renamed to "+pl.Name)
}

func (p *Portal) createRelease(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rel, err := p.cfg.Releases.CreateRelease(r.Context(), actor(r), name, r.PostFormValue("version"))
	if err != nil {
		p.renderPipeline(w, r, statusOf(err), failForm(r, "create-release", "version", err))
		return
	}
	p.done(w, r, releaseURL(rel.ID), "Release "+rel.Name+" created")
}

// releaseData is the release page's data.
type releaseData struct {
	Release *release.Release
	Stages  []releaseStage
}

type releaseStage struct {
	*release.StageRun
	Def *pipeline.Stage
	// CanDecide: the user may approve or reject this stage now.
	CanDecide bool
	// CanRedeploy: the user may run the stage again (or start it).
	CanRedeploy bool
}

func (p *Portal) releasePage(w http.ResponseWriter, r *http.Request) {
	p.renderRelease(w, r, http.StatusOK, nil)
}

func (p *Portal) renderRelease(w http.ResponseWriter, r *http.Request, status int, f *form) {
	rel, err := p.cfg.Releases.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	who := actor(r)
	def, _ := pipeline.Parse([]byte(rel.Definition), nil)
	d := releaseData{Release: rel}
	for _, st := range rel.Stages {
		rs := releaseStage{StageRun: st}
		if def != nil {
			rs.Def = def.Stage(st.Name)
		}
		rs.CanDecide = canDecide(who, rel, st, rs.Def)
		switch st.State {
		case release.StageRunning, release.StageQueued, release.StageApproval, release.StageGates:
		case release.StagePending:
			rs.CanRedeploy = rs.Def != nil && rs.Def.Manual && !st.Started
		default:
			rs.CanRedeploy = rel.State != release.Abandoned
		}
		rs.CanRedeploy = rs.CanRedeploy && allowed(who, deploy)
		d.Stages = append(d.Stages, rs)
	}
	p.render(w, r, status, "release", &view{
		Title: rel.Name + " · Release", Nav: "pipelines", Form: f, Data: d,
		StatusURL: "/portal" + releaseURL(rel.ID) + "/status.json",
	})
}

func (p *Portal) releaseStatus(r *http.Request) (any, error) {
	rel, err := p.cfg.Releases.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	st := statusJSON{States: map[string]string{"release": rel.State}, Text: map[string]string{"release-detail": rel.Detail}}
	for _, s := range rel.Stages {
		st.States["stage-"+slug(s.Name)] = s.State
		st.Text["stage-detail-"+slug(s.Name)] = s.Detail
	}
	return st, nil
}

func (p *Portal) decide(w http.ResponseWriter, r *http.Request) {
	id, stage := r.PathValue("id"), r.PostFormValue("stage")
	approve := r.PostFormValue("decision") == "approve"
	rel, err := p.cfg.Releases.Decide(r.Context(), actor(r), id, stage, approve, strings.TrimSpace(r.PostFormValue("comment")))
	if err != nil {
		p.renderRelease(w, r, statusOf(err), failForm(r, "decide-"+stage, "comment", err))
		return
	}
	verb := "Rejected"
	if approve {
		verb = "Approved"
	}
	p.done(w, r, releaseURL(rel.ID), verb+" stage "+stage+" of "+rel.Name)
}

func (p *Portal) redeploy(w http.ResponseWriter, r *http.Request) {
	id, stage := r.PathValue("id"), r.PostFormValue("stage")
	rel, err := p.cfg.Releases.Redeploy(r.Context(), actor(r), id, stage)
	if err != nil {
		p.setFlash(w, r, hotswap.ErrorMessage(err), true)
		http.Redirect(w, r, releaseURL(id), http.StatusSeeOther)
		return
	}
	p.done(w, r, releaseURL(rel.ID), "Stage "+stage+" of "+rel.Name+" runs again")
}

func (p *Portal) abandon(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rel, err := p.cfg.Releases.Abandon(r.Context(), actor(r), id)
	if err != nil {
		p.setFlash(w, r, hotswap.ErrorMessage(err), true)
		http.Redirect(w, r, releaseURL(id), http.StatusSeeOther)
		return
	}
	p.done(w, r, releaseURL(rel.ID), "Release "+rel.Name+" abandoned")
}
