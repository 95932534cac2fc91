package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
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
	err := db.update(ctx, func(tx pgx.Tx) error {
		ok, err := exists(ctx, tx, "SELECT 1 FROM apps WHERE name = $1", app.Name)
		if err != nil {
			return err
		}
		if ok {
			return hotswap.Errorf(hotswap.Conflict, "app %q already exists", app.Name)
		}
		_, err = tx.Exec(ctx, "INSERT INTO apps (name, created_at) VALUES ($1, $2)", app.Name, timeArg(created))
		if isUniqueOn(err, "apps_pkey") {
			return hotswap.Errorf(hotswap.Conflict, "app %q already exists", app.Name)
		}
		if err != nil {
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
	err := db.pool.QueryRow(ctx, "SELECT created_at FROM apps WHERE name = $1", name).Scan(nullTime{&a.CreatedAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return hotswap.App{}, hotswap.Errorf(hotswap.NotFound, "app %q not found", name)
	}
	if err != nil {
		return hotswap.App{}, fmt.Errorf("get app %s: %w", name, err)
	}
	return a, nil
}

// ListApps returns all apps sorted by name.
func (db *DB) ListApps(ctx context.Context) ([]hotswap.App, error) {
	rows, err := db.pool.Query(ctx, "SELECT name, created_at FROM apps ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	apps, err := collect(rows, func(row pgx.CollectableRow) (hotswap.App, error) {
		var a hotswap.App
		err := row.Scan(&a.Name, nullTime{&a.CreatedAt})
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	return apps, nil
}

// DeleteApp deletes the app called name with all that belongs to it: slots,
// settings, keys, deployment records, operations and activity. It returns
// NotFound if there is no such app.
func (db *DB) DeleteApp(ctx context.Context, name string) error {
	err := db.update(ctx, func(tx pgx.Tx) error {
		// Slots first: they point at deployments.
		for _, q := range []string{
			"DELETE FROM slots WHERE app = $1", // cascades to settings, keys and timer status
			"DELETE FROM deployments WHERE app = $1",
			"DELETE FROM operations WHERE app = $1",
			"DELETE FROM activity WHERE app = $1",
		} {
			if _, err := tx.Exec(ctx, q, name); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, "DELETE FROM apps WHERE name = $1", name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return hotswap.Errorf(hotswap.NotFound, "app %q not found", name)
		}
		return nil
	})
	if err != nil {
		return wrap(err, "delete app %s", name)
	}
	return nil
}

// collect scans every row with scan. Unlike pgx.CollectRows it returns nil,
// not an empty slice, for no rows, as database/sql loops do in the SQLite
// store.
func collect[T any](rows pgx.Rows, scan func(row pgx.CollectableRow) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
