package release

import (
	"context"
	"time"

	"github.com/hotswap/hotswap"
)

// Store is what this package needs of the store; internal/sqlite and
// internal/postgres implement it. The package never imports either.
type Store interface {
	AddActivity(ctx context.Context, a hotswap.Activity) error
	ApplyPipeline(ctx context.Context, id, name, definition, actor string) (hotswap.Pipeline, error)
	CreateRelease(ctx context.Context, r hotswap.ReleaseRow, doc func(number int) (string, error)) (int, error)
	GetArtifact(ctx context.Context, feed, version string) (hotswap.Artifact, error)
	GetPipeline(ctx context.Context, nameOrID string, byID bool) (hotswap.Pipeline, error)
	GetRelease(ctx context.Context, id string) (hotswap.ReleaseRow, error)
	GetUser(ctx context.Context, name string) (hotswap.User, error)
	ListPipelines(ctx context.Context) ([]hotswap.Pipeline, error)
	ListReleases(ctx context.Context, pipelineID, state string, limit int) ([]hotswap.ReleaseRow, error)
	PipelineIDsNamed(ctx context.Context, name string) ([]string, error)
	PutArtifact(ctx context.Context, a hotswap.Artifact) (created bool, err error)
	SaveRelease(ctx context.Context, id, state, doc string) error

	// The requests a node that does not run the releases forwards to the
	// one that does (see cluster.go).
	AddReleaseRequest(ctx context.Context, r hotswap.ReleaseRequest) error
	TakeReleaseRequests(ctx context.Context, node string) ([]hotswap.ReleaseRequest, error)
	AnswerReleaseRequest(ctx context.Context, id, result string) error
	CancelReleaseRequest(ctx context.Context, id string) (bool, error)
	GetReleaseRequest(ctx context.Context, id string) (hotswap.ReleaseRequest, error)
	PruneReleaseRequests(ctx context.Context, before time.Time) error
}
