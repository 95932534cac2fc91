package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hotswap/hotswap/internal/runtime"
)

// footprint measures the resident memory of fresh hotswap servers: one with
// idle (empty) slots, counted up, and one with every slot deployed.
func footprint(ctx context.Context, b *bench) (*section, error) {
	c := b.cfg
	e := b.env
	type point struct {
		what          string
		slots         int
		server, total int64 // KiB
		children      int
	}
	var points []point

	// Idle slots: app "fp" has its production slot; more are added
	// without deploying anything to them.
	srv, err := e.startServer(ctx, "footprint-idle")
	if err != nil {
		return nil, err
	}
	if err := srv.createApp(ctx, "fp"); err != nil {
		return nil, err
	}
	have := 1
	for _, n := range c.idleSlots {
		for ; have < n; have++ {
			if err := srv.createSlot(ctx, "fp", fmt.Sprintf("s%d", have+1)); err != nil {
				return nil, err
			}
		}
		server, total, kids, err := settledRSS(ctx, srv.proc.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		b.logf("  %d idle slots: server %d KiB, with children %d KiB", n, server, total)
		points = append(points, point{"idle", n, server, total, kids})
	}
	srv.proc.stop()

	// Deployed slots: every slot runs a handler process.
	srv, err = e.startServer(ctx, "footprint-deployed")
	if err != nil {
		return nil, err
	}
	if err := srv.createApp(ctx, "fp"); err != nil {
		return nil, err
	}
	for i := range c.deployed {
		slot := "production"
		if i > 0 {
			slot = fmt.Sprintf("s%d", i+1)
			if err := srv.createSlot(ctx, "fp", slot); err != nil {
				return nil, err
			}
		}
		if _, err := srv.deploy(ctx, "fp", slot, e.handlerZip); err != nil {
			return nil, err
		}
	}
	server, total, kids, err := settledRSS(ctx, srv.proc.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	b.logf("  %d deployed slots: server %d KiB, with %d children %d KiB", c.deployed, server, kids, total)
	points = append(points, point{"deployed", c.deployed, server, total, kids})
	srv.proc.stop()

	base := points[0]
	s := &section{header: []string{"slots", "server RSS", "ratio to 1st row", "server + handler processes", "handler processes"}}
	for _, p := range points {
		s.rows = append(s.rows, []string{
			fmt.Sprintf("%d %s", p.slots, p.what),
			fmtKiB(p.server),
			fmt.Sprintf("%.2f", float64(p.server)/float64(base.server)),
			fmtKiB(p.total),
			fmt.Sprint(p.children),
		})
	}
	if last := points[len(c.idleSlots)-1]; last.slots > base.slots {
		s.notes = append(s.notes, fmt.Sprintf("Each idle slot adds about %.1f KiB to the server (from %d to %d slots).",
			float64(last.server-base.server)/float64(last.slots-base.slots), base.slots, last.slots))
	}
	d := points[len(points)-1]
	if d.children > 0 {
		s.notes = append(s.notes, fmt.Sprintf("With %d deployed slots: each handler process holds about %.1f MiB on average; the server holds %.1f MiB more than with %d idle slot(s).",
			d.slots, float64(d.total-d.server)/1024/float64(d.children), float64(d.server-base.server)/1024, base.slots))
	}
	s.notes = append(s.notes,
		"A fresh `hotswap serve` for each half (idle, then deployed). RSS is VmRSS from /proc: \"server\" is the hotswap process plus its warden's private memory (RssAnon; the warden, which kills what handlers start if the server dies, is the same binary, whose file-backed pages the server already counts); the total adds the handler processes and their children. "+
			"Each figure is the median of 5 samples 200 ms apart, taken 1 s after the last change. Idle slots are created with `POST /api/v1/apps/fp/slots` and never deployed to; app fp's production slot is the first.")
	return s, nil
}

func fmtKiB(k int64) string { return fmt.Sprintf("%.1f MiB", float64(k)/1024) }

// settledRSS waits a second, then samples pid's VmRSS and that of pid with
// all its descendants 5 times, 200 ms apart, and returns the medians and the
// number of descendants.
func settledRSS(ctx context.Context, pid int) (server, total int64, children int, err error) {
	if err := sleep(ctx, time.Second); err != nil {
		return 0, 0, 0, err
	}
	var srv, all series
	for i := range 5 {
		if i > 0 {
			if err := sleep(ctx, 200*time.Millisecond); err != nil {
				return 0, 0, 0, err
			}
		}
		s, err := vmRSS(pid)
		if err != nil {
			return 0, 0, 0, err
		}
		t := s
		children = 0
		for _, k := range descendants(pid) {
			if isWarden(k) {
				// The server's own helper, not a handler. Its file-backed
				// pages are the server binary's, shared in the page cache;
				// only its private memory is its own.
				if r, err := statusKiB(k, "RssAnon:"); err == nil {
					s += r
					t += r
				}
				continue
			}
			r, err := vmRSS(k)
			if err != nil {
				continue
			}
			t += r
			children++
		}
		srv = append(srv, float64(s))
		all = append(all, float64(t))
	}
	return int64(srv.median()), int64(all.median()), children, nil
}

// isWarden reports whether pid is a hotswap server's warden process.
func isWarden(pid int) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	return err == nil && bytes.HasPrefix(env, []byte(runtime.WardenEnv+"="))
}

// vmRSS reads a process's resident set size in KiB.
func vmRSS(pid int) (int64, error) { return statusKiB(pid, "VmRSS:") }

// statusKiB reads a field of /proc/<pid>/status given in kB, such as
// "VmRSS:" or "RssAnon:".
func statusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s for pid %d", field, pid)
}

// descendants lists every process below pid, from /proc/*/stat.
func descendants(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent := make(map[int][]int)
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		child, err1 := strconv.Atoi(strings.Fields(s)[0])
		ppid, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			continue
		}
		parent[ppid] = append(parent[ppid], child)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range parent[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
