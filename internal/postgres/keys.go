package postgres

import (
	"context"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// validateKeys checks each key with hotswap.ValidateStoredKey.
func validateKeys(keys []hotswap.Key) error {
	for _, k := range keys {
		if err := hotswap.ValidateStoredKey(k); err != nil {
			return err
		}
	}
	return nil
}

// ListKeys returns the keys of a slot, by scope, function and name. It
// returns NotFound if the slot does not exist.
func (db *DB) ListKeys(ctx context.Context, app, slot string) ([]hotswap.Key, error) {
	var keys []hotswap.Key
	err := db.view(ctx, func(tx pgx.Tx) error {
		if err := slotMustExist(ctx, tx, app, slot); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT scope, function, name, value FROM keys
			WHERE app = $1 AND slot = $2 ORDER BY scope, function, name`, app, slot)
		if err != nil {
			return err
		}
		keys, err = collect(rows, func(row pgx.CollectableRow) (hotswap.Key, error) {
			var k hotswap.Key
			err := row.Scan(&k.Scope, &k.Function, &k.Name, &k.Value)
			return k, err
		})
		return err
	})
	if err != nil {
		return nil, wrap(err, "list keys of %s/%s", app, slot)
	}
	return keys, nil
}

// PutKey adds key k to a slot or replaces the value of the key with its
// scope, function and name. It returns Invalid for a bad key and NotFound if
// the slot does not exist.
func (db *DB) PutKey(ctx context.Context, app, slot string, k hotswap.Key) error {
	if err := hotswap.ValidateStoredKey(k); err != nil {
		return err
	}
	err := db.update(ctx, func(tx pgx.Tx) error {
		if err := slotMustExist(ctx, tx, app, slot); err != nil {
			return err
		}
		return putKey(ctx, tx, app, slot, k)
	})
	if err != nil {
		return wrap(err, "put key %s of %s/%s", k.Name, app, slot)
	}
	return nil
}

func putKey(ctx context.Context, tx pgx.Tx, app, slot string, k hotswap.Key) error {
	_, err := tx.Exec(ctx, `INSERT INTO keys (app, slot, scope, function, name, value) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (app, slot, scope, function, name) DO UPDATE SET value = excluded.value`,
		app, slot, k.Scope, k.Function, k.Name, k.Value)
	return err
}

// DeleteKey deletes a key of a slot. It returns FailedPrecondition for the
// master key, which can be replaced but not removed, and NotFound if there
// is no such key.
func (db *DB) DeleteKey(ctx context.Context, app, slot, scope, function, name string) error {
	if scope == hotswap.ScopeMaster {
		return hotswap.Errorf(hotswap.FailedPrecondition, "the master key cannot be deleted")
	}
	err := db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM keys WHERE app = $1 AND slot = $2 AND scope = $3 AND function = $4 AND name = $5",
			app, slot, scope, function, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			if err := slotMustExist(ctx, tx, app, slot); err != nil {
				return err
			}
			return hotswap.Errorf(hotswap.NotFound, "%s key %q of slot %q of app %q not found", scope, name, slot, app)
		}
		return nil
	})
	if err != nil {
		return wrap(err, "delete key %s of %s/%s", name, app, slot)
	}
	return nil
}
