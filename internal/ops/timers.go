package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/runtime"
	"github.com/hotswap/hotswap/internal/sqlite"
)

// Timer triggers run in every slot that serves a deployment with them, as on
// Azure (a staging slot's timers fire too; disable them there with the slot
// setting AzureWebJobs.<name>.Disabled=true).
//
// A monitored timer (function.json useMonitor, on by default for schedules
// of a minute or more) keeps its schedule status in the store per slot: the
// next occurrence is written when the timer is first seen and after each
// run. When the server comes back from being down (or killed) past that
// occurrence, the timer runs once at once with IsPastDue set, then follows
// its schedule. Status is written after a run, so a run cut short by a
// crash is made up too: at least once, never silently lost. runOnStartup
// runs a timer each time its deployment starts in a slot.

var timerClient = &http.Client{Timeout: 5 * time.Minute}

// timerJob is one run of a timer function.
type timerJob struct {
	app, slot string
	st        *slotState
	fn        *funcapp.Function
	set       *runtime.Set
	last      time.Time // the occurrence that ran before this one; zero if none known
	at        time.Time // the occurrence this run is for
	next      time.Time // the occurrence after it
	pastDue   bool      // at was missed while the server was down
}

// timerClock is what the loop knows of one timer of one deployment in one slot.
type timerClock struct{ last, next time.Time }

// timerLoop fires the due timer functions, checking five times a second.
func (s *Service) timerLoop() {
	defer s.wg.Done()
	clocks := make(map[string]timerClock) // app/slot/function/deployment
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		var due, fresh []timerJob
		var freshIDs []string
		seen := make(map[string]bool, len(clocks))
		s.mu.Lock()
		for k, st := range s.slots {
			if st.set == nil || st.pkg == nil {
				continue
			}
			dis := disabled(st.settings)
			for _, f := range st.pkg.Functions {
				if f.Trigger != funcapp.TriggerTimer || !f.Runnable || f.Schedule == nil || dis[f.Name] {
					continue
				}
				id := k.app + "/" + k.slot + "/" + f.Name + "/" + st.slot.DeploymentID
				seen[id] = true
				j := timerJob{app: k.app, slot: k.slot, st: st, fn: f, set: st.set}
				c, ok := clocks[id]
				if !ok {
					fresh = append(fresh, j)
					freshIDs = append(freshIDs, id)
					continue
				}
				if !c.next.IsZero() && !now.Before(c.next) {
					j.last, j.at, j.next = c.last, c.next, f.Schedule.Next(now)
					due = append(due, j)
					clocks[id] = timerClock{last: c.next, next: j.next}
				}
			}
		}
		s.mu.Unlock()
		for id := range clocks {
			if !seen[id] {
				delete(clocks, id)
			}
		}
		// The store is read outside s.mu: a timer seen for the first time
		// since the start (or a deploy) picks up its monitored status.
		for i, j := range fresh {
			c, run := s.startTimer(j, now)
			clocks[freshIDs[i]] = c
			if run != nil {
				due = append(due, *run)
			}
		}
		for _, j := range due {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.fireTimer(j)
			}()
		}
	}
}

// startTimer sets the clock of a timer first seen at now, and returns the
// run it owes: a past-due occurrence of a monitored timer, or the
// runOnStartup run.
func (s *Service) startTimer(j timerJob, now time.Time) (timerClock, *timerJob) {
	f := j.fn
	c := timerClock{next: f.Schedule.Next(now)}
	var run *timerJob
	if f.UseMonitor {
		stored, ok, err := s.store.GetTimerStatus(s.ctx, j.app, j.slot, f.Name)
		if err != nil {
			s.log.Error("timer status", "app", j.app, "slot", j.slot, "function", f.Name, "err", err)
		}
		if ok && stored.Schedule == f.Schedule.String() {
			c.last = stored.Last
			if !stored.Next.IsZero() && !now.Before(stored.Next) {
				j.last, j.at, j.next, j.pastDue = stored.Last, stored.Next, c.next, true
				run = &j
			}
		}
		if run == nil {
			s.putTimerStatus(j.app, j.slot, f, c.last, c.next)
		}
	}
	if run == nil && f.RunOnStartup {
		j.last, j.at, j.next = c.last, now, c.next
		run = &j
	}
	return c, run
}

// putTimerStatus records a monitored timer's schedule status.
func (s *Service) putTimerStatus(app, slot string, f *funcapp.Function, last, next time.Time) {
	err := s.store.PutTimerStatus(s.ctx, app, slot, f.Name, sqlite.TimerStatus{
		Schedule: f.Schedule.String(), Last: last, Next: next, Updated: time.Now(),
	})
	if err != nil && s.ctx.Err() == nil {
		s.log.Error("timer status", "app", app, "slot", slot, "function", f.Name, "err", err)
	}
}

// fireTimer invokes a timer function in payload mode, as the Azure host
// does: POST /<name> with the timer's trigger data. A monitored timer's
// status moves on once the handler has been called, whatever it answered.
func (s *Service) fireTimer(j timerJob) {
	st, fn, set := j.st, j.fn, j.set
	if !set.Acquire() {
		return
	}
	defer set.Release()
	addr, ok := set.Addr()
	if !ok {
		st.log.add("host", fmt.Sprintf("timer %s skipped: the handler is down", fn.Name))
		return
	}
	name := fn.TriggerName
	if name == "" {
		name = "myTimer"
	}
	now := time.Now().UTC()
	status := map[string]any{"Next": j.next.UTC().Format(time.RFC3339Nano), "LastUpdated": now.Format(time.RFC3339Nano)}
	if !j.last.IsZero() {
		status["Last"] = j.last.UTC().Format(time.RFC3339Nano)
	}
	body, _ := json.Marshal(map[string]any{
		"Data": map[string]any{name: map[string]any{
			"Schedule":       map[string]any{"AdjustForDST": true},
			"ScheduleStatus": status,
			"IsPastDue":      j.pastDue,
		}},
		"Metadata": map[string]any{"sys": map[string]any{"MethodName": fn.Name, "UtcNow": now.Format(time.RFC3339Nano)}},
	})
	if j.pastDue {
		st.log.add("host", fmt.Sprintf("timer %s is past due: its run at %s was missed while the host was down", fn.Name, j.at.UTC().Format(time.RFC3339)))
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/"+fn.Name, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := timerClient.Do(req)
	if err != nil {
		st.log.add("host", fmt.Sprintf("timer %s failed: %v", fn.Name, err))
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if fn.UseMonitor {
		s.putTimerStatus(j.app, j.slot, fn, j.at, j.next)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		st.log.add("host", fmt.Sprintf("timer %s failed: handler answered %d", fn.Name, resp.StatusCode))
		return
	}
	var pr struct{ Logs []string }
	if json.Unmarshal(out, &pr) == nil {
		for _, l := range pr.Logs {
			st.log.add(fn.Name, l)
		}
	}
	st.log.add("host", fmt.Sprintf("timer %s ran", fn.Name))
}
