package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hotswap/hotswap"
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
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := appMustExist(ctx, tx, q.App); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO quarantines (app, deployment_id, digest, version, reason, actor, at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, q.App, q.DeploymentID, q.Digest, q.Version, q.Reason, q.Actor, timeArg(q.At))
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
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM quarantines WHERE app = ? AND deployment_id = ?", app, deploymentID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
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
	row := db.read.QueryRowContext(ctx, `SELECT app, deployment_id, digest, version, reason, actor, at FROM quarantines
		WHERE app = ? AND digest = ? ORDER BY at DESC, deployment_id LIMIT 1`, app, digest)
	q, err := scanQuarantine(row)
	if err == sql.ErrNoRows {
		return hotswap.Quarantine{}, false, nil
	}
	if err != nil {
		return hotswap.Quarantine{}, false, fmt.Errorf("quarantine of %s in %s: %w", digest, app, err)
	}
	return q, true, nil
}

// ListQuarantines returns the quarantines of app, newest first.
func (db *DB) ListQuarantines(ctx context.Context, app string) ([]hotswap.Quarantine, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT app, deployment_id, digest, version, reason, actor, at FROM quarantines
		WHERE app = ? ORDER BY at DESC, deployment_id`, app)
	if err != nil {
		return nil, fmt.Errorf("list quarantines of %s: %w", app, err)
	}
	defer rows.Close()
	var list []hotswap.Quarantine
	for rows.Next() {
		q, err := scanQuarantine(rows)
		if err != nil {
			return nil, fmt.Errorf("list quarantines of %s: %w", app, err)
		}
		list = append(list, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list quarantines of %s: %w", app, err)
	}
	return list, nil
}

func scanQuarantine(row interface{ Scan(...any) error }) (hotswap.Quarantine, error) {
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
