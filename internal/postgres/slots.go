package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
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
	err := db.update(ctx, func(tx pgx.Tx) error {
		if err := appMustExist(ctx, tx, slot.App); err != nil {
			return err
		}
		ok, err := exists(ctx, tx, "SELECT 1 FROM slots WHERE app = $1 AND name = $2", slot.App, slot.Name)
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
// Checking first lets the message name the holder; the UNIQUE constraint
// catches what a concurrent transaction inserted meanwhile.
func insertSlot(ctx context.Context, tx pgx.Tx, slot hotswap.Slot, keys []hotswap.Key) error {
	label := hotswap.HostLabel(slot.App, slot.Name)
	var app, name string
	err := tx.QueryRow(ctx, "SELECT app, name FROM slots WHERE label = $1", label).Scan(&app, &name)
	switch {
	case err == nil:
		return hotswap.Errorf(hotswap.Conflict, "host name %q is already used by app %q slot %q", label, app, name)
	case !errors.Is(err, pgx.ErrNoRows):
		return err
	}
	_, err = tx.Exec(ctx,
		"INSERT INTO slots (app, name, label, deployment_id, created_at) VALUES ($1, $2, $3, $4, $5)",
		slot.App, slot.Name, label, nullString(slot.DeploymentID), timeArg(slot.CreatedAt))
	if isUniqueOn(err, "slots_pkey") {
		return hotswap.Errorf(hotswap.Conflict, "slot %q of app %q already exists", slot.Name, slot.App)
	}
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
func scanSlot(s pgx.Row) (hotswap.Slot, error) {
	var slot hotswap.Slot
	var dep *string
	err := s.Scan(&slot.App, &slot.Name, &dep, nullTime{&slot.CreatedAt}, &slot.AutoSwapTarget)
	if dep != nil {
		slot.DeploymentID = *dep
	}
	return slot, err
}

// GetSlot returns the slot name of app, or NotFound.
func (db *DB) GetSlot(ctx context.Context, app, name string) (hotswap.Slot, error) {
	var slot hotswap.Slot
	err := db.view(ctx, func(tx pgx.Tx) error {
		var err error
		slot, err = scanSlot(tx.QueryRow(ctx, "SELECT "+slotColumns+" FROM slots WHERE app = $1 AND name = $2", app, name))
		if errors.Is(err, pgx.ErrNoRows) {
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
	err := db.view(ctx, func(tx pgx.Tx) error {
		if err := appMustExist(ctx, tx, app); err != nil {
			return err
		}
		var err error
		slots, err = querySlots(ctx, tx, "SELECT "+slotColumns+" FROM slots WHERE app = $1 ORDER BY name <> $2, name", app, hotswap.ProductionSlot)
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
	slots, err := querySlots(ctx, db.pool, "SELECT "+slotColumns+" FROM slots ORDER BY app, name <> $1, name", hotswap.ProductionSlot)
	if err != nil {
		return nil, fmt.Errorf("list all slots: %w", err)
	}
	return slots, nil
}

func querySlots(ctx context.Context, q querier, query string, args ...any) ([]hotswap.Slot, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(row pgx.CollectableRow) (hotswap.Slot, error) { return scanSlot(row) })
}

// DeleteSlot deletes the slot name of app with its settings and keys. It
// returns NotFound if there is no such slot and FailedPrecondition for the
// production slot. The slot's deployment records are kept.
func (db *DB) DeleteSlot(ctx context.Context, app, name string) error {
	if name == hotswap.ProductionSlot {
		return hotswap.Errorf(hotswap.FailedPrecondition, "the production slot cannot be deleted")
	}
	err := db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM slots WHERE app = $1 AND name = $2", app, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
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
	err := db.update(ctx, func(tx pgx.Tx) error {
		return setSlotDeployment(ctx, tx, app, slot, deploymentID)
	})
	if err != nil {
		return wrap(err, "set deployment of slot %s/%s", app, slot)
	}
	return nil
}

func setSlotDeployment(ctx context.Context, tx pgx.Tx, app, slot, deploymentID string) error {
	if deploymentID != "" {
		if err := deploymentOfApp(ctx, tx, app, deploymentID); err != nil {
			return err
		}
	}
	tag, err := tx.Exec(ctx, "UPDATE slots SET deployment_id = $1 WHERE app = $2 AND name = $3", nullString(deploymentID), app, slot)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return slotMustExist(ctx, tx, app, slot)
	}
	return recordServing(ctx, tx, app, slot, deploymentID)
}

// recordServing ends the slot's open serving period and, for a deployment,
// opens a new one.
func recordServing(ctx context.Context, tx pgx.Tx, app, slot, deploymentID string) error {
	now := time.Now().UTC().UnixNano()
	if _, err := tx.Exec(ctx, "UPDATE serving SET ended_at = $1 WHERE app = $2 AND slot = $3 AND ended_at IS NULL", now, app, slot); err != nil {
		return err
	}
	if deploymentID == "" {
		return nil
	}
	_, err := tx.Exec(ctx, "INSERT INTO serving (app, slot, deployment_id, started_at) VALUES ($1, $2, $3, $4)", app, slot, deploymentID, now)
	return err
}

// deploymentOfApp returns NotFound unless id is a deployment of app.
func deploymentOfApp(ctx context.Context, q querier, app, id string) error {
	ok, err := exists(ctx, q, "SELECT 1 FROM deployments WHERE id = $1 AND app = $2", id, app)
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
