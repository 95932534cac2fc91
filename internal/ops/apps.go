package ops

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
	"github.com/hotswap/hotswap/internal/trigger"
)

// AppView is an app with its slots, as the API shows it.
type AppView struct {
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"createdAt"`
	Slots     []SlotView `json:"slots"`
	// Traffic is the share of production's requests other slots get
	// (see SetTraffic), by slot name.
	Traffic []hotswap.TrafficShare `json:"traffic,omitempty"`
}

// SlotView is a slot as the API shows it.
type SlotView struct {
	App          string    `json:"app"`
	Name         string    `json:"name"`
	HostName     string    `json:"hostName"`
	URL          string    `json:"url"`
	DeploymentID string    `json:"deploymentId,omitempty"`
	State        string    `json:"state"`
	Error        string    `json:"error,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	// AutoSwapTarget is the slot this one swaps into after each deploy.
	AutoSwapTarget string       `json:"autoSwapTarget,omitempty"`
	Preview        *PreviewView `json:"preview,omitempty"`
	// HeldBy is the release that deployed to this slot and waits to swap
	// it on: deploys, swaps and rollbacks here are refused unless forced.
	HeldBy    *Hold          `json:"heldBy,omitempty"`
	Functions []FunctionView `json:"functions,omitempty"`
}

// PreviewView describes a slot in a swap preview.
type PreviewView struct {
	Target string    `json:"target"`
	Since  time.Time `json:"since"`
}

// FunctionView is a function of a slot's deployment.
type FunctionView struct {
	Name       string   `json:"name"`
	Trigger    string   `json:"trigger"`
	Methods    []string `json:"methods,omitempty"`
	AuthLevel  string   `json:"authLevel,omitempty"`
	Route      string   `json:"route,omitempty"`
	Schedule   string   `json:"schedule,omitempty"` // timer functions: the NCRONTAB expression
	Runnable   bool     `json:"runnable"`
	Reason     string   `json:"reason,omitempty"`
	Disabled   bool     `json:"disabled"`
	Forwarding bool     `json:"forwarding"`
	InvokeURL  string   `json:"invokeUrl,omitempty"`
	// Listener is what a queue or blob trigger's listener in the slot is
	// doing; nil for other triggers and when the slot serves nothing.
	Listener *trigger.State `json:"listener,omitempty"`
}

// CreateApp creates an app with its production slot and that slot's keys.
func (s *Service) CreateApp(ctx context.Context, actor, name string) (AppView, error) {
	if err := hotswap.ValidateName("app", name); err != nil {
		return AppView{}, err
	}
	app := hotswap.App{Name: name, CreatedAt: time.Now().UTC()}
	keys := newSlotKeys()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.CreateApp(ctx, app, keys); err != nil {
		return AppView{}, err
	}
	sl, err := s.store.GetSlot(ctx, name, hotswap.ProductionSlot)
	if err != nil {
		return AppView{}, err
	}
	s.slots[slotKey{name, sl.Name}] = &slotState{slot: sl, keys: keys, log: newRing()}
	s.publishLocked()
	s.activity(ctx, name, actor, "app.create", "", "", "succeeded")
	return s.appViewLocked(app), nil
}

func newSlotKeys() []hotswap.Key {
	return []hotswap.Key{
		{Scope: hotswap.ScopeMaster, Name: hotswap.MasterKeyName, Value: newKey()},
		{Scope: hotswap.ScopeHost, Name: "default", Value: newKey()},
	}
}

// ListApps returns every app with its slots.
func (s *Service) ListApps(ctx context.Context) ([]AppView, error) {
	apps, err := s.store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	out := make([]AppView, 0, len(apps))
	for _, a := range apps {
		out = append(out, s.appViewLocked(a))
	}
	s.mu.Unlock()
	for i := range out {
		s.annotateApp(&out[i])
	}
	return out, nil
}

// GetApp returns one app with its slots.
func (s *Service) GetApp(ctx context.Context, name string) (AppView, error) {
	app, err := s.store.GetApp(ctx, name)
	if err != nil {
		return AppView{}, err
	}
	s.mu.Lock()
	v := s.appViewLocked(app)
	s.mu.Unlock()
	s.annotateApp(&v)
	return v, nil
}

func (s *Service) annotateApp(v *AppView) {
	for i := range v.Slots {
		s.annotateHolds(&v.Slots[i])
	}
}

func (s *Service) appViewLocked(app hotswap.App) AppView {
	v := AppView{Name: app.Name, CreatedAt: app.CreatedAt, Slots: []SlotView{}, Traffic: slices.Clone(s.traffic[app.Name])}
	var prod *slotState
	var others []*slotState
	for k, st := range s.slots {
		if k.app != app.Name {
			continue
		}
		if k.slot == hotswap.ProductionSlot {
			prod = st
		} else {
			others = append(others, st)
		}
	}
	sortSlots(others)
	if prod != nil {
		v.Slots = append(v.Slots, s.slotViewLocked(prod, false))
	}
	for _, st := range others {
		v.Slots = append(v.Slots, s.slotViewLocked(st, false))
	}
	return v
}

func sortSlots(sl []*slotState) {
	for i := 1; i < len(sl); i++ {
		for j := i; j > 0 && sl[j].slot.Name < sl[j-1].slot.Name; j-- {
			sl[j], sl[j-1] = sl[j-1], sl[j]
		}
	}
}

func (s *Service) slotViewLocked(st *slotState, withFunctions bool) SlotView {
	v := SlotView{
		App:            st.slot.App,
		Name:           st.slot.Name,
		HostName:       s.hostName(st.slot.App, st.slot.Name),
		URL:            s.baseURL(st.slot.App, st.slot.Name),
		DeploymentID:   st.slot.DeploymentID,
		CreatedAt:      st.slot.CreatedAt,
		Error:          st.err,
		AutoSwapTarget: st.slot.AutoSwapTarget,
	}
	switch {
	case st.preview != nil:
		v.State = hotswap.SlotPreview
		v.Preview = &PreviewView{Target: st.preview.req.Target, Since: st.preview.since}
	case st.slot.DeploymentID == "":
		v.State = hotswap.SlotEmpty
	case st.set == nil:
		v.State = hotswap.SlotStopped
	default:
		if _, ok := st.set.Addr(); ok {
			v.State = hotswap.SlotRunning
		} else if st.set.Idle() {
			v.State = hotswap.SlotIdle
		} else {
			v.State = hotswap.SlotDown
		}
	}
	if withFunctions && st.pkg != nil {
		dis := disabled(st.settings, st.pkg)
		bad := broken(st.pkg, settingsMap(st.settings))
		listening := map[string]trigger.State{}
		if s.cfg.Triggers != nil {
			for _, ls := range s.cfg.Triggers.States(st.slot.App, st.slot.Name) {
				listening[ls.Function] = ls
			}
		}
		for _, f := range st.pkg.Functions {
			fv := FunctionView{
				Name:       f.Name,
				Trigger:    f.Trigger,
				Methods:    f.Methods,
				AuthLevel:  f.AuthLevel,
				Route:      f.Route,
				Runnable:   f.Runnable,
				Reason:     f.Reason,
				Disabled:   dis[f.Name],
				Forwarding: f.Forward && st.pkg.Host.EnableForwarding,
			}
			if why, ok := bad[f.Name]; ok && f.Runnable {
				fv.Runnable, fv.Reason = false, why
			}
			if f.Schedule != nil {
				fv.Schedule = f.Schedule.String()
			}
			if ls, ok := listening[f.Name]; ok {
				fv.Listener = &ls
			}
			if f.Trigger == "http" {
				fv.InvokeURL = router.InvokeURL(v.URL, st.pkg.Host.RoutePrefix, f.Route)
				if k := invokeKey(st.keys, f.Name, f.AuthLevel); k != "" {
					fv.InvokeURL += "?code=" + k
				}
			}
			v.Functions = append(v.Functions, fv)
		}
	}
	return v
}

// invokeKey picks the key "Get function URL" shows: the function's default
// key, else the default host key; the master key for admin functions; none
// for anonymous ones.
func invokeKey(keys []hotswap.Key, fn, level string) string {
	if strings.EqualFold(level, "anonymous") {
		return ""
	}
	var host, master string
	for _, k := range keys {
		switch {
		case k.Scope == hotswap.ScopeFunction && k.Function == fn && k.Name == "default" && level != "admin":
			return k.Value
		case k.Scope == hotswap.ScopeHost && k.Name == "default":
			host = k.Value
		case k.Scope == hotswap.ScopeMaster:
			master = k.Value
		}
	}
	switch level {
	case "anonymous":
		return ""
	case "admin":
		return master
	}
	return host
}

// DeleteApp removes an app, its slots and records, and stops its processes.
// A release holding one of its slots refuses it unless forced.
func (s *Service) DeleteApp(ctx context.Context, actor, name string, ho HoldOptions) error {
	var slots []string
	s.mu.Lock()
	for k := range s.slots {
		if k.app == name {
			slots = append(slots, k.slot)
		}
	}
	s.mu.Unlock()
	slices.Sort(slots)
	forced, err := s.checkHolds("delete", name, ho.Release, ho.Force, slots...)
	if err != nil {
		return err
	}
	op, err := s.begin(ctx, name, "app.delete", "", actor)
	if err != nil {
		return err
	}
	if err := s.abandonHolds(context.WithoutCancel(ctx), actor, "delete", name, forced); err != nil {
		s.end(ctx, op, err)
		return err
	}
	s.mu.Lock()
	if err := s.store.DeleteApp(ctx, name); err != nil {
		s.mu.Unlock()
		s.end(ctx, op, err)
		return err
	}
	var sets []*runtime.Set
	for k, st := range s.slots {
		if k.app == name {
			sets = append(sets, st.set)
			delete(s.slots, k)
		}
	}
	delete(s.traffic, name)
	s.publishLocked()
	s.mu.Unlock()
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Forget(name, "")
	}
	for _, set := range sets {
		s.retire(set)
	}
	s.log.Info("app deleted", "app", name, "actor", actor)
	return nil
}

// CreateSlot adds a slot to an app, with its own keys. Settings are copied
// from cloneFrom when it is not empty.
func (s *Service) CreateSlot(ctx context.Context, actor, app, name, cloneFrom string) (SlotView, error) {
	if err := hotswap.ValidateName("slot", name); err != nil {
		return SlotView{}, err
	}
	var settings []hotswap.Setting
	if cloneFrom != "" {
		var err error
		if settings, err = s.store.ListSettings(ctx, app, cloneFrom); err != nil {
			return SlotView{}, err
		}
	}
	sl := hotswap.Slot{App: app, Name: name, CreatedAt: time.Now().UTC()}
	keys := newSlotKeys()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.CreateSlot(ctx, sl, keys); err != nil {
		return SlotView{}, err
	}
	if len(settings) > 0 {
		if err := s.store.SetSettings(ctx, app, name, settings); err != nil {
			return SlotView{}, err
		}
	}
	sl, err := s.store.GetSlot(ctx, app, name)
	if err != nil {
		return SlotView{}, err
	}
	st := &slotState{slot: sl, keys: keys, settings: settings, log: newRing()}
	s.slots[slotKey{app, name}] = st
	s.publishLocked()
	s.activity(ctx, app, actor, "slot.create", name, cloneFromDetail(cloneFrom), "succeeded")
	return s.slotViewLocked(st, false), nil
}

func cloneFromDetail(from string) string {
	if from == "" {
		return ""
	}
	return "settings cloned from " + from
}

// GetSlot returns a slot with its functions.
func (s *Service) GetSlot(ctx context.Context, app, slot string) (SlotView, error) {
	s.mu.Lock()
	st, err := s.slotLocked(ctx, app, slot)
	if err != nil {
		s.mu.Unlock()
		return SlotView{}, err
	}
	v := s.slotViewLocked(st, true)
	s.mu.Unlock()
	s.annotateHolds(&v)
	return v, nil
}

// ListSlots returns an app's slots.
func (s *Service) ListSlots(ctx context.Context, app string) ([]SlotView, error) {
	v, err := s.GetApp(ctx, app)
	if err != nil {
		return nil, err
	}
	return v.Slots, nil
}

// Function returns one function of a slot.
func (s *Service) Function(ctx context.Context, app, slot, fn string) (FunctionView, error) {
	v, err := s.GetSlot(ctx, app, slot)
	if err != nil {
		return FunctionView{}, err
	}
	for _, f := range v.Functions {
		if f.Name == fn {
			return f, nil
		}
	}
	if v.DeploymentID == "" {
		return FunctionView{}, hotswap.Errorf(hotswap.NotFound, "slot %s/%s has no deployment, so no function %q", app, slot, fn)
	}
	return FunctionView{}, hotswap.Errorf(hotswap.NotFound, "function %q not found in slot %s/%s", fn, app, slot)
}

// slotLocked returns the state of a slot, or the store's NotFound error.
func (s *Service) slotLocked(ctx context.Context, app, slot string) (*slotState, error) {
	if st := s.slots[slotKey{app, slot}]; st != nil {
		return st, nil
	}
	if s.node != nil {
		// Made through another node a moment ago, before this node's
		// reconcile: known from now on; its process set follows.
		if sl, err := s.store.GetSlot(ctx, app, slot); err == nil {
			st, err := s.loadSlot(ctx, sl)
			if err != nil {
				return nil, err
			}
			st.slot.DeploymentID = "" // set once its process set runs
			s.slots[slotKey{app, slot}] = st
			s.publishLocked()
			signal(s.node.reconcile)
			return st, nil
		}
	}
	if _, err := s.store.GetApp(ctx, app); err != nil {
		return nil, err
	}
	return nil, hotswap.Errorf(hotswap.NotFound, "slot %q of app %q not found", slot, app)
}

// DeleteSlot removes a slot (never production) and stops its processes.
// A release holding the slot refuses it unless forced: recreating it would
// make the release fail after its approvals.
func (s *Service) DeleteSlot(ctx context.Context, actor, app, slot string, ho HoldOptions) error {
	if slot == hotswap.ProductionSlot {
		return hotswap.Errorf(hotswap.FailedPrecondition, "the production slot cannot be deleted")
	}
	forced, err := s.checkHolds("delete", app, ho.Release, ho.Force, slot)
	if err != nil {
		return err
	}
	op, err := s.begin(ctx, app, "slot.delete", slot, actor)
	if err != nil {
		return err
	}
	if err := s.abandonHolds(context.WithoutCancel(ctx), actor, "delete", app, forced); err != nil {
		s.end(ctx, op, err)
		return err
	}
	s.mu.Lock()
	err = s.store.DeleteSlot(ctx, app, slot)
	var set *runtime.Set
	if err == nil {
		if st := s.slots[slotKey{app, slot}]; st != nil {
			set = st.set
		}
		delete(s.slots, slotKey{app, slot})
		s.dropShareLocked(app, slot)
		s.publishLocked()
	}
	s.mu.Unlock()
	s.end(ctx, op, err)
	if err != nil {
		return err
	}
	s.retire(set)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Forget(app, slot)
	}
	s.activity(ctx, app, actor, "slot.delete", slot, "", "succeeded")
	return nil
}

// Log returns the last n lines of a slot's log.
func (s *Service) Log(ctx context.Context, app, slot string, n int) ([]LogLine, error) {
	s.mu.Lock()
	st, err := s.slotLocked(ctx, app, slot)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return st.log.tail(n), nil
}

// ResolveLabel finds the slot whose host label is label.
func (s *Service) ResolveLabel(label string) (app, slot string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.slots {
		if hotswap.HostLabel(k.app, k.slot) == label {
			return k.app, k.slot, true
		}
	}
	return "", "", false
}

// Activity returns an app's activity log, newest first.
func (s *Service) Activity(ctx context.Context, app string, limit int) ([]hotswap.Activity, error) {
	if _, err := s.store.GetApp(ctx, app); err != nil {
		return nil, err
	}
	return s.store.ListActivity(ctx, app, limit)
}

// Operations returns an app's latest operations, newest first.
func (s *Service) Operations(ctx context.Context, app string, limit int) ([]hotswap.Operation, error) {
	if _, err := s.store.GetApp(ctx, app); err != nil {
		return nil, err
	}
	return s.withEnds(s.store.ListOperations(ctx, app, limit))
}
