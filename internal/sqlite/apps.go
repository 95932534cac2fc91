package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hotswap/hotswap"
)

// CreateApp creates app with its production slot, whose host label is the
// app name, and gives that slot keys, all in one transaction. A zero
// CreatedAt is set to the current time. It returns Conflict if the app
// exists or its host name is used by another app's slot.
func (db *DB) CreateApp(ctx context.Context, app hotswap.App, keys []hotswap.Key) error {
	if err := hotswap.ValidateName("app", app.Name); err != nil {
		return err
	}
	if err := validateKeys(keys); err != nil {
		return err
	}
	created := db.orNow(app.CreatedAt)
	err := db.update(ctx, func(tx *sql.Tx) error {
		ok, err := exists(ctx, tx, "SELECT 1 FROM apps WHERE name = ?", app.Name)
		if err != nil {
			return err
		}
		if ok {
			return hotswap.Errorf(hotswap.Conflict, "app %q already exists", app.Name)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO apps (name, created_at) VALUES (?, ?)", app.Name, timeArg(created)); err != nil {
			return err
		}
		return insertSlot(ctx, tx, hotswap.Slot{App: app.Name, Name: hotswap.ProductionSlot, CreatedAt: created}, keys)
	})
	if err != nil {
		return wrap(err, "create app %s", app.Name)
	}
	return nil
}

// GetApp returns the app called name, or NotFound.
func (db *DB) GetApp(ctx context.Context, name string) (hotswap.App, error) {
	a := hotswap.App{Name: name}
	err := db.read.QueryRowContext(ctx, "SELECT created_at FROM apps WHERE name = ?", name).Scan(nullTime{&a.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return hotswap.App{}, hotswap.Errorf(hotswap.NotFound, "app %q not found", name)
	}
	if err != nil {
		return hotswap.App{}, fmt.Errorf("get app %s: %w", name, err)
	}
	return a, nil
}

// ListApps returns all apps sorted by name.
func (db *DB) ListApps(ctx context.Context) ([]hotswap.App, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT name, created_at FROM apps ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	defer rows.Close()
	var apps []hotswap.App
	for rows.Next() {
		var a hotswap.App
		if err := rows.Scan(&a.Name, nullTime{&a.CreatedAt}); err != nil {
			return nil, fmt.Errorf("list apps: %w", err)
		}
		apps = append(apps, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return apps, nil
}

// DeleteApp deletes the app called name with all that belongs to it: slots,
// settings, keys, deployment records, operations and activity. It returns
// NotFound if there is no such app.
func (db *DB) DeleteApp(ctx context.Context, name string) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		// Slots first: they point at deployments.
		for _, q := range []string{
			"DELETE FROM slots WHERE app = ?", // cascades to settings and keys
			"DELETE FROM deployments WHERE app = ?",
			"DELETE FROM operations WHERE app = ?",
			"DELETE FROM activity WHERE app = ?",
		} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM apps WHERE name = ?", name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return hotswap.Errorf(hotswap.NotFound, "app %q not found", name)
		}
		return nil
	})
	if err != nil {
		return wrap(err, "delete app %s", name)
	}
	return nil
}
