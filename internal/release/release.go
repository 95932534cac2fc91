// Package release runs release pipelines: it turns artifacts into releases,
// walks each release's stages through queueing, approval, gates, actions and
// checks, and keeps every bit of that state in the store so that a restart
// resumes exactly where it stopped. Time comes from an injected clock.
package release

import (
	"encoding/json"
	"time"
)

// Release states.
const (
	Active    = "active"
	Succeeded = "succeeded"
	Failed    = "failed"
	Rejected  = "rejected"
	Abandoned = "abandoned"
	Cancelled = "cancelled"
)

// Stage states.
const (
	StagePending   = "pending" // not reached: waiting for the stages it comes after, or a manual start
	StageQueued    = "queued"
	StageApproval  = "waiting for approval"
	StageGates     = "waiting for gates"
	StageRunning   = "running"
	StageSucceeded = "succeeded"
	StageFailed    = "failed"
	StageRejected  = "rejected"
	StageCancelled = "cancelled"
)

// Release is one run of a pipeline version over one artifact. It is stored as
// one JSON document.
type Release struct {
	ID              string      `json:"id"`
	Name            string      `json:"name"` // e.g. orders-release-7
	Number          int         `json:"number"`
	PipelineID      string      `json:"pipelineId"`
	Pipeline        string      `json:"pipeline"`
	PipelineVersion int         `json:"pipelineVersion"`
	Definition      string      `json:"definition"` // the YAML it runs, fixed at creation
	Feed            string      `json:"feed"`
	Version         string      `json:"version"`
	Branch          string      `json:"branch"`
	Commit          string      `json:"commit"`
	Digest          string      `json:"digest"`
	Requester       string      `json:"requester"`
	Reason          string      `json:"reason"` // continuous or manual
	State           string      `json:"state"`
	Detail          string      `json:"detail,omitempty"`
	CreatedAt       time.Time   `json:"createdAt"`
	EndedAt         time.Time   `json:"endedAt,omitzero"`
	Stages          []*StageRun `json:"stages"`
	// Holds are the app/slot pairs this release deployed to and has not yet
	// swapped on: no other release may deploy over them.
	Holds []string `json:"holds"`
}

// StageRun is the state of one stage of a release.
type StageRun struct {
	Name                string     `json:"name"`
	State               string     `json:"state"`
	Attempt             int        `json:"attempt"`
	Started             bool       `json:"started,omitempty"` // a manual stage was started
	Detail              string     `json:"detail,omitempty"`
	QueuedAt            time.Time  `json:"queuedAt,omitzero"`
	StartedAt           time.Time  `json:"startedAt,omitzero"`
	EndedAt             time.Time  `json:"endedAt,omitzero"`
	ApprovalRequestedAt time.Time  `json:"approvalRequestedAt,omitzero"`
	Approvals           []Approval `json:"approvals"`
	GatesStartedAt      time.Time  `json:"gatesStartedAt,omitzero"`
	Gates               []GateRun  `json:"gates"`
	Step                string     `json:"step,omitempty"` // the action under way: deploy, swap, checks
	DeploymentID        string     `json:"deploymentId,omitempty"`
	Swapped             bool       `json:"swapped,omitempty"`
	// RolloutID is the progressive swap this attempt's swap started.
	RolloutID string    `json:"rolloutId,omitempty"`
	Log       []LogLine `json:"log"`
}

// Approval is one approver's decision on a stage attempt.
type Approval struct {
	User     string    `json:"user"`
	Decision string    `json:"decision"` // approved or rejected
	Comment  string    `json:"comment,omitempty"`
	Attempt  int       `json:"attempt"`
	At       time.Time `json:"at"`
}

// GateRun is the evaluation state of one gate.
type GateRun struct {
	FirstSuccess time.Time `json:"firstSuccess,omitzero"`
	LastEval     time.Time `json:"lastEval,omitzero"`
	Passed       bool      `json:"passed"`
	Last         string    `json:"last,omitempty"`
}

// LogLine is a line of a stage's log.
type LogLine struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

const maxLogLines = 300

func (st *StageRun) logf(now time.Time, text string) {
	st.Log = append(st.Log, LogLine{Time: now, Text: text})
	if len(st.Log) > maxLogLines {
		st.Log = append(st.Log[:0:0], st.Log[len(st.Log)-maxLogLines:]...)
	}
}

func (r *Release) stage(name string) *StageRun {
	for _, s := range r.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (r *Release) ended() bool { return r.State != Active }

func (r *Release) holds(key string) bool {
	for _, h := range r.Holds {
		if h == key {
			return true
		}
	}
	return false
}

func (r *Release) hold(key string) {
	if !r.holds(key) {
		r.Holds = append(r.Holds, key)
	}
}

func (r *Release) unhold(key string) {
	out := r.Holds[:0]
	for _, h := range r.Holds {
		if h != key {
			out = append(out, h)
		}
	}
	r.Holds = out
}

func (r *Release) encode() (string, error) {
	b, err := json.Marshal(r)
	return string(b), err
}

func decode(doc string) (*Release, error) {
	var r Release
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func slotKey(app, slot string) string { return app + "/" + slot }
