package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
)

// parkedSet is a retired process set kept warm for an instant revert.
type parkedSet struct {
	set        *runtime.Set
	deployment string
	at         time.Time
}

// configKey identifies an effective configuration: deployment, slot
// identity and settings. The same key needed again can reuse a warm set.
func configKey(app, slot, deployment string, settings []hotswap.Setting) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q\n", app, slot, deployment)
	sorted := append([]hotswap.Setting(nil), settings...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, st := range sorted {
		fmt.Fprintf(h, "%q=%q\n", st.Name, st.Value)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// park keeps a retired set warm for the revert window (or stops it at once
// when the window is disabled). Requests already on it finish either way.
func (s *Service) park(key, deployment string, set *runtime.Set) {
	if set == nil {
		return
	}
	if s.cfg.RevertWindow < 0 || key == "" {
		s.retire(set)
		return
	}
	s.mu.Lock()
	if old := s.parked[key]; old != nil && old.set != set {
		s.retire(old.set)
	}
	s.parked[key] = &parkedSet{set: set, deployment: deployment, at: time.Now()}
	var evict []*runtime.Set
	for len(s.parked) > s.cfg.MaxWarmSets {
		var oldestKey string
		var oldest *parkedSet
		for k, p := range s.parked {
			if oldest == nil || p.at.Before(oldest.at) {
				oldestKey, oldest = k, p
			}
		}
		delete(s.parked, oldestKey)
		evict = append(evict, oldest.set)
	}
	s.mu.Unlock()
	for _, set := range evict {
		s.retire(set)
	}
}

// unpark takes the warm set of key, if one is kept and running.
func (s *Service) unpark(key string) *runtime.Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.parked[key]
	if p == nil {
		return nil
	}
	delete(s.parked, key)
	if _, ok := p.set.Addr(); !ok {
		s.retire(p.set)
		return nil
	}
	return p.set
}

// warmDeployments lists the deployments that have a warm set, for retention.
func (s *Service) warmDeploymentsLocked() map[string]bool {
	m := make(map[string]bool, len(s.parked))
	for _, p := range s.parked {
		m[p.deployment] = true
	}
	return m
}

// reapLoop stops parked sets once their revert window has passed.
func (s *Service) reapLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		var expired []*runtime.Set
		for k, p := range s.parked {
			if time.Since(p.at) > s.cfg.RevertWindow {
				delete(s.parked, k)
				expired = append(expired, p.set)
			}
		}
		s.mu.Unlock()
		for _, set := range expired {
			s.retire(set)
		}
	}
}

// warmup is a slot's warm-up configuration, read from its settings.
type warmup struct {
	path     string
	statuses map[int]bool // nil: any status
	timeout  time.Duration
	retries  int
}

// isWarmupSetting reports whether a setting configures warm-up: such
// settings always stay with their slot.
func isWarmupSetting(name string) bool {
	return strings.HasPrefix(name, "WEBSITE_SWAP_WARMUP_") || strings.HasPrefix(name, "HOTSWAP_WARMUP_")
}

func warmupConfig(settings []hotswap.Setting) (warmup, error) {
	w := warmup{path: "/", timeout: 10 * time.Second, retries: 2}
	for _, st := range settings {
		v := strings.TrimSpace(st.Value)
		switch st.Name {
		case "WEBSITE_SWAP_WARMUP_PING_PATH":
			if v != "" {
				if !strings.HasPrefix(v, "/") {
					v = "/" + v
				}
				w.path = v
			}
		case "WEBSITE_SWAP_WARMUP_PING_STATUSES":
			for _, f := range strings.Split(v, ",") {
				f = strings.TrimSpace(f)
				if f == "" {
					continue
				}
				n, err := strconv.Atoi(f)
				if err != nil || n < 100 || n > 599 {
					return w, hotswap.Errorf(hotswap.Invalid, "WEBSITE_SWAP_WARMUP_PING_STATUSES: %q is not an HTTP status", f)
				}
				if w.statuses == nil {
					w.statuses = make(map[int]bool)
				}
				w.statuses[n] = true
			}
		case "HOTSWAP_WARMUP_TIMEOUT":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return w, hotswap.Errorf(hotswap.Invalid, "HOTSWAP_WARMUP_TIMEOUT: %q is not a positive duration", v)
			}
			w.timeout = d
		case "HOTSWAP_WARMUP_RETRIES":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100 {
				return w, hotswap.Errorf(hotswap.Invalid, "HOTSWAP_WARMUP_RETRIES: %q is not a number from 0 to 100", v)
			}
			w.retries = n
		}
	}
	return w, nil
}

// warm sends the warm-up request to a prepared process set until it answers
// with an accepted status. The default path "/" goes to the handler itself;
// any other path is served by the host with admin rights, so a key-protected
// function can be the warm-up path.
func (s *Service) warm(ctx context.Context, w warmup, rs *router.Slot) error {
	var last string
	for attempt := 0; attempt <= w.retries; attempt++ {
		actx, cancel := context.WithTimeout(ctx, w.timeout)
		status, err := s.warmOnce(actx, w.path, rs)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case w.statuses == nil || w.statuses[status]:
			return nil
		default:
			last = fmt.Sprintf("answered %d, expected one of %s", status, statusList(w.statuses))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return hotswap.Errorf(hotswap.FailedPrecondition, "warm-up of %s GET %s failed after %d attempt(s): %s", hotswap.HostLabel(rs.App, rs.Name), w.path, w.retries+1, last)
}

func (s *Service) warmOnce(ctx context.Context, path string, rs *router.Slot) (int, error) {
	if path == "/" {
		addr, ok := rs.Upstream.Addr()
		if w, isWaker := rs.Upstream.(router.Waker); !ok && isWaker && w.Idle() {
			// A set scaled to zero starts for its warm-up.
			a, err := w.Wake(ctx)
			if err != nil {
				return 0, fmt.Errorf("the handler did not start: %w", err)
			}
			addr, ok = a, true
		}
		if !ok {
			return 0, fmt.Errorf("the handler is down")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			return 0, err
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return 0, fmt.Errorf("the handler did not answer: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	status := s.cfg.Router.Warm(ctx, rs, path)
	if ctx.Err() != nil {
		return 0, fmt.Errorf("timed out")
	}
	return status, nil
}

func statusList(m map[int]bool) string {
	var l []int
	for k := range m {
		l = append(l, k)
	}
	sort.Ints(l)
	return strings.Trim(fmt.Sprint(l), "[]")
}

// routerSlot builds the data plane's view of a prepared configuration, for
// warm-up.
func (s *Service) routerSlot(sl hotswap.Slot, deployment string, pkg *funcapp.App, routes *funcapp.Router, set *runtime.Set, settings []hotswap.Setting, keys []hotswap.Key, log *ring) *router.Slot {
	m := settingsMap(settings)
	return &router.Slot{
		App: sl.App, Name: sl.Name,
		HostName: s.hostName(sl.App, sl.Name), BaseURL: s.baseURL(sl.App, sl.Name),
		Keys: router.NewKeys(keys), Deployment: deployment,
		Package: pkg, Routes: routes, Upstream: set, Disabled: disabled(settings, pkg), Log: log.add,
		Settings: m, Broken: broken(pkg, m),
	}
}
