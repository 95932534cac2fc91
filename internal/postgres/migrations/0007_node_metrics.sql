-- compatible: 6
-- node_metrics: each node's lifetime request counts per slot (see
-- hotswap.SlotTotals), published by the node at its heartbeats, so that
-- the node that analyses a progressive swap or a metric gate reads the
-- requests of every node. hist is a JSON array of counts per latency
-- bucket. updated is the database's time of the node's last write. Rows of
-- nodes silent for an hour are deleted by the next publish of any node.
-- Nothing else depends on the table: a binary that does not know it only
-- leaves its own requests out of the others' analyses, hence compatible: 6.
CREATE TABLE node_metrics (
	node    TEXT COLLATE "C" NOT NULL,
	app     TEXT COLLATE "C" NOT NULL,
	slot    TEXT COLLATE "C" NOT NULL,
	hist    JSONB       NOT NULL,
	errors  BIGINT      NOT NULL,
	updated TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (node, app, slot)
);

CREATE INDEX node_metrics_slot ON node_metrics (app, slot);
