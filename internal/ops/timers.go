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
)

// Timer triggers run in every slot that serves a deployment with them, as on
// Azure (a staging slot's timers fire too; disable them there with the slot
// setting AzureWebJobs.<name>.Disabled=true). Schedules live in memory: after
// a restart each timer's next run is computed from the start, and runs missed
// while the server was down are not made up.

var timerClient = &http.Client{Timeout: 5 * time.Minute}

// timerLoop fires the due timer functions once a second.
func (s *Service) timerLoop() {
	defer s.wg.Done()
	next := make(map[string]time.Time) // slot label + "/" + function + "/" + deployment
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		type job struct {
			st  *slotState
			fn  *funcapp.Function
			set *runtime.Set
		}
		var due []job
		seen := make(map[string]bool, len(next))
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
				at, ok := next[id]
				if !ok {
					next[id] = f.Schedule.Next(now)
					continue
				}
				if !now.Before(at) && !at.IsZero() {
					due = append(due, job{st, f, st.set})
					next[id] = f.Schedule.Next(now)
				}
			}
		}
		s.mu.Unlock()
		for id := range next {
			if !seen[id] {
				delete(next, id)
			}
		}
		for _, j := range due {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.fireTimer(j.st, j.fn, j.set)
			}()
		}
	}
}

// fireTimer invokes a timer function in payload mode, as the Azure host
// does: POST /<name> with the timer's trigger data.
func (s *Service) fireTimer(st *slotState, fn *funcapp.Function, set *runtime.Set) {
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
	body, _ := json.Marshal(map[string]any{
		"Data": map[string]any{name: map[string]any{
			"Schedule":       map[string]any{"AdjustForDST": true},
			"ScheduleStatus": map[string]any{"Last": now.Format(time.RFC3339Nano), "Next": fn.Schedule.Next(now).Format(time.RFC3339Nano)},
			"IsPastDue":      false,
		}},
		"Metadata": map[string]any{"sys": map[string]any{"MethodName": fn.Name, "UtcNow": now.Format(time.RFC3339Nano)}},
	})
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
