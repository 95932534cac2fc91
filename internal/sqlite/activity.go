package sqlite

import (
	"context"
	"fmt"

	"github.com/hotswap/hotswap"
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
	_, err := db.write.ExecContext(ctx,
		"INSERT INTO activity (app, time, actor, action, slot, detail, result) VALUES (?, ?, ?, ?, ?, ?, ?)",
		a.App, timeArg(db.orNow(a.Time)), a.Actor, a.Action, a.Slot, a.Detail, a.Result)
	if err != nil {
		return fmt.Errorf("add activity of %s: %w", a.App, err)
	}
	return nil
}

// ListActivity returns the audit log of app, or of all apps if app is empty,
// newest first, at most limit entries if limit > 0.
func (db *DB) ListActivity(ctx context.Context, app string, limit int) ([]hotswap.Activity, error) {
	if limit <= 0 {
		limit = -1 // no limit in SQLite
	}
	rows, err := db.read.QueryContext(ctx, `SELECT id, app, time, actor, action, slot, detail, result FROM activity
		WHERE ? = '' OR app = ? ORDER BY time DESC, id DESC LIMIT ?`, app, app, limit)
	if err != nil {
		return nil, fmt.Errorf("list activity of %s: %w", app, err)
	}
	defer rows.Close()
	var list []hotswap.Activity
	for rows.Next() {
		var a hotswap.Activity
		if err := rows.Scan(&a.ID, &a.App, nullTime{&a.Time}, &a.Actor, &a.Action, &a.Slot, &a.Detail, &a.Result); err != nil {
			return nil, fmt.Errorf("list activity of %s: %w", app, err)
		}
		list = append(list, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list activity of %s: %w", app, err)
	}
	return list, nil
}
