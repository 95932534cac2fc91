package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Server is a PostgreSQL server that hands out databases: a local one this
// package started, or the one named by Env.
type Server struct {
	// admin is the URL of the database to connect to for CREATE and DROP
	// DATABASE; a new database's URL is admin with another path.
	admin *url.URL
	// proc is the local server process; nil for a server given by Env.
	proc *process
}

// Run returns a server for a program that is not a test (the benchmark):
// the one named by Env when set, else a new local server. The func stops a
// local server and removes its files (it does nothing for Env's server).
// Unlike DSN it never skips: a missing PostgreSQL is an error wrapping
// ErrNotInstalled.
func Run() (*Server, func(), error) {
	s, err := open()
	if err != nil {
		return nil, nil, err
	}
	return s, s.stop, nil
}

// external returns the server at raw, Env's value. The error does not quote
// raw: it may hold a password.
func external(raw string) (*Server, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, fmt.Errorf("%s is not a postgres://user:password@host:port/database URL", Env)
	}
	if strings.Trim(u.Path, "/") == "" {
		u.Path = "/postgres"
	}
	return &Server{admin: u}, nil
}

// stop stops a local server; a server given by Env is left alone.
func (s *Server) stop() {
	if s.proc != nil {
		s.proc.stop()
	}
}

// CreateDatabase creates a new, empty database whose name starts with hint
// (a test name; letters other than a-z and 0-9 become _) and ends with a
// random suffix, and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context, hint string) (string, error) {
	name := databaseName(hint)
	conn, err := s.connect(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u := *s.admin
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// DropDatabase drops the database of dsn, a URL from CreateDatabase,
// closing the connections still open to it. Dropping a database that does
// not exist is not an error.
func (s *Server) DropDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("drop database: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("drop database: %q names no database", u.Path)
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ident := pgx.Identifier{name}.Sanitize()
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42601" {
		if err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	// A server older than 13 has no FORCE (syntax error 42601): end the
	// database's sessions, then drop it, again while a session ends.
	for {
		_, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident)
		}
		if !errors.As(err, &pgErr) || pgErr.Code != "55006" { // object_in_use
			if err != nil {
				return fmt.Errorf("drop database %s: %w", name, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drop database %s: %w", name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// connect opens a connection to the admin database.
func (s *Server) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, s.admin.String())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s.admin.Redacted(), err)
	}
	return conn, nil
}

// databaseName returns a new database name made of hint's first letters
// and a random suffix; at most 7+30+13 bytes, well under PostgreSQL's 63.
func databaseName(hint string) string {
	var b strings.Builder
	b.WriteString("pgtest_")
	for _, r := range strings.ToLower(hint) {
		if b.Len() >= len("pgtest_")+30 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var suffix [6]byte
	rand.Read(suffix[:])
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(suffix[:]))
	return b.String()
}
