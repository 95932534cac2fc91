package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
)

// NodeMetricsKeep is how long the request counts of a node that stopped
// sending heartbeats are kept and read: a node out of the liveness window
// for a moment must not vanish from the readings and come back (its whole
// lifetime would then look new), and a dead node's last counts never change
// again, so they add nothing to a difference of two readings.
const NodeMetricsKeep = time.Hour

// PublishNodeMetrics replaces the request counts node publishes with
// totals, one row per slot (a slot it no longer counts loses its row),
// stamped with the database's time, and deletes the rows of nodes silent
// for NodeMetricsKeep. It is one statement on the heartbeat's pool, with
// no write lock: counts change every second and hold up no flip.
func (db *DB) PublishNodeMetrics(ctx context.Context, node string, totals []hotswap.SlotTotals) error {
	if node == "" {
		return hotswap.Errorf(hotswap.Invalid, "publish node metrics: node ID is empty")
	}
	type row struct {
		App    string   `json:"app"`
		Slot   string   `json:"slot"`
		Hist   []uint64 `json:"hist"`
		Errors uint64   `json:"errors"`
	}
	rows := make([]row, 0, len(totals))
	seen := make(map[[2]string]bool, len(totals))
	for i, t := range totals {
		if t.App == "" || t.Slot == "" {
			return hotswap.Errorf(hotswap.Invalid, "publish node metrics of node %s: row %d has no app or slot (%q, %q)", node, i+1, t.App, t.Slot)
		}
		if seen[[2]string{t.App, t.Slot}] {
			return hotswap.Errorf(hotswap.Invalid, "publish node metrics of node %s: slot %s/%s twice", node, t.App, t.Slot)
		}
		seen[[2]string{t.App, t.Slot}] = true
		if t.Hist == nil {
			t.Hist = []uint64{}
		}
		rows = append(rows, row{t.App, t.Slot, t.Hist, t.Errors})
	}
	doc, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("publish node metrics of node %s: %w", node, err)
	}
	// The deletion of others' rows skips rows another node's publish has
	// locked, so that two nodes pruning at once never wait on each other.
	_, err = db.beat.Exec(ctx, `
		WITH rows AS (
			SELECT r.app COLLATE "C" AS app, r.slot COLLATE "C" AS slot, r.hist, r.errors
			FROM jsonb_to_recordset($2::jsonb) AS r(app text, slot text, hist jsonb, errors bigint)
		), mine AS (
			DELETE FROM node_metrics m WHERE m.node = $1
			AND NOT EXISTS (SELECT FROM rows WHERE rows.app = m.app AND rows.slot = m.slot)
		), gone AS (
			DELETE FROM node_metrics WHERE (node, app, slot) IN (
				SELECT m.node, m.app, m.slot FROM node_metrics m
				WHERE m.node <> $1 AND NOT EXISTS (SELECT FROM nodes n WHERE n.id = m.node
					AND n.heartbeat_at > now() - $3 * interval '1 microsecond')
				LIMIT 1000 FOR UPDATE SKIP LOCKED)
		)
		INSERT INTO node_metrics (node, app, slot, hist, errors, updated)
		SELECT $1, app, slot, hist, errors, now() FROM rows
		ON CONFLICT (node, app, slot) DO UPDATE SET
			hist = excluded.hist, errors = excluded.errors, updated = excluded.updated`,
		node, string(doc), NodeMetricsKeep.Microseconds())
	if err != nil {
		return fmt.Errorf("publish node metrics of node %s: %w", node, err)
	}
	return nil
}

// SlotTotals returns the request counts every node published for a slot,
// by node ID, leaving out nodes silent for NodeMetricsKeep.
func (db *DB) SlotTotals(ctx context.Context, app, slot string) ([]hotswap.SlotTotals, error) {
	rows, _ := db.Pool().Query(ctx, `SELECT m.node, m.app, m.slot, m.hist, m.errors, m.updated
		FROM node_metrics m JOIN nodes n ON n.id = m.node
		WHERE m.app = $1 AND m.slot = $2 AND n.heartbeat_at > now() - $3 * interval '1 microsecond'
		ORDER BY m.node`, app, slot, NodeMetricsKeep.Microseconds())
	out, err := pgx.CollectRows(rows, scanSlotTotals)
	if err != nil {
		return nil, fmt.Errorf("read the request counts of %s/%s: %w", app, slot, err)
	}
	return out, nil
}

// AllSlotTotals returns the request counts every node published for every
// slot, by app, slot and node ID, leaving out nodes silent for
// NodeMetricsKeep.
func (db *DB) AllSlotTotals(ctx context.Context) ([]hotswap.SlotTotals, error) {
	rows, _ := db.Pool().Query(ctx, `SELECT m.node, m.app, m.slot, m.hist, m.errors, m.updated
		FROM node_metrics m JOIN nodes n ON n.id = m.node
		WHERE n.heartbeat_at > now() - $1 * interval '1 microsecond'
		ORDER BY m.app, m.slot, m.node`, NodeMetricsKeep.Microseconds())
	out, err := pgx.CollectRows(rows, scanSlotTotals)
	if err != nil {
		return nil, fmt.Errorf("read the request counts of the nodes: %w", err)
	}
	return out, nil
}

func scanSlotTotals(row pgx.CollectableRow) (hotswap.SlotTotals, error) {
	var t hotswap.SlotTotals
	var errs int64
	err := row.Scan(&t.Node, &t.App, &t.Slot, &t.Hist, &errs, &t.Updated)
	t.Errors = uint64(max(errs, 0))
	t.Updated = t.Updated.UTC()
	return t, err
}
