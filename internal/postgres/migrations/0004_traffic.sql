-- compatible: 4
-- traffic: the traffic routing rules on an app's production slot, one row
-- per other slot that gets a share of production's requests (percent 0 to
-- 100; 0 lets a client pick the slot with the routing query parameter).
-- Deleting the slot (or the app) drops its share. A binary that does not
-- know the table would route differently from the nodes that do, hence
-- compatible: 4.
CREATE TABLE traffic (
	app     TEXT COLLATE "C" NOT NULL,
	slot    TEXT COLLATE "C" NOT NULL,
	percent DOUBLE PRECISION NOT NULL CHECK (percent >= 0 AND percent <= 100),
	PRIMARY KEY (app, slot),
	FOREIGN KEY (app, slot) REFERENCES slots (app, name) ON DELETE CASCADE
);

-- A change of the rules bumps the cluster generation (see 0002), so every
-- node rebuilds its routing with them.
CREATE CONSTRAINT TRIGGER traffic_generation AFTER INSERT OR UPDATE OR DELETE ON traffic
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hotswap_bump_generation();
