-- release_requests is the inbox of the release engine in a cluster: a node
-- that does not run the engine leaves a change to the releases here (who
-- asks, what, with which arguments: args is the engine's JSON) and waits
-- for the answer the node that runs the engine writes back. taken_by is set
-- once, when the engine's node takes it; a request still waiting may be
-- cancelled by its asker (done_at set, result empty).
CREATE TABLE release_requests (
	id         TEXT    NOT NULL PRIMARY KEY,
	kind       TEXT    NOT NULL,
	args       TEXT    NOT NULL,
	node       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	taken_by   TEXT    NOT NULL DEFAULT '',
	taken_at   INTEGER,
	done_at    INTEGER,
	result     TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX release_requests_waiting ON release_requests (created_at) WHERE taken_at IS NULL AND done_at IS NULL;
