-- node is the ID of the cluster node that runs an operation; '' on a single
-- server, whose restart ends all its running operations.
ALTER TABLE operations ADD COLUMN node TEXT NOT NULL DEFAULT '';
