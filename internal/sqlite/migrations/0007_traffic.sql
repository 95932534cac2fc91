-- traffic: the traffic routing rules on an app's production slot, one row
-- per other slot that gets a share of production's requests (percent 0 to
-- 100; 0 lets a client pick the slot with the routing query parameter).
-- Deleting the slot (or the app) drops its share.
CREATE TABLE traffic (
	app     TEXT NOT NULL,
	slot    TEXT NOT NULL,
	percent REAL NOT NULL CHECK (percent >= 0 AND percent <= 100),
	PRIMARY KEY (app, slot),
	FOREIGN KEY (app, slot) REFERENCES slots (app, name) ON DELETE CASCADE
) STRICT;
