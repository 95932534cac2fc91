package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pgtest"
)

// A writer of another node that holds the write lock for long (a slow
// statement, or a transaction left idle) makes this node's writers wait
// for it. They give up after writeLockWait, as Unavailable, and while they
// wait on every connection of the pool, the node still heartbeats and
// acknowledges generations, so it does not look dead.
func TestWriteLockWaitIsBoundedAndSparesHeartbeat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	other, node := openDSN(t, dsn), openDSN(t, dsn)
	if err := node.Heartbeat(ctx, hotswap.Node{ID: "n1", State: hotswap.NodeServing}); err != nil {
		t.Fatal(err)
	}
	if got := node.Pool().Config().MaxConns; got < 8 {
		t.Errorf("pool MaxConns = %d, want at least 8", got)
	}
	held := make(chan struct{})
	release := make(chan struct{})
	go func() {
		tx, err := other.Pool().Begin(ctx)
		if err != nil {
			t.Error(err)
			close(held)
			return
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writeLock); err != nil {
			t.Error(err)
		}
		close(held)
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
	}()
	<-held
	defer close(release)

	n := int(node.Pool().Config().MaxConns)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() { errs[i] = node.SetAutoSwap(ctx, fmt.Sprint("app", i), "production", "") })
	}
	time.Sleep(time.Second) // the writers now hold every connection of the pool

	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := node.Heartbeat(hctx, hotswap.Node{ID: "n1", State: hotswap.NodeServing}); err != nil {
		t.Errorf("Heartbeat with %d writers waiting for the write lock: %v", n, err)
	}
	if err := node.AckGeneration(hctx, "n1", 7); err != nil {
		t.Errorf("AckGeneration with %d writers waiting for the write lock: %v", n, err)
	}

	wg.Wait()
	took := time.Since(start)
	if took > writeLockWait+10*time.Second {
		t.Errorf("writers waited %v for the write lock, want about %v", took, writeLockWait)
	}
	for i, err := range errs {
		if hotswap.ErrorKind(err) != hotswap.Unavailable || !strings.Contains(hotswap.ErrorMessage(err), "the store is busy") {
			t.Errorf("writer %d: %v (kind %v), want Unavailable: the store is busy", i, err, hotswap.ErrorKind(err))
			break
		}
	}
}
