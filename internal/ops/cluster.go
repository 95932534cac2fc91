package ops

import (
	"context"
	"io"
	"time"

	"github.com/hotswap/hotswap"
)

// Cluster is what the service needs of a store shared by several nodes
// (internal/postgres). It is nil on a single server, where everything below
// is trivially true: one node, no peers to prepare or to wait for, every
// timer occurrence this node's.
type Cluster interface {
	Generation(ctx context.Context) (int64, error)
	Heartbeat(ctx context.Context, n hotswap.Node) error
	ListNodes(ctx context.Context) ([]hotswap.Node, error)
	LiveNodes(ctx context.Context, within time.Duration) ([]hotswap.Node, error)
	AckGeneration(ctx context.Context, nodeID string, gen int64) error
	Listen(ctx context.Context, notify func(channel, payload string)) error
	Notify(ctx context.Context, channel, payload string) error

	RequestPrepare(ctx context.Context, p hotswap.Prepare) error
	PendingPrepares(ctx context.Context, nodeID string, since time.Duration) ([]hotswap.Prepare, error)
	ReportPrepared(ctx context.Context, opID, nodeID, errText string) error
	PrepareResults(ctx context.Context, opID string) (map[string]string, error)

	PutPackage(ctx context.Context, digest string, r io.Reader) error
	HasPackage(ctx context.Context, digest string) (bool, error)
	GetPackage(ctx context.Context, digest string, w io.Writer) error
	DeletePackage(ctx context.Context, digest string) error

	ClaimTimer(ctx context.Context, app, slot, function string, at time.Time, nodeID string, stale time.Duration) (bool, error)
	DoneTimer(ctx context.Context, app, slot, function string, at time.Time) error
}
