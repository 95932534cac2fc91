package ops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
)

// QuarantineStore is what quarantine needs of the store.
type QuarantineStore interface {
	Quarantine(ctx context.Context, q hotswap.Quarantine) error
	LiftQuarantine(ctx context.Context, app, deploymentID string) error
	QuarantineOf(ctx context.Context, app, digest string) (hotswap.Quarantine, bool, error)
	ListQuarantines(ctx context.Context, app string) ([]hotswap.Quarantine, error)
}

// Versions tells which artifact version a release deployed as a deployment;
// the release engine is one. A quarantine records the version, so a release
// of the same version is refused even if its content differs.
type Versions interface {
	DeploymentVersion(ctx context.Context, app, deploymentID string) string
}

type versionsBox struct{ v Versions }

// SetVersions sets (or, with nil, clears) where quarantine looks up the
// artifact version of a deployment.
func (s *Service) SetVersions(v Versions) {
	if v == nil {
		s.versions.Store(nil)
		return
	}
	s.versions.Store(&versionsBox{v})
}

// QuarantineDeployment quarantines the content of deployment id of app: a
// deploy of the same digest, and a release of the same artifact version, is
// refused from now on (a deploy with Force passes).
func (s *Service) QuarantineDeployment(ctx context.Context, actor, app, id, reason string) (hotswap.Quarantine, error) {
	reason = strings.TrimSpace(reason)
	if len(reason) > 1024 {
		return hotswap.Quarantine{}, hotswap.Errorf(hotswap.Invalid, "quarantine reason is longer than 1024 bytes")
	}
	if err := hotswap.ValidateText("quarantine reason", reason); err != nil {
		return hotswap.Quarantine{}, err
	}
	d, err := s.store.GetDeployment(ctx, app, id)
	if err != nil {
		return hotswap.Quarantine{}, err
	}
	if d.Digest == "" {
		return hotswap.Quarantine{}, hotswap.Errorf(hotswap.FailedPrecondition, "deployment %s of %s has no stored content to quarantine (it failed before its package was stored)", id, app)
	}
	if reason == "" {
		reason = "quarantined by " + actor
	}
	q := hotswap.Quarantine{App: app, DeploymentID: id, Digest: d.Digest, Reason: reason, Actor: actor, At: time.Now().UTC()}
	if b := s.versions.Load(); b != nil {
		q.Version = b.v.DeploymentVersion(ctx, app, id)
	}
	if err := s.store.Quarantine(ctx, q); err != nil {
		return hotswap.Quarantine{}, err
	}
	detail := fmt.Sprintf("%s (%s", id, d.Digest)
	if q.Version != "" {
		detail += ", version " + q.Version
	}
	s.activity(ctx, app, actor, "quarantine", d.Slot, detail+"): "+reason, "ok")
	return q, nil
}

// LiftQuarantine ends the quarantine of deployment id of app.
func (s *Service) LiftQuarantine(ctx context.Context, actor, app, id string) error {
	d, err := s.store.GetDeployment(ctx, app, id)
	if err != nil && hotswap.ErrorKind(err) != hotswap.NotFound {
		return err
	}
	if err := s.store.LiftQuarantine(ctx, app, id); err != nil {
		return err
	}
	s.activity(ctx, app, actor, "lift quarantine", d.Slot, id, "ok")
	return nil
}

// Quarantines lists the quarantines of app, newest first.
func (s *Service) Quarantines(ctx context.Context, app string) ([]hotswap.Quarantine, error) {
	if _, err := s.store.GetApp(ctx, app); err != nil {
		return nil, err
	}
	return s.store.ListQuarantines(ctx, app)
}

// DeploymentQuarantine returns the quarantine of deployment id of app, or
// nil if it is not quarantined.
func (s *Service) DeploymentQuarantine(ctx context.Context, app, id string) (*hotswap.Quarantine, error) {
	qs, err := s.store.ListQuarantines(ctx, app)
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		if q.DeploymentID == id {
			return &q, nil
		}
	}
	return nil, nil
}

// CheckQuarantine returns FailedPrecondition, with the reason, who
// quarantined it and when, if content digest or artifact version (either
// may be empty) is quarantined in app.
func (s *Service) CheckQuarantine(ctx context.Context, app, digest, version string) error {
	q, ok, err := s.store.QuarantineOf(ctx, app, digest)
	if err != nil {
		return err
	}
	what := "content " + digest
	if !ok && version != "" {
		qs, err := s.store.ListQuarantines(ctx, app)
		if err != nil {
			return err
		}
		for _, c := range qs {
			if c.Version == version {
				q, ok, what = c, true, "version "+version
				break
			}
		}
	}
	if !ok {
		return nil
	}
	return hotswap.Errorf(hotswap.FailedPrecondition, "%s is quarantined in app %s: deployment %s was quarantined by %s at %s: %s (lift it with: hotswap quarantine %s %s --lift)",
		what, app, q.DeploymentID, q.Actor, q.At.UTC().Format(time.RFC3339), q.Reason, app, q.DeploymentID)
}
