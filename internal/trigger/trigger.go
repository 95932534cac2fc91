// Package trigger runs the queue-triggered functions of the process sets
// that serve slots: one listener per (app, slot, process set), with a
// poller per function that is runnable and not disabled in the slot.
//
// The service (internal/ops) hands the Manager every serving set each time
// it publishes its routing table (Serve), so listening follows serving: a
// set's listener starts after the set is published, and stops pulling as
// soon as a flip, deploy or settings change replaces it. Its invocations in
// flight hold the set (runtime.Set.Acquire), so the set's drain waits for
// them within the drain grace: none is cut off by a swap.
package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/hotswap/hotswap/internal/azstorage"
	"github.com/hotswap/hotswap/internal/binding"
	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/invoke"
	"github.com/hotswap/hotswap/internal/runtime"
)

// Serving is a process set that serves a slot's deployment.
type Serving struct {
	App, Slot  string
	Deployment string
	Package    *funcapp.App
	Set        *runtime.Set
	Settings   map[string]string         // the app settings the set runs with
	Log        func(source, text string) // the slot's log; nil discards
}

// Invoker calls a function of a handler in payload mode (*invoke.Invoker).
type Invoker interface {
	Invoke(ctx context.Context, addr string, req invoke.Request) (invoke.Result, error)
}

// Outputs writes a successful invocation's output bindings
// (*binding.Writer).
type Outputs interface {
	WriteOutputs(ctx context.Context, app *funcapp.App, settings map[string]string, fn *funcapp.Function, res invoke.Result, vals map[string]string) error
}

// Config configures a Manager.
type Config struct {
	Invoker Invoker      // nil: an invoke.Invoker with its defaults
	Outputs Outputs      // nil: a function with output bindings is not run
	Logger  *slog.Logger // nil discards
	// Lease is how long a fetched queue message stays hidden while its
	// function runs, so how soon a message whose try a crash cut off is
	// tried again; zero is DefaultLease. Tests shorten it.
	Lease time.Duration
	// Check reports why a function cannot run with the slot's settings
	// (e.g. an output's connection is missing); nil checks nothing.
	Check func(fn *funcapp.Function, settings map[string]string) error
	// MaxPayload is the largest blob a blob trigger passes, and each blob
	// input reads, in bytes; zero is DefaultMaxPayload (8 MiB, as the
	// router's payload-mode body), at most 64 MiB.
	MaxPayload int64
	// MemoryBudget bounds the bytes of trigger payloads (blobs and blob
	// inputs, with their copies) held at once by all functions together;
	// an invocation waits for its share. Zero is DefaultMemoryBudget
	// (256 MiB).
	MemoryBudget int64
	// Leader tells whether this node scans the blob containers of a
	// cluster whose nodes all serve the same slots; the others stand by,
	// so a container is listed by one node rather than by all (the
	// receipts' leases would keep a blob from running twice anyway). nil:
	// always, as on one server. Queue triggers run on every node: the
	// queue hands each message to one of them.
	Leader func() bool
}

// Manager keeps one listener per serving process set.
type Manager struct {
	cfg    Config
	budget *budget         // payload bytes held at once, all functions
	ctx    context.Context // invocations; ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // pollers and invocations

	mu        sync.Mutex
	closed    bool
	listeners map[string]*listener // by listenerKey

	// notRun counts the untried dequeues of messages for all the
	// pollers: a message a retiring set released untried is counted by
	// the next set that takes it, however many flips it went through.
	notRun notRunCounts
}

// New returns a Manager with no listener.
func New(cfg Config) *Manager {
	if cfg.Invoker == nil {
		cfg.Invoker = &invoke.Invoker{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	cfg.MaxPayload = min(cfg.MaxPayload, blobMaxSize)
	if cfg.MemoryBudget <= 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
	}
	m := &Manager{cfg: cfg, listeners: make(map[string]*listener), budget: newBudget(cfg.MemoryBudget)}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m
}

// listener pulls the queues of one serving set's functions.
type listener struct {
	serving Serving
	cancel  context.CancelFunc // stops pulling
	states  []*fnListener
}

type fnListener struct {
	state  State  // static part: Function, Queue, and State/Error when not polling
	stats  *Stats // nil when not polling
	source string // where it takes work: the queue's or container's URL (no query), and the path
}

// Serve makes the listeners match sets: it starts one for each new serving
// set and stops pulling on the others at once, leaving their invocations in
// flight to finish. It does not block; the service calls it under its lock
// each time it publishes a routing table.
func (m *Manager) Serve(sets []Serving) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	keep := make(map[string]bool, len(sets))
	for _, s := range sets {
		if s.Set == nil || s.Package == nil {
			continue
		}
		k := listenerKey(s)
		keep[k] = true
		if m.listeners[k] == nil {
			m.listeners[k] = m.start(s)
		}
	}
	for k, l := range m.listeners {
		if !keep[k] {
			l.cancel()
			delete(m.listeners, k)
		}
	}
}

// States returns the queue triggers of a slot, sorted by function name.
func (m *Manager) States(app, slot string) []State {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []State
	for _, l := range m.listeners {
		if l.serving.App != app || l.serving.Slot != slot {
			continue
		}
		for _, f := range l.states {
			st := f.state
			if f.stats != nil {
				f.stats.state(&st)
				st.SharedWith = m.sharedLocked(l, f)
			}
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Function < out[j].Function })
	return out
}

// Listeners returns States by function name, for the host admin API's
// GET /admin/functions.
func (m *Manager) Listeners(app, slot string) map[string]any {
	out := map[string]any{}
	for _, st := range m.States(app, slot) {
		out[st.Function] = st
	}
	return out
}

// sharedLocked returns the other slots of l's app whose listeners take work
// from where f does (staging listening to production's queue, say).
func (m *Manager) sharedLocked(l *listener, f *fnListener) []string {
	var slots []string
	for _, o := range m.listeners {
		if o.serving.App != l.serving.App || o.serving.Slot == l.serving.Slot {
			continue
		}
		for _, g := range o.states {
			if g.stats != nil && g.source == f.source && !slices.Contains(slots, o.serving.Slot) {
				slots = append(slots, o.serving.Slot)
			}
		}
	}
	sort.Strings(slots)
	return slots
}

// Close stops every listener and waits for the invocations in flight; those
// still running when ctx ends are cut off, and their messages made visible
// again at once.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	for k, l := range m.listeners {
		l.cancel()
		delete(m.listeners, k)
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.cancel()
		<-done
	}
	m.cancel()
	return nil
}

// listenerKey tells serving sets apart: the same set moving to another slot
// (a swap completing a preview) or running with other settings gets a new
// listener.
func listenerKey(s Serving) string {
	names := make([]string, 0, len(s.Settings))
	for n := range s.Settings {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00%s\x00%p", s.App, s.Slot, s.Deployment, s.Set)
	for _, n := range names {
		b.WriteString("\x00" + n + "=" + s.Settings[n])
	}
	return b.String()
}

// start starts the pollers of s's queue functions; m.mu is held.
func (m *Manager) start(s Serving) *listener {
	pull, cancel := context.WithCancel(m.ctx)
	l := &listener{serving: s, cancel: cancel}
	logf := func(text string) {
		if s.Log != nil {
			s.Log("host", text)
		}
	}
	disabled := disabledFunctions(s.Settings)
	for _, fn := range s.Package.Functions {
		if fn.Trigger != funcapp.TriggerQueue && fn.Trigger != funcapp.TriggerBlob {
			continue
		}
		var tb struct {
			QueueName  string `json:"queueName"`
			Path       string `json:"path"`
			Connection string `json:"connection"`
		}
		for i, b := range fn.Bindings {
			if b.Name == fn.TriggerName && i < len(fn.RawBindings) {
				_ = json.Unmarshal(fn.RawBindings[i], &tb)
			}
		}
		f := &fnListener{state: State{Function: fn.Name, Trigger: fn.Trigger, Queue: tb.QueueName, Path: tb.Path}}
		l.states = append(l.states, f)
		notRunnable := func(why string) {
			f.state.State, f.state.Error = StateNotRunnable, why
			logf(fmt.Sprintf("%s function %s does not run: %s", fn.Trigger, fn.Name, why))
		}
		switch {
		case disabled[strings.ToLower(fn.Name)]:
			f.state.State = StateDisabled
			continue
		case !fn.Runnable:
			notRunnable(fn.Reason)
			continue
		case len(fn.Outputs) > 0 && m.cfg.Outputs == nil:
			notRunnable("output bindings are not supported here")
			continue
		}
		if m.cfg.Check != nil {
			if err := m.cfg.Check(fn, s.Settings); err != nil {
				notRunnable(err.Error())
				continue
			}
		}
		e, err := open(fn, s.Settings)
		if err == nil {
			err = checkInputs(fn, s.Settings)
		}
		if err != nil {
			notRunnable(err.Error())
			continue
		}
		f.state.Queue, f.state.Path = e.queue, e.path
		if e.q != nil {
			f.source = stripQuery(e.q.URL())
		} else {
			f.source = stripQuery(e.c.URL()) + "\x00" + e.path
		}
		run := m.blobScanner
		if fn.Trigger == funcapp.TriggerQueue {
			run = m.queuePoller
		}
		pollOrScan := run(s, fn, e, f, logf)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			pollOrScan(pull, m.ctx, &m.wg)
		}()
	}
	if len(l.states) > 0 {
		m.cfg.Logger.Info("trigger listener started", "app", s.App, "slot", s.Slot, "deployment", s.Deployment, "functions", len(l.states))
	}
	return l
}

// endpoints are the storage a trigger uses, made without I/O.
type endpoints struct {
	queue      string // queue triggers: the queue, %settings% resolved
	q, poison  *azqueue.QueueClient
	path       string // blob triggers: the path, %settings% resolved
	pattern    *azstorage.BlobPattern
	c          *container.Client // the watched container
	receipts   *container.Client
	blobPoison *azqueue.QueueClient
}

// open resolves fn's trigger against the app settings. Receipts and poison
// reports of blob triggers go to the host's storage (AzureWebJobsStorage)
// when it is set, as on Azure, else to the trigger's own account.
func open(fn *funcapp.Function, settings map[string]string) (e endpoints, err error) {
	var tb struct {
		QueueName  string `json:"queueName"`
		Path       string `json:"path"`
		Connection string `json:"connection"`
	}
	for i, b := range fn.Bindings {
		if b.Name == fn.TriggerName && i < len(fn.RawBindings) {
			_ = json.Unmarshal(fn.RawBindings[i], &tb)
		}
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("binding %q (type %sTrigger): %w", fn.TriggerName, fn.Trigger, err)
		}
	}()
	acct, err := azstorage.Resolve(settings, tb.Connection)
	if err != nil {
		return e, fmt.Errorf("connection: %w", err)
	}
	if fn.Trigger == funcapp.TriggerQueue {
		if e.queue, err = azstorage.ExpandSettings(tb.QueueName, settings); err != nil {
			return e, err
		}
		if e.q, err = acct.Queue(e.queue); err != nil {
			return e, err
		}
		e.poison, err = acct.Queue(e.queue + "-poison")
		return e, err
	}
	if e.path, err = azstorage.ExpandSettings(tb.Path, settings); err != nil {
		return e, err
	}
	if e.pattern, err = azstorage.ParseBlobPattern(e.path); err != nil {
		return e, err
	}
	if e.c, err = acct.Container(e.pattern.Container()); err != nil {
		return e, err
	}
	host := acct
	if h, err := azstorage.Resolve(settings, ""); err == nil && h.BlobEndpoint != "" && h.QueueEndpoint != "" {
		host = h
	}
	if e.receipts, err = host.Container(receiptsContainer); err != nil {
		return e, err
	}
	e.blobPoison, err = host.Queue(blobPoisonQueue)
	return e, err
}

// Check returns why a queue or blob triggered function cannot listen with
// the app settings (its connection setting missing or invalid, a %setting%
// in its queue name or path not set, a name Azure refuses), or nil. The
// error names the binding and never holds a setting's value.
func Check(fn *funcapp.Function, settings map[string]string) error {
	if fn.Trigger != funcapp.TriggerQueue && fn.Trigger != funcapp.TriggerBlob {
		return nil
	}
	if _, err := open(fn, settings); err != nil {
		return err
	}
	return checkInputs(fn, settings)
}

// Reasons returns the runnable queue and blob triggered functions of app
// that cannot listen with the settings, with the reason (see Check); nil
// when there are none.
func Reasons(app *funcapp.App, settings map[string]string) map[string]string {
	if app == nil {
		return nil
	}
	var m map[string]string
	for _, f := range app.Functions {
		if !f.Runnable {
			continue
		}
		if err := Check(f, settings); err != nil {
			if m == nil {
				m = make(map[string]string)
			}
			m[f.Name] = err.Error()
		}
	}
	return m
}

// queuePoller makes the poller of a queue function.
func (m *Manager) queuePoller(s Serving, fn *funcapp.Function, e endpoints, f *fnListener, logf func(string)) func(pull, work context.Context, wg *sync.WaitGroup) {
	return m.newPoller(s, fn, e, f, logf).run
}

func (m *Manager) newPoller(s Serving, fn *funcapp.Function, e endpoints, f *fnListener, logf func(string)) *poller {
	f.stats = new(Stats)
	return &poller{
		fn: fn.Name, queue: e.queue, q: e.q, poison: e.poison, opts: s.Package.Host.Queues, lease: m.cfg.Lease,
		handle: m.handler(s, fn), log: logf, stats: f.stats, ready: readyWait(s.Set), notRun: &m.notRun,
	}
}

// blobScanner makes the scanner of a blob function.
func (m *Manager) blobScanner(s Serving, fn *funcapp.Function, e endpoints, f *fnListener, logf func(string)) func(pull, work context.Context, wg *sync.WaitGroup) {
	f.stats = new(Stats)
	b := &blobScanner{
		fn: fn.Name, hostID: hostID(s.App, s.Slot, s.Settings), pattern: e.pattern, c: e.c, receipts: e.receipts,
		poison: e.blobPoison, base64: s.Package.Host.Queues.Base64, maxSize: m.cfg.MaxPayload, budget: m.budget,
		inputs: int64(len(fn.Inputs)), handle: m.blobHandler(s, fn), log: logf, stats: f.stats, ready: readyWait(s.Set), leader: m.cfg.Leader,
		done: make(map[string]bool), busy: make(map[string]bool), later: make(map[string]time.Time),
	}
	return b.run
}

// handler returns the invocation of fn for one message on s's set.
func (m *Manager) handler(s Serving, fn *funcapp.Function) func(ctx context.Context, msg *message) error {
	return func(ctx context.Context, msg *message) error {
		meta := map[string]json.RawMessage{
			"DequeueCount":    json.RawMessage(strconv.FormatInt(msg.DequeueCount, 10)),
			"Id":              jsonString(msg.ID),
			"InsertionTime":   jsonString(azureTime(msg.Inserted)),
			"ExpirationTime":  jsonString(azureTime(msg.Expires)),
			"NextVisibleTime": jsonString(azureTime(msg.NextVisible)),
			"PopReceipt":      jsonString(msg.PopReceipt),
		}
		vals := map[string]string{
			"QueueTrigger": string(msg.Text), "Id": msg.ID, "DequeueCount": strconv.FormatInt(msg.DequeueCount, 10),
			"InsertionTime": azureTime(msg.Inserted), "ExpirationTime": azureTime(msg.Expires),
			"NextVisibleTime": azureTime(msg.NextVisible), "PopReceipt": msg.PopReceipt,
		}
		// A JSON object's top-level values bind by name, as on Azure.
		var obj map[string]any
		if json.Unmarshal(msg.Text, &obj) == nil {
			for k, v := range obj {
				switch v := v.(type) {
				case string:
					vals[k] = v
				case float64, bool:
					vals[k] = fmt.Sprint(v)
				}
			}
		}
		// Blob inputs are read whole: their bytes wait for the budget
		// (a blob trigger's scanner takes them with its blob's).
		if n := int64(len(fn.Inputs)); n > 0 {
			got, err := m.budget.acquire(ctx, n*m.cfg.MaxPayload)
			if err != nil {
				return &notRunError{why: "the server is stopping"}
			}
			defer m.budget.release(got)
		}
		return m.run(ctx, s, fn, jsonString(string(msg.Text)), meta, vals)
	}
}

// blobHandler returns the invocation of fn for one blob on s's set: Data
// holds the blob (blobData), Metadata its path, URI, properties, metadata
// and the names its path bound.
func (m *Manager) blobHandler(s Serving, fn *funcapp.Function) func(ctx context.Context, b *blobItem) error {
	return func(ctx context.Context, b *blobItem) error {
		props, _ := json.Marshal(map[string]any{
			"Length": b.Length, "ContentType": b.ContentType, "ETag": b.ETag, "LastModified": azureTime(b.Modified),
		})
		md, _ := json.Marshal(b.Metadata)
		meta := map[string]json.RawMessage{
			"BlobTrigger": jsonString(b.Path), "Uri": jsonString(b.URL), "Properties": props, "Metadata": md,
		}
		vals := map[string]string{"BlobTrigger": b.Path, "Uri": b.URL}
		for k, v := range b.Vals {
			meta[k] = jsonString(v)
			vals[k] = v
		}
		return m.run(ctx, s, fn, blobData(b.Content), meta, vals)
	}
}

// run invokes fn on s's set with its trigger's data, then writes its
// outputs. The set is held (Acquire) throughout, so retiring it waits for
// the invocation; errNotRun when it is retiring already.
func (m *Manager) run(ctx context.Context, s Serving, fn *funcapp.Function, data json.RawMessage, meta map[string]json.RawMessage, vals map[string]string) error {
	if !s.Set.Acquire() {
		return errNotRun
	}
	defer s.Set.Release()
	addr, err := handlerAddr(ctx, s.Set)
	if err != nil {
		return err // not a try: released until the handler is back
	}
	in := map[string]json.RawMessage{fn.TriggerName: data}
	if err := binding.ReadInputs(ctx, fn, s.Settings, vals, m.cfg.MaxPayload, in); err != nil {
		return azstorage.Redact(err)
	}
	res, err := m.cfg.Invoker.Invoke(ctx, addr, invoke.Request{
		Function: fn.Name,
		Data:     in,
		Metadata: meta,
	})
	if s.Log != nil {
		for _, line := range res.Logs {
			s.Log(fn.Name, line)
		}
	}
	if err != nil {
		if nr := notReached(err, s.Set); nr != nil {
			return nr
		}
		return err
	}
	if len(fn.Outputs) == 0 {
		return nil
	}
	if err := m.cfg.Outputs.WriteOutputs(ctx, s.Package, s.Settings, fn, res, vals); err != nil {
		return fmt.Errorf("write outputs: %w", azstorage.Redact(err))
	}
	return nil
}

// azureTime formats a time as the Functions host does in queue metadata.
func azureTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05-07:00")
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// stripQuery cuts a URL's query, where a shared access signature would be.
func stripQuery(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}

// disabledFunctions returns, lower-cased, the functions disabled by
// AzureWebJobs.<name>.Disabled (true or 1).
func disabledFunctions(settings map[string]string) map[string]bool {
	m := make(map[string]bool)
	for k, v := range settings {
		name, ok := strings.CutPrefix(k, "AzureWebJobs.")
		if !ok {
			continue
		}
		fn, ok := strings.CutSuffix(name, ".Disabled")
		if !ok {
			continue
		}
		if v := strings.ToLower(strings.TrimSpace(v)); v == "true" || v == "1" {
			m[strings.ToLower(fn)] = true
		}
	}
	return m
}
