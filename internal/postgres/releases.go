package postgres

import (
	"context"
	"errors"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// CreateUser adds a user; Conflict if the name exists.
func (db *DB) CreateUser(ctx context.Context, u hotswap.User) error {
	_, err := db.pool.Exec(ctx, "INSERT INTO users (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4)",
		u.Name, u.Role, u.TokenHash, timeArg(db.orNow(u.CreatedAt)))
	if isUnique(err) {
		return hotswap.Errorf(hotswap.Conflict, "user %q already exists", u.Name)
	}
	return wrap(storageFull(err), "create user %s", u.Name)
}

const userColumns = "name, role, token_hash, created_at"

func scanUser(s pgx.Row) (hotswap.User, error) {
	var u hotswap.User
	err := s.Scan(&u.Name, &u.Role, &u.TokenHash, nullTime{&u.CreatedAt})
	return u, err
}

// UserByTokenHash finds the user whose token has the given hash.
func (db *DB) UserByTokenHash(ctx context.Context, hash string) (hotswap.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE token_hash = $1", hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, hotswap.Errorf(hotswap.Unauthorized, "unknown token")
	}
	return u, wrap(err, "find user by token")
}

// GetUser returns one user.
func (db *DB) GetUser(ctx context.Context, name string) (hotswap.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE name = $1", name))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, hotswap.Errorf(hotswap.NotFound, "user %q not found", name)
	}
	return u, wrap(err, "get user %s", name)
}

// ListUsers returns every user by name.
func (db *DB) ListUsers(ctx context.Context) ([]hotswap.User, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+userColumns+" FROM users ORDER BY name")
	if err != nil {
		return nil, wrap(err, "list users")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (hotswap.User, error) { return scanUser(row) })
	return out, wrap(err, "list users")
}

// DeleteUser removes a user.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	tag, err := db.pool.Exec(ctx, "DELETE FROM users WHERE name = $1", name)
	if err != nil {
		return wrap(err, "delete user %s", name)
	}
	if tag.RowsAffected() == 0 {
		return hotswap.Errorf(hotswap.NotFound, "user %q not found", name)
	}
	return nil
}

// SetUserToken replaces a user's token hash: the earlier token stops
// working, and so do portal sessions bound to it.
func (db *DB) SetUserToken(ctx context.Context, name, hash string) (hotswap.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, "UPDATE users SET token_hash = $1 WHERE name = $2 RETURNING "+userColumns, hash, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return hotswap.User{}, hotswap.Errorf(hotswap.NotFound, "user %q not found", name)
	}
	if err != nil {
		return hotswap.User{}, wrap(storageFull(err), "set token of user %s", name)
	}
	return u, nil
}

// PutArtifact records an artifact. A version is immutable: pushing the same
// version again with the same content is accepted (created=false), with
// other content it is a Conflict.
func (db *DB) PutArtifact(ctx context.Context, a hotswap.Artifact) (created bool, err error) {
	err = db.update(ctx, func(tx pgx.Tx) error {
		var digest string
		err := tx.QueryRow(ctx, "SELECT digest FROM artifacts WHERE feed = $1 AND version = $2", a.Feed, a.Version).Scan(&digest)
		switch {
		case err == nil && digest == a.Digest:
			return nil
		case err == nil:
			return hotswap.Errorf(hotswap.Conflict, "feed %s already has version %s with other content; versions are immutable", a.Feed, a.Version)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		created = true
		_, err = tx.Exec(ctx, "INSERT INTO artifacts (feed, version, branch, commit_id, digest, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
			a.Feed, a.Version, a.Branch, a.Commit, a.Digest, a.Actor, timeArg(db.orNow(a.CreatedAt)))
		return err
	})
	return created, wrap(err, "put artifact %s %s", a.Feed, a.Version)
}

const artifactColumns = "feed, version, branch, commit_id, digest, actor, created_at"

func scanArtifact(s pgx.Row) (hotswap.Artifact, error) {
	var a hotswap.Artifact
	err := s.Scan(&a.Feed, &a.Version, &a.Branch, &a.Commit, &a.Digest, &a.Actor, nullTime{&a.CreatedAt})
	return a, err
}

// GetArtifact returns one version of a feed; with version "" the newest.
func (db *DB) GetArtifact(ctx context.Context, feed, version string) (hotswap.Artifact, error) {
	var row pgx.Row
	if version == "" {
		row = db.pool.QueryRow(ctx, "SELECT "+artifactColumns+" FROM artifacts WHERE feed = $1 ORDER BY created_at DESC, seq DESC LIMIT 1", feed)
	} else {
		row = db.pool.QueryRow(ctx, "SELECT "+artifactColumns+" FROM artifacts WHERE feed = $1 AND version = $2", feed, version)
	}
	a, err := scanArtifact(row)
	if errors.Is(err, pgx.ErrNoRows) {
		if version == "" {
			return a, hotswap.Errorf(hotswap.NotFound, "feed %q has no artifact", feed)
		}
		return a, hotswap.Errorf(hotswap.NotFound, "feed %q has no version %q", feed, version)
	}
	return a, wrap(err, "get artifact %s %s", feed, version)
}

// ListArtifacts returns a feed's artifacts, newest first.
func (db *DB) ListArtifacts(ctx context.Context, feed string) ([]hotswap.Artifact, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+artifactColumns+" FROM artifacts WHERE feed = $1 ORDER BY created_at DESC, seq DESC", feed)
	if err != nil {
		return nil, wrap(err, "list artifacts of %s", feed)
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (hotswap.Artifact, error) { return scanArtifact(row) })
	return out, wrap(err, "list artifacts of %s", feed)
}

// ApplyPipeline stores a definition: a new pipeline when id has none, else a
// new version of it (which may carry a new name: renaming keeps history).
// It returns the stored pipeline. Conflict when another pipeline has or
// had name.
func (db *DB) ApplyPipeline(ctx context.Context, id, name, definition, actor string) (hotswap.Pipeline, error) {
	now := db.now()
	var p hotswap.Pipeline
	err := db.update(ctx, func(tx pgx.Tx) error {
		var other string
		err := tx.QueryRow(ctx, "SELECT id FROM pipelines WHERE name = $1", name).Scan(&other)
		if err == nil && other != id {
			return hotswap.Errorf(hotswap.Conflict, "another pipeline is named %q", name)
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// A name another pipeline had stays its: that pipeline's releases
		// still answer to it, and a second pipeline numbering from 1 under
		// it would give two releases one name.
		var current string
		if err := tx.QueryRow(ctx, "SELECT name FROM pipelines WHERE id = $1", id).Scan(&current); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if current != name {
			err := tx.QueryRow(ctx, "SELECT p.name FROM pipeline_versions v JOIN pipelines p ON p.id = v.pipeline_id WHERE v.name = $1 AND v.pipeline_id <> $2 LIMIT 1", name, id).Scan(&other)
			if err == nil {
				return hotswap.Errorf(hotswap.Conflict, "pipeline name %q was the name of pipeline %s, whose releases still answer to it; choose another name", name, other)
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		var version int
		err = tx.QueryRow(ctx, "SELECT version FROM pipelines WHERE id = $1", id).Scan(&version)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			version = 1
			if _, err := tx.Exec(ctx, "INSERT INTO pipelines (id, name, version, created_at, updated_at) VALUES ($1, $2, 1, $3, $4)", id, name, timeArg(now), timeArg(now)); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			version++
			if _, err := tx.Exec(ctx, "UPDATE pipelines SET name = $1, version = $2, updated_at = $3 WHERE id = $4", name, version, timeArg(now), id); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, "INSERT INTO pipeline_versions (pipeline_id, version, name, definition, actor, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
			id, version, name, definition, actor, timeArg(now)); err != nil {
			return err
		}
		var err2 error
		p, err2 = getPipeline(ctx, tx, "p.id = $1", id)
		return err2
	})
	if isUnique(err) {
		return hotswap.Pipeline{}, hotswap.Errorf(hotswap.Conflict, "another pipeline is named %q", name)
	}
	return p, wrap(err, "apply pipeline %s", name)
}

func getPipeline(ctx context.Context, q querier, where string, arg any) (hotswap.Pipeline, error) {
	var p hotswap.Pipeline
	err := q.QueryRow(ctx, `SELECT p.id, p.name, p.version, v.definition, p.created_at, p.updated_at
		FROM pipelines p JOIN pipeline_versions v ON v.pipeline_id = p.id AND v.version = p.version WHERE `+where, arg).
		Scan(&p.ID, &p.Name, &p.Version, &p.Definition, nullTime{&p.CreatedAt}, nullTime{&p.UpdatedAt})
	return p, err
}

// GetPipeline returns a pipeline by name (or by id when byID).
func (db *DB) GetPipeline(ctx context.Context, nameOrID string, byID bool) (hotswap.Pipeline, error) {
	where := "p.name = $1"
	if byID {
		where = "p.id = $1"
	}
	p, err := getPipeline(ctx, db.pool, where, nameOrID)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, hotswap.Errorf(hotswap.NotFound, "pipeline %q not found", nameOrID)
	}
	return p, wrap(err, "get pipeline %s", nameOrID)
}

// ListPipelines returns every pipeline at its current version, by name.
func (db *DB) ListPipelines(ctx context.Context) ([]hotswap.Pipeline, error) {
	rows, err := db.pool.Query(ctx, `SELECT p.id, p.name, p.version, v.definition, p.created_at, p.updated_at
		FROM pipelines p JOIN pipeline_versions v ON v.pipeline_id = p.id AND v.version = p.version ORDER BY p.name`)
	if err != nil {
		return nil, wrap(err, "list pipelines")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (hotswap.Pipeline, error) {
		var p hotswap.Pipeline
		err := row.Scan(&p.ID, &p.Name, &p.Version, &p.Definition, nullTime{&p.CreatedAt}, nullTime{&p.UpdatedAt})
		return p, err
	})
	return out, wrap(err, "list pipelines")
}

// PipelineVersions returns a pipeline's history, newest first.
func (db *DB) PipelineVersions(ctx context.Context, id string) ([]hotswap.PipelineVersion, error) {
	rows, err := db.pool.Query(ctx, "SELECT version, name, definition, actor, created_at FROM pipeline_versions WHERE pipeline_id = $1 ORDER BY version DESC", id)
	if err != nil {
		return nil, wrap(err, "pipeline versions")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (hotswap.PipelineVersion, error) {
		var v hotswap.PipelineVersion
		err := row.Scan(&v.Version, &v.Name, &v.Definition, &v.Actor, nullTime{&v.CreatedAt})
		return v, err
	})
	return out, wrap(err, "pipeline versions")
}

// PipelineIDsNamed returns the ids of the pipelines that are or were named
// name (a rename keeps the old name in the pipeline's versions), the one
// named so now first.
func (db *DB) PipelineIDsNamed(ctx context.Context, name string) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT v.pipeline_id FROM pipeline_versions v JOIN pipelines p ON p.id = v.pipeline_id
		WHERE v.name = $1 GROUP BY v.pipeline_id ORDER BY bool_or(p.name = $1) DESC, MAX(v.created_at) DESC`, name)
	if err != nil {
		return nil, wrap(err, "pipelines named %s", name)
	}
	ids, err := collect(rows, func(row pgx.CollectableRow) (string, error) {
		var id string
		err := row.Scan(&id)
		return id, err
	})
	return ids, wrap(err, "pipelines named %s", name)
}

// CreateRelease stores a new release, numbering it after the pipeline's
// last; it returns the number.
func (db *DB) CreateRelease(ctx context.Context, r hotswap.ReleaseRow, doc func(number int) (string, error)) (int, error) {
	var number int
	err := db.update(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(number), 0) + 1 FROM releases WHERE pipeline_id = $1", r.PipelineID).Scan(&number); err != nil {
			return err
		}
		d, err := doc(number)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "INSERT INTO releases (id, pipeline_id, number, state, created_at, doc) VALUES ($1, $2, $3, $4, $5, $6)",
			r.ID, r.PipelineID, number, r.State, timeArg(db.orNow(r.CreatedAt)), d)
		return err
	})
	return number, wrap(err, "create release")
}

// SaveRelease writes a release's state and document.
func (db *DB) SaveRelease(ctx context.Context, id, state, doc string) error {
	tag, err := db.pool.Exec(ctx, "UPDATE releases SET state = $1, doc = $2 WHERE id = $3", state, doc, id)
	if err != nil {
		return wrap(storageFull(err), "save release %s", id)
	}
	if tag.RowsAffected() == 0 {
		return hotswap.Errorf(hotswap.NotFound, "release %q not found", id)
	}
	return nil
}

// GetRelease returns one release.
func (db *DB) GetRelease(ctx context.Context, id string) (hotswap.ReleaseRow, error) {
	var r hotswap.ReleaseRow
	err := db.pool.QueryRow(ctx, "SELECT id, pipeline_id, number, state, created_at, doc FROM releases WHERE id = $1", id).
		Scan(&r.ID, &r.PipelineID, &r.Number, &r.State, nullTime{&r.CreatedAt}, &r.Doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, hotswap.Errorf(hotswap.NotFound, "release %q not found", id)
	}
	return r, wrap(err, "get release %s", id)
}

// ListReleases returns releases newest first: of one pipeline (pipelineID
// not empty), in one state (state not empty), at most limit (> 0).
func (db *DB) ListReleases(ctx context.Context, pipelineID, state string, limit int) ([]hotswap.ReleaseRow, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, pipeline_id, number, state, created_at, doc FROM releases
		WHERE ($1 = '' OR pipeline_id = $1) AND ($2 = '' OR state = $2) ORDER BY created_at DESC, seq DESC LIMIT $3`,
		pipelineID, state, limitArg(limit))
	if err != nil {
		return nil, wrap(err, "list releases")
	}
	out, err := collect(rows, func(row pgx.CollectableRow) (hotswap.ReleaseRow, error) {
		var r hotswap.ReleaseRow
		err := row.Scan(&r.ID, &r.PipelineID, &r.Number, &r.State, nullTime{&r.CreatedAt}, &r.Doc)
		return r, err
	})
	return out, wrap(err, "list releases")
}
