package main

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// leanBench is the benchmark of internal/router that drives the lean
// forwarding path over loopback: one keep-alive client, a raw upstream, all
// in the test process, so allocs/op is the forwarding path's own.
const leanBench = "BenchmarkLeanForward"

// goTest runs go test in the module root and returns its output.
func goTest(ctx context.Context, root string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", append([]string{"test"}, args...)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("go test %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// allocations runs the forwarding-path benchmark with -benchmem and reports
// its lines: ns/op, B/op and allocs/op.
func allocations(ctx context.Context, b *bench) (*section, error) {
	c := b.cfg
	args := []string{"-run", "^$", "-bench", leanBench, "-benchmem", "-count", strconv.Itoa(c.allocCount), "-benchtime", c.allocTime, "./internal/router"}
	out, err := goTest(ctx, b.env.root, args...)
	if err != nil {
		return nil, err
	}
	var lines []string
	var ns, bytes, allocs series
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[0], leanBench) {
			continue
		}
		lines = append(lines, strings.TrimSpace(line))
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				ns = append(ns, v)
			case "B/op":
				bytes = append(bytes, v)
			case "allocs/op":
				allocs = append(allocs, v)
			}
		}
	}
	if len(ns) == 0 || len(allocs) == 0 {
		return nil, fmt.Errorf("no %s result with -benchmem in:\n%s", leanBench, out)
	}
	b.logf("  %s: %.0f ns/op, %.0f B/op, %.0f allocs/op (medians)", leanBench, ns.median(), bytes.median(), allocs.median())
	s := &section{
		header: []string{"figure", "median (min–max)"},
		rows: [][]string{
			{"ns/op (one client, request and answer over loopback)", fmt.Sprintf("%.0f (%.0f–%.0f)", ns.median(), ns.min(), ns.max())},
			{"B/op", fmt.Sprintf("%.0f (%.0f–%.0f)", bytes.median(), bytes.min(), bytes.max())},
			{"allocs/op", fmt.Sprintf("%.0f (%.0f–%.0f)", allocs.median(), allocs.min(), allocs.max())},
		},
		text: "```\n$ go test " + strings.Join(args, " ") + "\n" + strings.Join(lines, "\n") + "\n```\n",
		notes: []string{"The benchmark's client and upstream allocate nothing, so B/op and allocs/op are the forwarding path's own. " +
			"ns/op is one request at a time over loopback, three processes' worth of work (client, router, upstream) in one: a latency figure, not a throughput one."},
	}
	return s, nil
}

// profile runs the forwarding-path benchmark under the CPU profiler and
// reports pprof's top functions with a breakdown by kind of work. hotswap
// has no pprof endpoint; the benchmark runs the same lean path in process.
func profile(ctx context.Context, b *bench) (*section, error) {
	dir := filepath.Join(b.env.tmp, "profile")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	prof, testBin := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "router.test")
	args := []string{"-run", "^$", "-bench", leanBench, "-count", "1", "-benchtime", b.cfg.profileTime, "-cpuprofile", prof, "-o", testBin, "./internal/router"}
	if _, err := goTest(ctx, b.env.root, args...); err != nil {
		return nil, err
	}
	pprof := func(extra ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, extra...), testBin, prof)...)
		cmd.Dir = b.env.root
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("go tool pprof %s: %w", strings.Join(extra, " "), err)
		}
		return string(out), nil
	}
	top, err := pprof("-top", "-nodecount", "25")
	if err != nil {
		return nil, err
	}
	all, err := pprof("-top", "-nodefraction", "0", "-nodecount", "100000")
	if err != nil {
		return nil, err
	}
	k := classify(all)
	b.logf("  profile: %.0f%% syscalls, %.0f%% scheduler and netpoller, %.0f%% router code", k.syscall, k.sched, k.router)

	var w strings.Builder
	shown := strings.NewReplacer(prof, "cpu.pprof", testBin, "router.test").Replace(strings.Join(args, " "))
	fmt.Fprintf(&w, "```\n$ go test %s\n$ go tool pprof -top -nodecount 25 router.test cpu.pprof\n%s```\n\n", shown, trimPprof(top))
	fmt.Fprintf(&w, "Of the CPU time (flat, every function): %.0f%% in system calls (socket reads and writes, and the kernel's loopback TCP under them), "+
		"%.0f%% in the Go scheduler and network poller (parking and waking goroutines, epoll, futex), "+
		"%.0f%% in hotswap's router code itself (parsing the request and response heads, routing, copying), "+
		"%.0f%% in the rest of the runtime (memory, timers, other), %.0f%% elsewhere (the test's client and upstream loops, the standard library). ",
		k.syscall, k.sched, k.router, k.runtime, k.other)
	fmt.Fprintf(&w, "Client, router and upstream run in one process here, so the system-call and scheduler shares include the client's and the upstream's (about half of the socket calls per request are the router's). ")
	if k.syscall+k.sched >= 3*k.router {
		fmt.Fprintf(&w, "What it shows: the forwarding path is bound by system calls and goroutine wake-ups (one read and one write per direction per hop), not by parsing; the router's own code is a small share.\n\n")
	} else {
		fmt.Fprintf(&w, "What it shows: the router's own code (parsing, routing, copying) is a share comparable to the system calls and wake-ups, so it is worth optimising.\n\n")
	}
	fmt.Fprintf(&w, "%s\n", profileNotes)
	return &section{text: w.String()}, nil
}

// trimPprof drops pprof's header lines about the file and build.
func trimPprof(out string) string {
	var w strings.Builder
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") {
			continue
		}
		w.WriteString(line)
	}
	return w.String()
}

// cpuKinds is the share of flat CPU time, in percent, by kind of work.
type cpuKinds struct{ syscall, sched, router, runtime, other float64 }

// classify sums pprof -top's flat% column by function name.
func classify(top string) cpuKinds {
	var k cpuKinds
	sc := bufio.NewScanner(strings.NewReader(top))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// flat flat% sum% cum cum% name...
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		if err != nil {
			continue
		}
		name := strings.Join(f[5:], " ")
		switch {
		case strings.HasPrefix(name, "syscall.") || strings.Contains(name, "internal/runtime/syscall") ||
			strings.Contains(name, "runtime/internal/syscall") || strings.HasPrefix(name, "golang.org/x/sys/unix."):
			k.syscall += pct
		case isSched(name):
			k.sched += pct
		case strings.Contains(name, "hotswap/internal/router."):
			k.router += pct
		case strings.HasPrefix(name, "runtime.") || strings.HasPrefix(name, "internal/runtime/"):
			k.runtime += pct
		default:
			k.other += pct
		}
	}
	return k
}

func isSched(name string) bool {
	for _, p := range []string{
		"runtime.netpoll", "runtime.epoll", "runtime.futex", "runtime.schedule", "runtime.findRunnable",
		"runtime.park_m", "runtime.mcall", "runtime.gopark", "runtime.goready", "runtime.ready",
		"runtime.notesleep", "runtime.notewakeup", "runtime.wakep", "runtime.startm", "runtime.stopm",
		"runtime.usleep", "runtime.osyield", "runtime.stealWork", "runtime.runqgrab", "runtime.runqsteal",
		"runtime.execute", "runtime.gogo", "runtime.casgstatus", "runtime.resetspinning", "runtime.checkTimers",
		"runtime.goexit", "runtime.netpollblock", "internal/poll.runtime_poll", "runtime.semasleep", "runtime.semawakeup",
		"runtime.lock", "runtime.unlock", "runtime.nanotime", "runtime.handoffp", "runtime.acquirep", "runtime.releasep",
	} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// profileNotes says what the profiles led to; it is written by hand and kept
// beside the harness so every run's report carries it.
//
//go:embed profile-notes.md
var profileNotes string
