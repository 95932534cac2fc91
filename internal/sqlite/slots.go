package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hotswap/hotswap"
)

// CreateSlot creates slot in an existing app and gives it keys, in one
// transaction. A zero CreatedAt is set to the current time. It returns
// NotFound if the app does not exist and Conflict if the slot exists or its
// host name is used by another app's slot.
func (db *DB) CreateSlot(ctx context.Context, slot hotswap.Slot, keys []hotswap.Key) error {
	if err := hotswap.ValidateName("slot", slot.Name); err != nil {
		return err
	}
	if err := validateKeys(keys); err != nil {
		return err
	}
	slot.CreatedAt = db.orNow(slot.CreatedAt)
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := appMustExist(ctx, tx, slot.App); err != nil {
			return err
		}
		ok, err := exists(ctx, tx, "SELECT 1 FROM slots WHERE app = ? AND name = ?", slot.App, slot.Name)
		if err != nil {
			return err
		}
		if ok {
			return hotswap.Errorf(hotswap.Conflict, "slot %q of app %q already exists", slot.Name, slot.App)
		}
		if slot.DeploymentID != "" {
			if err := deploymentOfApp(ctx, tx, slot.App, slot.DeploymentID); err != nil {
				return err
			}
		}
		return insertSlot(ctx, tx, slot, keys)
	})
	if err != nil {
		return wrap(err, "create slot %s/%s", slot.App, slot.Name)
	}
	return nil
}

// insertSlot inserts slot and its keys, refusing a host label already used.
// Checking first, rather than reading the UNIQUE error, is race-free because
// write transactions are serialized, and lets the message name the holder.
func insertSlot(ctx context.Context, tx *sql.Tx, slot hotswap.Slot, keys []hotswap.Key) error {
	label := hotswap.HostLabel(slot.App, slot.Name)
	var app, name string
	err := tx.QueryRowContext(ctx, "SELECT app, name FROM slots WHERE label = ?", label).Scan(&app, &name)
	switch {
	case err == nil:
		return hotswap.Errorf(hotswap.Conflict, "host name %q is already used by app %q slot %q", label, app, name)
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	_, err = tx.ExecContext(ctx,
		"INSERT INTO slots (app, name, label, deployment_id, created_at) VALUES (?, ?, ?, ?, ?)",
		slot.App, slot.Name, label, nullString(slot.DeploymentID), timeArg(slot.CreatedAt))
	if isUnique(err) {
		return hotswap.Errorf(hotswap.Conflict, "host name %q is already used", label)
	}
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := putKey(ctx, tx, slot.App, slot.Name, k); err != nil {
			return err
		}
	}
	return nil
}

const slotColumns = "app, name, deployment_id, created_at, auto_swap_target"

// scanSlot scans a row of slotColumns.
func scanSlot(s interface{ Scan(...any) error }) (hotswap.Slot, error) {
	var slot hotswap.Slot
	var dep sql.NullString
	err := s.Scan(&slot.App, &slot.Name, &dep, nullTime{&slot.CreatedAt}, &slot.AutoSwapTarget)
	slot.DeploymentID = dep.String
	return slot, err
}

// GetSlot returns the slot name of app, or NotFound.
func (db *DB) GetSlot(ctx context.Context, app, name string) (hotswap.Slot, error) {
	var slot hotswap.Slot
	err := db.view(ctx, func(tx *sql.Tx) error {
		var err error
		slot, err = scanSlot(tx.QueryRowContext(ctx, "SELECT "+slotColumns+" FROM slots WHERE app = ? AND name = ?", app, name))
		if errors.Is(err, sql.ErrNoRows) {
			return slotMustExist(ctx, tx, app, name)
		}
		return err
	})
	if err != nil {
		return hotswap.Slot{}, wrap(err, "get slot %s/%s", app, name)
	}
	return slot, nil
}

// ListSlots returns the slots of app, production first, then by name. It
// returns NotFound if the app does not exist.
func (db *DB) ListSlots(ctx context.Context, app string) ([]hotswap.Slot, error) {
	var slots []hotswap.Slot
	err := db.view(ctx, func(tx *sql.Tx) error {
		if err := appMustExist(ctx, tx, app); err != nil {
			return err
		}
		var err error
		slots, err = querySlots(ctx, tx, "SELECT "+slotColumns+" FROM slots WHERE app = ? ORDER BY name <> ?, name", app, hotswap.ProductionSlot)
		return err
	})
	if err != nil {
		return nil, wrap(err, "list slots of %s", app)
	}
	return slots, nil
}

// ListAllSlots returns the slots of all apps, by app, production first, then
// by name: what the routing table is built from.
func (db *DB) ListAllSlots(ctx context.Context) ([]hotswap.Slot, error) {
	slots, err := querySlots(ctx, db.read, "SELECT "+slotColumns+" FROM slots ORDER BY app, name <> ?, name", hotswap.ProductionSlot)
	if err != nil {
		return nil, fmt.Errorf("list all slots: %w", err)
	}
	return slots, nil
}

func querySlots(ctx context.Context, q querier, query string, args ...any) ([]hotswap.Slot, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var slots []hotswap.Slot
	for rows.Next() {
		s, err := scanSlot(rows)
		if err != nil {
			return nil, err
		}
		slots = append(slots, s)
	}
	return slots, rows.Err()
}

// DeleteSlot deletes the slot name of app with its settings and keys. It
// returns NotFound if there is no such slot and FailedPrecondition for the
// production slot. The slot's deployment records are kept.
func (db *DB) DeleteSlot(ctx context.Context, app, name string) error {
	if name == hotswap.ProductionSlot {
		return hotswap.Errorf(hotswap.FailedPrecondition, "the production slot cannot be deleted")
	}
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM slots WHERE app = ? AND name = ?", app, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return slotMustExist(ctx, tx, app, name)
		}
		return nil
	})
	if err != nil {
		return wrap(err, "delete slot %s/%s", app, name)
	}
	return nil
}

// SetSlotDeployment points the slot of app at the deployment deploymentID,
// which must be one of the app's, or at nothing if deploymentID is empty.
// It returns NotFound if the slot or the deployment does not exist.
func (db *DB) SetSlotDeployment(ctx context.Context, app, slot, deploymentID string) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		return setSlotDeployment(ctx, tx, app, slot, deploymentID)
	})
	if err != nil {
		return wrap(err, "set deployment of slot %s/%s", app, slot)
	}
	return nil
}

func setSlotDeployment(ctx context.Context, tx *sql.Tx, app, slot, deploymentID string) error {
	if deploymentID != "" {
		if err := deploymentOfApp(ctx, tx, app, deploymentID); err != nil {
			return err
		}
	}
	res, err := tx.ExecContext(ctx, "UPDATE slots SET deployment_id = ? WHERE app = ? AND name = ?", nullString(deploymentID), app, slot)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return slotMustExist(ctx, tx, app, slot)
	}
	return recordServing(ctx, tx, app, slot, deploymentID)
}

// recordServing ends the slot's open serving period and, for a deployment,
// opens a new one.
func recordServing(ctx context.Context, tx *sql.Tx, app, slot, deploymentID string) error {
	now := time.Now().UTC().UnixNano()
	if _, err := tx.ExecContext(ctx, "UPDATE serving SET ended_at = ? WHERE app = ? AND slot = ? AND ended_at IS NULL", now, app, slot); err != nil {
		return err
	}
	if deploymentID == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO serving (app, slot, deployment_id, started_at) VALUES (?, ?, ?, ?)", app, slot, deploymentID, now)
	return err
}

// deploymentOfApp returns NotFound unless id is a deployment of app.
func deploymentOfApp(ctx context.Context, q querier, app, id string) error {
	ok, err := exists(ctx, q, "SELECT 1 FROM deployments WHERE id = ? AND app = ?", id, app)
	if err != nil {
		return err
	}
	if !ok {
		return hotswap.Errorf(hotswap.NotFound, "deployment %q of app %q not found", id, app)
	}
	return nil
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
