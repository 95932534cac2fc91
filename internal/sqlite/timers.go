package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/hotswap/hotswap"
)

// GetTimerStatus returns the schedule status of a timer function in a slot,
// and false when none is stored.
func (db *DB) GetTimerStatus(ctx context.Context, app, slot, function string) (hotswap.TimerStatus, bool, error) {
	var st hotswap.TimerStatus
	err := db.read.QueryRowContext(ctx,
		"SELECT schedule, last, next, updated_at FROM timer_status WHERE app = ? AND slot = ? AND function = ?", app, slot, function).
		Scan(&st.Schedule, nullTime{&st.Last}, nullTime{&st.Next}, nullTime{&st.Updated})
	if errors.Is(err, sql.ErrNoRows) {
		return hotswap.TimerStatus{}, false, nil
	}
	if err != nil {
		return hotswap.TimerStatus{}, false, wrap(err, "get timer status %s/%s/%s", app, slot, function)
	}
	return st, true, nil
}

// PutTimerStatus stores the schedule status of a timer function in a slot.
// It never moves a status back: for the same schedule, a Next not after
// the stored one changes nothing (a slow run finishing after a later one).
// A slot that no longer exists stores nothing and is not an error: its
// timers stop with it.
func (db *DB) PutTimerStatus(ctx context.Context, app, slot, function string, st hotswap.TimerStatus) error {
	_, err := db.write.ExecContext(ctx, `
		INSERT INTO timer_status (app, slot, function, schedule, last, next, updated_at)
		SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM slots WHERE app = ? AND name = ?)
		ON CONFLICT (app, slot, function) DO UPDATE SET
			schedule = excluded.schedule, last = excluded.last, next = excluded.next, updated_at = excluded.updated_at
		WHERE excluded.next > timer_status.next OR excluded.schedule <> timer_status.schedule`,
		app, slot, function, st.Schedule, timeArg(st.Last), timeArg(st.Next), timeArg(st.Updated), app, slot)
	if err != nil {
		return wrap(err, "put timer status %s/%s/%s", app, slot, function)
	}
	return nil
}
