// Command bench measures hotswap against the targets of issue 6 and the
// swap benchmark of issue 3, and writes bench/REPORT.md:
//
//   - proxy overhead: the same handler called directly, through nginx
//     (installed with apt-get where missing), through hotswap in forwarding
//     mode and through hotswap in payload mode, for a tiny and a 64 KiB body;
//   - allocations per request and a CPU profile of the forwarding path
//     (go test -bench BenchmarkLeanForward in internal/router);
//   - 2,000 idle keep-alive clients beside the 64 active ones (200 with
//     -smoke): every active request must still be answered;
//   - swaps every few seconds under 64 and 256 keep-alive clients;
//   - deploy to first response against a bare start of the same binary;
//   - server memory with idle and deployed slots;
//   - messages per second through a queue-triggered no-op function (bench/queue,
//     on an Azurite it starts) against the same handler called over HTTP, and
//     the time from enqueue to invocation at idle and under a steady stream;
//   - three nodes sharing a PostgreSQL store (issue 11; pgtest starts one, or
//     HOTSWAP_TEST_POSTGRES names it): swap call to every node serving the
//     new deployment, and one node's throughput against the SQLite server.
//   - traffic routing (issue 13): throughput on production's host name with a
//     10% rule to staging against no rule, and the forwarding path's cost
//     per request with no rule, the rule and the routing cookie (go test
//     -bench BenchmarkTrafficForward in internal/router; allocs/op must be 0).
//   - data plane (issue 14): the same handler directly, through hotswap,
//     nginx, HAProxy and Caddy (installed with apt-get where missing; a smoke
//     run skips a missing one and says so), in one run with the order
//     rotating by round: closed-loop req/s and p99 at a fixed open-loop
//     rate, small and 64 KiB, hotswap against the best peer; then a CPU
//     profile of hotswap's server under that load (its --pprof listener).
//
// Usage:
//
//	go run ./bench              # full run (about 16 minutes), writes bench/REPORT.md
//	go run ./bench -smoke       # CI: every scenario once, briefly; writes no report
//
// It builds hotswap and the handlers in bench/handler (forwarding mode) and
// bench/payload (payload mode), starts `hotswap serve` on free loopback
// ports, deploys them, starts the forwarding handler binary on its own port
// as the baseline, and drives everything with an in-process load generator
// over raw keep-alive HTTP/1.1 connections.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the run's settings, from flags.
type config struct {
	rounds   int
	duration time.Duration // measured part of each run
	warmup   time.Duration // unmeasured start of each run
	conns    int
	rate     float64 // open-loop rate; 0 = half the system under test's peak
	smoke    bool
	hotswap  string // prebuilt hotswap binary; "" = build ./cmd/hotswap
	out      string // report path; "" = none
	source   string // what hotswap binary was measured, for the report
	nginx    bool   // compare against nginx (installing it where missing)

	swapDuration time.Duration // each swap-under-load run
	swapEvery    time.Duration // time between swaps
	swapRate     float64       // open-loop rate during swaps, req/s in total
	swapClients  []int         // keep-alive clients, one run each
	maxSwaps     int           // 0 = as many as fit

	deployRounds int   // deploy vs bare start rounds
	idleSlots    []int // footprint: idle slot counts
	deployed     int   // footprint: deployed slots

	allocCount  int           // -count of the allocation benchmark
	allocTime   string        // -benchtime of the allocation benchmark
	profileTime string        // -benchtime of the profiled benchmark run
	elapsed     time.Duration // whole run, for the report
	only        string        // run only scenarios whose title contains it; "" = all
	pprofDir    string        // data plane: keep hotswap's CPU profiles here; "" = discard
}

// bench is a run in progress, handed to every scenario.
type bench struct {
	cfg   config
	env   *env
	logf  func(format string, args ...any)
	goals []goal // the Targets table
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.rounds, "rounds", 5, "rounds; each measures every target once per load kind")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured time of each run")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured warm-up before each run")
	fs.IntVar(&c.conns, "conns", 64, "concurrent keep-alive connections")
	fs.Float64Var(&c.rate, "rate", 0, "open-loop rate in req/s; 0 = half the median hotswap peak")
	fs.BoolVar(&c.smoke, "smoke", false, "one short round to check the machinery; writes no report")
	fs.StringVar(&c.hotswap, "hotswap", "", "use this hotswap binary instead of building ./cmd/hotswap")
	fs.StringVar(&c.out, "out", "", "report file (default bench/REPORT.md in the module; none with -smoke)")
	fs.BoolVar(&c.nginx, "nginx", true, "compare against nginx, installing it with apt-get where missing")
	fs.DurationVar(&c.swapDuration, "swap-duration", time.Minute, "length of each swap-under-load run")
	fs.DurationVar(&c.swapEvery, "swap-every", 3*time.Second, "time between swaps")
	fs.Float64Var(&c.swapRate, "swap-rate", 5000, "open-loop rate during swaps, req/s across all clients")
	clients := fs.String("swap-clients", "64,256", "keep-alive clients of each swap-under-load run")
	fs.IntVar(&c.deployRounds, "deploy-rounds", 5, "rounds of deploy vs bare start")
	idle := fs.String("idle-slots", "1,10,100", "footprint: idle slot counts")
	fs.IntVar(&c.deployed, "deployed-slots", 10, "footprint: deployed slots")
	fs.IntVar(&c.allocCount, "alloc-count", 5, "go test -count of the allocation benchmark")
	fs.StringVar(&c.profileTime, "profile-time", "10s", "go test -benchtime of the CPU-profiled run")
	fs.StringVar(&c.pprofDir, "pprof-dir", "", "data plane: keep the hotswap server's CPU profiles in this folder for go tool pprof")
	fs.StringVar(&c.only, "only", "", "run only the scenarios whose title contains this (e.g. Idle); the report then has just those")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err1, err2 error
	c.swapClients, err1 = parseInts(*clients)
	c.idleSlots, err2 = parseInts(*idle)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	c.allocTime = "1s"
	if c.smoke {
		c.rounds, c.duration, c.warmup = 1, time.Second, 200*time.Millisecond
		if c.rate == 0 {
			c.rate = 200
		}
		c.swapDuration, c.swapEvery, c.swapRate, c.maxSwaps = 5*time.Second, 1500*time.Millisecond, 1000, 2
		c.deployRounds, c.idleSlots, c.deployed = 1, []int{1, 3}, 2
		c.allocCount, c.allocTime, c.profileTime = 1, "2000x", "2000x"
	}
	if c.rounds < 1 || c.duration <= 0 || c.warmup < 0 || c.conns < 1 || c.rate < 0 {
		return errors.New("-rounds, -duration and -conns must be positive, -warmup and -rate not negative")
	}
	if c.swapDuration < 3*time.Second || c.swapEvery <= 0 || c.swapRate <= 0 || len(c.swapClients) == 0 ||
		c.deployRounds < 1 || len(c.idleSlots) == 0 || c.deployed < 1 || c.allocCount < 1 {
		return errors.New("-swap-duration must be at least 3s; -swap-every, -swap-rate, -deploy-rounds, -deployed-slots, -alloc-count positive; -swap-clients and -idle-slots not empty")
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	e, err := openEnv(ctx, c.hotswap, c.nginx, logf)
	if err != nil {
		return err
	}
	// Stop the servers on every way out, a panic included; the panic then
	// goes on with its stack trace.
	defer func() {
		if cerr := e.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("clean up: %w", cerr)
		}
	}()

	c.source = "built from the working tree at " + revision(ctx)
	if c.hotswap != "" {
		c.source = "prebuilt binary " + c.hotswap
	}
	b := &bench{cfg: c, env: e, logf: logf}
	began := time.Now().UTC()
	var sections []*section
	for _, sc := range scenarios(e) {
		if !strings.Contains(sc.name, c.only) {
			continue
		}
		logf("scenario %s", sc.name)
		s, err := sc.run(ctx, b)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc.name, err)
		}
		s.title = sc.name
		sections = append(sections, s)
	}

	b.cfg.elapsed = time.Since(began).Round(time.Second)
	report := render(began, "go run ./bench "+strings.Join(args, " "), b, sections)
	fmt.Fprint(stdout, report)

	var failed int64
	for _, s := range sections {
		failed += s.failed
	}
	if !c.smoke {
		out := c.out
		if out == "" {
			root, err := moduleRoot(ctx)
			if err != nil {
				return err
			}
			out = filepath.Join(root, "bench", "REPORT.md")
		}
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			return err
		}
		logf("wrote %s", out)
	}
	if failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	return nil
}

// render writes the report in Markdown.
func render(began time.Time, command string, b *bench, sections []*section) string {
	c := b.cfg
	var w strings.Builder
	fmt.Fprintf(&w, "# hotswap benchmark: data plane, swaps, deploys and footprint\n\n")
	fmt.Fprintf(&w, "- date: %s\n", began.Format(time.RFC3339))
	fmt.Fprintf(&w, "- machine: %s, %d cores, kernel %s\n", cpuModel(), runtime.NumCPU(), kernel())
	fmt.Fprintf(&w, "- Go: %s\n", runtime.Version())
	fmt.Fprintf(&w, "- hotswap: %s\n", c.source)
	fmt.Fprintf(&w, "- command: `%s` (took %v)\n", strings.TrimSpace(command), c.elapsed)
	fmt.Fprintf(&w, "- proxy overhead: %d rounds; each run %v warm-up + %v measured; %d keep-alive connections; targets alternate within each round\n",
		c.rounds, c.warmup, c.duration, c.conns)
	fmt.Fprintf(&w, "- nginx: %s\n", b.env.nginxNote)
	fmt.Fprintf(&w, "- load generator, hotswap, nginx and the handlers share the same machine over loopback, so every figure includes competition for the CPU\n\n")
	fmt.Fprintf(&w, "Each cell: median across rounds, then (min–max). A ratio column divides the medians: below 1 for req/s means the target serves less than the baseline, above 1 for latency means it is slower.\n")

	fmt.Fprintf(&w, "\n## Targets\n\n")
	fmt.Fprintf(&w, "| target (issue 6) | figure | status |\n|---|---|---|\n")
	goals := slices.Clone(b.goals)
	slices.SortStableFunc(goals, func(x, y goal) int { return x.order - y.order })
	for _, g := range goals {
		fmt.Fprintf(&w, "| %s | %s | %s |\n", g.target, g.figure, g.status)
	}
	for _, s := range sections {
		fmt.Fprintf(&w, "\n## %s\n\n", s.title)
		if len(s.header) > 0 {
			fmt.Fprintf(&w, "| %s |\n", strings.Join(s.header, " | "))
			fmt.Fprintf(&w, "|%s\n", strings.Repeat("---|", len(s.header)))
			for _, r := range s.rows {
				fmt.Fprintf(&w, "| %s |\n", strings.Join(r, " | "))
			}
			w.WriteString("\n")
		}
		if s.text != "" {
			w.WriteString(s.text)
			w.WriteString("\n")
		}
		for _, n := range s.notes {
			fmt.Fprintf(&w, "%s\n", n)
		}
	}
	return w.String()
}

// parseInts reads a comma-separated list of positive integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a list of positive integers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	out, err := exec.Command("uname", "-r").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// revision names the checked-out commit, marked dirty when the tree has
// uncommitted changes.
func revision(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown commit"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += " (with uncommitted changes)"
	}
	return rev
}
