package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/hotswap/hotswap"
)

// BeginOperation records op as running. State and EndedAt are ignored. It
// returns Conflict if op.App already has a running operation, or if op.ID
// is taken, and Invalid if ID, App or Kind is empty.
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
	err := db.update(ctx, func(tx *sql.Tx) error {
		// The partial unique index refuses a second running operation anyway;
		// reading first lets the message say which one is running.
		running, err := scanOperation(tx.QueryRowContext(ctx,
			"SELECT "+operationColumns+" FROM operations WHERE app = ? AND state = ?", op.App, hotswap.OpRunning))
		switch {
		case err == nil:
			return runningConflict(running)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO operations ("+operationColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
			op.ID, op.App, op.Kind, op.Slot, op.Target, hotswap.OpRunning, op.Phase, op.Detail, op.Actor, op.Node, timeArg(op.StartedAt))
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
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE operations SET phase = ?, detail = ? WHERE id = ? AND state = ?", phase, detail, id, hotswap.OpRunning)
		if err != nil {
			return err
		}
		return mustHaveUpdatedRunning(ctx, tx, res, id)
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
	err := db.update(ctx, func(tx *sql.Tx) error {
		return db.endOperationAt(ctx, tx, id, state, detail, db.orNow(at))
	})
	if err != nil {
		return wrap(err, "end operation %s", id)
	}
	return nil
}

func (db *DB) endOperation(ctx context.Context, tx *sql.Tx, id string, state hotswap.OperationState, detail string) error {
	return db.endOperationAt(ctx, tx, id, state, detail, db.now())
}

func (db *DB) endOperationAt(ctx context.Context, tx *sql.Tx, id string, state hotswap.OperationState, detail string, at time.Time) error {
	res, err := tx.ExecContext(ctx, "UPDATE operations SET state = ?, detail = ?, ended_at = ? WHERE id = ? AND state = ?",
		state, detail, timeArg(at), id, hotswap.OpRunning)
	if err != nil {
		return err
	}
	return mustHaveUpdatedRunning(ctx, tx, res, id)
}

// mustHaveUpdatedRunning explains why an update of running operation id
// changed nothing.
func mustHaveUpdatedRunning(ctx context.Context, tx *sql.Tx, res sql.Result, id string) error {
	n, err := res.RowsAffected()
	if err != nil || n > 0 {
		return err
	}
	var state string
	err = tx.QueryRowContext(ctx, "SELECT state FROM operations WHERE id = ?", id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return hotswap.Errorf(hotswap.NotFound, "operation %q not found", id)
	}
	if err != nil {
		return err
	}
	return hotswap.Errorf(hotswap.FailedPrecondition, "operation %s has ended (%s)", id, state)
}

const operationColumns = "id, app, kind, slot, target, state, phase, detail, actor, node, started_at, ended_at"

func scanOperation(s interface{ Scan(...any) error }) (hotswap.Operation, error) {
	var op hotswap.Operation
	err := s.Scan(&op.ID, &op.App, &op.Kind, &op.Slot, &op.Target, &op.State, &op.Phase, &op.Detail, &op.Actor, &op.Node,
		nullTime{&op.StartedAt}, nullTime{&op.EndedAt})
	return op, err
}

// RunningOperations returns the running operations of all apps, oldest
// first. At start-up these are the ones a crash interrupted.
func (db *DB) RunningOperations(ctx context.Context) ([]hotswap.Operation, error) {
	ops, err := queryOperations(ctx, db.read, "SELECT "+operationColumns+
		" FROM operations WHERE state = ? ORDER BY started_at, rowid", hotswap.OpRunning)
	if err != nil {
		return nil, wrap(err, "list running operations")
	}
	return ops, nil
}

// ListOperations returns the operations of app, or of all apps if app is
// empty, newest first, at most limit of them if limit > 0.
func (db *DB) ListOperations(ctx context.Context, app string, limit int) ([]hotswap.Operation, error) {
	if limit <= 0 {
		limit = -1 // no limit in SQLite
	}
	ops, err := queryOperations(ctx, db.read, "SELECT "+operationColumns+
		" FROM operations WHERE ? = '' OR app = ? ORDER BY started_at DESC, rowid DESC LIMIT ?", app, app, limit)
	if err != nil {
		return nil, wrap(err, "list operations of %s", app)
	}
	return ops, nil
}

func queryOperations(ctx context.Context, q querier, query string, args ...any) ([]hotswap.Operation, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ops []hotswap.Operation
	for rows.Next() {
		op, err := scanOperation(rows)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, rows.Err()
}
