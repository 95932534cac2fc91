package hotswap

import "time"

// The records below are what the store keeps besides apps, slots,
// deployments, settings and keys. Both stores (internal/sqlite and
// internal/postgres) read and write them; the packages that use a store
// declare the few methods they need as an interface of their own.

// OperationState is where an operation is in its life.
type OperationState string

// Operation states.
const (
	OpRunning   OperationState = "running"
	OpSucceeded OperationState = "succeeded"
	OpFailed    OperationState = "failed"
)

// Operation is a journaled slot-changing action (deploy, swap, rollback,
// settings change). An app has at most one running operation; one still
// running when the program starts was cut short by a crash.
type Operation struct {
	ID     string         `json:"id"`
	App    string         `json:"app"`
	Kind   string         `json:"kind"`   // deploy, swap, rollback, ...
	Slot   string         `json:"slot"`   // the slot it changes
	Target string         `json:"target"` // e.g. the other slot of a swap, or a deployment ID
	State  OperationState `json:"state"`  // OpRunning, OpSucceeded or OpFailed
	Phase  string         `json:"phase"`  // the step it is at, for recovery and display
	Detail string         `json:"detail"`
	Actor  string         `json:"actor"`
	// Node is the ID of the node that runs it (see Node); empty on a single
	// server. On restart a node ends only its own operations and those of
	// nodes that are dead.
	Node string `json:"node,omitempty"`
	// StartedAt is set to the current time by BeginOperation if zero.
	StartedAt time.Time `json:"startedAt"`
	// EndedAt is zero while running.
	EndedAt time.Time `json:"endedAt,omitzero"`
}

// Activity is one entry of an app's audit log.
type Activity struct {
	ID     int64     `json:"id"` // assigned by AddActivity, increasing
	App    string    `json:"app"`
	Time   time.Time `json:"time"` // set to the current time by AddActivity if zero
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // e.g. "deploy", "swap", "set settings"
	Slot   string    `json:"slot"`
	Detail string    `json:"detail"`
	Result string    `json:"result"` // e.g. "ok" or the error message
}

// User is a named user with a role. TokenHash is the hex sha256 of the
// user's API token; the token itself is never stored.
type User struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	TokenHash string    `json:"-"`
	CreatedAt time.Time `json:"createdAt"`
}

// Artifact is a build's package published to a feed.
type Artifact struct {
	Feed      string    `json:"feed"`
	Version   string    `json:"version"`
	Branch    string    `json:"branch"`
	Commit    string    `json:"commit"`
	Digest    string    `json:"digest"`
	Actor     string    `json:"actor"`
	CreatedAt time.Time `json:"createdAt"`
}

// Pipeline is a stored pipeline definition at its current version.
type Pipeline struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Version    int       `json:"version"`
	Definition string    `json:"definition"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// PipelineVersion is one applied version of a pipeline.
type PipelineVersion struct {
	Version    int       `json:"version"`
	Name       string    `json:"name"`
	Definition string    `json:"definition"`
	Actor      string    `json:"actor"`
	CreatedAt  time.Time `json:"createdAt"`
}

// ReleaseRow is a stored release: its indexable fields and its document.
type ReleaseRow struct {
	ID         string
	PipelineID string
	Number     int
	State      string
	CreatedAt  time.Time
	Doc        string // JSON, owned by the release engine
}

// Serving is a period during which a deployment served a slot.
type Serving struct {
	Slot         string    `json:"slot"`
	DeploymentID string    `json:"deploymentId"`
	From         time.Time `json:"from"`
	To           time.Time `json:"to,omitzero"` // zero while it still serves
}

// TimerStatus is the monitored schedule of one timer function in a slot.
type TimerStatus struct {
	Schedule string    // the NCRONTAB expression Next was computed from
	Last     time.Time // the last occurrence that ran; zero if none yet
	Next     time.Time // the next occurrence due
	Updated  time.Time
}

// NodeState is where a node of a cluster is in its life.
type NodeState string

// Node states. A serving node takes traffic; a draining one fails its load
// balancer health check while it finishes in-flight requests; a stopped one
// left cleanly. A node whose heartbeat is older than the cluster's liveness
// window is dead whatever its last state says.
const (
	NodeStarting NodeState = "starting"
	NodeServing  NodeState = "serving"
	NodeDraining NodeState = "draining"
	NodeStopped  NodeState = "stopped"
)

// Node is one hotswap server of a cluster sharing a PostgreSQL store.
type Node struct {
	ID      string    `json:"id"`      // random, new at each start
	Name    string    `json:"name"`    // host name or --node-name
	Addr    string    `json:"addr"`    // its functions listener, as others reach it
	Version string    `json:"version"` // the binary's version
	State   NodeState `json:"state"`
	// Generation is the cluster generation whose routing the node serves
	// (see the store's Generation): it has acknowledged every change up to it.
	Generation  int64     `json:"generation"`
	StartedAt   time.Time `json:"startedAt"`
	HeartbeatAt time.Time `json:"heartbeatAt"`
	// Age is how long ago the last heartbeat was, by the store's clock, so
	// clock skew between nodes does not make a live node look dead.
	Age time.Duration `json:"age"`
}

// Prepare asks every live node to start and warm the process sets an
// operation is about to switch to, before the flip that switches them.
type Prepare struct {
	OpID  string        `json:"opId"`
	App   string        `json:"app"`
	Wants []PrepareWant `json:"wants"`
	// By is the node that asks; it prepares by itself and reports nothing.
	By        string    `json:"by"`
	CreatedAt time.Time `json:"createdAt"`
}

// PrepareWant is one process set to warm: deployment DeploymentID under
// slot Slot's identity with exactly these settings.
type PrepareWant struct {
	Slot         string    `json:"slot"`
	DeploymentID string    `json:"deploymentId"`
	Digest       string    `json:"digest"`
	Settings     []Setting `json:"settings"`
}

// Quarantine marks the content of a deployment as not to be deployed again
// in its app: a deploy or a release of the same digest (or, when a release
// made it, the same artifact version) is refused with Reason unless forced.
// It outlives the deployment record, which retention may delete.
type Quarantine struct {
	App          string    `json:"app"`
	DeploymentID string    `json:"deploymentId"`
	Digest       string    `json:"digest"`
	Version      string    `json:"version,omitempty"` // the artifact version, if a release deployed it
	Reason       string    `json:"reason"`
	Actor        string    `json:"actor"`
	At           time.Time `json:"at"`
}
