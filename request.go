package hotswap

import "time"

// ReleaseRequest is a change to the releases (create one, approve, abandon,
// redeploy...) asked of a node that does not run the release engine of a
// cluster. It waits in the store until the node that runs the engine (the
// leader) takes it, carries it out as the actor who asked, and writes the
// answer back; the asking node waits for that answer. A request is taken at
// most once: one whose taker stopped before answering is never run again.
type ReleaseRequest struct {
	ID        string
	Kind      string // what is asked: create, decide, redeploy, abandon, force
	Args      string // JSON, owned by the release engine (with the actor)
	Node      string // the node that asked
	CreatedAt time.Time
	TakenBy   string    // the node that took it; "" while it waits
	TakenAt   time.Time // zero while it waits
	DoneAt    time.Time // zero until answered or cancelled
	Result    string    // JSON, owned by the release engine; "" when cancelled
}
