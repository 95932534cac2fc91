// Command bench measures what hotswap's functions listener costs compared
// with calling the same handler directly, and writes bench/REPORT.md.
//
//	go run ./bench              # full run (about 5 minutes), writes bench/REPORT.md
//	go run ./bench -smoke       # CI: one short round, checks the machinery only
//
// It builds hotswap and the handler in bench/handler, starts `hotswap serve`
// on free loopback ports, deploys the handler as app "bench", starts the same
// handler binary on its own port as the baseline, and drives both with an
// in-process load generator over raw keep-alive HTTP/1.1 connections.
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
}

// bench is a run in progress, handed to every scenario.
type bench struct {
	cfg  config
	env  *env
	logf func(format string, args ...any)
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.smoke {
		c.rounds, c.duration, c.warmup = 1, time.Second, 200*time.Millisecond
		if c.rate == 0 {
			c.rate = 200
		}
	}
	if c.rounds < 1 || c.duration <= 0 || c.warmup < 0 || c.conns < 1 || c.rate < 0 {
		return errors.New("-rounds, -duration and -conns must be positive, -warmup and -rate not negative")
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	e, err := openEnv(ctx, c.hotswap, logf)
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
		logf("scenario %s", sc.name)
		s, err := sc.run(ctx, b)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc.name, err)
		}
		s.title = sc.name
		sections = append(sections, s)
	}

	report := render(began, "go run ./bench "+strings.Join(args, " "), c, sections)
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
func render(began time.Time, command string, c config, sections []*section) string {
	var w strings.Builder
	fmt.Fprintf(&w, "# hotswap benchmark: direct handler vs through hotswap\n\n")
	fmt.Fprintf(&w, "- date: %s\n", began.Format(time.RFC3339))
	fmt.Fprintf(&w, "- machine: %s, %d cores, kernel %s\n", cpuModel(), runtime.NumCPU(), kernel())
	fmt.Fprintf(&w, "- Go: %s\n", runtime.Version())
	fmt.Fprintf(&w, "- hotswap: %s\n", c.source)
	fmt.Fprintf(&w, "- command: `%s`\n", strings.TrimSpace(command))
	fmt.Fprintf(&w, "- %d rounds; each run %v warm-up + %v measured; %d keep-alive connections; targets alternate within each round\n",
		c.rounds, c.warmup, c.duration, c.conns)
	fmt.Fprintf(&w, "- load generator, hotswap and the handler share the same machine over loopback, so every figure includes competition for the CPU\n\n")
	fmt.Fprintf(&w, "Each cell: median across rounds, then (min–max). The ratio column divides the medians: below 1 for req/s means hotswap serves less, above 1 for latency means hotswap is slower.\n")
	for _, s := range sections {
		fmt.Fprintf(&w, "\n## %s\n\n", s.title)
		fmt.Fprintf(&w, "| %s |\n", strings.Join(s.header, " | "))
		fmt.Fprintf(&w, "|%s\n", strings.Repeat("---|", len(s.header)))
		for _, r := range s.rows {
			fmt.Fprintf(&w, "| %s |\n", strings.Join(r, " | "))
		}
		w.WriteString("\n")
		for _, n := range s.notes {
			fmt.Fprintf(&w, "%s\n", n)
		}
	}
	return w.String()
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
