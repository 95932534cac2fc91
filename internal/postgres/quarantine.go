package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// Quarantine records q: the content of deployment q.DeploymentID of q.App
// must not be deployed again. A zero q.At is set to the current time. It
// returns Invalid without a deployment ID or digest, NotFound if the app
// does not exist and Conflict if the deployment is quarantined already.
func (db *DB) Quarantine(ctx context.Context, q hotswap.Quarantine) error {
	if err := validateQuarantine(q); err != nil {
		return err
	}
	q.At = db.orNow(q.At)
	err := db.update(ctx, func(tx pgx.Tx) error {
		if err := appMustExist(ctx, tx, q.App); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO quarantines (app, deployment_id, digest, version, reason, actor, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, q.App, q.DeploymentID, q.Digest, q.Version, q.Reason, q.Actor, timeArg(q.At))
		if isUnique(err) {
			return hotswap.Errorf(hotswap.Conflict, "deployment %q of app %q is quarantined already", q.DeploymentID, q.App)
		}
		return err
	})
	if err != nil {
		return wrap(err, "quarantine deployment %s", q.DeploymentID)
	}
	return nil
}

// LiftQuarantine removes the quarantine of deployment deploymentID of app.
// It returns NotFound if that deployment is not quarantined.
func (db *DB) LiftQuarantine(ctx context.Context, app, deploymentID string) error {
	err := db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM quarantines WHERE app = $1 AND deployment_id = $2", app, deploymentID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return hotswap.Errorf(hotswap.NotFound, "deployment %q of app %q is not quarantined", deploymentID, app)
		}
		return nil
	})
	if err != nil {
		return wrap(err, "lift quarantine of deployment %s", deploymentID)
	}
	return nil
}

// QuarantineOf returns the newest quarantine of content digest in app, and
// false if that content is not quarantined there.
func (db *DB) QuarantineOf(ctx context.Context, app, digest string) (hotswap.Quarantine, bool, error) {
	if digest == "" {
		return hotswap.Quarantine{}, false, nil
	}
	q, err := scanQuarantine(db.pool.QueryRow(ctx, `SELECT app, deployment_id, digest, version, reason, actor, at FROM quarantines
		WHERE app = $1 AND digest = $2 ORDER BY at DESC, deployment_id LIMIT 1`, app, digest))
	if errors.Is(err, pgx.ErrNoRows) {
		return hotswap.Quarantine{}, false, nil
	}
	if err != nil {
		return hotswap.Quarantine{}, false, fmt.Errorf("quarantine of %s in %s: %w", digest, app, err)
	}
	return q, true, nil
}

// ListQuarantines returns the quarantines of app, newest first.
func (db *DB) ListQuarantines(ctx context.Context, app string) ([]hotswap.Quarantine, error) {
	rows, err := db.pool.Query(ctx, `SELECT app, deployment_id, digest, version, reason, actor, at FROM quarantines
		WHERE app = $1 ORDER BY at DESC, deployment_id`, app)
	if err != nil {
		return nil, fmt.Errorf("list quarantines of %s: %w", app, err)
	}
	list, err := collect(rows, func(row pgx.CollectableRow) (hotswap.Quarantine, error) {
		return scanQuarantine(row)
	})
	if err != nil {
		return nil, fmt.Errorf("list quarantines of %s: %w", app, err)
	}
	return list, nil
}

func scanQuarantine(row pgx.Row) (hotswap.Quarantine, error) {
	var q hotswap.Quarantine
	err := row.Scan(&q.App, &q.DeploymentID, &q.Digest, &q.Version, &q.Reason, &q.Actor, nullTime{&q.At})
	return q, err
}

func validateQuarantine(q hotswap.Quarantine) error {
	if q.DeploymentID == "" {
		return hotswap.Errorf(hotswap.Invalid, "quarantine has no deployment id")
	}
	if q.Digest == "" {
		return hotswap.Errorf(hotswap.Invalid, "quarantine of deployment %q has no content digest", q.DeploymentID)
	}
	for _, f := range [...]struct{ what, s string }{
		{"quarantine reason", q.Reason}, {"quarantine actor", q.Actor}, {"quarantine version", q.Version},
	} {
		if err := hotswap.ValidateText(f.what, f.s); err != nil {
			return err
		}
	}
	return nil
}
