package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/hotswap/hotswap"
)

// Swap is the flip of a swap, in one transaction: the two slots exchange
// their deployments and their settings that are not slot settings (sticky
// ones stay), the serving history is updated, and operation opID, when not
// empty, is recorded as succeeded. On error nothing changed.
func (db *DB) Swap(ctx context.Context, app, source, target, opID string) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		var depS, depT sql.NullString
		if err := tx.QueryRowContext(ctx, "SELECT deployment_id FROM slots WHERE app = ? AND name = ?", app, source).Scan(&depS); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return hotswap.Errorf(hotswap.NotFound, "slot %q of app %q not found", source, app)
			}
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT deployment_id FROM slots WHERE app = ? AND name = ?", app, target).Scan(&depT); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return hotswap.Errorf(hotswap.NotFound, "slot %q of app %q not found", target, app)
			}
			return err
		}
		if err := setSlotDeployment(ctx, tx, app, source, depT.String); err != nil {
			return err
		}
		if err := setSlotDeployment(ctx, tx, app, target, depS.String); err != nil {
			return err
		}
		// Settings that are not slot settings travel with the content.
		moving := make(map[string][]hotswap.Setting, 2)
		for _, slot := range []string{source, target} {
			rows, err := tx.QueryContext(ctx, "SELECT name, value FROM settings WHERE app = ? AND slot = ? AND sticky = 0", app, slot)
			if err != nil {
				return err
			}
			for rows.Next() {
				var st hotswap.Setting
				if err := rows.Scan(&st.Name, &st.Value); err != nil {
					rows.Close()
					return err
				}
				moving[slot] = append(moving[slot], st)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM settings WHERE app = ? AND slot = ? AND sticky = 0", app, slot); err != nil {
				return err
			}
		}
		for from, to := range map[string]string{source: target, target: source} {
			for _, st := range moving[from] {
				_, err := tx.ExecContext(ctx, "INSERT INTO settings (app, slot, name, value, sticky) VALUES (?, ?, ?, ?, 0)", app, to, st.Name, st.Value)
				if isUnique(err) {
					return hotswap.Errorf(hotswap.Conflict, "setting %s is a slot setting of %s and would arrive there from %s as a normal setting; make it a slot setting in both slots or in neither", st.Name, to, from)
				}
				if err != nil {
					return err
				}
			}
		}
		if opID != "" {
			if err := db.endOperation(ctx, tx, opID, hotswap.OpSucceeded, "swapped"); err != nil {
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

// SetAutoSwap sets the slot's auto-swap target; empty disables it.
func (db *DB) SetAutoSwap(ctx context.Context, app, slot, target string) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		if target != "" {
			if err := slotMustExist(ctx, tx, app, target); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, "UPDATE slots SET auto_swap_target = ? WHERE app = ? AND name = ?", target, app, slot)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
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
	rows, err := db.read.QueryContext(ctx, "SELECT slot, deployment_id, started_at, ended_at FROM serving WHERE app = ? ORDER BY started_at DESC, rowid DESC", app)
	if err != nil {
		return nil, wrap(err, "serving history of %s", app)
	}
	defer rows.Close()
	var out []hotswap.Serving
	for rows.Next() {
		var s hotswap.Serving
		if err := rows.Scan(&s.Slot, &s.DeploymentID, nullTime{&s.From}, nullTime{&s.To}); err != nil {
			return nil, wrap(err, "serving history of %s", app)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// DeleteDeployment removes a deployment record and its serving history. A
// deployment a slot points at cannot be removed (FailedPrecondition).
func (db *DB) DeleteDeployment(ctx context.Context, app, id string) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		used, err := exists(ctx, tx, "SELECT 1 FROM slots WHERE app = ? AND deployment_id = ?", app, id)
		if err != nil {
			return err
		}
		if used {
			return hotswap.Errorf(hotswap.FailedPrecondition, "deployment %s is served by a slot", id)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM serving WHERE app = ? AND deployment_id = ?", app, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM deployments WHERE app = ? AND id = ?", app, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
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
	ok, err := exists(ctx, db.read, "SELECT 1 FROM deployments WHERE digest = ? UNION ALL SELECT 1 FROM artifacts WHERE digest = ?", digest, digest)
	if err != nil {
		return false, wrap(err, "digest in use")
	}
	return ok, nil
}
