// Package storetest is the conformance suite of hotswap's stores: one set
// of behaviour tests that internal/sqlite and internal/postgres both run, so
// the two keep the same methods, errors, messages and ordering.
//
// A store's test calls Run with a function that opens a new, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) (storetest.Store, func() storetest.Store) {
//			...
//		})
//	}
//
// Tests that only make sense for one store (files, WAL and quick_check for
// SQLite; migrations under a lock for PostgreSQL) stay in its package.
package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
)

// Store is the whole method set the two stores share: everything the
// packages that use a store may call, besides what a cluster adds.
type Store interface {
	Close() error
	Created() bool
	HasApps(ctx context.Context) (bool, error)

	CreateApp(ctx context.Context, app hotswap.App, keys []hotswap.Key) error
	GetApp(ctx context.Context, name string) (hotswap.App, error)
	ListApps(ctx context.Context) ([]hotswap.App, error)
	DeleteApp(ctx context.Context, name string) error

	CreateSlot(ctx context.Context, slot hotswap.Slot, keys []hotswap.Key) error
	GetSlot(ctx context.Context, app, name string) (hotswap.Slot, error)
	ListSlots(ctx context.Context, app string) ([]hotswap.Slot, error)
	ListAllSlots(ctx context.Context) ([]hotswap.Slot, error)
	DeleteSlot(ctx context.Context, app, name string) error
	SetSlotDeployment(ctx context.Context, app, slot, deploymentID string) error
	SetAutoSwap(ctx context.Context, app, slot, target string) error
	Swap(ctx context.Context, app, source, target, opID string) error
	ServingHistory(ctx context.Context, app string) ([]hotswap.Serving, error)

	CreateDeployment(ctx context.Context, d hotswap.Deployment) error
	UpdateDeployment(ctx context.Context, d hotswap.Deployment) error
	DeployTo(ctx context.Context, d hotswap.Deployment) error
	GetDeployment(ctx context.Context, app, id string) (hotswap.Deployment, error)
	ListDeployments(ctx context.Context, app, slot string) ([]hotswap.Deployment, error)
	LatestDeployment(ctx context.Context, app, slot string) (hotswap.Deployment, error)
	DeleteDeployment(ctx context.Context, app, id string) error
	DigestInUse(ctx context.Context, digest string) (bool, error)

	ListKeys(ctx context.Context, app, slot string) ([]hotswap.Key, error)
	PutKey(ctx context.Context, app, slot string, k hotswap.Key) error
	DeleteKey(ctx context.Context, app, slot, scope, function, name string) error

	ListSettings(ctx context.Context, app, slot string) ([]hotswap.Setting, error)
	SetSettings(ctx context.Context, app, slot string, settings []hotswap.Setting) error
	UnsetSettings(ctx context.Context, app, slot string, names []string) error
	UpdateSettings(ctx context.Context, app, slot string, set []hotswap.Setting, unset []string) error

	GetMeta(ctx context.Context, key string) (string, bool, error)
	SetMeta(ctx context.Context, key, value string) error

	BeginOperation(ctx context.Context, op hotswap.Operation) error
	SetOperationPhase(ctx context.Context, id, phase, detail string) error
	EndOperation(ctx context.Context, id string, state hotswap.OperationState, detail string) error
	EndOperationAt(ctx context.Context, id string, state hotswap.OperationState, detail string, at time.Time) error
	RunningOperations(ctx context.Context) ([]hotswap.Operation, error)
	ListOperations(ctx context.Context, app string, limit int) ([]hotswap.Operation, error)

	AddActivity(ctx context.Context, a hotswap.Activity) error
	ListActivity(ctx context.Context, app string, limit int) ([]hotswap.Activity, error)

	Quarantine(ctx context.Context, q hotswap.Quarantine) error
	LiftQuarantine(ctx context.Context, app, deploymentID string) error
	QuarantineOf(ctx context.Context, app, digest string) (hotswap.Quarantine, bool, error)
	ListQuarantines(ctx context.Context, app string) ([]hotswap.Quarantine, error)

	CreateUser(ctx context.Context, u hotswap.User) error
	UserByTokenHash(ctx context.Context, hash string) (hotswap.User, error)
	GetUser(ctx context.Context, name string) (hotswap.User, error)
	ListUsers(ctx context.Context) ([]hotswap.User, error)
	DeleteUser(ctx context.Context, name string) error
	SetUserToken(ctx context.Context, name, hash string) (hotswap.User, error)

	PutArtifact(ctx context.Context, a hotswap.Artifact) (created bool, err error)
	GetArtifact(ctx context.Context, feed, version string) (hotswap.Artifact, error)
	ListArtifacts(ctx context.Context, feed string) ([]hotswap.Artifact, error)

	ApplyPipeline(ctx context.Context, id, name, definition, actor string) (hotswap.Pipeline, error)
	GetPipeline(ctx context.Context, nameOrID string, byID bool) (hotswap.Pipeline, error)
	ListPipelines(ctx context.Context) ([]hotswap.Pipeline, error)
	PipelineVersions(ctx context.Context, id string) ([]hotswap.PipelineVersion, error)
	PipelineIDsNamed(ctx context.Context, name string) ([]string, error)

	CreateRelease(ctx context.Context, r hotswap.ReleaseRow, doc func(number int) (string, error)) (int, error)
	SaveRelease(ctx context.Context, id, state, doc string) error
	GetRelease(ctx context.Context, id string) (hotswap.ReleaseRow, error)
	ListReleases(ctx context.Context, pipelineID, state string, limit int) ([]hotswap.ReleaseRow, error)

	GetTimerStatus(ctx context.Context, app, slot, function string) (hotswap.TimerStatus, bool, error)
	PutTimerStatus(ctx context.Context, app, slot, function string, st hotswap.TimerStatus) error

	SetTraffic(ctx context.Context, app string, shares []hotswap.TrafficShare) error
	Traffic(ctx context.Context, app string) ([]hotswap.TrafficShare, error)

	CreateRollout(ctx context.Context, r hotswap.Rollout) (hotswap.Rollout, error)
	UpdateRollout(ctx context.Context, r hotswap.Rollout) (hotswap.Rollout, error)
	Rollout(ctx context.Context, id string) (hotswap.Rollout, error)
	ActiveRollouts(ctx context.Context) ([]hotswap.Rollout, error)
	Rollouts(ctx context.Context, app string, limit int) ([]hotswap.Rollout, error)
}

// Open opens a new, empty store for one test, sets its Now to now, and
// closes it when the test ends. reopen opens the same data again, with the
// same clock; the suite calls it only after closing s.
type Open func(t *testing.T, now func() time.Time) (s Store, reopen func() Store)

// T0 is the first time the suite's clock returns.
var T0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// clock starts at T0 and advances one second per call, so every timestamp
// differs and ordering by time is deterministic; set pins it to one time.
type clock struct {
	mu    sync.Mutex
	t     time.Time
	fixed time.Time // when not zero, what Now returns
}

func newClock() *clock { return &clock{t: T0.Add(-time.Second)} }

// Now returns the next time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fixed.IsZero() {
		return c.fixed
	}
	c.t = c.t.Add(time.Second)
	return c.t
}

// set makes Now return at until the returned function is called.
func (c *clock) set(at time.Time) (restore func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fixed = at
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.fixed = time.Time{}
	}
}

// env is one test's store and clock.
type env struct {
	Store
	clock  *clock
	reopen func() Store
}

// test is one behaviour of the suite.
type test struct {
	name string
	fn   func(t *testing.T, open func(t *testing.T) *env)
}

// Run runs the whole suite against the store open opens, one parallel
// subtest per behaviour, each on a store of its own.
func Run(t *testing.T, open Open) {
	newEnv := func(t *testing.T) *env {
		t.Helper()
		c := newClock()
		s, reopen := open(t, c.Now)
		return &env{Store: s, clock: c, reopen: reopen}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newEnv)
		})
	}
}

// tests lists the suite.
var tests = []test{
	{"Apps", testApps},
	{"HostLabelCollision", testHostLabelCollision},
	{"Slots", testSlots},
	{"Ordering", testOrdering},
	{"Deployments", testDeployments},
	{"DeployTo", testDeployTo},
	{"Settings", testSettings},
	{"Keys", testKeys},
	{"Meta", testMeta},
	{"Operations", testOperations},
	{"EndOperationAt", testEndOperationAt},
	{"BeginOperationConcurrent", testBeginOperationConcurrent},
	{"ConcurrentWrites", testConcurrentWrites},
	{"Activity", testActivity},
	{"DeleteAppCascade", testDeleteAppCascade},
	{"Reopen", testReopen},
	{"CreatedAndHasApps", testCreatedAndHasApps},
	{"Swap", testSwap},
	{"SwapConcurrent", testSwapConcurrent},
	{"AutoSwap", testAutoSwap},
	{"ServingAndDeleteDeployment", testServingAndDeleteDeployment},
	{"Users", testUsers},
	{"Artifacts", testArtifacts},
	{"Pipelines", testPipelines},
	{"Releases", testReleases},
	{"ReleaseNumbersConcurrent", testReleaseNumbersConcurrent},
	{"TimerStatus", testTimerStatus},
	{"BadText", testBadText},
	{"Quarantine", testQuarantine},
	{"Traffic", testTraffic},
	{"Rollouts", testRollouts},
	{"RolloutsDefaultLimit", testRolloutsDefaultLimit},
	{"RolloutsConcurrent", testRolloutsConcurrent},
}
