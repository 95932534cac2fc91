package sqlite

import (
	"errors"

	"github.com/hotswap/hotswap"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// diskFull turns SQLite's "database or disk is full" (SQLITE_FULL, which
// SQLite answers when a write fails with ENOSPC) and a plain ENOSPC into a
// StorageFull error that says the database could not be written. Other
// errors, nil included, pass unchanged.
func diskFull(err error) error {
	var e *sqlite.Error
	if errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_FULL && hotswap.ErrorKind(err) != hotswap.StorageFull {
		return &hotswap.Error{Kind: hotswap.StorageFull, Msg: "disk full: no space left on device while writing the database", Err: err}
	}
	return hotswap.DiskFull(err, "the database")
}
