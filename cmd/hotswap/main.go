// Command hotswap is the hotswap function platform: `hotswap serve` runs the
// server (functions listener, control plane, handler processes); every other
// command is a client of the control plane.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/binding"
	"github.com/hotswap/hotswap/internal/cli"
	"github.com/hotswap/hotswap/internal/httpapi"
	"github.com/hotswap/hotswap/internal/metrics"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/portal"
	"github.com/hotswap/hotswap/internal/postgres"
	"github.com/hotswap/hotswap/internal/release"
	"github.com/hotswap/hotswap/internal/rollout"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
	"github.com/hotswap/hotswap/internal/trigger"
)

// Version is the build's version, set with -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serve(os.Args[2:]))
	}
	wd, _ := os.Getwd()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Run(ctx, os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, LookupEnv: os.LookupEnv, WorkDir: wd, Version: Version}))
}

func serve(args []string) int {
	m := NewMain()
	if err := m.ParseFlags(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "hotswap serve:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "hotswap serve:", err)
		m.Close()
		return 1
	}
	select {
	case <-ctx.Done():
	case <-m.drained:
	}
	stop()
	m.Drain()
	m.logger.Info("shutting down")
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "hotswap serve: shutdown:", err)
		return 1
	}
	return 0
}

// Config is the server's configuration, from flags.
type Config struct {
	DataDir string
	// Store is where the state lives: empty for SQLite in DataDir, or a
	// postgres:// URL shared by the nodes of a cluster (--store or
	// HOTSWAP_STORE).
	Store    string
	NodeName string // this node's name in the cluster; default the host name
	// DrainDelay is how long a draining node fails its health check while
	// still serving, so the load balancer notices before it stops
	// accepting; zero = 3s with a PostgreSQL store, none with SQLite.
	DrainDelay time.Duration
	// Listen and Admin are the functions and control plane listeners:
	// loopback only by default, as the banner's URLs say; ":8080" listens
	// on every interface.
	Listen          string
	Admin           string
	Domain          string
	LogLevel        string
	StartTimeout    time.Duration
	DrainGrace      time.Duration
	ShutdownGrace   time.Duration
	MaxPackageBytes int64
	MaxPackageFiles int
	MaxUnpacked     int64
	RevertWindow    time.Duration
	IdleTimeout     time.Duration
	MaxWarmSets     int
	Retention       int
	ReleaseTick     time.Duration
	PprofAddr       string // net/http/pprof listener; empty: none
	// PublicURL is the portal's address as browsers reach it (e.g. behind
	// a TLS proxy); empty: as reached. https makes its cookies Secure.
	PublicURL string
	// Payload mode: the largest request body (0: router.DefaultMaxPayloadBody,
	// 8 MiB) and the invocations in flight per process set (0:
	// router.DefaultPayloadConcurrency, 32), and how long a request body
	// may take to arrive, all of it (0: router.DefaultPayloadBodyTimeout,
	// 30 s; then 408).
	PayloadMaxBody     int64
	PayloadConcurrency int
	PayloadBodyTimeout time.Duration
	// TriggerMemory bounds the bytes of queue and blob trigger payloads
	// (blobs, blob inputs and their copies) held at once by all functions
	// (0: trigger.DefaultMemoryBudget, 256 MiB). Each blob they read is at
	// most PayloadMaxBody.
	TriggerMemory int64
	// AllowEmptyStore starts with a store that has no apps beside a
	// packages folder that is not empty (see checkStore).
	AllowEmptyStore bool
	// HandlerUser is the account handlers run as when the server runs as
	// root, created at start if missing (default hotswap-handler). Empty:
	// handlers of a root server run as root (a warning is logged). A
	// server that is not root runs handlers as its own user.
	HandlerUser string
	// The functions listener's bounds (see router.ConnLimits and
	// router.Server): how long a handler may take to start its answer (0:
	// 230 s, then 504), how long a request body may go without a byte
	// arriving (0: 60 s, then 408), and the connections to one handler
	// process, open at once and kept idle (0: 512 and 128).
	ResponseHeaderTimeout time.Duration
	BodyReadTimeout       time.Duration
	MaxHandlerConns       int
	MaxIdleHandlerConns   int
}

// Main is the running server: every component, opened by Run and closed by Close.
type Main struct {
	Config Config
	Stdout io.Writer

	logger    *slog.Logger
	lock      *os.File // the data directory's lock, held while serving
	db        store
	cluster   *postgres.DB         // the same store, when it is PostgreSQL
	leader    *postgres.Leadership // of the release engine and blob scans
	drained   chan struct{}        // closed by a drain through the API
	drainOnce sync.Once
	runtime   *runtime.Manager
	ops       *ops.Service
	triggers  *trigger.Manager
	releases  *release.Engine
	rollouts  *rollout.Engine
	// clusterMetrics sums every node's requests for the leader's
	// progressive swaps and metric gates; nil on a single server.
	clusterMetrics *rollout.ClusterMetrics
	metrics        *metrics.Registry
	router         *router.Handler
	fnServer       *router.Server
	apiServer      *http.Server
	pprofServer    *http.Server
	fnLn           net.Listener
	apiLn          net.Listener
	closed         bool
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{
		Config: Config{
			DataDir:       "hotswap-data",
			Listen:        "127.0.0.1:8080",
			Admin:         "127.0.0.1:7070",
			Domain:        "localhost",
			LogLevel:      "info",
			StartTimeout:  60 * time.Second,
			DrainGrace:    30 * time.Second,
			ShutdownGrace: 30 * time.Second,
			HandlerUser:   defaultHandlerUser,
		},
		Stdout: os.Stdout,
	}
}

// ParseFlags reads the serve command's flags into m.Config.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("hotswap serve", flag.ContinueOnError)
	c := &m.Config
	fs.StringVar(&c.DataDir, "data", c.DataDir, "directory for the SQLite store, packages (with PostgreSQL: this node's cache of them) and the admin token")
	fs.StringVar(&c.Store, "store", os.Getenv("HOTSWAP_STORE"), "postgres://user:password@host/db to share the state with other nodes (a cluster); empty: SQLite in --data (env HOTSWAP_STORE)")
	fs.StringVar(&c.NodeName, "node-name", "", "this node's name in the cluster (hotswap nodes); default: the host name")
	fs.DurationVar(&c.DrainDelay, "drain-delay", 0, "how long a draining node (SIGTERM, hotswap drain) fails its health check before it stops accepting; 0 = 3s with --store postgres://, none with SQLite")
	fs.StringVar(&c.Listen, "listen", envOr("HOTSWAP_LISTEN", c.Listen), "functions listener `address` (env HOTSWAP_LISTEN); the default is loopback only, :8080 listens on every interface")
	fs.StringVar(&c.Admin, "admin", envOr("HOTSWAP_ADMIN", c.Admin), "control plane (API and portal) listener `address` (env HOTSWAP_ADMIN); the default is loopback only, :7070 listens on every interface")
	fs.StringVar(&c.Domain, "domain", c.Domain, "domain of slot host names: <app>[-<slot>].<domain>")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.DurationVar(&c.StartTimeout, "start-timeout", c.StartTimeout, "how long a handler process may take to become ready")
	fs.DurationVar(&c.DrainGrace, "drain-grace", c.DrainGrace, "how long in-flight requests may take on a retired process set")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, "how long in-flight requests may take at shutdown")
	fs.Int64Var(&c.MaxPackageBytes, "max-package-bytes", 0, "largest package (zip) accepted; 0 = 256 MiB")
	fs.Int64Var(&c.MaxUnpacked, "max-unpacked-bytes", 0, "largest unpacked package; 0 = 1 GiB")
	fs.IntVar(&c.MaxPackageFiles, "max-package-files", 0, "most files in a package; 0 = 20000")
	fs.DurationVar(&c.RevertWindow, "revert-window", 10*time.Minute, "how long retired process sets stay warm for an instant swap back; negative disables")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", ops.DefaultIdleTimeout, "how long a slot other than production may serve nothing before its handlers stop until the next request (scale to zero); 0 disables; a slot's HOTSWAP_IDLE_TIMEOUT setting overrides it")
	fs.IntVar(&c.MaxWarmSets, "max-warm-sets", 16, "most retired process sets kept warm (memory bound); the oldest stop first")
	fs.StringVar(&c.PprofAddr, "pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060) for profiling; off when empty")
	fs.StringVar(&c.PublicURL, "public-url", "", "the portal's URL as browsers reach it, e.g. https://hotswap.example.com behind a TLS proxy (https: Secure cookies)")
	fs.Int64Var(&c.PayloadMaxBody, "payload-max-body", 0, "largest request body a payload-mode function accepts (larger: 413); 0 = 8 MiB")
	fs.Int64Var(&c.TriggerMemory, "trigger-memory", 0, "bytes of queue and blob trigger payloads (blobs, blob inputs, their copies) held at once by all functions; more wait; 0 = 256 MiB")
	fs.IntVar(&c.PayloadConcurrency, "payload-concurrency", 0, "payload-mode invocations in flight per process set (more wait up to 1s, then 503); 0 = 32")
	fs.DurationVar(&c.PayloadBodyTimeout, "payload-body-timeout", 0, "time a payload-mode request body may take to arrive, all of it, before the client gets 408; 0 = 30s")
	fs.DurationVar(&c.ReleaseTick, "release-tick", time.Second, "how often waiting release stages (approvals, gates, queues) are looked at")
	fs.IntVar(&c.Retention, "retention", 20, "successful deployments kept per app (failed ones are kept apart, the last 5; a served, previously served or warm one is always kept)")
	fs.BoolVar(&c.AllowEmptyStore, "allow-empty-store", false, "start even though the database is empty while the packages folder is not (the database was lost)")
	fs.DurationVar(&c.ResponseHeaderTimeout, "response-header-timeout", 0, "how long a function handler may take to start its answer before the client gets 504; 0 = 230s")
	fs.DurationVar(&c.BodyReadTimeout, "body-read-timeout", 0, "how long a request body may go without a byte arriving before the client gets 408; 0 = 60s")
	fs.IntVar(&c.MaxHandlerConns, "max-handler-conns", 0, "connections open at once to one handler process (more requests wait for one); 0 = 512")
	fs.IntVar(&c.MaxIdleHandlerConns, "max-idle-handler-conns", 0, "idle connections kept for reuse per handler process; 0 = 128")
	fs.StringVar(&c.HandlerUser, "handler-user", c.HandlerUser, "unprivileged user handlers run as when the server runs as root; created if missing; empty: run them as root (they can then read the server's secrets)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.Domain == "" || strings.ContainsAny(c.Domain, "/: ") {
		return fmt.Errorf("--domain %q is not a domain name", c.Domain)
	}
	return nil
}

// envOr returns the environment variable name, or def when it is unset or
// empty.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Run opens every component and starts serving. It returns once both
// listeners accept connections.
func (m *Main) Run(ctx context.Context) error {
	c := m.Config
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	m.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	var err error
	if m.lock, err = lockDataDir(c.DataDir); err != nil {
		return err
	}
	handlerUser, homes, err := m.isolate(ctx)
	if err != nil {
		return err
	}
	token, created, err := adminToken(filepath.Join(c.DataDir, "admin-token"))
	if err != nil {
		return err
	}
	if err := m.openStore(ctx); err != nil {
		return err
	}
	// Packages are sealed (read-only, verified before reuse) only when
	// handlers run as another user, who cannot change them.
	openArtifacts := artifact.Open
	if handlerUser == nil {
		openArtifacts = artifact.OpenUnsealed
	}
	arts, err := openArtifacts(filepath.Join(c.DataDir, "packages"), artifact.Limits{
		MaxCompressed: c.MaxPackageBytes, MaxUncompressed: c.MaxUnpacked, MaxFiles: c.MaxPackageFiles,
	})
	if err != nil {
		return fmt.Errorf("open package store: %w", err)
	}
	if m.cluster != nil {
		// Each node keeps a verified cache of the packages, which live in
		// the database: a deploy stores its zip there before any node runs it.
		arts.SetMirror(m.cluster.PutPackage)
	} else if err := checkStore(ctx, m.db, arts, c.DataDir, c.AllowEmptyStore); err != nil {
		return err
	}
	if m.fnLn, err = net.Listen("tcp", c.Listen); err != nil {
		return fmt.Errorf("functions listener: %w", err)
	}
	if m.apiLn, err = net.Listen("tcp", c.Admin); err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	m.runtime = runtime.NewManager(m.logger.With("component", "runtime"))
	m.runtime.User, m.runtime.Homes = handlerUser, homes
	// The warden kills whatever the handlers started themselves if this
	// process dies; the host id lets a restart find what an earlier run left.
	hostID, err := m.hostID(ctx)
	if err != nil {
		return err
	}
	if err := m.runtime.Guard(hostID, m.lock); err != nil {
		return err
	}
	m.metrics = metrics.New()
	outputs := &binding.Writer{} // queue and blob output bindings
	// Queue and blob triggers listen on the sets ops publishes as serving.
	// HOTSWAP_TEST_QUEUE_LEASE, for the at-least-once tests only, shortens
	// how long a fetched queue message stays hidden (as CrashPoint below).
	lease, _ := time.ParseDuration(os.Getenv("HOTSWAP_TEST_QUEUE_LEASE"))
	var scanLeader func() bool
	if m.cluster != nil {
		// One node of the cluster runs the releases and scans blob
		// containers (an advisory lock in the store); the others forward
		// release changes to it and stand by.
		m.leader = m.cluster.Leader(context.Background(), "hotswap-leader")
		scanLeader = m.leader.IsLeader
	}
	m.triggers = trigger.New(trigger.Config{
		Leader:       scanLeader,
		Lease:        lease,
		Outputs:      outputs,
		Check:        binding.Check,
		Logger:       m.logger.With("component", "trigger"),
		MaxPayload:   c.PayloadMaxBody,
		MemoryBudget: c.TriggerMemory,
	})
	m.metrics.Collectors = append(m.metrics.Collectors, m.triggers)
	m.router = router.New(router.Config{
		Domain: c.Domain, Logger: m.logger.With("component", "router"), Version: Version,
		ConnLimits:     router.ConnLimits{ResponseHeaderTimeout: c.ResponseHeaderTimeout, MaxConnsPerSet: c.MaxHandlerConns, MaxIdleConnsPerSet: c.MaxIdleHandlerConns},
		MaxPayloadBody: c.PayloadMaxBody, Payload: router.PayloadLimits{Concurrency: c.PayloadConcurrency, BodyTimeout: c.PayloadBodyTimeout},
		Outputs: outputs, Listeners: m.triggers,
	})
	m.ops, err = ops.Open(ctx, ops.Config{
		Domain:       c.Domain,
		PublicAddr:   m.fnLn.Addr().String(),
		Store:        m.db,
		Artifacts:    arts,
		Runtime:      m.runtime,
		Router:       m.router,
		Metrics:      m.metrics,
		Logger:       m.logger.With("component", "ops"),
		StartTimeout: c.StartTimeout,
		DrainGrace:   c.DrainGrace,
		RevertWindow: c.RevertWindow,
		IdleTimeout:  idleTimeout(c.IdleTimeout),
		MaxWarmSets:  c.MaxWarmSets,
		Retention:    c.Retention,
		Outputs:      outputs,
		Triggers:     m.triggers,
		CrashPoint:   os.Getenv("HOTSWAP_TEST_CRASH_AT"),
		Cluster:      m.clusterOrNil(),
		NodeName:     c.NodeName,
		Version:      Version,
	})
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	m.router.SetKeyStore(m.ops)
	m.router.SetHealth(m.ops.Health)
	// Progressive swaps run on the node that runs the releases.
	roc := rollout.Config{Store: m.db, Ops: m.ops, Metrics: rollout.Local(m.metrics), Logger: m.logger.With("component", "rollout"), CrashPoint: os.Getenv("HOTSWAP_TEST_CRASH_AT")}
	var gates windower = m.metrics
	if m.leader != nil {
		roc.Leader = m.leader.IsLeader
		m.clusterMetrics, err = rollout.OpenClusterMetrics(ctx, rollout.ClusterConfig{
			Source: m.cluster, Active: m.leader.IsLeader, Logger: m.logger.With("component", "cluster-metrics"),
		})
		if err != nil {
			return fmt.Errorf("start cluster metrics: %w", err)
		}
		roc.Metrics, gates = m.clusterMetrics, m.clusterMetrics
	}
	if m.rollouts, err = rollout.Open(ctx, roc); err != nil {
		return fmt.Errorf("start progressive swaps: %w", err)
	}
	rc := release.Config{
		Store:    m.db,
		Ops:      m.ops,
		Rollouts: m.rollouts,
		Metrics:  releaseMetrics{gates},
		Tick:     c.ReleaseTick,
		Logger:   m.logger.With("component", "release"),
	}
	if m.leader != nil {
		rc.Leader, rc.Bus, rc.NodeID = m.leader, m.cluster, m.ops.NodeID()
	}
	m.releases, err = release.Open(ctx, rc)
	if err != nil {
		return fmt.Errorf("start release engine: %w", err)
	}
	var web *portal.Portal // set below, before the API serves
	api := httpapi.New(httpapi.Config{
		Ops: m.ops, AdminToken: token, Domain: c.Domain, Logger: m.logger.With("component", "api"), Version: Version,
		Store: m.db, Releases: m.releases, Rollouts: m.rollouts, Metrics: m.metrics.Handler(),
		RotateAdminToken: func(context.Context) (string, error) {
			t, err := newAdminToken(filepath.Join(c.DataDir, "admin-token"))
			if err != nil {
				return "", err
			}
			web.SetAdminToken(t)
			return t, nil
		},
		Drain: func() { m.drainOnce.Do(func() { close(m.drained) }) },
	})

	web, err = portal.New(ctx, portal.Config{
		Ops: m.ops, Releases: m.releases, Rollouts: m.rollouts, Store: m.db, Authenticate: api.TokenActor,
		AdminToken: token, PublicURL: c.PublicURL, MaxPackageBytes: c.MaxPackageBytes,
		Logger: m.logger.With("component", "portal"), Version: Version, Metrics: m.metrics,
	})
	if err != nil {
		return fmt.Errorf("start portal: %w", err)
	}
	admin := adminHandler(api, web, c.Domain)

	m.fnServer = router.NewServer(m.router, &http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(m.logger.Handler(), slog.LevelDebug)})
	m.fnServer.BodyReadTimeout = c.BodyReadTimeout
	m.apiServer = &http.Server{Handler: admin, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(m.logger.Handler(), slog.LevelDebug)}
	go m.fnServer.Serve(m.fnLn)
	go m.apiServer.Serve(m.apiLn)
	if c.PprofAddr != "" {
		ln, err := net.Listen("tcp", c.PprofAddr)
		if err != nil {
			return fmt.Errorf("pprof listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		m.pprofServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go m.pprofServer.Serve(ln)
	}

	fmt.Fprintf(m.Stdout, "hotswap %s serving\n  functions: http://<app>[-<slot>].%s%s\n  control:   http://%s\n  portal:    http://%s/\n", Version, c.Domain, portSuffix(m.fnLn.Addr()), m.AdminAddr(), m.AdminAddr())
	if created {
		fmt.Fprintf(m.Stdout, "  admin token (shown once, kept in %s): %s\n", filepath.Join(c.DataDir, "admin-token"), token)
	} else {
		fmt.Fprintf(m.Stdout, "  admin token: in %s\n", filepath.Join(c.DataDir, "admin-token"))
	}
	return nil
}

// FunctionsAddr returns the functions listener's address.
func (m *Main) FunctionsAddr() string { return m.fnLn.Addr().String() }

// AdminAddr returns the control plane listener's address as host:port.
func (m *Main) AdminAddr() string {
	addr := m.apiLn.Addr().(*net.TCPAddr)
	if addr.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", addr.Port)
	}
	return addr.String()
}

func portSuffix(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && t.Port != 80 {
		return fmt.Sprintf(":%d", t.Port)
	}
	return ""
}

// Close stops accepting, lets in-flight requests finish within the shutdown
// grace, stops every handler process and closes the store. Idempotent.
func (m *Main) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownGrace)
	defer cancel()
	var errs []error
	if m.fnServer != nil {
		if err := m.fnServer.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if m.pprofServer != nil {
		m.pprofServer.Close()
	}
	if m.apiServer != nil {
		if err := m.apiServer.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			m.apiServer.Close()
		}
	}
	for _, ln := range []net.Listener{m.fnLn, m.apiLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if m.releases != nil {
		errs = append(errs, m.releases.Close())
	}
	if m.rollouts != nil {
		errs = append(errs, m.rollouts.Close())
	}
	if m.clusterMetrics != nil {
		errs = append(errs, m.clusterMetrics.Close())
	}
	if m.leader != nil {
		m.leader.Close()
	}
	if m.triggers != nil {
		// Stop pulling work; invocations in flight get the shutdown grace.
		errs = append(errs, m.triggers.Close(ctx))
	}
	if m.ops != nil {
		errs = append(errs, m.ops.Close())
	}
	if m.runtime != nil {
		errs = append(errs, m.runtime.Close())
	}
	if m.db != nil {
		errs = append(errs, m.db.Close())
	}
	if m.lock != nil {
		errs = append(errs, m.lock.Close()) // releases the flock
	}
	return errors.Join(errs...)
}

// idleTimeout turns the --idle-timeout flag (0: never) into ops' setting
// (0: the default, negative: never).
func idleTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// lockDataDir takes an exclusive lock on dir/lock, so two servers never
// share a data directory: they would both run every slot's handlers and
// the warden of one would sweep the other's. The lock goes with the
// process, however it ends, and with its warden, which holds it until its
// last sweep is done; so a server restarted at once after a crash waits a
// moment for that. The file holds the pid, to name the holder.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("data directory %s is in use by another hotswap server (pid %s); stop it or use another --data", dir, pid)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// lockWait is how long serve waits for the data directory's lock.
const lockWait = 5 * time.Second

// hostID returns this data directory's host id, made on first start.
func (m *Main) hostID(ctx context.Context) (string, error) {
	if m.cluster != nil {
		// The store is shared by every node, so the mark is kept in the
		// node's own data folder: a node's warden (or a restarted node's
		// sweep) must never kill the handlers of the others.
		return fileHostID(filepath.Join(m.Config.DataDir, "host-id"))
	}
	id, ok, err := m.db.GetMeta(ctx, "host_id")
	if err != nil || ok {
		return id, err
	}
	id, err = newHostID()
	if err != nil {
		return "", err
	}
	if err := m.db.SetMeta(ctx, "host_id", id); err != nil {
		return "", err
	}
	return id, nil
}

func newHostID() (string, error) {
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	return "h" + hex.EncodeToString(raw[:]), nil
}

// fileHostID reads the host id kept in path, or makes one and writes it
// there (atomically: a crash leaves the old file or the new one).
func fileHostID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if len(id) != 25 || id[0] != 'h' {
			return "", fmt.Errorf("host id file %s holds %q, not a host id; delete it to make a new one", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read host id: %w", err)
	}
	id, err := newHostID()
	if err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write host id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write host id: %w", err)
	}
	return id, nil
}

// adminToken reads the admin token from path, creating it (mode 0600) when
// missing. created reports whether it was made now.
func adminToken(path string) (token string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", false, fmt.Errorf("admin token file %s is empty; delete it to make a new token", path)
		}
		return t, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read admin token: %w", err)
	}
	token, err = newAdminToken(path)
	if err != nil {
		return "", false, err
	}
	return token, true, nil
}

// newAdminToken makes a new admin token and writes it to path (mode 0600),
// replacing the file in one rename so that a crash leaves the old token or
// the new one, never half of one.
func newAdminToken(path string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := "hs_" + base64.RawURLEncoding.EncodeToString(raw[:])
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write admin token: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("write admin token: %w", err)
	}
	f.Close()
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return token, nil
}

// adminHandler serves the admin listener: the API under /api/, /kudu/,
// /healthz and /metrics and on Kudu's *.scm.<domain> host names, the portal
// everywhere else.
func adminHandler(api, web http.Handler, domain string) http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"/api/", "/kudu/", "/healthz", "/metrics"} {
		mux.Handle(p, api)
	}
	mux.Handle("/", web)
	scm := ".scm." + strings.ToLower(domain)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.ToLower(r.Host)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if strings.HasSuffix(host, scm) {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// windower gives a slot's request metrics over the last d: this server's
// registry, or a cluster's metrics.
type windower interface {
	Window(app, slot string, d time.Duration) metrics.Stats
}

// releaseMetrics lets metric gates read the request metrics.
type releaseMetrics struct{ r windower }

func (m releaseMetrics) Window(app, slot string, d time.Duration) release.Stats {
	s := m.r.Window(app, slot, d)
	return release.Stats{Requests: s.Requests, Errors: s.Errors, P95: s.P95}
}
