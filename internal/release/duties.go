package release

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pipeline"
	"github.com/hotswap/hotswap/internal/sqlite"
)

// approvalRules describes each stage's approval, by stage name: who
// approves, how many must, whether the requester may, and the timeout. A
// stage without approval is absent.
func approvalRules(def *pipeline.Pipeline) map[string]string {
	out := make(map[string]string)
	if def == nil {
		return out
	}
	for _, sd := range def.Stages {
		a := sd.Approval
		if a == nil {
			continue
		}
		approvers := slices.Clone(a.Approvers)
		sort.Strings(approvers)
		out[sd.Name] = fmt.Sprintf("approvers %s; required %d; requesterCanApprove %t; timeout %v", strings.Join(approvers, ","), a.Required, a.RequesterCanApprove, a.Timeout)
	}
	return out
}

// checkDuties keeps approvals a check on the people who release: changing
// an existing pipeline's approvers or approval rules (adding, removing or
// editing a stage's approval) needs the admin role, and a non-admin who
// creates a pipeline may not name itself an approver that may approve its
// own releases. Otherwise a deployer could approve its own releases.
func checkDuties(actor Actor, old, next *pipeline.Pipeline) error {
	if actor.Role == "admin" {
		return nil
	}
	if old == nil {
		// A new pipeline guards nothing yet; only self-approval is refused.
		for _, sd := range next.Stages {
			if a := sd.Approval; a != nil && a.RequesterCanApprove && slices.Contains(a.Approvers, actor.Name) {
				return hotswap.Errorf(hotswap.Forbidden, "%s (role %s) may not name itself an approver of stage %s with requesterCanApprove: true: it could approve its own releases; ask an admin to apply this definition", actor.Name, actor.Role, sd.Name)
			}
		}
		return nil
	}
	was, now := approvalRules(old), approvalRules(next)
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
	if len(changed) == 0 {
		return nil
	}
	sort.Strings(changed)
	return hotswap.Errorf(hotswap.Forbidden, "%s (role %s) may not change the approvals of pipeline %s (stage %s): changing approvers or approval rules needs the admin role", actor.Name, actor.Role, next.Name, strings.Join(changed, ", "))
}

// recordDecision writes an approval or rejection to the activity log of
// each app the stage acts on (its deploy, swap, checks and gates), so the
// audit trail shows who let what into which slot.
func (e *Engine) recordDecision(ctx context.Context, actor Actor, r *Release, sd *pipeline.Stage, decision, comment string) {
	var apps []string
	add := func(app, slot string) {
		if app != "" && !slices.Contains(apps, app) {
			apps = append(apps, app)
		}
	}
	slot := ""
	if sd.Deploy != nil {
		add(sd.Deploy.App, sd.Deploy.Slot)
		slot = sd.Deploy.Slot
	}
	if sd.Swap != nil {
		add(sd.Swap.App, sd.Swap.Target)
		slot = sd.Swap.Target
	}
	for _, c := range sd.Checks {
		add(c.App, c.Slot)
	}
	for _, g := range sd.Gates {
		if g.HTTP != nil {
			add(g.HTTP.App, g.HTTP.Slot)
		} else if g.Metric != nil {
			add(g.Metric.App, g.Metric.Slot)
		}
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
		a := sqlite.Activity{App: app, Actor: actor.Name, Action: action, Slot: slot, Detail: detail, Result: decision}
		if err := e.store.AddActivity(context.WithoutCancel(ctx), a); err != nil {
			e.log.Error("record release decision", "release", r.Name, "app", app, "err", err)
		}
	}
}
