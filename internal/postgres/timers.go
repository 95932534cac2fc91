package postgres

import (
	"context"
	"errors"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// GetTimerStatus returns the schedule status of a timer function in a slot,
// and false when none is stored.
func (db *DB) GetTimerStatus(ctx context.Context, app, slot, function string) (hotswap.TimerStatus, bool, error) {
	var st hotswap.TimerStatus
	err := db.pool.QueryRow(ctx,
		"SELECT schedule, last, next, updated_at FROM timer_status WHERE app = $1 AND slot = $2 AND function = $3", app, slot, function).
		Scan(&st.Schedule, nullTime{&st.Last}, nullTime{&st.Next}, nullTime{&st.Updated})
	if errors.Is(err, pgx.ErrNoRows) {
		return hotswap.TimerStatus{}, false, nil
	}
	if err != nil {
		return hotswap.TimerStatus{}, false, wrap(err, "get timer status %s/%s/%s", app, slot, function)
	}
	return st, true, nil
}

// PutTimerStatus stores the schedule status of a timer function in a slot.
// It never moves a status back: for the same schedule, a Next not after
// the stored one changes nothing (a slow run finishing after a later one,
// or another node's run of the same occurrence). A slot that no longer
// exists stores nothing and is not an error: its timers stop with it.
func (db *DB) PutTimerStatus(ctx context.Context, app, slot, function string, st hotswap.TimerStatus) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO timer_status AS t (app, slot, function, schedule, last, next, updated_at)
		SELECT $1, $2, $3, $4, $5::bigint, $6::bigint, $7::bigint WHERE EXISTS (SELECT 1 FROM slots WHERE app = $1 AND name = $2)
		ON CONFLICT (app, slot, function) DO UPDATE SET
			schedule = excluded.schedule, last = excluded.last, next = excluded.next, updated_at = excluded.updated_at
		WHERE excluded.next > t.next OR excluded.schedule <> t.schedule`,
		app, slot, function, st.Schedule, timeArg(st.Last), timeArg(st.Next), timeArg(st.Updated))
	if pgCode(err) == codeForeignKey {
		return nil // the slot was deleted between the check and the insert
	}
	if err != nil {
		return wrap(storageFull(err), "put timer status %s/%s/%s", app, slot, function)
	}
	return nil
}
