package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// The release engine's inbox: a node that does not run the releases leaves
// a change here for the node that does (see internal/release cluster.go).

const requestColumns = "id, kind, args, node, created_at, taken_by, taken_at, done_at, result"

func scanRequest(s pgx.Row) (hotswap.ReleaseRequest, error) {
	var r hotswap.ReleaseRequest
	err := s.Scan(&r.ID, &r.Kind, &r.Args, &r.Node, nullTime{&r.CreatedAt}, &r.TakenBy, nullTime{&r.TakenAt}, nullTime{&r.DoneAt}, &r.Result)
	return r, err
}

// AddReleaseRequest leaves a request for the node that runs the release
// engine. Conflict if its id exists.
func (db *DB) AddReleaseRequest(ctx context.Context, r hotswap.ReleaseRequest) error {
	_, err := db.pool.Exec(ctx, "INSERT INTO release_requests (id, kind, args, node, created_at) VALUES ($1, $2, $3, $4, $5)",
		r.ID, r.Kind, r.Args, r.Node, timeArg(db.orNow(r.CreatedAt)))
	if isUnique(err) {
		return hotswap.Errorf(hotswap.Conflict, "release request %q already exists", r.ID)
	}
	return wrap(storageFull(err), "add release request %s", r.ID)
}

// TakeReleaseRequests marks every waiting request taken by node and returns
// them, oldest first. A request is taken once: of concurrent takers, each
// request goes to one (the others skip the rows it locked).
func (db *DB) TakeReleaseRequests(ctx context.Context, node string) ([]hotswap.ReleaseRequest, error) {
	rows, err := db.pool.Query(ctx, `
		WITH waiting AS (
			SELECT id FROM release_requests WHERE taken_at IS NULL AND done_at IS NULL
			ORDER BY created_at FOR UPDATE SKIP LOCKED)
		UPDATE release_requests r SET taken_by = $1, taken_at = $2
		FROM waiting WHERE r.id = waiting.id
		RETURNING r.id, r.kind, r.args, r.node, r.created_at, r.taken_by, r.taken_at, r.done_at, r.result`, node, timeArg(db.now()))
	if err != nil {
		return nil, wrap(err, "take release requests")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (hotswap.ReleaseRequest, error) { return scanRequest(row) })
	if err != nil {
		return nil, wrap(storageFull(err), "take release requests")
	}
	// RETURNING has no order.
	slices.SortStableFunc(out, func(a, b hotswap.ReleaseRequest) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// AnswerReleaseRequest records the result of a taken request. A request
// already answered or withdrawn keeps its first answer.
func (db *DB) AnswerReleaseRequest(ctx context.Context, id, result string) error {
	tag, err := db.pool.Exec(ctx, "UPDATE release_requests SET done_at = $1, result = $2 WHERE id = $3 AND done_at IS NULL",
		timeArg(db.now()), result, id)
	if err != nil {
		return wrap(storageFull(err), "answer release request %s", id)
	}
	if tag.RowsAffected() == 0 {
		if _, err := db.GetReleaseRequest(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// CancelReleaseRequest withdraws a request nobody has taken yet, and
// reports whether it did; a taken request is not withdrawn.
func (db *DB) CancelReleaseRequest(ctx context.Context, id string) (bool, error) {
	tag, err := db.pool.Exec(ctx, "UPDATE release_requests SET done_at = $1 WHERE id = $2 AND taken_at IS NULL AND done_at IS NULL",
		timeArg(db.now()), id)
	if err != nil {
		return false, wrap(storageFull(err), "cancel release request %s", id)
	}
	return tag.RowsAffected() > 0, nil
}

// GetReleaseRequest returns one request.
func (db *DB) GetReleaseRequest(ctx context.Context, id string) (hotswap.ReleaseRequest, error) {
	r, err := scanRequest(db.pool.QueryRow(ctx, "SELECT "+requestColumns+" FROM release_requests WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, hotswap.Errorf(hotswap.NotFound, "release request %q not found", id)
	}
	return r, wrap(err, "get release request %s", id)
}

// PruneReleaseRequests deletes the requests made before t, answered or not.
func (db *DB) PruneReleaseRequests(ctx context.Context, before time.Time) error {
	_, err := db.pool.Exec(ctx, "DELETE FROM release_requests WHERE created_at < $1", timeArg(before))
	return wrap(err, "prune release requests")
}
