-- compatible: 1
-- The schema of internal/sqlite's migrations 0001 to 0005 in one step.
--
-- Timestamps are BIGINT unix nanoseconds in UTC, as in the SQLite store, so
-- a time reads back exactly as written (timestamptz keeps microseconds);
-- NULL means "not yet". Text that is listed in order is COLLATE "C": byte
-- order, as SQLite's, whatever the database's locale. seq columns stand for
-- SQLite's rowid: the insertion order that breaks ties between equal times.

CREATE TABLE apps (
	name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	created_at BIGINT NOT NULL
);

-- A deployment outlives the slot it was deployed to (a swap moves it to
-- another slot, and it stays for rollback), so it hangs off the app only.
CREATE TABLE deployments (
	id          TEXT    NOT NULL PRIMARY KEY,
	seq         BIGINT  GENERATED ALWAYS AS IDENTITY,
	app         TEXT COLLATE "C" NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
	slot        TEXT COLLATE "C" NOT NULL,
	digest      TEXT    NOT NULL,
	author      TEXT    NOT NULL,
	message     TEXT    NOT NULL,
	status      INTEGER NOT NULL,
	status_text TEXT    NOT NULL,
	created_at  BIGINT  NOT NULL,
	started_at  BIGINT,
	ended_at    BIGINT
);

CREATE INDEX deployments_app_created ON deployments (app, created_at);
CREATE INDEX deployments_digest ON deployments (digest);

-- label is the first DNS label of the slot's host name. It is unique across
-- all apps: app "a" slot "b-c" and app "a-b" slot "c" would share a host.
-- deployment_id has no ON DELETE action (NO ACTION is checked at the end of
-- the statement), so a deployment a slot serves cannot be deleted, while
-- deleting a whole app, which cascades to both, is allowed.
CREATE TABLE slots (
	app              TEXT COLLATE "C" NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
	name             TEXT COLLATE "C" NOT NULL,
	label            TEXT NOT NULL UNIQUE,
	deployment_id    TEXT REFERENCES deployments (id),
	created_at       BIGINT NOT NULL,
	-- Auto swap: after a successful deploy to a slot, swap it into this target.
	auto_swap_target TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (app, name)
);

CREATE INDEX slots_deployment ON slots (deployment_id);

CREATE TABLE settings (
	app    TEXT COLLATE "C" NOT NULL,
	slot   TEXT COLLATE "C" NOT NULL,
	name   TEXT COLLATE "C" NOT NULL,
	value  TEXT    NOT NULL,
	sticky BOOLEAN NOT NULL,
	PRIMARY KEY (app, slot, name),
	FOREIGN KEY (app, slot) REFERENCES slots (app, name) ON DELETE CASCADE
);

-- function is '' for master and host keys so it can be part of the key.
CREATE TABLE keys (
	app      TEXT COLLATE "C" NOT NULL,
	slot     TEXT COLLATE "C" NOT NULL,
	scope    TEXT COLLATE "C" NOT NULL CHECK (scope IN ('master', 'host', 'function')),
	function TEXT COLLATE "C" NOT NULL,
	name     TEXT COLLATE "C" NOT NULL,
	value    TEXT NOT NULL,
	PRIMARY KEY (app, slot, scope, function, name),
	FOREIGN KEY (app, slot) REFERENCES slots (app, name) ON DELETE CASCADE
);

CREATE TABLE meta (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
);

-- operations and activity have no foreign key to apps: the journal of an
-- app's deletion is written after the app is gone. DeleteApp removes them.
-- node is the ID of the node that runs the operation ('' on a single server).
CREATE TABLE operations (
	id         TEXT   NOT NULL PRIMARY KEY,
	seq        BIGINT GENERATED ALWAYS AS IDENTITY,
	app        TEXT   NOT NULL,
	kind       TEXT   NOT NULL,
	slot       TEXT   NOT NULL,
	target     TEXT   NOT NULL,
	state      TEXT   NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
	phase      TEXT   NOT NULL,
	detail     TEXT   NOT NULL,
	actor      TEXT   NOT NULL,
	node       TEXT   NOT NULL DEFAULT '',
	started_at BIGINT NOT NULL,
	ended_at   BIGINT
);

-- One running operation per app across all nodes, enforced by the database.
CREATE UNIQUE INDEX operations_one_running ON operations (app) WHERE state = 'running';
CREATE INDEX operations_app_started ON operations (app, started_at);

CREATE TABLE activity (
	id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	app    TEXT   NOT NULL,
	time   BIGINT NOT NULL,
	actor  TEXT   NOT NULL,
	action TEXT   NOT NULL,
	slot   TEXT   NOT NULL,
	detail TEXT   NOT NULL,
	result TEXT   NOT NULL
);

CREATE INDEX activity_app_time ON activity (app, time);

-- serving records when each deployment served each slot; ended_at is NULL
-- while it still does. Deployment history and rollback read it.
CREATE TABLE serving (
	seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	app           TEXT   NOT NULL,
	slot          TEXT   NOT NULL,
	deployment_id TEXT   NOT NULL,
	started_at    BIGINT NOT NULL,
	ended_at      BIGINT
);

CREATE INDEX serving_app_deployment ON serving (app, deployment_id);

-- Users authenticate with their own API token; only its sha256 is stored.
CREATE TABLE users (
	name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	role       TEXT   NOT NULL CHECK (role IN ('admin', 'deployer', 'approver')),
	token_hash TEXT   NOT NULL UNIQUE,
	created_at BIGINT NOT NULL
);

-- A build's package in a feed. The content is stored once by digest in the
-- package store; a version is immutable.
CREATE TABLE artifacts (
	feed       TEXT   NOT NULL,
	version    TEXT   NOT NULL,
	seq        BIGINT GENERATED ALWAYS AS IDENTITY,
	branch     TEXT   NOT NULL,
	commit_id  TEXT   NOT NULL,
	digest     TEXT   NOT NULL,
	actor      TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	PRIMARY KEY (feed, version)
);

CREATE INDEX artifacts_feed_created ON artifacts (feed, created_at);

-- A pipeline keeps its id across renames; every apply adds a version.
CREATE TABLE pipelines (
	id         TEXT   NOT NULL PRIMARY KEY,
	name       TEXT COLLATE "C" NOT NULL UNIQUE,
	version    INTEGER NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE pipeline_versions (
	pipeline_id TEXT    NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
	version     INTEGER NOT NULL,
	name        TEXT    NOT NULL,
	definition  TEXT    NOT NULL,
	actor       TEXT    NOT NULL,
	created_at  BIGINT  NOT NULL,
	PRIMARY KEY (pipeline_id, version)
);

CREATE INDEX pipeline_versions_name ON pipeline_versions (name);

-- A release is one run of a pipeline version over one artifact. Its whole
-- state (stages, approvals, gate timers, log) is one JSON document, written
-- in one statement per change: a restart finds it exactly as it was.
CREATE TABLE releases (
	id          TEXT    NOT NULL PRIMARY KEY,
	seq         BIGINT  GENERATED ALWAYS AS IDENTITY,
	pipeline_id TEXT    NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
	number      INTEGER NOT NULL,
	state       TEXT    NOT NULL,
	created_at  BIGINT  NOT NULL,
	doc         TEXT    NOT NULL,
	UNIQUE (pipeline_id, number)
);

CREATE INDEX releases_state ON releases (state, created_at);

-- timer_status is the schedule monitor of timer-trigger functions, per slot
-- as on Azure: the schedule it was computed for, the last occurrence that
-- ran and the next one due.
CREATE TABLE timer_status (
	app        TEXT COLLATE "C" NOT NULL,
	slot       TEXT COLLATE "C" NOT NULL,
	function   TEXT   NOT NULL,
	schedule   TEXT   NOT NULL,
	last       BIGINT,
	next       BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (app, slot, function),
	FOREIGN KEY (app, slot) REFERENCES slots (app, name) ON DELETE CASCADE
);
