package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotswap/hotswap/internal/httpapi"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/portal"
	"github.com/hotswap/hotswap/internal/postgres"
	"github.com/hotswap/hotswap/internal/release"
	"github.com/hotswap/hotswap/internal/rollout"
	"github.com/hotswap/hotswap/internal/sqlite"
)

// store is everything the server's parts need of the store; both
// internal/sqlite and internal/postgres provide it.
type store interface {
	ops.Store
	release.Store
	httpapi.Store
	portal.Store
	rollout.Store
	GetMeta(ctx context.Context, key string) (string, bool, error)
	SetMeta(ctx context.Context, key, value string) error
	HasApps(ctx context.Context) (bool, error)
	Created() bool
	Close() error
}

var (
	_ store       = (*sqlite.DB)(nil)
	_ store       = (*postgres.DB)(nil)
	_ ops.Cluster = (*postgres.DB)(nil)
)

// openStore opens SQLite in the data directory, or the PostgreSQL store of
// a cluster when --store names one.
func (m *Main) openStore(ctx context.Context) error {
	c := &m.Config
	m.drained = make(chan struct{})
	switch {
	case c.Store == "" || c.Store == "sqlite":
		db, err := sqlite.Open(ctx, filepath.Join(c.DataDir, "hotswap.db"))
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		m.db = db
	case strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://"):
		db, err := postgres.Open(ctx, c.Store)
		if err != nil {
			return fmt.Errorf("open store %s: %w", redactURL(c.Store), err)
		}
		db.Log = m.logger.With("component", "store")
		m.db, m.cluster = db, db
		if c.NodeName == "" {
			c.NodeName, _ = os.Hostname()
		}
		if c.DrainDelay == 0 {
			c.DrainDelay = 3 * time.Second
		}
	default:
		return fmt.Errorf("--store %q: want a postgres:// URL, or nothing for SQLite in --data", redactURL(c.Store))
	}
	return nil
}

func (m *Main) clusterOrNil() ops.Cluster {
	if m.cluster == nil {
		return nil
	}
	return m.cluster
}

// Drain makes the node fail its health check and waits the drain delay,
// so the load balancer sends it nothing new; Close then finishes what is
// in flight. Without a delay (SQLite, one server) it only marks the state.
func (m *Main) Drain() {
	if m.ops == nil {
		return
	}
	m.ops.Drain()
	if d := m.Config.DrainDelay; d > 0 {
		m.logger.Info("draining: waiting for the load balancer to notice", "delay", d)
		time.Sleep(d)
	}
}

// redactURL hides the password of a store URL for messages and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a store URL that does not parse)"
	}
	return u.Redacted()
}
