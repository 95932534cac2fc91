-- Timestamps are INTEGER unix nanoseconds in UTC; NULL means "not yet".

CREATE TABLE apps (
	name       TEXT    NOT NULL PRIMARY KEY,
	created_at INTEGER NOT NULL
) STRICT;

-- A deployment outlives the slot it was deployed to (a swap moves it to
-- another slot, and it stays for rollback), so it hangs off the app only.
CREATE TABLE deployments (
	id          TEXT    NOT NULL PRIMARY KEY,
	app         TEXT    NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
	slot        TEXT    NOT NULL,
	digest      TEXT    NOT NULL,
	author      TEXT    NOT NULL,
	message     TEXT    NOT NULL,
	status      INTEGER NOT NULL,
	status_text TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	started_at  INTEGER,
	ended_at    INTEGER
) STRICT;

CREATE INDEX deployments_app_created ON deployments (app, created_at);

-- label is the first DNS label of the slot's host name. It is unique across
-- all apps: app "a" slot "b-c" and app "a-b" slot "c" would share a host.
-- deployment_id has no ON DELETE action, so a deployment a slot serves cannot
-- be deleted (the check runs at the end of the statement, so deleting a whole
-- app, which cascades to both, is allowed).
CREATE TABLE slots (
	app           TEXT    NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
	name          TEXT    NOT NULL,
	label         TEXT    NOT NULL UNIQUE,
	deployment_id TEXT    REFERENCES deployments (id),
	created_at    INTEGER NOT NULL,
	PRIMARY KEY (app, name)
) STRICT;

CREATE INDEX slots_deployment ON slots (deployment_id);

CREATE TABLE settings (
	app    TEXT    NOT NULL,
	slot   TEXT    NOT NULL,
	name   TEXT    NOT NULL,
	value  TEXT    NOT NULL,
	sticky INTEGER NOT NULL CHECK (sticky IN (0, 1)),
	PRIMARY KEY (app, slot, name),
	FOREIGN KEY (app, slot) REFERENCES slots (app, name) ON DELETE CASCADE
) STRICT;

-- function is '' for master and host keys so it can be part of the key.
CREATE TABLE keys (
	app      TEXT NOT NULL,
	slot     TEXT NOT NULL,
	scope    TEXT NOT NULL CHECK (scope IN ('master', 'host', 'function')),
	function TEXT NOT NULL,
	name     TEXT NOT NULL,
	value    TEXT NOT NULL,
	PRIMARY KEY (app, slot, scope, function, name),
	FOREIGN KEY (app, slot) REFERENCES slots (app, name) ON DELETE CASCADE
) STRICT;

CREATE TABLE meta (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;

-- operations and activity have no foreign key to apps: the journal of an
-- app's deletion is written after the app is gone. DeleteApp removes them.
CREATE TABLE operations (
	id         TEXT    NOT NULL PRIMARY KEY,
	app        TEXT    NOT NULL,
	kind       TEXT    NOT NULL,
	slot       TEXT    NOT NULL,
	target     TEXT    NOT NULL,
	state      TEXT    NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
	phase      TEXT    NOT NULL,
	detail     TEXT    NOT NULL,
	actor      TEXT    NOT NULL,
	started_at INTEGER NOT NULL,
	ended_at   INTEGER
) STRICT;

-- One running operation per app, enforced by the database itself.
CREATE UNIQUE INDEX operations_one_running ON operations (app) WHERE state = 'running';
CREATE INDEX operations_app_started ON operations (app, started_at);

CREATE TABLE activity (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	app    TEXT    NOT NULL,
	time   INTEGER NOT NULL,
	actor  TEXT    NOT NULL,
	action TEXT    NOT NULL,
	slot   TEXT    NOT NULL,
	detail TEXT    NOT NULL,
	result TEXT    NOT NULL
) STRICT;

CREATE INDEX activity_app_time ON activity (app, time);
