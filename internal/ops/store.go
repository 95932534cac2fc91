package ops

import (
	"context"
	"time"

	"github.com/hotswap/hotswap"
)

// Store is what this package needs of the store; internal/sqlite and
// internal/postgres implement it. The package never imports either.
type Store interface {
	QuarantineStore
	AddActivity(ctx context.Context, a hotswap.Activity) error
	BeginOperation(ctx context.Context, op hotswap.Operation) error
	CreateApp(ctx context.Context, app hotswap.App, keys []hotswap.Key) error
	CreateDeployment(ctx context.Context, d hotswap.Deployment) error
	CreateSlot(ctx context.Context, slot hotswap.Slot, keys []hotswap.Key) error
	DeleteApp(ctx context.Context, name string) error
	DeleteDeployment(ctx context.Context, app, id string) error
	DeleteKey(ctx context.Context, app, slot, scope, function, name string) error
	DeleteSlot(ctx context.Context, app, name string) error
	DeployTo(ctx context.Context, d hotswap.Deployment) error
	DigestInUse(ctx context.Context, digest string) (bool, error)
	EndOperation(ctx context.Context, id string, state hotswap.OperationState, detail string) error
	EndOperationAt(ctx context.Context, id string, state hotswap.OperationState, detail string, at time.Time) error
	GetApp(ctx context.Context, name string) (hotswap.App, error)
	GetDeployment(ctx context.Context, app, id string) (hotswap.Deployment, error)
	GetSlot(ctx context.Context, app, name string) (hotswap.Slot, error)
	GetTimerStatus(ctx context.Context, app, slot, function string) (hotswap.TimerStatus, bool, error)
	LatestDeployment(ctx context.Context, app, slot string) (hotswap.Deployment, error)
	ListActivity(ctx context.Context, app string, limit int) ([]hotswap.Activity, error)
	ListAllSlots(ctx context.Context) ([]hotswap.Slot, error)
	ListApps(ctx context.Context) ([]hotswap.App, error)
	ListDeployments(ctx context.Context, app, slot string) ([]hotswap.Deployment, error)
	ListKeys(ctx context.Context, app, slot string) ([]hotswap.Key, error)
	ListOperations(ctx context.Context, app string, limit int) ([]hotswap.Operation, error)
	ListSettings(ctx context.Context, app, slot string) ([]hotswap.Setting, error)
	ListSlots(ctx context.Context, app string) ([]hotswap.Slot, error)
	PutKey(ctx context.Context, app, slot string, k hotswap.Key) error
	PutTimerStatus(ctx context.Context, app, slot, function string, st hotswap.TimerStatus) error
	RunningOperations(ctx context.Context) ([]hotswap.Operation, error)
	ServingHistory(ctx context.Context, app string) ([]hotswap.Serving, error)
	SetAutoSwap(ctx context.Context, app, slot, target string) error
	SetOperationPhase(ctx context.Context, id, phase, detail string) error
	SetSettings(ctx context.Context, app, slot string, settings []hotswap.Setting) error
	SetSlotDeployment(ctx context.Context, app, slot, deploymentID string) error
	SetTraffic(ctx context.Context, app string, shares []hotswap.TrafficShare) error
	Swap(ctx context.Context, app, source, target, opID string) error
	Traffic(ctx context.Context, app string) ([]hotswap.TrafficShare, error)
	UpdateDeployment(ctx context.Context, d hotswap.Deployment) error
	UpdateSettings(ctx context.Context, app, slot string, set []hotswap.Setting, unset []string) error
}
