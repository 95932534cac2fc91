-- compatible: 6
-- rollouts: the progressive swaps (see hotswap.Rollout), each stored whole
-- as JSON text in doc, with the columns that are looked up beside it.
-- version counts the writes, for compare-and-set updates. At most one
-- rollout of an app is not done: the partial unique index refuses a
-- second. Deleting the app drops its rollouts. Times are unix nanoseconds.
-- A binary that does not know the table would swap under a running
-- rollout and never end one it was leading, hence compatible: 6.
CREATE TABLE rollouts (
	id      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	seq     BIGINT  GENERATED ALWAYS AS IDENTITY,
	app     TEXT COLLATE "C" NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
	done    BOOLEAN NOT NULL,
	created BIGINT  NOT NULL,
	version BIGINT  NOT NULL,
	doc     TEXT    NOT NULL
);

CREATE UNIQUE INDEX rollouts_running ON rollouts (app) WHERE NOT done;
CREATE INDEX rollouts_app_created ON rollouts (app, created);
