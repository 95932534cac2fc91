package postgres

import (
	"context"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// ListSettings returns the app settings of a slot sorted by name. It returns
// NotFound if the slot does not exist.
func (db *DB) ListSettings(ctx context.Context, app, slot string) ([]hotswap.Setting, error) {
	var settings []hotswap.Setting
	err := db.view(ctx, func(tx pgx.Tx) error {
		if err := slotMustExist(ctx, tx, app, slot); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT name, value, sticky FROM settings WHERE app = $1 AND slot = $2 ORDER BY name", app, slot)
		if err != nil {
			return err
		}
		settings, err = collect(rows, func(row pgx.CollectableRow) (hotswap.Setting, error) {
			var s hotswap.Setting
			err := row.Scan(&s.Name, &s.Value, &s.Sticky)
			return s, err
		})
		return err
	})
	if err != nil {
		return nil, wrap(err, "list settings of %s/%s", app, slot)
	}
	return settings, nil
}

// SetSettings adds or replaces the settings of a slot, all or none. It
// returns Invalid for a bad name or value and NotFound if the slot does not
// exist.
func (db *DB) SetSettings(ctx context.Context, app, slot string, settings []hotswap.Setting) error {
	return db.UpdateSettings(ctx, app, slot, settings, nil)
}

// UnsetSettings removes the named settings of a slot, all or none. It
// returns NotFound naming the first that does not exist, having changed
// nothing.
func (db *DB) UnsetSettings(ctx context.Context, app, slot string, names []string) error {
	return db.UpdateSettings(ctx, app, slot, nil, names)
}

// UpdateSettings removes the settings named in unset and adds or replaces
// those in set, in one transaction: all or none.
func (db *DB) UpdateSettings(ctx context.Context, app, slot string, set []hotswap.Setting, unset []string) error {
	for _, s := range set {
		if err := hotswap.ValidateSettingName(s.Name); err != nil {
			return err
		}
		if err := hotswap.ValidateSettingValue(s.Name, s.Value); err != nil {
			return err
		}
	}
	err := db.update(ctx, func(tx pgx.Tx) error {
		if err := slotMustExist(ctx, tx, app, slot); err != nil {
			return err
		}
		for _, name := range unset {
			tag, err := tx.Exec(ctx, "DELETE FROM settings WHERE app = $1 AND slot = $2 AND name = $3", app, slot, name)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return hotswap.Errorf(hotswap.NotFound, "setting %q of slot %q of app %q not found", name, slot, app)
			}
		}
		for _, s := range set {
			_, err := tx.Exec(ctx, `INSERT INTO settings (app, slot, name, value, sticky) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (app, slot, name) DO UPDATE SET value = excluded.value, sticky = excluded.sticky`,
				app, slot, s.Name, s.Value, s.Sticky)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap(err, "update settings of %s/%s", app, slot)
	}
	return nil
}
