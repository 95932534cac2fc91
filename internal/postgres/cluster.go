package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The notification channels of a cluster. ChangesChannel's payload is the
// new generation; PrepareChannel's the operation ID of a new prepare;
// ReleasesChannel's is up to the release engine.
const (
	ChangesChannel  = "hotswap_changes"
	PrepareChannel  = "hotswap_prepare"
	ReleasesChannel = "hotswap_releases"
)

// Listen's reconnect back-off, and how long it waits for a notification
// before it pings the connection to find out whether it is still alive.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 2 * time.Second
	listenPing       = 15 * time.Second
	dialTimeout      = 10 * time.Second
)

// keepGenerations is how many of the newest generations' rows Heartbeat
// keeps; only the newest is read.
const keepGenerations = 1000

// Generation returns the cluster generation: a number bumped, and notified
// on ChangesChannel, by every transaction that changes apps, slots, keys,
// settings or deployments, at its commit. Generations commit in order, so
// what is read after Generation returns g includes every change up to g.
// It is 0 before the first change.
func (db *DB) Generation(ctx context.Context) (int64, error) {
	var gen int64
	if err := db.Pool().QueryRow(ctx, "SELECT coalesce(max(gen), 0) FROM cluster_generations").Scan(&gen); err != nil {
		return 0, fmt.Errorf("read cluster generation: %w", err)
	}
	return gen, nil
}

// Heartbeat records that node n is alive: it inserts or updates the row of
// n.ID with n's fields and the database's current time as HeartbeatAt.
// StartedAt is kept from the first heartbeat (the database's time if n's
// is zero), and the generation never goes back (see AckGeneration). It
// uses a small pool of its own, so it goes through while writers wait on
// every connection of the main pool.
func (db *DB) Heartbeat(ctx context.Context, n hotswap.Node) error {
	if n.ID == "" {
		return hotswap.Errorf(hotswap.Invalid, "heartbeat: node ID is empty")
	}
	switch n.State {
	case hotswap.NodeStarting, hotswap.NodeServing, hotswap.NodeDraining, hotswap.NodeStopped:
	default:
		return hotswap.Errorf(hotswap.Invalid, "heartbeat of node %s: state %q is not starting, serving, draining or stopped", n.ID, n.State)
	}
	var started *time.Time
	if !n.StartedAt.IsZero() {
		started = &n.StartedAt
	}
	_, err := db.beat.Exec(ctx, `
		INSERT INTO nodes (id, name, addr, version, state, acked_generation, started_at, heartbeat_at)
		VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()), now())
		ON CONFLICT (id) DO UPDATE SET
			name = excluded.name, addr = excluded.addr, version = excluded.version,
			state = excluded.state, heartbeat_at = excluded.heartbeat_at,
			acked_generation = greatest(nodes.acked_generation, excluded.acked_generation)`,
		n.ID, n.Name, n.Addr, n.Version, string(n.State), n.Generation, started)
	if err != nil {
		return fmt.Errorf("heartbeat of node %s: %w", n.ID, err)
	}
	// Generations older than the last keepGenerations are of no use.
	_, err = db.beat.Exec(ctx, `DELETE FROM cluster_generations
		WHERE gen < (SELECT max(gen) FROM cluster_generations) - $1`, keepGenerations)
	if err != nil {
		return fmt.Errorf("heartbeat of node %s: prune generations: %w", n.ID, err)
	}
	return nil
}

// nodeColumns are the columns scanNode reads; age is in microseconds by
// the database's clock.
const nodeColumns = `id, name, addr, version, state, acked_generation, started_at, heartbeat_at,
	(extract(epoch FROM now() - heartbeat_at) * 1000000)::bigint`

func scanNode(row pgx.CollectableRow) (hotswap.Node, error) {
	var n hotswap.Node
	var state string
	var age int64
	err := row.Scan(&n.ID, &n.Name, &n.Addr, &n.Version, &state, &n.Generation, &n.StartedAt, &n.HeartbeatAt, &age)
	n.State = hotswap.NodeState(state)
	n.StartedAt, n.HeartbeatAt = n.StartedAt.UTC(), n.HeartbeatAt.UTC()
	n.Age = max(0, time.Duration(age)*time.Microsecond)
	return n, err
}

// ListNodes returns every node that has sent a heartbeat, the most
// recently started first.
func (db *DB) ListNodes(ctx context.Context) ([]hotswap.Node, error) {
	rows, _ := db.Pool().Query(ctx, "SELECT "+nodeColumns+" FROM nodes ORDER BY started_at DESC, id")
	nodes, err := pgx.CollectRows(rows, scanNode)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return nodes, nil
}

// LiveNodes returns the nodes whose last heartbeat is younger than within
// (by the database's clock) and that have not stopped, the most recently
// started first.
func (db *DB) LiveNodes(ctx context.Context, within time.Duration) ([]hotswap.Node, error) {
	rows, _ := db.Pool().Query(ctx, "SELECT "+nodeColumns+` FROM nodes
		WHERE heartbeat_at > now() - $1 * interval '1 microsecond' AND state <> 'stopped'
		ORDER BY started_at DESC, id`, within.Microseconds())
	nodes, err := pgx.CollectRows(rows, scanNode)
	if err != nil {
		return nil, fmt.Errorf("list live nodes: %w", err)
	}
	return nodes, nil
}

// AckGeneration records that node nodeID serves the routing of generation
// gen; a lower gen than the one recorded is ignored. A node without a
// heartbeat yet is NotFound.
func (db *DB) AckGeneration(ctx context.Context, nodeID string, gen int64) error {
	tag, err := db.beat.Exec(ctx,
		"UPDATE nodes SET acked_generation = greatest(acked_generation, $2) WHERE id = $1", nodeID, gen)
	if err != nil {
		return fmt.Errorf("acknowledge generation %d for node %s: %w", gen, nodeID, err)
	}
	if tag.RowsAffected() == 0 {
		return hotswap.Errorf(hotswap.NotFound, "node %s has not sent a heartbeat", nodeID)
	}
	return nil
}

// Notify sends payload on channel to every listener of the database, at
// once (it runs in a transaction of its own).
func (db *DB) Notify(ctx context.Context, channel, payload string) error {
	if channel == "" {
		return hotswap.Errorf(hotswap.Invalid, "notify: channel is empty")
	}
	if _, err := db.Pool().Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload); err != nil {
		return fmt.Errorf("notify %s: %w", channel, err)
	}
	return nil
}

// Listen calls notify for each notification on ChangesChannel,
// PrepareChannel and ReleasesChannel, one at a time, until ctx is done; then
// it returns ctx's error. It listens on a connection of its own, not one of
// the pool's. When that connection fails it connects again, waiting from
// 100ms doubling to 2s between attempts. After every successful connect,
// the first included, it calls notify("", ""): notifications sent while it
// was not listening are lost, so the caller should then read what it needs
// afresh.
func (db *DB) Listen(ctx context.Context, notify func(channel, payload string)) error {
	backoff := listenBackoffMin
	for {
		// Why the connection failed is of no use to the caller, which
		// learns of the reconnect through notify("", "").
		db.listenOnce(ctx, notify, func() { backoff = listenBackoffMin })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// listenOnce connects, listens and passes notifications on until the
// connection fails or ctx is done. It calls connected once it listens.
func (db *DB) listenOnce(ctx context.Context, notify func(channel, payload string), connected func()) error {
	conn, err := db.dedicated(ctx, "hotswap listen")
	if err != nil {
		return err
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, "LISTEN "+ChangesChannel+"; LISTEN "+PrepareChannel+"; LISTEN "+ReleasesChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	connected()
	notify("", "")
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			notify(n.Channel, n.Payload)
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err):
			return fmt.Errorf("wait for notification: %w", err)
		}
		// Quiet for a while: make sure the connection still works, since a
		// dead peer behind a silent network may never close it.
		pctx, cancel := context.WithTimeout(ctx, dialTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
}

// dedicated opens a connection of its own with the pool's configuration,
// named app in pg_stat_activity, for LISTEN and session advisory locks.
func (db *DB) dedicated(ctx context.Context, app string) (*pgx.Conn, error) {
	cfg := db.Pool().Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = app
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect for %s: %w", app, err)
	}
	if after := db.Pool().Config().AfterConnect; after != nil {
		if err := after(ctx, conn); err != nil {
			closeConn(conn)
			return nil, fmt.Errorf("connect for %s: %w", app, err)
		}
	}
	return conn, nil
}

// closeConn closes a dedicated connection, waiting a bounded time for a
// server that does not answer.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn.Close(ctx)
}

// RequestPrepare stores p and notifies PrepareChannel with its operation
// ID, in one transaction, so a node that hears it finds it. CreatedAt is
// set by the database. Prepares older than a day are removed on the way.
// An operation ID already used is a Conflict.
func (db *DB) RequestPrepare(ctx context.Context, p hotswap.Prepare) error {
	if p.OpID == "" || p.App == "" || p.By == "" {
		return hotswap.Errorf(hotswap.Invalid, "prepare: operation ID, app and requesting node must be set (got %q, %q, %q)", p.OpID, p.App, p.By)
	}
	p.CreatedAt = time.Time{}
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("prepare %s: %w", p.OpID, err)
	}
	_, err = db.Pool().Exec(ctx, `
		WITH old AS (DELETE FROM prepares WHERE created_at < now() - interval '1 day'),
		ins AS (INSERT INTO prepares (op_id, app, doc, by_node) VALUES ($1, $2, $3, $4) RETURNING op_id)
		SELECT pg_notify('`+PrepareChannel+`', op_id) FROM ins`,
		p.OpID, p.App, doc, p.By)
	if isUnique(err) {
		return hotswap.Errorf(hotswap.Conflict, "prepare %s already requested", p.OpID)
	}
	if err != nil {
		return fmt.Errorf("prepare %s: %w", p.OpID, err)
	}
	return nil
}

// PendingPrepares returns the prepares younger than since, requested by
// another node than nodeID, that nodeID has not reported on, oldest first.
func (db *DB) PendingPrepares(ctx context.Context, nodeID string, since time.Duration) ([]hotswap.Prepare, error) {
	rows, _ := db.Pool().Query(ctx, `
		SELECT doc, created_at FROM prepares p
		WHERE created_at > now() - $2 * interval '1 microsecond' AND by_node <> $1
		AND NOT EXISTS (SELECT FROM prepare_results r WHERE r.op_id = p.op_id AND r.node_id = $1)
		ORDER BY created_at, op_id`, nodeID, since.Microseconds())
	ps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (hotswap.Prepare, error) {
		var doc []byte
		var created time.Time
		if err := row.Scan(&doc, &created); err != nil {
			return hotswap.Prepare{}, err
		}
		var p hotswap.Prepare
		if err := json.Unmarshal(doc, &p); err != nil {
			return p, err
		}
		p.CreatedAt = created
		return p, nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending prepares for node %s: %w", nodeID, err)
	}
	return ps, nil
}

// ReportPrepared records node nodeID's answer to prepare opID: "" when its
// sets are ready, else the error. A later report replaces an earlier one.
// An unknown opID is NotFound.
func (db *DB) ReportPrepared(ctx context.Context, opID, nodeID, errText string) error {
	if nodeID == "" {
		return hotswap.Errorf(hotswap.Invalid, "report prepared %s: node ID is empty", opID)
	}
	_, err := db.Pool().Exec(ctx, `
		INSERT INTO prepare_results (op_id, node_id, error) VALUES ($1, $2, $3)
		ON CONFLICT (op_id, node_id) DO UPDATE SET error = excluded.error, at = now()`,
		opID, nodeID, errText)
	if pgCode(err) == codeForeignKey {
		return hotswap.Errorf(hotswap.NotFound, "prepare %s not found", opID)
	}
	if err != nil {
		return fmt.Errorf("report prepared %s by node %s: %w", opID, nodeID, err)
	}
	return nil
}

// PrepareResults returns the answers to prepare opID so far: node ID to ""
// (ready) or its error. An unknown opID is NotFound.
func (db *DB) PrepareResults(ctx context.Context, opID string) (map[string]string, error) {
	rows, _ := db.Pool().Query(ctx, `
		SELECT r.node_id, r.error FROM prepares p
		LEFT JOIN prepare_results r ON r.op_id = p.op_id
		WHERE p.op_id = $1`, opID)
	results := map[string]string{}
	found := false
	var node, errText *string
	_, err := pgx.ForEachRow(rows, []any{&node, &errText}, func() error {
		found = true
		if node != nil {
			results[*node] = *errText
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prepare results of %s: %w", opID, err)
	}
	if !found {
		return nil, hotswap.Errorf(hotswap.NotFound, "prepare %s not found", opID)
	}
	return results, nil
}
