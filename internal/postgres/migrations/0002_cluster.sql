-- compatible: 2
-- Tables for several nodes sharing this database: the cluster generation,
-- the nodes, prepares before a flip, package content, timer claims.

-- The cluster generation is bumped once by every transaction that changes
-- apps, slots, keys, settings or deployments, which also notifies
-- 'hotswap_changes' with the new generation as payload. A node hears the
-- notification only after the commit, so what it then reads includes the
-- change.
--
-- The bump runs at commit (a deferred constraint trigger, after every other
-- statement of the transaction) under a transaction-level advisory lock
-- (class 'hsgn' = 1752393582, key 0) held until the commit is visible, so
-- generations are committed in order: the newest committed generation says
-- that every change up to it is visible. Being the last lock a writer
-- takes, it cannot deadlock with the writer's other locks.
--
-- Each bump inserts a row into cluster_generations rather than updating one
-- row: concurrent SERIALIZABLE writers updating one row would fail each
-- other with serialization errors, and a sequence's last value counts
-- transactions that then roll back. The generation is the greatest gen.
-- Heartbeat prunes old rows.
--
-- The trigger runs for each changed row; the transaction-local setting
-- hotswap.generation_xact makes only the first run of a transaction bump.
CREATE SEQUENCE cluster_generation AS bigint START WITH 1 MINVALUE 1;

CREATE TABLE cluster_generations (
	gen bigint      PRIMARY KEY,
	at  timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION hotswap_bump_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	xact text := txid_current()::text;
	next_gen bigint;
BEGIN
	IF current_setting('hotswap.generation_xact', true) IS NOT DISTINCT FROM xact THEN
		RETURN NULL;
	END IF;
	PERFORM set_config('hotswap.generation_xact', xact, true);
	PERFORM pg_advisory_xact_lock(1752393582, 0);
	next_gen := nextval('cluster_generation');
	INSERT INTO cluster_generations (gen) VALUES (next_gen);
	PERFORM pg_notify('hotswap_changes', next_gen::text);
	RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER apps_generation AFTER INSERT OR UPDATE OR DELETE ON apps
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hotswap_bump_generation();
CREATE CONSTRAINT TRIGGER slots_generation AFTER INSERT OR UPDATE OR DELETE ON slots
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hotswap_bump_generation();
CREATE CONSTRAINT TRIGGER keys_generation AFTER INSERT OR UPDATE OR DELETE ON keys
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hotswap_bump_generation();
CREATE CONSTRAINT TRIGGER settings_generation AFTER INSERT OR UPDATE OR DELETE ON settings
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hotswap_bump_generation();
CREATE CONSTRAINT TRIGGER deployments_generation AFTER INSERT OR UPDATE OR DELETE ON deployments
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hotswap_bump_generation();

-- nodes: one row per node start (a node's ID is new at each start).
-- acked_generation is the generation whose routing the node serves.
CREATE TABLE nodes (
	id               text        PRIMARY KEY,
	name             text        NOT NULL,
	addr             text        NOT NULL,
	version          text        NOT NULL,
	state            text        NOT NULL CHECK (state IN ('starting', 'serving', 'draining', 'stopped')),
	acked_generation bigint      NOT NULL DEFAULT 0,
	started_at       timestamptz NOT NULL,
	heartbeat_at     timestamptz NOT NULL
);

-- prepares: a node about to flip an operation asks the others to start and
-- warm its new process sets (doc is the hotswap.Prepare); each answers in
-- prepare_results with '' (ready) or the error.
CREATE TABLE prepares (
	op_id      text        PRIMARY KEY,
	app        text        NOT NULL,
	doc        jsonb       NOT NULL,
	by_node    text        NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX prepares_created ON prepares (created_at);

CREATE TABLE prepare_results (
	op_id   text        NOT NULL REFERENCES prepares (op_id) ON DELETE CASCADE,
	node_id text        NOT NULL,
	error   text        NOT NULL,
	at      timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (op_id, node_id)
);

-- packages: deployment package content by digest (hex sha256 of the zip),
-- in chunks of 1 MiB, written once in one transaction; a row is committed
-- only complete.
CREATE TABLE packages (
	digest     text        PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{64}$'),
	size       bigint      NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	complete   boolean     NOT NULL DEFAULT false
);

CREATE TABLE package_chunks (
	digest text    NOT NULL REFERENCES packages (digest) ON DELETE CASCADE,
	seq    integer NOT NULL,
	data   bytea   NOT NULL,
	PRIMARY KEY (digest, seq)
);

-- Packages are zips, already compressed: store chunks out of line uncompressed.
ALTER TABLE package_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- timer_claims: the node that fires a timer occurrence claims it first, so an
-- occurrence fires once across the cluster; done when it has run.
CREATE TABLE timer_claims (
	app        text        NOT NULL,
	slot       text        NOT NULL,
	function   text        NOT NULL,
	occurrence timestamptz NOT NULL,
	node_id    text        NOT NULL,
	claimed_at timestamptz NOT NULL DEFAULT now(),
	done       boolean     NOT NULL DEFAULT false,
	PRIMARY KEY (app, slot, function, occurrence)
);

CREATE INDEX timer_claims_claimed ON timer_claims (claimed_at);
