package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/hotswap/hotswap"
)

// CreateUser adds a user; Conflict if the name exists.
func (db *DB) CreateUser(ctx context.Context, u hotswap.User) error {
	_, err := db.write.ExecContext(ctx, "INSERT INTO users (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
		u.Name, u.Role, u.TokenHash, timeArg(db.orNow(u.CreatedAt)))
	if isUnique(err) {
		return hotswap.Errorf(hotswap.Conflict, "user %q already exists", u.Name)
	}
	return wrap(err, "create user %s", u.Name)
}

const userColumns = "name, role, token_hash, created_at"

func scanUser(s interface{ Scan(...any) error }) (hotswap.User, error) {
	var u hotswap.User
	err := s.Scan(&u.Name, &u.Role, &u.TokenHash, nullTime{&u.CreatedAt})
	return u, err
}

// UserByTokenHash finds the user whose token has the given hash.
func (db *DB) UserByTokenHash(ctx context.Context, hash string) (hotswap.User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE token_hash = ?", hash))
	if errors.Is(err, sql.ErrNoRows) {
		return u, hotswap.Errorf(hotswap.Unauthorized, "unknown token")
	}
	return u, wrap(err, "find user by token")
}

// GetUser returns one user.
func (db *DB) GetUser(ctx context.Context, name string) (hotswap.User, error) {
	u, err := scanUser(db.read.QueryRowContext(ctx, "SELECT "+userColumns+" FROM users WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return u, hotswap.Errorf(hotswap.NotFound, "user %q not found", name)
	}
	return u, wrap(err, "get user %s", name)
}

// ListUsers returns every user by name.
func (db *DB) ListUsers(ctx context.Context) ([]hotswap.User, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT "+userColumns+" FROM users ORDER BY name")
	if err != nil {
		return nil, wrap(err, "list users")
	}
	defer rows.Close()
	var out []hotswap.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap(err, "list users")
		}
		out = append(out, u)
	}
	return out, wrap(rows.Err(), "list users")
}

// DeleteUser removes a user.
func (db *DB) DeleteUser(ctx context.Context, name string) error {
	res, err := db.write.ExecContext(ctx, "DELETE FROM users WHERE name = ?", name)
	if err != nil {
		return wrap(err, "delete user %s", name)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return hotswap.Errorf(hotswap.NotFound, "user %q not found", name)
	}
	return nil
}

// SetUserToken replaces a user's token hash: the earlier token stops
// working, and so do portal sessions bound to it.
func (db *DB) SetUserToken(ctx context.Context, name, hash string) (hotswap.User, error) {
	res, err := db.write.ExecContext(ctx, "UPDATE users SET token_hash = ? WHERE name = ?", hash, name)
	if err != nil {
		return hotswap.User{}, wrap(err, "set token of user %s", name)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return hotswap.User{}, hotswap.Errorf(hotswap.NotFound, "user %q not found", name)
	}
	return db.GetUser(ctx, name)
}

// PutArtifact records an artifact. A version is immutable: pushing the same
// version again with the same content is accepted (created=false), with
// other content it is a Conflict.
func (db *DB) PutArtifact(ctx context.Context, a hotswap.Artifact) (created bool, err error) {
	err = db.update(ctx, func(tx *sql.Tx) error {
		var digest string
		err := tx.QueryRowContext(ctx, "SELECT digest FROM artifacts WHERE feed = ? AND version = ?", a.Feed, a.Version).Scan(&digest)
		switch {
		case err == nil && digest == a.Digest:
			return nil
		case err == nil:
			return hotswap.Errorf(hotswap.Conflict, "feed %s already has version %s with other content; versions are immutable", a.Feed, a.Version)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		created = true
		_, err = tx.ExecContext(ctx, "INSERT INTO artifacts (feed, version, branch, commit_id, digest, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			a.Feed, a.Version, a.Branch, a.Commit, a.Digest, a.Actor, timeArg(db.orNow(a.CreatedAt)))
		return err
	})
	return created, wrap(err, "put artifact %s %s", a.Feed, a.Version)
}

const artifactColumns = "feed, version, branch, commit_id, digest, actor, created_at"

func scanArtifact(s interface{ Scan(...any) error }) (hotswap.Artifact, error) {
	var a hotswap.Artifact
	err := s.Scan(&a.Feed, &a.Version, &a.Branch, &a.Commit, &a.Digest, &a.Actor, nullTime{&a.CreatedAt})
	return a, err
}

// GetArtifact returns one version of a feed; with version "" the newest.
func (db *DB) GetArtifact(ctx context.Context, feed, version string) (hotswap.Artifact, error) {
	var row *sql.Row
	if version == "" {
		row = db.read.QueryRowContext(ctx, "SELECT "+artifactColumns+" FROM artifacts WHERE feed = ? ORDER BY created_at DESC, rowid DESC LIMIT 1", feed)
	} else {
		row = db.read.QueryRowContext(ctx, "SELECT "+artifactColumns+" FROM artifacts WHERE feed = ? AND version = ?", feed, version)
	}
	a, err := scanArtifact(row)
	if errors.Is(err, sql.ErrNoRows) {
		if version == "" {
			return a, hotswap.Errorf(hotswap.NotFound, "feed %q has no artifact", feed)
		}
		return a, hotswap.Errorf(hotswap.NotFound, "feed %q has no version %q", feed, version)
	}
	return a, wrap(err, "get artifact %s %s", feed, version)
}

// ListArtifacts returns a feed's artifacts, newest first.
func (db *DB) ListArtifacts(ctx context.Context, feed string) ([]hotswap.Artifact, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT "+artifactColumns+" FROM artifacts WHERE feed = ? ORDER BY created_at DESC, rowid DESC", feed)
	if err != nil {
		return nil, wrap(err, "list artifacts of %s", feed)
	}
	defer rows.Close()
	var out []hotswap.Artifact
	for rows.Next() {
		a, err := scanArtifact(rows)
		if err != nil {
			return nil, wrap(err, "list artifacts of %s", feed)
		}
		out = append(out, a)
	}
	return out, wrap(rows.Err(), "list artifacts of %s", feed)
}

// ApplyPipeline stores a definition: a new pipeline when id has none, else a
// new version of it (which may carry a new name: renaming keeps history).
// It returns the stored pipeline. Conflict when another pipeline has or
// had name.
func (db *DB) ApplyPipeline(ctx context.Context, id, name, definition, actor string) (hotswap.Pipeline, error) {
	now := db.now()
	var p hotswap.Pipeline
	err := db.update(ctx, func(tx *sql.Tx) error {
		var other string
		err := tx.QueryRowContext(ctx, "SELECT id FROM pipelines WHERE name = ?", name).Scan(&other)
		if err == nil && other != id {
			return hotswap.Errorf(hotswap.Conflict, "another pipeline is named %q", name)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// A name another pipeline had stays its: that pipeline's releases
		// still answer to it, and a second pipeline numbering from 1 under
		// it would give two releases one name.
		var current string
		if err := tx.QueryRowContext(ctx, "SELECT name FROM pipelines WHERE id = ?", id).Scan(&current); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if current != name {
			err := tx.QueryRowContext(ctx, "SELECT p.name FROM pipeline_versions v JOIN pipelines p ON p.id = v.pipeline_id WHERE v.name = ? AND v.pipeline_id != ? LIMIT 1", name, id).Scan(&other)
			if err == nil {
				return hotswap.Errorf(hotswap.Conflict, "pipeline name %q was the name of pipeline %s, whose releases still answer to it; choose another name", name, other)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		var version int
		err = tx.QueryRowContext(ctx, "SELECT version FROM pipelines WHERE id = ?", id).Scan(&version)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			version = 1
			if _, err := tx.ExecContext(ctx, "INSERT INTO pipelines (id, name, version, created_at, updated_at) VALUES (?, ?, 1, ?, ?)", id, name, timeArg(now), timeArg(now)); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			version++
			if _, err := tx.ExecContext(ctx, "UPDATE pipelines SET name = ?, version = ?, updated_at = ? WHERE id = ?", name, version, timeArg(now), id); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO pipeline_versions (pipeline_id, version, name, definition, actor, created_at) VALUES (?, ?, ?, ?, ?, ?)",
			id, version, name, definition, actor, timeArg(now)); err != nil {
			return err
		}
		var err2 error
		p, err2 = getPipeline(ctx, tx, "p.id = ?", id)
		return err2
	})
	return p, wrap(err, "apply pipeline %s", name)
}

func getPipeline(ctx context.Context, q querier, where string, arg any) (hotswap.Pipeline, error) {
	var p hotswap.Pipeline
	err := q.QueryRowContext(ctx, `SELECT p.id, p.name, p.version, v.definition, p.created_at, p.updated_at
		FROM pipelines p JOIN pipeline_versions v ON v.pipeline_id = p.id AND v.version = p.version WHERE `+where, arg).
		Scan(&p.ID, &p.Name, &p.Version, &p.Definition, nullTime{&p.CreatedAt}, nullTime{&p.UpdatedAt})
	return p, err
}

// GetPipeline returns a pipeline by name (or by id when byID).
func (db *DB) GetPipeline(ctx context.Context, nameOrID string, byID bool) (hotswap.Pipeline, error) {
	where := "p.name = ?"
	if byID {
		where = "p.id = ?"
	}
	p, err := getPipeline(ctx, db.read, where, nameOrID)
	if errors.Is(err, sql.ErrNoRows) {
		return p, hotswap.Errorf(hotswap.NotFound, "pipeline %q not found", nameOrID)
	}
	return p, wrap(err, "get pipeline %s", nameOrID)
}

// ListPipelines returns every pipeline at its current version, by name.
func (db *DB) ListPipelines(ctx context.Context) ([]hotswap.Pipeline, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT p.id, p.name, p.version, v.definition, p.created_at, p.updated_at
		FROM pipelines p JOIN pipeline_versions v ON v.pipeline_id = p.id AND v.version = p.version ORDER BY p.name`)
	if err != nil {
		return nil, wrap(err, "list pipelines")
	}
	defer rows.Close()
	var out []hotswap.Pipeline
	for rows.Next() {
		var p hotswap.Pipeline
		if err := rows.Scan(&p.ID, &p.Name, &p.Version, &p.Definition, nullTime{&p.CreatedAt}, nullTime{&p.UpdatedAt}); err != nil {
			return nil, wrap(err, "list pipelines")
		}
		out = append(out, p)
	}
	return out, wrap(rows.Err(), "list pipelines")
}

// PipelineVersions returns a pipeline's history, newest first.
func (db *DB) PipelineVersions(ctx context.Context, id string) ([]hotswap.PipelineVersion, error) {
	rows, err := db.read.QueryContext(ctx, "SELECT version, name, definition, actor, created_at FROM pipeline_versions WHERE pipeline_id = ? ORDER BY version DESC", id)
	if err != nil {
		return nil, wrap(err, "pipeline versions")
	}
	defer rows.Close()
	var out []hotswap.PipelineVersion
	for rows.Next() {
		var v hotswap.PipelineVersion
		if err := rows.Scan(&v.Version, &v.Name, &v.Definition, &v.Actor, nullTime{&v.CreatedAt}); err != nil {
			return nil, wrap(err, "pipeline versions")
		}
		out = append(out, v)
	}
	return out, wrap(rows.Err(), "pipeline versions")
}

// CreateRelease stores a new release, numbering it after the pipeline's
// last; it returns the number.
func (db *DB) CreateRelease(ctx context.Context, r hotswap.ReleaseRow, doc func(number int) (string, error)) (int, error) {
	var number int
	err := db.update(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(number), 0) + 1 FROM releases WHERE pipeline_id = ?", r.PipelineID).Scan(&number); err != nil {
			return err
		}
		d, err := doc(number)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO releases (id, pipeline_id, number, state, created_at, doc) VALUES (?, ?, ?, ?, ?, ?)",
			r.ID, r.PipelineID, number, r.State, timeArg(db.orNow(r.CreatedAt)), d)
		return err
	})
	return number, wrap(err, "create release")
}

// SaveRelease writes a release's state and document.
func (db *DB) SaveRelease(ctx context.Context, id, state, doc string) error {
	res, err := db.write.ExecContext(ctx, "UPDATE releases SET state = ?, doc = ? WHERE id = ?", state, doc, id)
	if err != nil {
		return wrap(err, "save release %s", id)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return hotswap.Errorf(hotswap.NotFound, "release %q not found", id)
	}
	return nil
}

// GetRelease returns one release.
func (db *DB) GetRelease(ctx context.Context, id string) (hotswap.ReleaseRow, error) {
	var r hotswap.ReleaseRow
	err := db.read.QueryRowContext(ctx, "SELECT id, pipeline_id, number, state, created_at, doc FROM releases WHERE id = ?", id).
		Scan(&r.ID, &r.PipelineID, &r.Number, &r.State, nullTime{&r.CreatedAt}, &r.Doc)
	if errors.Is(err, sql.ErrNoRows) {
		return r, hotswap.Errorf(hotswap.NotFound, "release %q not found", id)
	}
	return r, wrap(err, "get release %s", id)
}

// ListReleases returns releases newest first: of one pipeline (pipelineID
// not empty), in one state (state not empty), at most limit (> 0).
func (db *DB) ListReleases(ctx context.Context, pipelineID, state string, limit int) ([]hotswap.ReleaseRow, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := db.read.QueryContext(ctx, `SELECT id, pipeline_id, number, state, created_at, doc FROM releases
		WHERE (? = '' OR pipeline_id = ?) AND (? = '' OR state = ?) ORDER BY created_at DESC, rowid DESC LIMIT ?`,
		pipelineID, pipelineID, state, state, limit)
	if err != nil {
		return nil, wrap(err, "list releases")
	}
	defer rows.Close()
	var out []hotswap.ReleaseRow
	for rows.Next() {
		var r hotswap.ReleaseRow
		if err := rows.Scan(&r.ID, &r.PipelineID, &r.Number, &r.State, nullTime{&r.CreatedAt}, &r.Doc); err != nil {
			return nil, wrap(err, "list releases")
		}
		out = append(out, r)
	}
	return out, wrap(rows.Err(), "list releases")
}
