package postgres

import (
	"context"
	"fmt"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// AddActivity appends a to the audit log. a.ID is ignored.
func (db *DB) AddActivity(ctx context.Context, a hotswap.Activity) error {
	for _, f := range [...]struct{ what, s string }{
		{"activity actor", a.Actor}, {"activity action", a.Action},
		{"activity detail", a.Detail}, {"activity result", a.Result},
	} {
		if err := hotswap.ValidateText(f.what, f.s); err != nil {
			return err
		}
	}
	_, err := db.pool.Exec(ctx,
		"INSERT INTO activity (app, time, actor, action, slot, detail, result) VALUES ($1, $2, $3, $4, $5, $6, $7)",
		a.App, timeArg(db.orNow(a.Time)), a.Actor, a.Action, a.Slot, a.Detail, a.Result)
	if err != nil {
		return fmt.Errorf("add activity of %s: %w", a.App, storageFull(err))
	}
	return nil
}

// ListActivity returns the audit log of app, or of all apps if app is empty,
// newest first, at most limit entries if limit > 0.
func (db *DB) ListActivity(ctx context.Context, app string, limit int) ([]hotswap.Activity, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, app, time, actor, action, slot, detail, result FROM activity
		WHERE $1 = '' OR app = $1 ORDER BY time DESC, id DESC LIMIT $2`, app, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list activity of %s: %w", app, err)
	}
	list, err := collect(rows, func(row pgx.CollectableRow) (hotswap.Activity, error) {
		var a hotswap.Activity
		err := row.Scan(&a.ID, &a.App, nullTime{&a.Time}, &a.Actor, &a.Action, &a.Slot, &a.Detail, &a.Result)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list activity of %s: %w", app, err)
	}
	return list, nil
}
