package hotswap

import "time"

// SlotTotals are one node's lifetime request counts for one slot, as the
// nodes of a cluster share them through the store, so that the node that
// analyses a progressive swap or a release's metric gate sees the requests
// every node served. Two readings of a node's row subtract into the
// requests in between; counts that went down started again from zero.
type SlotTotals struct {
	Node string `json:"node"` // the node's ID (hotswap.Node.ID)
	App  string `json:"app"`
	Slot string `json:"slot"`
	// Hist counts the requests per latency bucket, with the bounds of the
	// metrics registry, the last one counting those slower than all.
	Hist   []uint64 `json:"hist"`
	Errors uint64   `json:"errors"` // responses with a 5xx status
	// Updated is when the node last published the row, by the store's
	// clock; a reader that sees an older Updated than it saw before has
	// read an older version (readings may cross) and skips it.
	Updated time.Time `json:"updated"`
}
