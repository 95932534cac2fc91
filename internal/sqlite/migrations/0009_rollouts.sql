-- rollouts: the progressive swaps (see hotswap.Rollout), each stored whole
-- as JSON in doc, with the columns that are looked up beside it. version
-- counts the writes, for compare-and-set updates. At most one rollout of an
-- app is not done: the partial unique index refuses a second. Deleting the
-- app drops its rollouts. Times are unix nanoseconds.
CREATE TABLE rollouts (
	id      TEXT    NOT NULL PRIMARY KEY,
	app     TEXT    NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
	done    INTEGER NOT NULL CHECK (done IN (0, 1)),
	created INTEGER NOT NULL,
	version INTEGER NOT NULL,
	doc     TEXT    NOT NULL
) STRICT;

CREATE UNIQUE INDEX rollouts_running ON rollouts (app) WHERE done = 0;
CREATE INDEX rollouts_app_created ON rollouts (app, created);
