package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// CorruptError is what Open returns for a damaged database file: one that
// PRAGMA quick_check finds fault with, or that SQLite cannot read at all.
type CorruptError struct {
	Path   string // the database file
	Detail string // what SQLite found, e.g. the first lines of quick_check
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("database %s is corrupt (%s): stop hotswap and restore the file from a backup; "+
		"to start over instead, move it aside together with its -wal and -shm files "+
		"(apps, keys, settings and history are then lost; stored packages stay)", e.Path, e.Detail)
}

// check refuses a corrupt database, so the server never runs on one and
// damages it further, and notes whether the database is new (the file was
// missing or empty), which the caller uses to notice a lost database.
func (db *DB) check(ctx context.Context) error {
	// quick_check reads every page and checks each b-tree's structure; it
	// skips only the cross-check of indexes against their tables, which is
	// what makes a full integrity_check slow. 10 problems are enough to say.
	rows, err := db.write.QueryContext(ctx, "PRAGMA quick_check(10)")
	if err != nil {
		return corrupt(db.path, err, fmt.Errorf("open database %s: quick_check: %w", db.path, err))
	}
	var found []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return corrupt(db.path, err, fmt.Errorf("open database %s: quick_check: %w", db.path, err))
		}
		found = append(found, line)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return corrupt(db.path, err, fmt.Errorf("open database %s: quick_check: %w", db.path, err))
	}
	rows.Close()
	if len(found) != 1 || found[0] != "ok" {
		detail := strings.Join(found, "; ")
		if len(detail) > 500 {
			detail = detail[:500] + "..."
		}
		return &CorruptError{Path: db.path, Detail: "quick_check: " + detail}
	}
	var version, objects int
	if err := db.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return corrupt(db.path, err, fmt.Errorf("open database %s: %w", db.path, err))
	}
	if err := db.write.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&objects); err != nil {
		return corrupt(db.path, err, fmt.Errorf("open database %s: %w", db.path, err))
	}
	db.created = version == 0 && objects == 0
	return nil
}

// corrupt returns a *CorruptError when err says the file is damaged or is
// not a database, and the error otherwise when it does not.
func corrupt(path string, err, otherwise error) error {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return &CorruptError{Path: path, Detail: err.Error()}
		}
	}
	return otherwise
}

// Created reports whether Open created this database from nothing: the file
// was missing or empty. Beside stored packages that means the database was
// deleted or truncated.
func (db *DB) Created() bool { return db.created }

// HasApps reports whether the store holds at least one app.
func (db *DB) HasApps(ctx context.Context) (bool, error) {
	ok, err := exists(ctx, db.read, "SELECT 1 FROM apps LIMIT 1")
	if err != nil {
		return false, wrap(err, "look for apps")
	}
	return ok, nil
}
