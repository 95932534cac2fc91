package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// claimKeep is how long timer claims are kept: long past the time a claim
// could still be contested.
const claimKeep = 24 * time.Hour

// ClaimTimer claims occurrence at of timer function in slot of app for node
// nodeID, so that one node of the cluster fires it. It reports true when
// this node may fire it: it claimed it now, or took over the claim of a node
// that did not mark it done and has been silent for longer than stale (its
// last heartbeat, if any, and the claim are older than stale), which then
// counts as a claim of nodeID made now, or claimed it before and did not
// mark it done (a retry whose first answer was lost). A claim marked done
// is never taken over nor claimed again. Claims made more than a day ago are removed on the way.
func (db *DB) ClaimTimer(ctx context.Context, app, slot, function string, at time.Time, nodeID string, stale time.Duration) (bool, error) {
	if nodeID == "" || stale <= 0 {
		return false, hotswap.Errorf(hotswap.Invalid, "claim timer %s of %s/%s: node ID must be set and stale positive (got %q, %v)", function, app, slot, nodeID, stale)
	}
	// The INSERT's ON CONFLICT locks the existing claim and evaluates the
	// WHERE on its newest version, so of concurrent claimers one wins. The
	// prune skips claims others have locked: it never waits, so it cannot
	// deadlock with another node's prune.
	var claimed bool
	err := db.Pool().QueryRow(ctx, `
		WITH pruned AS (
			DELETE FROM timer_claims WHERE (app, slot, function, occurrence) IN (
				SELECT app, slot, function, occurrence FROM timer_claims
				WHERE claimed_at < now() - $7 * interval '1 microsecond'
				AND (app, slot, function, occurrence) <> ($1, $2, $3, $4)
				LIMIT 100 FOR UPDATE SKIP LOCKED))
		INSERT INTO timer_claims AS c (app, slot, function, occurrence, node_id, claimed_at, done)
		VALUES ($1, $2, $3, $4, $5, now(), false)
		ON CONFLICT (app, slot, function, occurrence) DO UPDATE
			SET node_id = excluded.node_id, claimed_at = excluded.claimed_at
			WHERE NOT c.done
			AND (c.node_id = excluded.node_id
				OR c.claimed_at < now() - $6 * interval '1 microsecond'
				AND NOT EXISTS (SELECT FROM nodes n WHERE n.id = c.node_id
					AND n.heartbeat_at >= now() - $6 * interval '1 microsecond'))
		RETURNING true`,
		app, slot, function, at, nodeID, stale.Microseconds(), claimKeep.Microseconds()).Scan(&claimed)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim timer %s of %s/%s at %s: %w", function, app, slot, at.UTC().Format(time.RFC3339Nano), err)
	}
	return claimed, nil
}

// DoneTimer marks the claim of occurrence at of timer function in slot of
// app done: it ran, and no node takes it over. An occurrence nobody
// claimed is NotFound.
func (db *DB) DoneTimer(ctx context.Context, app, slot, function string, at time.Time) error {
	tag, err := db.Pool().Exec(ctx, `UPDATE timer_claims SET done = true
		WHERE app = $1 AND slot = $2 AND function = $3 AND occurrence = $4`, app, slot, function, at)
	if err != nil {
		return fmt.Errorf("mark timer %s of %s/%s at %s done: %w", function, app, slot, at.UTC().Format(time.RFC3339Nano), err)
	}
	if tag.RowsAffected() == 0 {
		return hotswap.Errorf(hotswap.NotFound, "timer %s of %s/%s has no claim at %s", function, app, slot, at.UTC().Format(time.RFC3339Nano))
	}
	return nil
}
