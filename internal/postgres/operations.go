package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// BeginOperation records op as running. State and EndedAt are ignored. It
// returns Conflict if op.App already has a running operation, on any node,
// or if op.ID is taken, and Invalid if ID, App or Kind is empty.
func (db *DB) BeginOperation(ctx context.Context, op hotswap.Operation) error {
	switch {
	case op.ID == "":
		return hotswap.Errorf(hotswap.Invalid, "operation has no id")
	case op.App == "":
		return hotswap.Errorf(hotswap.Invalid, "operation has no app")
	case op.Kind == "":
		return hotswap.Errorf(hotswap.Invalid, "operation has no kind")
	}
	op.StartedAt = db.orNow(op.StartedAt)
	err := db.update(ctx, func(tx pgx.Tx) error {
		// The partial unique index refuses a second running operation anyway;
		// reading first lets the message say which one is running.
		running, err := scanOperation(tx.QueryRow(ctx,
			"SELECT "+operationColumns+" FROM operations WHERE app = $1 AND state = $2", op.App, hotswap.OpRunning))
		switch {
		case err == nil:
			return runningConflict(running)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO operations ("+operationColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL)",
			op.ID, op.App, op.Kind, op.Slot, op.Target, hotswap.OpRunning, op.Phase, op.Detail, op.Actor, op.Node, timeArg(op.StartedAt))
		if isUniqueOn(err, "operations_one_running") {
			// Not reached while writes hold the write lock; kept as the
			// index's own answer.
			return hotswap.Errorf(hotswap.Conflict, "app %q has a running operation", op.App)
		}
		if isUnique(err) {
			return hotswap.Errorf(hotswap.Conflict, "operation %q already exists", op.ID)
		}
		return err
	})
	if err != nil {
		return wrap(err, "begin operation %s", op.ID)
	}
	return nil
}

func runningConflict(op hotswap.Operation) error {
	return hotswap.Errorf(hotswap.Conflict, "app %q has a running %s (operation %s) started %s",
		op.App, op.Kind, op.ID, op.StartedAt.Format(time.RFC3339))
}

// SetOperationPhase records the phase a running operation has reached. It
// returns NotFound if there is no such operation and FailedPrecondition if
// it has ended.
func (db *DB) SetOperationPhase(ctx context.Context, id, phase, detail string) error {
	err := db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "UPDATE operations SET phase = $1, detail = $2 WHERE id = $3 AND state = $4", phase, detail, id, hotswap.OpRunning)
		if err != nil {
			return err
		}
		return mustHaveUpdatedRunning(ctx, tx, tag, id)
	})
	if err != nil {
		return wrap(err, "set phase of operation %s", id)
	}
	return nil
}

// EndOperation ends a running operation in state OpSucceeded or OpFailed,
// at the current time. It returns Invalid for another state, NotFound if
// there is no such operation and FailedPrecondition if it has ended.
func (db *DB) EndOperation(ctx context.Context, id string, state hotswap.OperationState, detail string) error {
	return db.EndOperationAt(ctx, id, state, detail, time.Time{})
}

// EndOperationAt is EndOperation with the time the operation ended, for an
// end recorded late (the store refused it at the time); zero means now.
func (db *DB) EndOperationAt(ctx context.Context, id string, state hotswap.OperationState, detail string, at time.Time) error {
	if state != hotswap.OpSucceeded && state != hotswap.OpFailed {
		return hotswap.Errorf(hotswap.Invalid, "operation end state %q is not %s or %s", state, hotswap.OpSucceeded, hotswap.OpFailed)
	}
	at = db.orNow(at)
	err := db.update(ctx, func(tx pgx.Tx) error {
		return endOperationAt(ctx, tx, id, state, detail, at)
	})
	if err != nil {
		return wrap(err, "end operation %s", id)
	}
	return nil
}

func endOperationAt(ctx context.Context, tx pgx.Tx, id string, state hotswap.OperationState, detail string, at time.Time) error {
	tag, err := tx.Exec(ctx, "UPDATE operations SET state = $1, detail = $2, ended_at = $3 WHERE id = $4 AND state = $5",
		state, detail, timeArg(at), id, hotswap.OpRunning)
	if err != nil {
		return err
	}
	return mustHaveUpdatedRunning(ctx, tx, tag, id)
}

// mustHaveUpdatedRunning explains why an update of running operation id
// changed nothing.
func mustHaveUpdatedRunning(ctx context.Context, tx pgx.Tx, tag pgconn.CommandTag, id string) error {
	if tag.RowsAffected() > 0 {
		return nil
	}
	var state string
	err := tx.QueryRow(ctx, "SELECT state FROM operations WHERE id = $1", id).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return hotswap.Errorf(hotswap.NotFound, "operation %q not found", id)
	}
	if err != nil {
		return err
	}
	return hotswap.Errorf(hotswap.FailedPrecondition, "operation %s has ended (%s)", id, state)
}

const operationColumns = "id, app, kind, slot, target, state, phase, detail, actor, node, started_at, ended_at"

func scanOperation(s pgx.Row) (hotswap.Operation, error) {
	var op hotswap.Operation
	err := s.Scan(&op.ID, &op.App, &op.Kind, &op.Slot, &op.Target, &op.State, &op.Phase, &op.Detail, &op.Actor, &op.Node,
		nullTime{&op.StartedAt}, nullTime{&op.EndedAt})
	return op, err
}

// RunningOperations returns the running operations of all apps, oldest
// first. At start-up these are the ones a crash interrupted (on a cluster,
// Node says whose they are).
func (db *DB) RunningOperations(ctx context.Context) ([]hotswap.Operation, error) {
	ops, err := queryOperations(ctx, db.pool, "SELECT "+operationColumns+
		" FROM operations WHERE state = $1 ORDER BY started_at, seq", hotswap.OpRunning)
	if err != nil {
		return nil, wrap(err, "list running operations")
	}
	return ops, nil
}

// ListOperations returns the operations of app, or of all apps if app is
// empty, newest first, at most limit of them if limit > 0.
func (db *DB) ListOperations(ctx context.Context, app string, limit int) ([]hotswap.Operation, error) {
	ops, err := queryOperations(ctx, db.pool, "SELECT "+operationColumns+
		" FROM operations WHERE $1 = '' OR app = $1 ORDER BY started_at DESC, seq DESC LIMIT $2", app, limitArg(limit))
	if err != nil {
		return nil, wrap(err, "list operations of %s", app)
	}
	return ops, nil
}

func queryOperations(ctx context.Context, q querier, query string, args ...any) ([]hotswap.Operation, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(row pgx.CollectableRow) (hotswap.Operation, error) { return scanOperation(row) })
}
