package sqlite

import (
	"context"
	"database/sql"

	"github.com/hotswap/hotswap"
)

// SetTraffic replaces the traffic routing rules of app's production slot
// with shares (none clears them). Each share must name an existing slot of
// the app other than production (see hotswap.ValidateTraffic for the rest);
// it returns NotFound for a missing app or slot.
func (db *DB) SetTraffic(ctx context.Context, app string, shares []hotswap.TrafficShare) error {
	if err := hotswap.ValidateTraffic(shares); err != nil {
		return err
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := appMustExist(ctx, tx, app); err != nil {
			return err
		}
		for _, s := range shares {
			if err := slotMustExist(ctx, tx, app, s.Slot); err != nil {
				return hotswap.Errorf(hotswap.NotFound, "traffic share for slot %q: %s", s.Slot, hotswap.ErrorMessage(err))
			}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM traffic WHERE app = ?", app); err != nil {
			return err
		}
		for _, s := range shares {
			if _, err := tx.ExecContext(ctx, "INSERT INTO traffic (app, slot, percent) VALUES (?, ?, ?)", app, s.Slot, s.Percent); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap(err, "set traffic of %s", app)
	}
	return nil
}

// Traffic returns the traffic routing rules of app's production slot, by
// slot name; none if it has none. It returns NotFound if the app does not
// exist.
func (db *DB) Traffic(ctx context.Context, app string) ([]hotswap.TrafficShare, error) {
	var shares []hotswap.TrafficShare
	err := db.view(ctx, func(tx *sql.Tx) error {
		if err := appMustExist(ctx, tx, app); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT slot, percent FROM traffic WHERE app = ? ORDER BY slot", app)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s hotswap.TrafficShare
			if err := rows.Scan(&s.Slot, &s.Percent); err != nil {
				return err
			}
			shares = append(shares, s)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap(err, "traffic of %s", app)
	}
	return shares, nil
}
