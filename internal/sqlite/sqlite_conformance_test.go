package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/storetest"
)

// The SQLite store has the whole method set the conformance suite checks.
var _ storetest.Store = (*DB)(nil)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) (storetest.Store, func() storetest.Store) {
		path := filepath.Join(t.TempDir(), "hotswap.db")
		open := func() storetest.Store {
			db := openAt(t, path)
			db.Now = now
			return db
		}
		return open(), open
	})
}
