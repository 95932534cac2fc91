-- quarantines lists the deployments whose content must not be deployed
-- again in their app (see hotswap.Quarantine). It names the deployment but
-- does not point at it: the quarantine outlives the deployment record.
CREATE TABLE quarantines (
	app           TEXT    NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
	deployment_id TEXT    NOT NULL,
	digest        TEXT    NOT NULL,
	version       TEXT    NOT NULL DEFAULT '',
	reason        TEXT    NOT NULL,
	actor         TEXT    NOT NULL,
	at            INTEGER NOT NULL,
	PRIMARY KEY (app, deployment_id)
) STRICT;

CREATE INDEX quarantines_digest ON quarantines (app, digest);
