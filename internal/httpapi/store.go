package httpapi

import (
	"context"

	"github.com/hotswap/hotswap"
)

// Store is what this package needs of the store; internal/sqlite and
// internal/postgres implement it. The package never imports either.
type Store interface {
	CreateUser(ctx context.Context, u hotswap.User) error
	DeleteUser(ctx context.Context, name string) error
	GetPipeline(ctx context.Context, nameOrID string, byID bool) (hotswap.Pipeline, error)
	ListArtifacts(ctx context.Context, feed string) ([]hotswap.Artifact, error)
	ListPipelines(ctx context.Context) ([]hotswap.Pipeline, error)
	ListUsers(ctx context.Context) ([]hotswap.User, error)
	PipelineVersions(ctx context.Context, id string) ([]hotswap.PipelineVersion, error)
	SetUserToken(ctx context.Context, name, hash string) (hotswap.User, error)
	UserByTokenHash(ctx context.Context, hash string) (hotswap.User, error)
}
