package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/binding"
	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/invoke"
	"github.com/hotswap/hotswap/internal/runtime"
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
//
// In a cluster (Config.Cluster) every node runs every slot and this loop,
// and every node sees the same occurrences (a schedule's occurrences are
// fixed times). Before firing one, a node claims it in the store
// (ClaimTimer: an insert that one node wins), and marks it done after the
// invocation, whether the function succeeded or failed; the nodes that lose
// the claim do not fire it. The schedule status is shared too: it only ever
// moves forward (PutTimerStatus), so whichever node fires writes it, and a
// node that starts while the cluster was down past an occurrence claims
// that past-due occurrence like any other (one node fires it).
//
// A node that claimed an occurrence and died before marking it done leaves
// it to the others: each node keeps the occurrences it lost the claim for
// and claims them again later (timerStale after the occurrence, then at
// doubling ages up to timerTakeover). The store gives such a claim to
// another node once the claimer has been silent (no heartbeat) for
// timerStale; that node fires it late, with IsPastDue set. This is the
// at-least-once window that remains: a node that died after calling the
// function but before marking the claim done has the occurrence fired
// again by another node, as a single server fires again, past due, an
// occurrence whose run a crash cut short. An occurrence a node claimed and
// did not finish because it shut down is likewise left for takeover.
//
// runOnStartup stays per node, as on Azure, where it runs on every instance
// that starts (scale-out included): each node starting a deployment runs it.

// timerInvoker calls timer functions; an invocation is bounded by
// invoke.DefaultTimeout, as before by the client's 5 minutes.
var timerInvoker = &invoke.Invoker{}

// timerInputMax bounds a timer function's blob input, as the payload-mode
// request body is bounded (router.DefaultMaxPayloadBody).
const timerInputMax = 8 << 20

// Timer claims in a cluster (see above).
const (
	// timerStale is how long a claimer must have been silent before
	// another node may take its unfinished claim over.
	timerStale = 15 * time.Second
	// timerTakeover is how old an occurrence whose claim this node lost
	// may be for it to try to take it over.
	timerTakeover = 5 * time.Minute
	// timerLostMax bounds the lost occurrences a node keeps per timer.
	timerLostMax = 512
	// timerPreclaim is how long before an occurrence a node still running
	// the previous one claims it, ahead of the nodes that claim it when
	// it is due.
	timerPreclaim = time.Second
)

// timerJob is one run of a timer function.
type timerJob struct {
	app, slot  string
	deployment string // the slot's deployment when the job was made, read under s.mu
	st         *slotState
	fn         *funcapp.Function
	set        *runtime.Set
	disabled   bool         // AzureWebJobs.<name>.Disabled: keep time, do not run
	busy       *atomic.Bool // the timer's run in flight
	last       time.Time    // the occurrence that ran before this one; zero if none known
	at         time.Time    // the occurrence this run is for
	next       time.Time    // the occurrence after it
	pastDue    bool         // at was missed while the server was down
	claim      bool         // in a cluster: fire only if this node claims at
	takeover   bool         // a retry of an occurrence whose claim was lost
	clock      *timerClock  // where a lost claim is kept for a retry
	// pkg and settings are the slot's package and app settings, for
	// functions with output or blob input bindings only.
	pkg      *funcapp.App
	settings map[string]string
}

// timerClock is what the loop knows of one timer function in one slot. It
// is kept across deploys and swaps of the slot's content, so a new
// deployment neither repeats nor skips an occurrence.
type timerClock struct {
	schedule   string
	last, next time.Time
	busy       *atomic.Bool // a run is in flight; the next waits for it
	preclaimed time.Time    // the occurrence claimed ahead while busy (loop only)

	mu   sync.Mutex
	lost []lostRun // occurrences another node claimed, to claim again later
}

// lostRun is an occurrence whose claim another node won; if that node dies
// before marking it done, this one may take it over.
type lostRun struct {
	at, next, last time.Time
	retry          time.Time // when to claim it again
}

// addLost keeps an occurrence whose claim was lost, to claim it again once
// a stopped claimer would have gone stale; retried at doubling ages.
func (c *timerClock) addLost(j timerJob, now time.Time) {
	age := max(now.Sub(j.at), 0)
	retry := j.at.Add(timerStale + time.Second)
	if !now.Before(retry) {
		retry = j.at.Add(2 * age)
	}
	if retry.Sub(j.at) > timerTakeover {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lost) >= timerLostMax {
		c.lost = c.lost[1:]
	}
	c.lost = append(c.lost, lostRun{at: j.at, next: j.next, last: j.last, retry: retry})
}

// takeLost removes and returns the lost occurrences due for a retry.
func (c *timerClock) takeLost(now time.Time) []lostRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	var due []lostRun
	keep := c.lost[:0]
	for _, l := range c.lost {
		if now.Before(l.retry) {
			keep = append(keep, l)
		} else {
			due = append(due, l)
		}
	}
	c.lost = keep
	return due
}

// timerLoop fires the due timer functions, checking five times a second.
func (s *Service) timerLoop() {
	defer s.wg.Done()
	clocks := make(map[string]*timerClock) // app/slot/function
	started := make(map[string]bool)       // app/slot/function/deployment: runOnStartup done
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
		var freshKeys []string
		seen := make(map[string]bool, len(clocks))
		seenStart := make(map[string]bool, len(started))
		s.mu.Lock()
		for k, st := range s.slots {
			if st.set == nil || st.pkg == nil {
				continue
			}
			dis := disabled(st.settings, st.pkg)
			for _, f := range st.pkg.Functions {
				if f.Trigger != funcapp.TriggerTimer || !f.Runnable || f.Schedule == nil {
					continue
				}
				key := k.app + "/" + k.slot + "/" + f.Name
				startKey := key + "/" + st.slot.DeploymentID
				seen[key], seenStart[startKey] = true, true
				j := timerJob{app: k.app, slot: k.slot, deployment: st.slot.DeploymentID, st: st, fn: f, set: st.set, disabled: dis[f.Name]}
				if len(f.Outputs) > 0 || len(f.Inputs) > 0 {
					j.pkg, j.settings = st.pkg, settingsMap(st.settings)
				}
				c := clocks[key]
				if c == nil || c.schedule != f.Schedule.String() {
					fresh = append(fresh, j)
					freshKeys = append(freshKeys, key)
					continue
				}
				j.busy, j.clock = c.busy, c
				j.claim = s.cfg.Cluster != nil
				if f.RunOnStartup && !started[startKey] {
					// A new deployment in the slot: runOnStartup again.
					started[startKey] = true
					if !j.disabled {
						run := j
						run.last, run.at, run.next, run.claim = c.last, now, c.next, false // per node
						due = append(due, run)
						continue
					}
				}
				if j.claim && !j.disabled && !c.busy.Load() && (c.next.IsZero() || now.Before(c.next)) {
					// Claims lost to a node that may have died since.
					if lost := c.takeLost(now); len(lost) > 0 {
						l := lost[0]
						for _, rest := range lost[1:] {
							c.addLost(timerJob{at: rest.at, next: rest.next, last: rest.last}, now)
						}
						run := j
						run.last, run.at, run.next, run.pastDue, run.takeover = l.last, l.at, l.next, true, true
						due = append(due, run)
						continue
					}
				}
				if j.claim && !j.disabled && c.busy.Load() && !c.next.IsZero() && c.next.Sub(now) <= timerPreclaim && !c.preclaimed.Equal(c.next) {
					// This node runs the previous occurrence: it claims the
					// next before the others may, so that no other node fires
					// it while the run goes on (see skipTimer).
					c.preclaimed = c.next
					skip := j
					skip.at = c.next
					s.wg.Add(1)
					go func() {
						defer s.wg.Done()
						s.preclaimTimer(skip)
					}()
				}
				if c.next.IsZero() || now.Before(c.next) {
					continue
				}
				at := c.next
				c.next = f.Schedule.Next(now)
				switch {
				case j.disabled:
				case c.busy.Load():
					st.log.add("host", fmt.Sprintf("timer %s: the run at %s skipped, the previous run is still going", f.Name, at.UTC().Format(time.RFC3339)))
					if j.claim {
						skip := j
						skip.at = at
						s.wg.Add(1)
						go func() {
							defer s.wg.Done()
							s.skipTimer(skip)
						}()
					}
				default:
					j.last, j.at, j.next = c.last, at, c.next
					c.last = at
					due = append(due, j)
				}
			}
		}
		s.mu.Unlock()
		for key := range clocks {
			if !seen[key] {
				delete(clocks, key)
			}
		}
		for key := range started {
			if !seenStart[key] {
				delete(started, key)
			}
		}
		// The store is read outside s.mu: a timer seen for the first time
		// since the start (or with a new schedule) picks up its monitored
		// status. On a read error it is tried again at the next tick.
		for i, j := range fresh {
			c, run, ok := s.startTimer(j, now)
			if !ok {
				continue
			}
			clocks[freshKeys[i]] = c
			started[freshKeys[i]+"/"+j.deployment] = true
			if run != nil {
				due = append(due, *run)
			}
		}
		for _, j := range due {
			j.busy.Store(true)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer j.busy.Store(false)
				s.fireTimer(j)
			}()
		}
	}
}

// startTimer makes the clock of a timer first seen at now, and returns the
// run it owes: a past-due occurrence of a monitored timer, or the
// runOnStartup run. ok is false when the stored status could not be read.
func (s *Service) startTimer(j timerJob, now time.Time) (c *timerClock, run *timerJob, ok bool) {
	f := j.fn
	c = &timerClock{schedule: f.Schedule.String(), next: f.Schedule.Next(now), busy: new(atomic.Bool)}
	j.busy, j.clock, j.claim = c.busy, c, s.cfg.Cluster != nil
	if f.UseMonitor {
		stored, found, err := s.store.GetTimerStatus(s.ctx, j.app, j.slot, f.Name)
		if err != nil {
			s.log.Error("timer status", "app", j.app, "slot", j.slot, "function", f.Name, "err", err)
			return nil, nil, false
		}
		if found && stored.Schedule == c.schedule {
			c.last = stored.Last
			if !j.disabled && !stored.Next.IsZero() && !now.Before(stored.Next) {
				j.last, j.at, j.next, j.pastDue = stored.Last, stored.Next, c.next, true
				run = &j
			}
		}
		if run == nil {
			s.putTimerStatus(j.app, j.slot, f, c.last, c.next)
		}
	}
	if run == nil && f.RunOnStartup && !j.disabled {
		j.last, j.at, j.next, j.claim = c.last, now, c.next, false // per node
		run = &j
	}
	return c, run, true
}

// putTimerStatus records a monitored timer's schedule status. It runs to
// the end during shutdown too: a run that finished must not be repeated.
func (s *Service) putTimerStatus(app, slot string, f *funcapp.Function, last, next time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Second)
	defer cancel()
	err := s.store.PutTimerStatus(ctx, app, slot, f.Name, hotswap.TimerStatus{
		Schedule: f.Schedule.String(), Last: last, Next: next, Updated: time.Now(),
	})
	if err != nil {
		s.log.Error("timer status", "app", app, "slot", slot, "function", f.Name, "err", err)
	}
}

// fireTimer invokes a timer function in payload mode, as the Azure host
// does: POST /<name> with the timer's trigger data. A monitored timer's
// status moves on once the handler has been called, whatever it answered.
// Its queue and blob outputs are written when it succeeded.
func (s *Service) fireTimer(j timerJob) {
	st, fn, set := j.st, j.fn, j.set
	answered := false // the function was called and answered
	if len(fn.Outputs) > 0 || len(fn.Inputs) > 0 {
		if err := binding.Check(fn, j.settings); err != nil {
			st.log.add("host", fmt.Sprintf("timer %s skipped: it is not runnable: %v", fn.Name, err))
			return
		}
	}
	if !set.Acquire() {
		return
	}
	defer set.Release()
	addr, ok := set.Addr()
	if !ok && !set.Idle() {
		st.log.add("host", fmt.Sprintf("timer %s skipped: the handler is down", fn.Name))
		return
	}
	if j.claim {
		// Claimed before a sleeping set is woken: on a cluster only the
		// node that runs the occurrence starts its handler.
		if !s.claimTimer(j) {
			return
		}
		defer func() { s.doneTimer(j, answered) }()
		if j.takeover {
			st.log.add("host", fmt.Sprintf("timer %s: the run at %s is taken over from a node that claimed it and stopped", fn.Name, j.at.UTC().Format(time.RFC3339)))
		}
	}
	if !ok {
		// Scaled to zero: the timer wakes it, as a request would.
		a, err := set.Wake(s.ctx)
		if err != nil {
			st.log.add("host", fmt.Sprintf("timer %s skipped: the handler did not start: %v", fn.Name, err))
			return
		}
		addr = a
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
	if j.pastDue && !j.takeover {
		st.log.add("host", fmt.Sprintf("timer %s is past due: its run at %s was missed while the host was down", fn.Name, j.at.UTC().Format(time.RFC3339)))
	}
	data := map[string]json.RawMessage{name: jsonRaw(map[string]any{
		"Schedule":       map[string]any{"AdjustForDST": true},
		"ScheduleStatus": status,
		"IsPastDue":      j.pastDue,
	})}
	// A timer binds no names: its blob inputs' paths use {rand-guid},
	// {DateTime} and %settings% only.
	if err := binding.ReadInputs(s.ctx, fn, j.settings, nil, timerInputMax, data); err != nil {
		st.log.add("host", fmt.Sprintf("timer %s failed: %v", fn.Name, err))
		return
	}
	res, err := timerInvoker.Invoke(s.ctx, addr, invoke.Request{
		Function: fn.Name,
		Data:     data,
	})
	answered = err == nil || invoke.Answered(err)
	if fn.UseMonitor && (err == nil || invoke.Answered(err)) {
		s.putTimerStatus(j.app, j.slot, fn, j.at, j.next)
	}
	if err != nil {
		st.log.add("host", fmt.Sprintf("timer %s failed: %v", fn.Name, err))
		return
	}
	for _, l := range res.Logs {
		st.log.add(fn.Name, l)
	}
	if len(fn.Outputs) > 0 {
		if err := s.writeOutputs(j, res); err != nil {
			st.log.add("host", fmt.Sprintf("timer %s failed: %v", fn.Name, err))
			return
		}
	}
	st.log.add("host", fmt.Sprintf("timer %s ran", fn.Name))
}

// claimTimer claims occurrence j.at for this node and reports whether it
// won. A lost claim is kept for a takeover later, and so is one the store
// failed to answer (a restart): a claim is idempotent (this node claiming
// again wins what it may have won), so the retry fires the occurrence
// unless another node did; dropping it would lose it if no node claimed.
func (s *Service) claimTimer(j timerJob) bool {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	ok, err := s.cfg.Cluster.ClaimTimer(ctx, j.app, j.slot, j.fn.Name, j.at, s.NodeID(), timerStale)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Error("claim timer occurrence; claiming it again later", "app", j.app, "slot", j.slot, "function", j.fn.Name, "at", j.at, "err", err)
			if j.clock != nil {
				j.clock.addLost(j, time.Now())
			}
		}
		return false
	}
	if !ok && j.clock != nil {
		j.clock.addLost(j, time.Now())
	}
	return ok
}

// One at a time across the cluster: a node still running a timer's
// previous occurrence when the next comes skips it, as one server does.
// Were it merely not to fire it, another node would claim and fire it, and
// the function would run twice at once. So the busy node claims the next
// occurrence timerPreclaim before it is due, ahead of the others, which
// claim when it is due and lose; when it comes, the node fires it if its
// run has ended meanwhile (its claim again is its own), else marks it done,
// skipped.

// preclaimTimer claims occurrence j.at ahead of time for this node, which
// runs the previous one.
func (s *Service) preclaimTimer(j timerJob) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	if _, err := s.cfg.Cluster.ClaimTimer(ctx, j.app, j.slot, j.fn.Name, j.at, s.NodeID(), timerStale); err != nil && s.ctx.Err() == nil {
		s.log.Warn("claim the next timer occurrence ahead", "app", j.app, "slot", j.slot, "function", j.fn.Name, "at", j.at, "err", err)
	}
}

// skipTimer claims occurrence j.at, which this node skips because it
// still runs the previous one, and marks it done: no node fires it.
func (s *Service) skipTimer(j timerJob) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	ok, err := s.cfg.Cluster.ClaimTimer(ctx, j.app, j.slot, j.fn.Name, j.at, s.NodeID(), timerStale)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("claim a skipped timer occurrence", "app", j.app, "slot", j.slot, "function", j.fn.Name, "at", j.at, "err", err)
		}
		return
	}
	if ok {
		s.doneTimer(j, true)
	}
}

// doneTimer marks a claimed occurrence run, so no node takes it over:
// after the function answered, or failed, but not when this node's
// shutdown cut the run short (another node takes it over then).
func (s *Service) doneTimer(j timerJob, answered bool) {
	if !answered && s.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Second)
	defer cancel()
	if err := s.cfg.Cluster.DoneTimer(ctx, j.app, j.slot, j.fn.Name, j.at); err != nil {
		s.log.Error("mark timer occurrence done", "app", j.app, "slot", j.slot, "function", j.fn.Name, "at", j.at, "err", err)
	}
}

// writeOutputs writes the outputs of a timer run, to the end during
// shutdown too: the function has run.
func (s *Service) writeOutputs(j timerJob, res invoke.Result) error {
	if s.cfg.Outputs == nil {
		return errors.New("output bindings are not configured on this server")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 2*time.Minute)
	defer cancel()
	return s.cfg.Outputs.WriteOutputs(ctx, j.pkg, j.settings, j.fn, res, nil)
}
