package sqlite

import (
	"context"
	"fmt"
	"time"
)

// Activity is one entry of an app's audit log.
type Activity struct {
	ID     int64     `json:"id"` // assigned by AddActivity, increasing
	App    string    `json:"app"`
	Time   time.Time `json:"time"` // set to the current time by AddActivity if zero
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // e.g. "deploy", "swap", "set settings"
	Slot   string    `json:"slot"`
	Detail string    `json:"detail"`
	Result string    `json:"result"` // e.g. "ok" or the error message
}

// AddActivity appends a to the audit log. a.ID is ignored.
func (db *DB) AddActivity(ctx context.Context, a Activity) error {
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
func (db *DB) ListActivity(ctx context.Context, app string, limit int) ([]Activity, error) {
	if limit <= 0 {
		limit = -1 // no limit in SQLite
	}
	rows, err := db.read.QueryContext(ctx, `SELECT id, app, time, actor, action, slot, detail, result FROM activity
		WHERE ? = '' OR app = ? ORDER BY time DESC, id DESC LIMIT ?`, app, app, limit)
	if err != nil {
		return nil, fmt.Errorf("list activity of %s: %w", app, err)
	}
	defer rows.Close()
	var list []Activity
	for rows.Next() {
		var a Activity
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
