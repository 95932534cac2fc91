package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hotswap/hotswap/internal/artifact"
)

// startedMeta is the store's mark that a server has started on it, written
// at each start once checkStore passed.
const startedMeta = "store_started"

// checkStore refuses to start an empty platform beside stored packages: a
// store with no apps that no server has started on yet (the file was
// deleted, truncated, or replaced by a new one), next to a packages folder
// that holds packages, means the apps, keys and history were lost, and a
// server started on it would look healthy while serving nothing. allowEmpty
// (--allow-empty-store) starts anyway. A store whose apps were all deleted
// is not refused: a server started on it before.
func checkStore(ctx context.Context, db store, arts *artifact.Store, dataDir string, allowEmpty bool) error {
	_, started, err := db.GetMeta(ctx, startedMeta)
	if err != nil {
		return fmt.Errorf("check store: %w", err)
	}
	hasApps, err := db.HasApps(ctx)
	if err != nil {
		return fmt.Errorf("check store: %w", err)
	}
	if !started && !hasApps && !allowEmpty {
		digests, err := arts.List()
		if err != nil {
			return fmt.Errorf("check store: %w", err)
		}
		if len(digests) > 0 {
			what := "holds no apps and no server has started on it"
			if db.Created() {
				what = "is new (the file was missing or empty)"
			}
			return fmt.Errorf("refusing to start: the database %s %s, but %s holds %d packages, so the database was probably deleted or truncated; "+
				"restore it from a backup, or, to start an empty platform anyway (the packages stay on disk, unused), start once with --allow-empty-store",
				filepath.Join(dataDir, "hotswap.db"), what, filepath.Join(dataDir, "packages"), len(digests))
		}
	}
	if err := db.SetMeta(ctx, startedMeta, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return fmt.Errorf("check store: %w", err)
	}
	return nil
}
