-- compatible: 3
-- release_requests is the inbox of the release engine: a node that does
-- not run the releases (the leader does) leaves a change to them here (who
-- asks, what, with which arguments: args is the engine's JSON) and waits
-- for the answer the leader writes back. taken_by is set once, when the
-- leader takes it; a request still waiting may be withdrawn by its asker
-- (done_at set, result empty). Times are unix nanoseconds.
CREATE TABLE release_requests (
	id         TEXT   NOT NULL PRIMARY KEY,
	kind       TEXT   NOT NULL,
	args       TEXT   NOT NULL,
	node       TEXT   NOT NULL,
	created_at BIGINT NOT NULL,
	taken_by   TEXT   NOT NULL DEFAULT '',
	taken_at   BIGINT,
	done_at    BIGINT,
	result     TEXT   NOT NULL DEFAULT ''
);

CREATE INDEX release_requests_waiting ON release_requests (created_at) WHERE taken_at IS NULL AND done_at IS NULL;
