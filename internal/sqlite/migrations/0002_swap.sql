-- Auto swap: after a successful deploy to a slot, swap it into this target.
ALTER TABLE slots ADD COLUMN auto_swap_target TEXT NOT NULL DEFAULT '';

-- serving records when each deployment served each slot; ended_at is NULL
-- while it still does. Deployment history and rollback read it.
CREATE TABLE serving (
	app           TEXT    NOT NULL,
	slot          TEXT    NOT NULL,
	deployment_id TEXT    NOT NULL,
	started_at    INTEGER NOT NULL,
	ended_at      INTEGER
) STRICT;

CREATE INDEX serving_app_deployment ON serving (app, deployment_id);
