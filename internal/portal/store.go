package portal

import (
	"context"

	"github.com/hotswap/hotswap"
)

// Store is what this package needs of the store; internal/sqlite and
// internal/postgres implement it. The package never imports either.
type Store interface {
	GetMeta(ctx context.Context, key string) (string, bool, error)
	GetPipeline(ctx context.Context, nameOrID string, byID bool) (hotswap.Pipeline, error)
	GetUser(ctx context.Context, name string) (hotswap.User, error)
	CreateUser(ctx context.Context, u hotswap.User) error
	ListUsers(ctx context.Context) ([]hotswap.User, error)
	SetUserToken(ctx context.Context, name, hash string) (hotswap.User, error)
	ListArtifacts(ctx context.Context, feed string) ([]hotswap.Artifact, error)
	ListPipelines(ctx context.Context) ([]hotswap.Pipeline, error)
	PipelineVersions(ctx context.Context, id string) ([]hotswap.PipelineVersion, error)
	SetMeta(ctx context.Context, key, value string) error
}
