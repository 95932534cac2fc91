package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaderClass is the first key of the session advisory locks of
// leaderships ('hsld'); the second is hashtext of the name. Two int4 keys
// are a key space apart from the bigint keys of other advisory locks.
const leaderClass = 0x68736c64

// How often a Leadership checks its connection, and tries to take the lock
// while it does not hold it.
const (
	leaderPing  = time.Second
	leaderRetry = 2 * time.Second
	// leaderHoldOff is how long a node waits to bid again after its
	// connection failed: longer than leaderRetry, so that a healthy node
	// bidding takes over.
	leaderHoldOff = 2 * leaderRetry
	// leaderIdle is the idle_session_timeout of a Leadership's
	// connection: the server ends the session, and releases the lock, of
	// a node silent for that long (its host vanished, or a partition cut
	// it off), since a live one sends a query every leaderPing.
	leaderIdle = 5 * time.Second
)

// Leadership is one node's bid for a cluster-wide role held by at most one
// node at a time (the release engine, blob scans): a session advisory lock
// on a connection of its own. Get one with DB.Leader.
//
// The lock goes with the connection: when the connection dies the server
// releases it and another node takes it. A Leadership finds out that its
// connection died within about a second (it pings it), so for up to that
// long after a connection loss two nodes may both believe they lead; the
// work a leader does must bear that.
type Leadership struct {
	db     *DB
	name   string
	leader atomic.Bool
	// changed is signalled (without blocking) on each gain and loss.
	changed chan struct{}

	ctx    context.Context // the leadership's lifetime, cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
	once   sync.Once
}

// Leader bids for leadership name until ctx is done or Close is called: it
// connects (a connection apart from the pool), tries the lock, and while it
// does not hold it tries again every 2 seconds; while it holds it, it pings
// the connection every second and, if that fails, reports the loss at once
// and starts over on a new connection, bidding again after 4 seconds (so
// another node takes over if it can).
func (db *DB) Leader(ctx context.Context, name string) *Leadership {
	ctx, cancel := context.WithCancel(ctx)
	l := &Leadership{
		db:      db,
		name:    name,
		changed: make(chan struct{}, 1),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go l.run()
	return l
}

// IsLeader reports whether this node holds the leadership now.
func (l *Leadership) IsLeader() bool { return l.leader.Load() }

// Changed returns a channel that receives a value after the leadership was
// gained or lost (changes that come quickly together may leave one value);
// read IsLeader to learn which.
func (l *Leadership) Changed() <-chan struct{} { return l.changed }

// Close gives up the leadership: it releases the lock, closes the
// connection and waits until it has. It may be called more than once.
func (l *Leadership) Close() error {
	l.once.Do(l.cancel)
	<-l.done
	return nil
}

// set records whether the node leads and signals a change.
func (l *Leadership) set(leader bool) {
	if l.leader.Swap(leader) == leader {
		return
	}
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *Leadership) run() {
	defer close(l.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			l.release(conn)
		}
		l.set(false)
	}()
	var nextTry time.Time
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-wait.C:
		}
		wait.Reset(leaderPing)
		if conn == nil {
			c, err := l.db.dedicated(l.ctx, "hotswap leader "+l.name)
			if err != nil {
				continue
			}
			if err := l.setIdleTimeout(c); err != nil {
				closeConn(c)
				continue
			}
			conn = c
		}
		var err error
		if !l.IsLeader() && !time.Now().Before(nextTry) {
			var got bool
			got, err = l.try(conn)
			nextTry = time.Now().Add(leaderRetry)
			if err == nil && got {
				l.set(true)
			}
		} else {
			err = l.ping(conn)
		}
		if err != nil {
			// The lock, if held, went with the connection (or will, once
			// the server notices): lose it now and start over. A node whose
			// connection just failed leaves the next turn to the others.
			l.set(false)
			closeConn(conn)
			conn = nil
			nextTry = time.Now().Add(leaderHoldOff)
		}
	}
}

// setIdleTimeout makes the server end conn's session after leaderIdle
// without a query, on PostgreSQL 14 and later (which have
// idle_session_timeout); on an older server it logs that a leader whose
// host vanishes keeps the lead until TCP keepalives end its session.
func (l *Leadership) setIdleTimeout(conn *pgx.Conn) error {
	if v := serverMajor(conn); v < 14 {
		l.db.idleWarn.Do(func() {
			l.db.log().Warn("PostgreSQL before 14 has no idle_session_timeout: a leader whose host vanishes keeps its lead until TCP keepalives end its session (about 25s)",
				"server_version", conn.PgConn().ParameterStatus("server_version"))
		})
		return nil
	}
	ctx, cancel := context.WithTimeout(l.ctx, dialTimeout)
	defer cancel()
	_, err := conn.Exec(ctx, fmt.Sprintf("SET idle_session_timeout = %d", leaderIdle.Milliseconds()))
	return err
}

// try tries to take the lock.
func (l *Leadership) try(conn *pgx.Conn) (bool, error) {
	ctx, cancel := context.WithTimeout(l.ctx, leaderPing)
	defer cancel()
	var got bool
	err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, hashtext($2))", leaderClass, l.name).Scan(&got)
	return got, err
}

// ping checks that the connection, and with it the lock, is still there.
func (l *Leadership) ping(conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(l.ctx, leaderPing)
	defer cancel()
	return conn.Ping(ctx)
}

// release unlocks (so the next leader need not wait for the server to
// notice a closed connection) and closes conn.
func (l *Leadership) release(conn *pgx.Conn) {
	if l.IsLeader() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn.Exec(ctx, "SELECT pg_advisory_unlock($1, hashtext($2))", leaderClass, l.name)
		cancel()
	}
	closeConn(conn)
}
