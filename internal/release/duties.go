package release

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pipeline"
)

// stageRules describes what each stage does, by stage name: its trigger
// (after, manual), its actions (deploy, swap with its target and preview),
// its checks, gates, approval and queue. Approvers are sorted, so their
// order is no change.
func stageRules(def *pipeline.Pipeline) map[string]string {
	out := make(map[string]string)
	if def == nil {
		return out
	}
	for _, sd := range def.Stages {
		c := *sd
		if sd.Approval != nil {
			a := *sd.Approval
			a.Approvers = slices.Sorted(slices.Values(a.Approvers))
			c.Approval = &a
		}
		b, err := json.Marshal(&c)
		if err != nil {
			b = []byte(fmt.Sprintf("%#v", c)) // never: a Stage is plain data
		}
		out[sd.Name] = string(b)
	}
	return out
}

func hasApproval(def *pipeline.Pipeline) bool {
	if def == nil {
		return false
	}
	return slices.ContainsFunc(def.Stages, func(sd *pipeline.Stage) bool { return sd.Approval != nil })
}

func stageNames(def *pipeline.Pipeline) []string {
	var out []string
	if def != nil {
		for _, sd := range def.Stages {
			out = append(out, sd.Name)
		}
	}
	return out
}

// checkDuties keeps approvals a check on the people who release. A
// non-admin may not name itself an approver of any stage, of a new pipeline
// or of an existing one: it could approve the releases others (ci) create.
// And in a pipeline that has an approval, before or after the change, a
// non-admin may change nothing about its stages: not their approvals, nor
// what they deploy or swap where, nor their order, triggers, checks or
// gates, since moving a swap into production out from under its approval
// would let every release through unapproved. The rest of the definition
// (description, artifact feed, trigger branches, notify) stays open.
func checkDuties(actor Actor, old, next *pipeline.Pipeline) error {
	if actor.Role == "admin" {
		return nil
	}
	for _, sd := range next.Stages {
		if a := sd.Approval; a != nil && slices.Contains(a.Approvers, actor.Name) {
			return hotswap.Errorf(hotswap.Forbidden, "%s (role %s) may not name itself an approver of stage %s of pipeline %s: it could approve releases it takes part in; ask an admin to apply this definition", actor.Name, actor.Role, sd.Name, next.Name)
		}
	}
	if old == nil || (!hasApproval(old) && !hasApproval(next)) {
		return nil
	}
	was, now := stageRules(old), stageRules(next)
	var changed []string
	for name, rule := range now {
		if was[name] != rule {
			changed = append(changed, name)
		}
	}
	for name := range was {
		if _, ok := now[name]; !ok {
			changed = append(changed, name)
		}
	}
	sort.Strings(changed)
	what := "stage " + strings.Join(changed, ", ")
	if len(changed) == 0 {
		if slices.Equal(stageNames(old), stageNames(next)) {
			return nil
		}
		what = "the order of its stages"
	}
	return hotswap.Errorf(hotswap.Forbidden, "%s (role %s) may not change the stages of pipeline %s (%s): in a pipeline with an approval, changing a stage's approval, actions, targets, order, trigger, checks or gates needs the admin role", actor.Name, actor.Role, next.Name, what)
}

// recordDecision writes an approval or rejection to the activity log of
// each app the stage acts on (its deploy, swap, checks and gates), so the
// audit trail shows who let what into which slot.
func (e *Engine) recordDecision(ctx context.Context, actor Actor, r *Release, sd *pipeline.Stage, decision, comment string) {
	apps := stageApps(sd)
	slot := ""
	if sd.Deploy != nil {
		slot = sd.Deploy.Slot
	}
	if sd.Swap != nil {
		slot = sd.Swap.Target
	}
	if len(apps) == 0 {
		apps = []string{""} // the all-apps activity log still shows it
	}
	detail := fmt.Sprintf("release %s stage %s (%s %s)", r.Name, sd.Name, r.Feed, r.Version)
	if comment != "" {
		detail += ": " + comment
	}
	action := "release.approve"
	if decision == "rejected" {
		action = "release.reject"
	}
	for _, app := range apps {
		a := hotswap.Activity{App: app, Actor: actor.Name, Action: action, Slot: slot, Detail: detail, Result: decision}
		if err := e.store.AddActivity(context.WithoutCancel(ctx), a); err != nil {
			e.log.Error("record release decision", "release", r.Name, "app", app, "err", err)
		}
	}
}

// stageApps returns the apps a stage acts on: its deploy, swap, checks and
// gates, each once.
func stageApps(sd *pipeline.Stage) []string {
	var apps []string
	add := func(app string) {
		if app != "" && !slices.Contains(apps, app) {
			apps = append(apps, app)
		}
	}
	if sd.Deploy != nil {
		add(sd.Deploy.App)
	}
	if sd.Swap != nil {
		add(sd.Swap.App)
	}
	for _, c := range sd.Checks {
		add(c.App)
	}
	for _, g := range sd.Gates {
		if g.HTTP != nil {
			add(g.HTTP.App)
		} else if g.Metric != nil {
			add(g.Metric.App)
		}
	}
	return apps
}
