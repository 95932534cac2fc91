package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// defaultRollouts is how many rollouts Rollouts returns when not told.
const defaultRollouts = 50

// CreateRollout stores r as version 1 and returns it as stored: its times
// in UTC, a zero Created set to the current time. It returns Invalid
// without an ID, NotFound if the app does not exist, and Conflict if the
// app has a rollout that is not done or the ID is taken.
func (db *DB) CreateRollout(ctx context.Context, r hotswap.Rollout) (hotswap.Rollout, error) {
	if err := validateRollout(r); err != nil {
		return hotswap.Rollout{}, err
	}
	r = rolloutUTC(r)
	r.Created = db.orNow(r.Created)
	r.Version = 1
	doc, err := json.Marshal(r)
	if err != nil {
		return hotswap.Rollout{}, fmt.Errorf("create rollout %s: %w", r.ID, err)
	}
	err = db.update(ctx, func(tx pgx.Tx) error {
		if err := appMustExist(ctx, tx, r.App); err != nil {
			return err
		}
		if !r.State.Done() {
			var running string
			err := tx.QueryRow(ctx, "SELECT id FROM rollouts WHERE app = $1 AND NOT done", r.App).Scan(&running)
			if err == nil {
				return rolloutRunning(r.App, running)
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		_, err := tx.Exec(ctx, "INSERT INTO rollouts (id, app, done, created, version, doc) VALUES ($1, $2, $3, $4, $5, $6)",
			r.ID, r.App, r.State.Done(), timeArg(r.Created), r.Version, string(doc))
		if isUnique(err) {
			return hotswap.Errorf(hotswap.Conflict, "rollout %q already exists", r.ID)
		}
		return err
	})
	if err != nil {
		return hotswap.Rollout{}, wrap(err, "create rollout %s", r.ID)
	}
	return r, nil
}

// UpdateRollout writes r over the stored rollout if that is still the
// version r was read at (r.Version), and returns r as stored, with the next
// version. It returns Conflict if another write came first, or if r is not
// done while another rollout of its app is not; Invalid if r names another
// app than the stored one; NotFound if the rollout is gone (its app was
// deleted). The caller sets Updated.
func (db *DB) UpdateRollout(ctx context.Context, r hotswap.Rollout) (hotswap.Rollout, error) {
	if err := validateRollout(r); err != nil {
		return hotswap.Rollout{}, err
	}
	r = rolloutUTC(r)
	read := r.Version
	r.Version++
	doc, err := json.Marshal(r)
	if err != nil {
		return hotswap.Rollout{}, fmt.Errorf("update rollout %s: %w", r.ID, err)
	}
	err = db.update(ctx, func(tx pgx.Tx) error {
		var app string
		var version int64
		err := tx.QueryRow(ctx, "SELECT app, version FROM rollouts WHERE id = $1", r.ID).Scan(&app, &version)
		if errors.Is(err, pgx.ErrNoRows) {
			return hotswap.Errorf(hotswap.NotFound, "rollout %q not found", r.ID)
		}
		if err != nil {
			return err
		}
		if version != read {
			return rolloutStale(r.ID, read, version)
		}
		if app != r.App {
			return hotswap.Errorf(hotswap.Invalid, "rollout %q is of app %q, not %q", r.ID, app, r.App)
		}
		if !r.State.Done() {
			// Checked first: a violated index would abort the transaction.
			var running string
			err := tx.QueryRow(ctx, "SELECT id FROM rollouts WHERE app = $1 AND NOT done AND id <> $2", r.App, r.ID).Scan(&running)
			if err == nil {
				return rolloutRunning(r.App, running)
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		tag, err := tx.Exec(ctx, "UPDATE rollouts SET done = $1, version = $2, doc = $3 WHERE id = $4 AND version = $5",
			r.State.Done(), r.Version, string(doc), r.ID, read)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 { // a guard: the write lock keeps others out
			return rolloutStale(r.ID, read, 0)
		}
		return nil
	})
	if err != nil {
		return hotswap.Rollout{}, wrap(err, "update rollout %s", r.ID)
	}
	return r, nil
}

// Rollout returns rollout id; NotFound if there is none.
func (db *DB) Rollout(ctx context.Context, id string) (hotswap.Rollout, error) {
	r, err := scanRollout(db.pool.QueryRow(ctx, "SELECT version, doc FROM rollouts WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return hotswap.Rollout{}, hotswap.Errorf(hotswap.NotFound, "rollout %q not found", id)
	}
	if err != nil {
		return hotswap.Rollout{}, wrap(err, "get rollout %s", id)
	}
	return r, nil
}

// ActiveRollouts returns the rollouts that are not done, of every app,
// oldest first.
func (db *DB) ActiveRollouts(ctx context.Context) ([]hotswap.Rollout, error) {
	list, err := queryRollouts(ctx, db.pool, "SELECT version, doc FROM rollouts WHERE NOT done ORDER BY created, seq")
	if err != nil {
		return nil, wrap(err, "list active rollouts")
	}
	return list, nil
}

// Rollouts returns the rollouts of app, or of every app if app is empty,
// newest first, at most limit of them (50 if limit <= 0).
func (db *DB) Rollouts(ctx context.Context, app string, limit int) ([]hotswap.Rollout, error) {
	if limit <= 0 {
		limit = defaultRollouts
	}
	list, err := queryRollouts(ctx, db.pool, "SELECT version, doc FROM rollouts WHERE $1 = '' OR app = $1 ORDER BY created DESC, seq DESC LIMIT $2",
		app, limit)
	if err != nil {
		return nil, wrap(err, "list rollouts of %s", app)
	}
	return list, nil
}

func queryRollouts(ctx context.Context, q querier, query string, args ...any) ([]hotswap.Rollout, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(row pgx.CollectableRow) (hotswap.Rollout, error) { return scanRollout(row) })
}

// scanRollout reads a rollout from its version and doc columns; the
// column's version is the one that counts.
func scanRollout(row pgx.Row) (hotswap.Rollout, error) {
	var (
		r       hotswap.Rollout
		version int64
		doc     string
	)
	if err := row.Scan(&version, &doc); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return hotswap.Rollout{}, fmt.Errorf("stored rollout: %w", err)
	}
	r.Version = version
	return r, nil
}

func validateRollout(r hotswap.Rollout) error {
	if r.ID == "" {
		return hotswap.Errorf(hotswap.Invalid, "rollout has no id")
	}
	return hotswap.ValidateText("rollout id", r.ID)
}

// rolloutUTC returns r with its times in UTC, as they read back, and its
// results copied, so the caller's slice is never shared.
func rolloutUTC(r hotswap.Rollout) hotswap.Rollout {
	r.Created, r.Updated, r.StepStarted = r.Created.UTC(), r.Updated.UTC(), r.StepStarted.UTC()
	if r.Results != nil {
		results := make([]hotswap.StepResult, len(r.Results))
		for i, x := range r.Results {
			x.At = x.At.UTC()
			results[i] = x
		}
		r.Results = results
	}
	return r
}

// rolloutRunning is the error of a second rollout of app beside id.
func rolloutRunning(app, id string) error {
	return hotswap.Errorf(hotswap.Conflict, "app %q has a progressive swap running (%s)", app, id)
}

// rolloutStale is the error of a write from a stale read of rollout id:
// it was read at version read and is now at version now (0: unknown).
func rolloutStale(id string, read, now int64) error {
	if now == 0 {
		return hotswap.Errorf(hotswap.Conflict, "rollout %q changed since it was read (version %d)", id, read)
	}
	return hotswap.Errorf(hotswap.Conflict, "rollout %q changed since it was read (version %d, now %d)", id, read, now)
}
