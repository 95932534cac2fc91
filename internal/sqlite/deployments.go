package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/hotswap/hotswap"
)

// CreateDeployment records the new deployment d to an existing slot. A zero
// CreatedAt is set to the current time. It returns Invalid without an ID,
// NotFound if the app or slot does not exist and Conflict if the ID is taken.
func (db *DB) CreateDeployment(ctx context.Context, d hotswap.Deployment) error {
	if d.ID == "" {
		return hotswap.Errorf(hotswap.Invalid, "deployment has no id")
	}
	if err := validateDeploymentText(d); err != nil {
		return err
	}
	d.CreatedAt = db.orNow(d.CreatedAt)
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := slotMustExist(ctx, tx, d.App, d.Slot); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO deployments
			(id, app, slot, digest, author, message, status, status_text, created_at, started_at, ended_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.ID, d.App, d.Slot, d.Digest, d.Author, d.Message, int(d.Status), d.StatusText,
			timeArg(d.CreatedAt), timeArg(d.StartedAt), timeArg(d.EndedAt))
		if isUnique(err) {
			return hotswap.Errorf(hotswap.Conflict, "deployment %q already exists", d.ID)
		}
		return err
	})
	if err != nil {
		return wrap(err, "create deployment %s", d.ID)
	}
	return nil
}

// UpdateDeployment stores the progress of deployment d: its Status,
// StatusText, StartedAt, EndedAt, and Digest once it is known (a package is
// validated after its deployment is recorded); the other fields are immutable. It
// returns NotFound if d.App has no deployment d.ID.
func (db *DB) UpdateDeployment(ctx context.Context, d hotswap.Deployment) error {
	err := db.update(ctx, func(tx *sql.Tx) error {
		return updateDeployment(ctx, tx, d)
	})
	if err != nil {
		return wrap(err, "update deployment %s", d.ID)
	}
	return nil
}

func updateDeployment(ctx context.Context, tx *sql.Tx, d hotswap.Deployment) error {
	res, err := tx.ExecContext(ctx,
		"UPDATE deployments SET status = ?, status_text = ?, started_at = ?, ended_at = ?, digest = COALESCE(NULLIF(?, ''), digest) WHERE id = ? AND app = ?",
		int(d.Status), d.StatusText, timeArg(d.StartedAt), timeArg(d.EndedAt), d.Digest, d.ID, d.App)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return hotswap.Errorf(hotswap.NotFound, "deployment %q of app %q not found", d.ID, d.App)
	}
	return nil
}

// DeployTo is the atomic flip of a deploy: in one transaction it marks
// deployment d succeeded, storing its StatusText and StartedAt and an EndedAt
// that defaults to now, and points d.Slot at it. On error nothing changed.
func (db *DB) DeployTo(ctx context.Context, d hotswap.Deployment) error {
	d.Status = hotswap.DeploySuccess
	d.EndedAt = db.orNow(d.EndedAt)
	err := db.update(ctx, func(tx *sql.Tx) error {
		var slot string
		err := tx.QueryRowContext(ctx, "SELECT slot FROM deployments WHERE id = ? AND app = ?", d.ID, d.App).Scan(&slot)
		if errors.Is(err, sql.ErrNoRows) {
			return hotswap.Errorf(hotswap.NotFound, "deployment %q of app %q not found", d.ID, d.App)
		}
		if err != nil {
			return err
		}
		if d.Slot == "" {
			d.Slot = slot
		}
		if err := updateDeployment(ctx, tx, d); err != nil {
			return err
		}
		return setSlotDeployment(ctx, tx, d.App, d.Slot, d.ID)
	})
	if err != nil {
		return wrap(err, "deploy %s to %s/%s", d.ID, d.App, d.Slot)
	}
	return nil
}

const deploymentColumns = "id, app, slot, digest, author, message, status, status_text, created_at, started_at, ended_at"

func scanDeployment(s interface{ Scan(...any) error }) (hotswap.Deployment, error) {
	var d hotswap.Deployment
	var status int
	err := s.Scan(&d.ID, &d.App, &d.Slot, &d.Digest, &d.Author, &d.Message, &status, &d.StatusText,
		nullTime{&d.CreatedAt}, nullTime{&d.StartedAt}, nullTime{&d.EndedAt})
	d.Status = hotswap.DeploymentStatus(status)
	return d, err
}

// GetDeployment returns the deployment id of app, or NotFound.
func (db *DB) GetDeployment(ctx context.Context, app, id string) (hotswap.Deployment, error) {
	d, err := scanDeployment(db.read.QueryRowContext(ctx,
		"SELECT "+deploymentColumns+" FROM deployments WHERE id = ? AND app = ?", id, app))
	if errors.Is(err, sql.ErrNoRows) {
		return hotswap.Deployment{}, hotswap.Errorf(hotswap.NotFound, "deployment %q of app %q not found", id, app)
	}
	if err != nil {
		return hotswap.Deployment{}, wrap(err, "get deployment %s", id)
	}
	return d, nil
}

// ListDeployments returns the deployments of app to slot, or to all its
// slots if slot is empty, newest first. It returns NotFound if the app does
// not exist; a slot with no deployments, deleted or not, gives none.
func (db *DB) ListDeployments(ctx context.Context, app, slot string) ([]hotswap.Deployment, error) {
	var ds []hotswap.Deployment
	err := db.view(ctx, func(tx *sql.Tx) error {
		if err := appMustExist(ctx, tx, app); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT "+deploymentColumns+` FROM deployments
			WHERE app = ? AND (? = '' OR slot = ?) ORDER BY created_at DESC, rowid DESC`, app, slot, slot)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDeployment(rows)
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap(err, "list deployments of %s", app)
	}
	return ds, nil
}

// LatestDeployment returns the newest deployment of app to slot, or to any
// of its slots if slot is empty. It returns NotFound if there is none.
func (db *DB) LatestDeployment(ctx context.Context, app, slot string) (hotswap.Deployment, error) {
	d, err := scanDeployment(db.read.QueryRowContext(ctx, "SELECT "+deploymentColumns+` FROM deployments
		WHERE app = ? AND (? = '' OR slot = ?) ORDER BY created_at DESC, rowid DESC LIMIT 1`, app, slot, slot))
	if errors.Is(err, sql.ErrNoRows) {
		if slot == "" {
			return hotswap.Deployment{}, hotswap.Errorf(hotswap.NotFound, "app %q has no deployments", app)
		}
		return hotswap.Deployment{}, hotswap.Errorf(hotswap.NotFound, "slot %q of app %q has no deployments", slot, app)
	}
	if err != nil {
		return hotswap.Deployment{}, wrap(err, "latest deployment of %s/%s", app, slot)
	}
	return d, nil
}

// validateDeploymentText refuses a deployment whose message or author
// PostgreSQL could not store (see hotswap.ValidateText).
func validateDeploymentText(d hotswap.Deployment) error {
	if err := hotswap.ValidateText("deployment message", d.Message); err != nil {
		return err
	}
	return hotswap.ValidateText("deployment author", d.Author)
}
