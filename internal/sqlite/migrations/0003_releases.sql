-- Users authenticate with their own API token; only its sha256 is stored.
CREATE TABLE users (
	name       TEXT    NOT NULL PRIMARY KEY,
	role       TEXT    NOT NULL CHECK (role IN ('admin', 'deployer', 'approver')),
	token_hash TEXT    NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
) STRICT;

-- A build's package in a feed. The content is stored once by digest in the
-- package store; a version is immutable.
CREATE TABLE artifacts (
	feed       TEXT    NOT NULL,
	version    TEXT    NOT NULL,
	branch     TEXT    NOT NULL,
	commit_id  TEXT    NOT NULL,
	digest     TEXT    NOT NULL,
	actor      TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (feed, version)
) STRICT;

CREATE INDEX artifacts_feed_created ON artifacts (feed, created_at);

-- A pipeline keeps its id across renames; every apply adds a version.
CREATE TABLE pipelines (
	id         TEXT    NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE,
	version    INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE pipeline_versions (
	pipeline_id TEXT    NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
	version     INTEGER NOT NULL,
	name        TEXT    NOT NULL,
	definition  TEXT    NOT NULL,
	actor       TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	PRIMARY KEY (pipeline_id, version)
) STRICT;

-- A release is one run of a pipeline version over one artifact. Its whole
-- state (stages, approvals, gate timers, log) is one JSON document, written
-- in one statement per change: a restart finds it exactly as it was.
CREATE TABLE releases (
	id          TEXT    NOT NULL PRIMARY KEY,
	pipeline_id TEXT    NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
	number      INTEGER NOT NULL,
	state       TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	doc         TEXT    NOT NULL,
	UNIQUE (pipeline_id, number)
) STRICT;

CREATE INDEX releases_state ON releases (state, created_at);
