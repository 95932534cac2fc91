package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/hotswap/hotswap"
)

// A single server runs its release engine itself and never leaves requests;
// these methods make the SQLite store the same store as PostgreSQL's, and
// let the engine's cluster paths be tested on one file.

const requestColumns = "id, kind, args, node, created_at, taken_by, taken_at, done_at, result"

func scanRequest(s interface{ Scan(...any) error }) (hotswap.ReleaseRequest, error) {
	var r hotswap.ReleaseRequest
	err := s.Scan(&r.ID, &r.Kind, &r.Args, &r.Node, nullTime{&r.CreatedAt}, &r.TakenBy, nullTime{&r.TakenAt}, nullTime{&r.DoneAt}, &r.Result)
	return r, err
}

// AddReleaseRequest leaves a request for the node that runs the release
// engine. Conflict if its id exists.
func (db *DB) AddReleaseRequest(ctx context.Context, r hotswap.ReleaseRequest) error {
	_, err := db.write.ExecContext(ctx, "INSERT INTO release_requests (id, kind, args, node, created_at) VALUES (?, ?, ?, ?, ?)",
		r.ID, r.Kind, r.Args, r.Node, timeArg(db.orNow(r.CreatedAt)))
	if isUnique(err) {
		return hotswap.Errorf(hotswap.Conflict, "release request %q already exists", r.ID)
	}
	return wrap(err, "add release request %s", r.ID)
}

// TakeReleaseRequests marks every waiting request taken by node and returns
// them, oldest first. A request is taken once: a second call (by this node
// or another) does not return it again.
func (db *DB) TakeReleaseRequests(ctx context.Context, node string) ([]hotswap.ReleaseRequest, error) {
	var out []hotswap.ReleaseRequest
	err := db.update(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE release_requests SET taken_by = ?, taken_at = ?
			WHERE taken_at IS NULL AND done_at IS NULL RETURNING `+requestColumns, node, timeArg(db.now()))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanRequest(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap(err, "take release requests")
	}
	// RETURNING has no order.
	slices.SortStableFunc(out, func(a, b hotswap.ReleaseRequest) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// AnswerReleaseRequest records the result of a taken request. A request
// already answered or cancelled keeps its first answer.
func (db *DB) AnswerReleaseRequest(ctx context.Context, id, result string) error {
	res, err := db.write.ExecContext(ctx, "UPDATE release_requests SET done_at = ?, result = ? WHERE id = ? AND done_at IS NULL",
		timeArg(db.now()), result, id)
	if err != nil {
		return wrap(err, "answer release request %s", id)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := db.GetReleaseRequest(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// CancelReleaseRequest withdraws a request nobody has taken yet, and
// reports whether it did; a taken request is not cancelled.
func (db *DB) CancelReleaseRequest(ctx context.Context, id string) (bool, error) {
	res, err := db.write.ExecContext(ctx, "UPDATE release_requests SET done_at = ? WHERE id = ? AND taken_at IS NULL AND done_at IS NULL",
		timeArg(db.now()), id)
	if err != nil {
		return false, wrap(err, "cancel release request %s", id)
	}
	n, err := res.RowsAffected()
	return n > 0, wrap(err, "cancel release request %s", id)
}

// GetReleaseRequest returns one request.
func (db *DB) GetReleaseRequest(ctx context.Context, id string) (hotswap.ReleaseRequest, error) {
	r, err := scanRequest(db.read.QueryRowContext(ctx, "SELECT "+requestColumns+" FROM release_requests WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, hotswap.Errorf(hotswap.NotFound, "release request %q not found", id)
	}
	return r, wrap(err, "get release request %s", id)
}

// PruneReleaseRequests deletes the requests made before t, answered or not.
func (db *DB) PruneReleaseRequests(ctx context.Context, before time.Time) error {
	_, err := db.write.ExecContext(ctx, "DELETE FROM release_requests WHERE created_at < ?", timeArg(before))
	return wrap(err, "prune release requests")
}
