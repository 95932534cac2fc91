package postgres

import (
	"context"
	"errors"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// Swap is the flip of a swap, in one transaction: the two slots exchange
// their deployments and their settings that are not slot settings (sticky
// ones stay), the serving history is updated, and operation opID, when not
// empty, is recorded as succeeded. On error nothing changed.
func (db *DB) Swap(ctx context.Context, app, source, target, opID string) error {
	err := db.update(ctx, func(tx pgx.Tx) error {
		var depS, depT *string
		if err := tx.QueryRow(ctx, "SELECT deployment_id FROM slots WHERE app = $1 AND name = $2", app, source).Scan(&depS); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return hotswap.Errorf(hotswap.NotFound, "slot %q of app %q not found", source, app)
			}
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT deployment_id FROM slots WHERE app = $1 AND name = $2", app, target).Scan(&depT); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return hotswap.Errorf(hotswap.NotFound, "slot %q of app %q not found", target, app)
			}
			return err
		}
		if err := setSlotDeployment(ctx, tx, app, source, deref(depT)); err != nil {
			return err
		}
		if err := setSlotDeployment(ctx, tx, app, target, deref(depS)); err != nil {
			return err
		}
		// Settings that are not slot settings travel with the content.
		moving := make(map[string][]hotswap.Setting, 2)
		for _, slot := range []string{source, target} {
			rows, err := tx.Query(ctx, "SELECT name, value FROM settings WHERE app = $1 AND slot = $2 AND NOT sticky", app, slot)
			if err != nil {
				return err
			}
			moving[slot], err = collect(rows, func(row pgx.CollectableRow) (hotswap.Setting, error) {
				var st hotswap.Setting
				err := row.Scan(&st.Name, &st.Value)
				return st, err
			})
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "DELETE FROM settings WHERE app = $1 AND slot = $2 AND NOT sticky", app, slot); err != nil {
				return err
			}
		}
		for from, to := range map[string]string{source: target, target: source} {
			for _, st := range moving[from] {
				_, err := tx.Exec(ctx, "INSERT INTO settings (app, slot, name, value, sticky) VALUES ($1, $2, $3, $4, false)", app, to, st.Name, st.Value)
				if isUnique(err) {
					return hotswap.Errorf(hotswap.Conflict, "setting %s is a slot setting of %s and would arrive there from %s as a normal setting; make it a slot setting in both slots or in neither", st.Name, to, from)
				}
				if err != nil {
					return err
				}
			}
		}
		if opID != "" {
			if err := endOperationAt(ctx, tx, opID, hotswap.OpSucceeded, "swapped", db.now()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap(err, "swap %s/%s with %s", app, source, target)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// SetAutoSwap sets the slot's auto-swap target; empty disables it.
func (db *DB) SetAutoSwap(ctx context.Context, app, slot, target string) error {
	err := db.update(ctx, func(tx pgx.Tx) error {
		if target != "" {
			if err := slotMustExist(ctx, tx, app, target); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, "UPDATE slots SET auto_swap_target = $1 WHERE app = $2 AND name = $3", target, app, slot)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return slotMustExist(ctx, tx, app, slot)
		}
		return nil
	})
	if err != nil {
		return wrap(err, "set auto swap of %s/%s", app, slot)
	}
	return nil
}

// ServingHistory returns when each deployment of app served each slot,
// newest first.
func (db *DB) ServingHistory(ctx context.Context, app string) ([]hotswap.Serving, error) {
	rows, err := db.pool.Query(ctx, "SELECT slot, deployment_id, started_at, ended_at FROM serving WHERE app = $1 ORDER BY started_at DESC, seq DESC", app)
	if err != nil {
		return nil, wrap(err, "serving history of %s", app)
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (hotswap.Serving, error) {
		var s hotswap.Serving
		err := row.Scan(&s.Slot, &s.DeploymentID, nullTime{&s.From}, nullTime{&s.To})
		return s, err
	})
	return out, wrap(err, "serving history of %s", app)
}

// DeleteDeployment removes a deployment record and its serving history. A
// deployment a slot points at cannot be removed (FailedPrecondition).
func (db *DB) DeleteDeployment(ctx context.Context, app, id string) error {
	err := db.update(ctx, func(tx pgx.Tx) error {
		used, err := exists(ctx, tx, "SELECT 1 FROM slots WHERE app = $1 AND deployment_id = $2", app, id)
		if err != nil {
			return err
		}
		if used {
			return hotswap.Errorf(hotswap.FailedPrecondition, "deployment %s is served by a slot", id)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM serving WHERE app = $1 AND deployment_id = $2", app, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM deployments WHERE app = $1 AND id = $2", app, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return hotswap.Errorf(hotswap.NotFound, "deployment %q of app %q not found", id, app)
		}
		return nil
	})
	if err != nil {
		return wrap(err, "delete deployment %s", id)
	}
	return nil
}

// DigestInUse reports whether any deployment of any app, or any artifact
// (which a release may deploy), uses the package.
func (db *DB) DigestInUse(ctx context.Context, digest string) (bool, error) {
	ok, err := exists(ctx, db.pool, "SELECT 1 FROM deployments WHERE digest = $1 UNION ALL SELECT 1 FROM artifacts WHERE digest = $1 LIMIT 1", digest)
	if err != nil {
		return false, wrap(err, "digest in use")
	}
	return ok, nil
}
