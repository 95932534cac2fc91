package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hotswap/hotswap"
	"go.yaml.in/yaml/v3"
)

// Resolver checks the names a definition refers to against the platform.
// An error of kind hotswap.NotFound (or any kind but hotswap.Internal and
// hotswap.Unavailable) becomes a problem showing its hotswap.ErrorMessage;
// an Internal or Unavailable error, which includes errors without a kind,
// means the check itself failed: Parse stops and returns it.
type Resolver interface {
	// Slot returns nil if app exists and has slot.
	Slot(app, slot string) error
	// User returns nil if the user exists.
	User(name string) error
}

// Parse decodes and validates a pipeline definition and fills in its
// defaults. r checks that the apps, slots and users it names exist; a nil r
// skips those checks. An invalid definition is reported as an *Error listing
// every problem found.
func Parse(data []byte, r Resolver) (*Pipeline, error) {
	p := &parser{r: r}
	pl := p.parse(data)
	if p.failed != nil {
		return nil, p.failed
	}
	if len(p.problems) > 0 {
		sort.SliceStable(p.problems, func(i, j int) bool {
			a, b := p.problems[i], p.problems[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		return nil, &Error{Problems: p.problems}
	}
	return pl, nil
}

type parser struct {
	r        Resolver
	problems []Problem
	// skip holds the nodes already reported as unusable (aliases, anchors,
	// unknown tags); the schema walk passes over them in silence.
	skip map[*yaml.Node]bool
	// slots and users memoize the answers of r.
	slots map[[2]string]error
	users map[string]error
	// failed is the first error of r that is not about the definition.
	failed error
}

func (p *parser) addf(n *yaml.Node, path, format string, args ...any) {
	pr := Problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		pr.Line, pr.Column = n.Line, n.Column
	}
	p.problems = append(p.problems, pr)
}

// syntaxLine splits the line number off a yaml error message.
var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) syntax(err error) {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.problems = append(p.problems, Problem{Line: line, Msg: "invalid YAML: " + m[2]})
		return
	}
	p.problems = append(p.problems, Problem{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")})
}

func (p *parser) parse(data []byte) *Pipeline {
	if len(data) > MaxSize {
		p.addf(nil, "", "definition is larger than %d KiB", MaxSize>>10)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		p.addf(nil, "", "definition is empty")
		return nil
	case err != nil:
		p.syntax(err)
		return nil
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.syntax(err)
			return nil
		}
		// A trailing "---" makes an empty document; anything more is a
		// second definition.
		if len(next.Content) == 1 && next.Content[0].ShortTag() == "!!null" && next.Content[0].Value == "" {
			continue
		}
		p.addf(&next, "", "multiple YAML documents are not allowed")
		return nil
	}
	p.skip = make(map[*yaml.Node]bool)
	p.screen(&doc)
	if len(doc.Content) != 1 {
		p.addf(&doc, "", "definition is empty")
		return nil
	}
	return p.pipeline(doc.Content[0])
}

// screen reports the aliases, anchors and tags of the tree. Aliases are never
// followed, so an alias bomb costs nothing.
func (p *parser) screen(n *yaml.Node) {
	switch {
	case n.Kind == yaml.AliasNode:
		p.addf(n, "", "YAML aliases are not allowed")
		p.skip[n] = true
		return
	case n.Anchor != "":
		p.addf(n, "", "YAML anchors are not allowed")
		p.skip[n] = true
	}
	switch tag := n.ShortTag(); tag {
	case "!!map", "!!seq", "!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp",
		"!!merge": // the tag of a "<<" key, reported as an unknown field
	default:
		if n.Kind != yaml.DocumentNode && !p.skip[n] {
			p.addf(n, "", "YAML tag %s is not supported (quote a value that starts with \"!\")", quote(tag))
			p.skip[n] = true
		}
	}
	for _, c := range n.Content {
		p.screen(c)
	}
}

// fields is a mapping node checked against the fields it may have.
type fields struct {
	node *yaml.Node
	path string
	vals map[string]*yaml.Node
}

// get returns the value of field name and its path; nil when absent.
func (f *fields) get(name string) (*yaml.Node, string) {
	return f.vals[name], join(f.path, name)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// mapping checks that n is a mapping with only known, distinct keys.
func (p *parser) mapping(n *yaml.Node, path string, known ...string) (*fields, bool) {
	if !p.kind(n, path, yaml.MappingNode, "a mapping") {
		return nil, false
	}
	f := &fields{node: n, path: path, vals: make(map[string]*yaml.Node)}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case p.skip[k]:
			continue
		case k.Kind != yaml.ScalarNode:
			p.addf(k, path, "want a field name, got %s", describe(k))
			continue
		case !slices.Contains(known, k.Value):
			p.addf(k, path, "unknown field %s", quote(k.Value))
			continue
		case f.vals[k.Value] != nil:
			p.addf(k, path, "duplicate field %s", quote(k.Value))
			continue
		}
		f.vals[k.Value] = v
	}
	return f, true
}

// require returns field name of f, reporting it when missing.
func (p *parser) require(f *fields, name string) (*yaml.Node, string) {
	n, path := f.get(name)
	if n == nil {
		p.addf(f.node, f.path, "missing required field %s", quote(name))
	}
	return n, path
}

func (p *parser) kind(n *yaml.Node, path string, k yaml.Kind, want string) bool {
	if p.skip[n] {
		return false
	}
	if n.Kind != k {
		p.addf(n, path, "want %s, got %s", want, describe(n))
		return false
	}
	return true
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return quote(n.Value)
	}
	return "nothing"
}

// quote quotes s for a message, cut short when long.
func quote(s string) string {
	const max = 60
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// scalar checks that n is a scalar with one of tags.
func (p *parser) scalar(n *yaml.Node, path, want string, tags ...string) bool {
	if !p.kind(n, path, yaml.ScalarNode, want) {
		return false
	}
	if !slices.Contains(tags, n.ShortTag()) {
		p.addf(n, path, "want %s, got %s", want, describe(n))
		return false
	}
	return true
}

func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	// Plain scalars that YAML reads as numbers or dates are fine as strings.
	if !p.scalar(n, path, "a string", "!!str", "!!int", "!!float", "!!bool", "!!timestamp") {
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	var b bool
	if !p.scalar(n, path, "a boolean", "!!bool") {
		return false, false
	}
	if err := n.Decode(&b); err != nil {
		p.addf(n, path, "want a boolean, got %s", describe(n))
		return false, false
	}
	return b, true
}

func (p *parser) integer(n *yaml.Node, path string) (int, bool) {
	var i int
	if !p.scalar(n, path, "an integer", "!!int") {
		return 0, false
	}
	if err := n.Decode(&i); err != nil {
		p.addf(n, path, "want an integer, got %s", describe(n))
		return 0, false
	}
	return i, true
}

func (p *parser) number(n *yaml.Node, path string) (float64, bool) {
	var f float64
	if !p.scalar(n, path, "a number", "!!int", "!!float") {
		return 0, false
	}
	if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		p.addf(n, path, "want a number, got %s", describe(n))
		return 0, false
	}
	return f, true
}

func (p *parser) duration(n *yaml.Node, path string) (time.Duration, bool) {
	if !p.scalar(n, path, "a duration", "!!str", "!!int") {
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		p.addf(n, path, "%s is not a duration", quote(n.Value))
		return 0, false
	}
	return d, true
}

// positive as the min of durationIn means "greater than zero".
const positive = time.Nanosecond

// durationIn reads an optional duration field of f that must lie in
// [min, max]; def when absent. max 0 means no upper bound.
func (p *parser) durationIn(f *fields, name string, def, min, max time.Duration) time.Duration {
	n, path := f.get(name)
	if n == nil {
		return def
	}
	d, ok := p.duration(n, path)
	switch {
	case !ok:
	case d < min && min == 0:
		p.addf(n, path, "must not be negative")
	case d < min && min == positive:
		p.addf(n, path, "must be positive")
	case d < min:
		p.addf(n, path, "must be at least %v", min)
	case max > 0 && d > max:
		p.addf(n, path, "must be at most %v", max)
	}
	return d
}

func (p *parser) list(n *yaml.Node, path string) ([]*yaml.Node, bool) {
	if !p.kind(n, path, yaml.SequenceNode, "a list") {
		return nil, false
	}
	return n.Content, true
}

// item is an item of a list and its index there.
type item struct {
	node  *yaml.Node
	index int
}

// strs reads a list of strings, leaving out the items that are not; items
// has the list item of each string.
func (p *parser) strs(n *yaml.Node, path string) (ss []string, items []item, ok bool) {
	list, ok := p.list(n, path)
	if !ok {
		return nil, nil, false
	}
	for i, node := range list {
		if s, ok := p.str(node, index(path, i)); ok {
			ss = append(ss, s)
			items = append(items, item{node, i})
		}
	}
	return ss, items, true
}

// name reads a DNS label naming a what.
func (p *parser) name(n *yaml.Node, path, what string) (string, bool) {
	s, ok := p.str(n, path)
	if !ok {
		return "", false
	}
	if len(s) > 63 {
		p.addf(n, path, "%s name %s is longer than 63 characters", what, quote(s))
		return "", false
	}
	if err := hotswap.ValidateName(what, s); err != nil {
		p.addf(n, path, "%s", hotswap.ErrorMessage(err))
		return "", false
	}
	return s, true
}

// oneOf reads a string that must be one of choices.
func (p *parser) oneOf(n *yaml.Node, path string, choices ...string) (string, bool) {
	s, ok := p.str(n, path)
	if !ok {
		return "", false
	}
	if !slices.Contains(choices, s) {
		p.addf(n, path, "want one of %s, got %s", strings.Join(choices, ", "), quote(s))
		return "", false
	}
	return s, true
}

// slot asks the resolver about app's slot, reporting a failure at n.
func (p *parser) slot(n *yaml.Node, path, app, slot string) {
	if p.r == nil || app == "" || slot == "" {
		return
	}
	if p.slots == nil {
		p.slots = make(map[[2]string]error)
	}
	key := [2]string{app, slot}
	err, seen := p.slots[key]
	if !seen && p.failed == nil {
		err = p.r.Slot(app, slot)
		if err != nil && p.lookupFailed(err) {
			p.failed = fmt.Errorf("look up slot %s of app %s: %w", slot, app, err)
			return
		}
		p.slots[key] = err
	}
	if err != nil {
		p.addf(n, path, "%s", hotswap.ErrorMessage(err))
	}
}

// lookupFailed tells a Resolver that could not answer from one whose answer
// is no.
func (p *parser) lookupFailed(err error) bool {
	k := hotswap.ErrorKind(err)
	return k == hotswap.Internal || k == hotswap.Unavailable
}

func (p *parser) user(n *yaml.Node, path, name string) {
	if p.r == nil {
		return
	}
	if p.users == nil {
		p.users = make(map[string]error)
	}
	err, seen := p.users[name]
	if !seen && p.failed == nil {
		err = p.r.User(name)
		if err != nil && p.lookupFailed(err) {
			p.failed = fmt.Errorf("look up user %s: %w", name, err)
			return
		}
		p.users[name] = err
	}
	if err != nil {
		p.addf(n, path, "%s", hotswap.ErrorMessage(err))
	}
}

func (p *parser) pipeline(n *yaml.Node) *Pipeline {
	f, ok := p.mapping(n, "", "name", "description", "artifact", "trigger", "notify", "stages")
	if !ok {
		return nil
	}
	pl := new(Pipeline)
	if n, path := p.require(f, "name"); n != nil {
		pl.Name, _ = p.name(n, path, "pipeline")
	}
	if n, path := f.get("description"); n != nil {
		if s, ok := p.str(n, path); ok {
			if utf8.RuneCountInString(s) > 1000 {
				p.addf(n, path, "longer than 1000 characters")
			}
			pl.Description = s
		}
	}
	if n, path := p.require(f, "artifact"); n != nil {
		if af, ok := p.mapping(n, path, "feed"); ok {
			if n, path := p.require(af, "feed"); n != nil {
				pl.Feed, _ = p.name(n, path, "feed")
			}
		}
	}
	if n, path := f.get("trigger"); n != nil {
		p.trigger(n, path, pl)
	}
	if n, path := f.get("notify"); n != nil {
		p.notify(n, path, pl)
	}
	if n, path := p.require(f, "stages"); n != nil {
		p.stages(n, path, pl)
	}
	return pl
}

func (p *parser) trigger(n *yaml.Node, path string, pl *Pipeline) {
	f, ok := p.mapping(n, path, "continuous", "branches")
	if !ok {
		return
	}
	okContinuous := true
	if n, path := f.get("continuous"); n != nil {
		pl.Continuous, okContinuous = p.boolean(n, path)
	}
	n, path = f.get("branches")
	if n == nil {
		return
	}
	filters, items, ok := p.strs(n, path)
	if !ok {
		return
	}
	if len(filters) > 0 && !pl.Continuous && okContinuous {
		p.addf(n, path, "branch filters need continuous: true")
	}
	for i, filter := range filters {
		pattern := strings.TrimPrefix(filter, "!")
		if !validPattern(pattern) {
			p.addf(items[i].node, index(path, items[i].index), "%s is not a branch name or pattern", quote(filter))
		}
	}
	pl.Branches = filters
}

func validPattern(pattern string) bool {
	_, err := path.Match(pattern, "")
	return pattern != "" && err == nil
}

func (p *parser) notify(n *yaml.Node, path string, pl *Pipeline) {
	f, ok := p.mapping(n, path, "webhook", "events")
	if !ok {
		return
	}
	if n, path := p.require(f, "webhook"); n != nil {
		if s, ok := p.str(n, path); ok {
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.addf(n, path, "%s is not an absolute http or https URL", quote(s))
			}
			pl.Webhook = s
		}
	}
	pl.NotifyEvents = []string{EventRelease, EventStage}
	n, path = f.get("events")
	if n == nil {
		return
	}
	items, ok := p.list(n, path)
	if !ok {
		return
	}
	if len(items) == 0 {
		p.addf(n, path, "want at least one event")
	}
	pl.NotifyEvents = nil
	for i, item := range items {
		e, ok := p.oneOf(item, index(path, i), EventRelease, EventStage)
		switch {
		case !ok:
		case slices.Contains(pl.NotifyEvents, e):
			p.addf(item, index(path, i), "duplicate event %s", quote(e))
		default:
			pl.NotifyEvents = append(pl.NotifyEvents, e)
		}
	}
}

// afterRef is a stage name in an after list, kept for the checks that need
// every stage.
type afterRef struct {
	node *yaml.Node
	path string
}

func (p *parser) stages(n *yaml.Node, path string, pl *Pipeline) {
	items, ok := p.list(n, path)
	if !ok {
		return
	}
	switch {
	case len(items) == 0:
		p.addf(n, path, "want at least one stage")
	case len(items) > MaxStages:
		p.addf(n, path, "at most %d stages are allowed, got %d", MaxStages, len(items))
	}
	defined := make(map[string]*yaml.Node) // stage name -> its name node
	refs := make([][]afterRef, len(items))
	explicit := make([]bool, len(items))
	for i, item := range items {
		s := &Stage{Queue: QueueSequential}
		pl.Stages = append(pl.Stages, s)
		refs[i], explicit[i] = p.stage(item, index(path, i), s)
		if s.Name == "" {
			continue
		}
		nameNode := p.field(item, "name")
		if first := defined[s.Name]; first != nil {
			p.addf(nameNode, index(path, i)+".name", "stage %s is already defined at line %d", quote(s.Name), first.Line)
			continue
		}
		defined[s.Name] = nameNode
	}
	if len(items) > MaxStages {
		return // too many to check how they depend on each other
	}
	for i, s := range pl.Stages {
		if !explicit[i] {
			if i > 0 && pl.Stages[i-1].Name != "" {
				s.After = []string{pl.Stages[i-1].Name}
			}
			continue
		}
		for _, ref := range refs[i] {
			name := ref.node.Value
			switch {
			case s.Name != "" && name == s.Name:
				p.addf(ref.node, ref.path, "a stage cannot run after itself")
			case defined[name] == nil:
				p.addf(ref.node, ref.path, "no stage is called %s", quote(name))
			case slices.Contains(s.After, name):
				p.addf(ref.node, ref.path, "duplicate stage %s", quote(name))
			default:
				s.After = append(s.After, name)
			}
		}
	}
	p.cycles(items, path, pl)
}

// cycles reports each cycle of after edges once, as "a -> b -> a", at the
// after list of the stage where it was found.
func (p *parser) cycles(items []*yaml.Node, path string, pl *Pipeline) {
	byName := make(map[string]int)
	for i, s := range pl.Stages {
		if _, dup := byName[s.Name]; !dup && s.Name != "" {
			byName[s.Name] = i
		}
	}
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(pl.Stages))
	var stack []int
	onCycle := make([]bool, len(pl.Stages))
	var visit func(i int)
	visit = func(i int) {
		color[i] = grey
		stack = append(stack, i)
		for _, a := range pl.Stages[i].After {
			j, ok := byName[a]
			if !ok {
				continue
			}
			switch color[j] {
			case white:
				visit(j)
			case grey:
				cycle := stack[slices.Index(stack, j):]
				if slices.ContainsFunc(cycle, func(k int) bool { return onCycle[k] }) {
					continue
				}
				var names []string
				for _, k := range cycle {
					onCycle[k] = true
					names = append(names, pl.Stages[k].Name)
				}
				names = append(names, pl.Stages[j].Name)
				n, at := items[j], index(path, j)
				if after := p.field(items[j], "after"); after != nil {
					n, at = after, at+".after"
				}
				p.addf(n, at, "cycle: %s", strings.Join(names, " -> "))
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
	}
	for i := range pl.Stages {
		if color[i] == white {
			visit(i)
		}
	}
}

// field returns the value of the first key name of mapping n, or nil,
// without reporting anything: the position of a problem found later.
func (p *parser) field(n *yaml.Node, name string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == name {
			return n.Content[i+1]
		}
	}
	return nil
}

// stage reads one stage into s. It returns the stage's after list and
// whether it was given at all.
func (p *parser) stage(n *yaml.Node, path string, s *Stage) ([]afterRef, bool) {
	f, ok := p.mapping(n, path, "name", "after", "trigger", "deploy", "swap", "checks", "approval", "gates", "queue")
	if !ok {
		return nil, false
	}
	if n, path := p.require(f, "name"); n != nil {
		s.Name, _ = p.name(n, path, "stage")
	}
	var refs []afterRef
	afterNode, afterPath := f.get("after")
	if afterNode != nil {
		if _, items, ok := p.strs(afterNode, afterPath); ok {
			for _, it := range items {
				refs = append(refs, afterRef{it.node, index(afterPath, it.index)})
			}
		}
	}
	if n, path := f.get("trigger"); n != nil {
		t, _ := p.oneOf(n, path, "auto", "manual")
		s.Manual = t == "manual"
	}
	if n, path := f.get("queue"); n != nil {
		if q, ok := p.oneOf(n, path, QueueSequential, QueueLatest); ok {
			s.Queue = q
		}
	}
	deployNode, deployPath := f.get("deploy")
	if deployNode != nil {
		s.Deploy = p.deploy(deployNode, deployPath)
	}
	swapNode, swapPath := f.get("swap")
	if swapNode != nil {
		s.Swap = p.swap(swapNode, swapPath)
	}
	if deployNode == nil && swapNode == nil {
		p.addf(n, path, "want an action: deploy, swap or both")
	}
	// Checks probe what the stage changed: the deployed slot, or the slot
	// swapped into.
	var def Target
	switch {
	case s.Deploy != nil:
		def = *s.Deploy
	case s.Swap != nil:
		def = Target{s.Swap.App, s.Swap.Target}
	}
	if n, path := f.get("checks"); n != nil {
		items, _ := p.list(n, path)
		if len(items) > MaxStageItems {
			p.addf(n, path, "at most %d checks are allowed, got %d", MaxStageItems, len(items))
		}
		for i, item := range items {
			if c, ok := p.check(item, index(path, i), def); ok {
				s.Checks = append(s.Checks, c)
			}
		}
	}
	if n, path := f.get("approval"); n != nil {
		s.Approval = p.approval(n, path)
	}
	if n, path := f.get("gates"); n != nil {
		items, _ := p.list(n, path)
		if len(items) > MaxStageItems {
			p.addf(n, path, "at most %d gates are allowed, got %d", MaxStageItems, len(items))
		}
		for i, item := range items {
			if g, ok := p.gate(item, index(path, i)); ok {
				s.Gates = append(s.Gates, g)
			}
		}
	}
	return refs, afterNode != nil
}

// target reads the app and slot fields of f, both required, and asks the
// resolver about them.
func (p *parser) target(f *fields) (Target, bool) {
	var t Target
	appNode, appPath := p.require(f, "app")
	slotNode, slotPath := p.require(f, "slot")
	okApp, okSlot := false, false
	if appNode != nil {
		t.App, okApp = p.name(appNode, appPath, "app")
	}
	if slotNode != nil {
		t.Slot, okSlot = p.name(slotNode, slotPath, "slot")
	}
	if okApp && okSlot {
		p.slot(slotNode, slotPath, t.App, t.Slot)
	}
	return t, okApp && okSlot
}

func (p *parser) deploy(n *yaml.Node, path string) *Target {
	f, ok := p.mapping(n, path, "app", "slot")
	if !ok {
		return nil
	}
	t, _ := p.target(f)
	return &t
}

func (p *parser) swap(n *yaml.Node, path string) *Swap {
	f, ok := p.mapping(n, path, "app", "slot", "target", "preview", "strategy", "step", "analysis")
	if !ok {
		return nil
	}
	t, _ := p.target(f)
	sw := &Swap{App: t.App, Slot: t.Slot, Target: hotswap.ProductionSlot}
	targetNode, targetPath := f.get("target")
	okTarget := false
	if targetNode != nil {
		sw.Target, okTarget = p.name(targetNode, targetPath, "slot")
	}
	if n, path := f.get("preview"); n != nil {
		sw.Preview, _ = p.boolean(n, path)
	}
	p.progressive(f, sw) // strategy, step, analysis: strategy.go
	if len(sw.Strategy.Steps) > 0 && okTarget && sw.Target != hotswap.ProductionSlot {
		// The steps share production's traffic: its host name is the one
		// the traffic rules split.
		p.addf(targetNode, targetPath, "a progressive swap (strategy %s) moves production's traffic, so its target is production, not %s", sw.Strategy.Name, quote(sw.Target))
	} else if t.Slot != "" && sw.Target == t.Slot {
		at, atPath := targetNode, targetPath
		if at == nil {
			at, atPath = f.vals["slot"], join(path, "slot")
		}
		p.addf(at, atPath, "cannot swap slot %s into itself", quote(t.Slot))
	} else if okTarget && t.App != "" {
		// The default, production, exists whenever the app does.
		p.slot(targetNode, targetPath, t.App, sw.Target)
	}
	return sw
}

// probe reads an http probe. def is the app and slot to probe when the
// definition leaves them out; nil makes them required.
func (p *parser) probe(n *yaml.Node, path string, def *Target) *Probe {
	f, ok := p.mapping(n, path, "app", "slot", "path", "expect", "key")
	if !ok {
		return nil
	}
	pr := &Probe{Key: KeyNone}
	if def == nil {
		t, _ := p.target(f)
		pr.App, pr.Slot = t.App, t.Slot
	} else {
		pr.App, pr.Slot = def.App, def.Slot
		appNode, appPath := f.get("app")
		slotNode, slotPath := f.get("slot")
		okApp, okSlot := true, true
		if appNode != nil {
			pr.App, okApp = p.name(appNode, appPath, "app")
			if pr.App != def.App {
				// Another app: its production slot unless told.
				pr.Slot = hotswap.ProductionSlot
			}
		}
		if slotNode != nil {
			pr.Slot, okSlot = p.name(slotNode, slotPath, "slot")
		}
		switch {
		case !okApp || !okSlot:
		case slotNode != nil:
			p.slot(slotNode, slotPath, pr.App, pr.Slot)
		case appNode != nil:
			p.slot(appNode, appPath, pr.App, pr.Slot)
		}
	}
	if n, path := p.require(f, "path"); n != nil {
		if s, okPath := p.str(n, path); okPath {
			if !validPath(s) {
				p.addf(n, path, "%s is not a path: want \"/\" then a URL path and query", quote(s))
			}
			pr.Path = s
		}
	}
	pr.Expect = []int{200}
	if n, path := f.get("expect"); n != nil {
		items, okList := p.list(n, path)
		if okList && len(items) == 0 {
			p.addf(n, path, "want at least one status")
		}
		pr.Expect = nil
		for i, item := range items {
			code, okCode := p.integer(item, index(path, i))
			if okCode && (code < 100 || code > 599) {
				p.addf(item, index(path, i), "want an HTTP status from 100 to 599, got %d", code)
			}
			pr.Expect = append(pr.Expect, code)
		}
	}
	if n, path := f.get("key"); n != nil {
		if k, okKey := p.oneOf(n, path, KeyNone, KeyFunction, KeyHost, KeyMaster); okKey {
			pr.Key = k
		}
	}
	return pr
}

// validPath accepts what a probe may put after the host: an absolute path
// (not "//", which would name another host) and a query.
func validPath(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || len(s) > 2048 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '#' {
			return false
		}
	}
	u, err := url.ParseRequestURI(s)
	return err == nil && u.Host == "" && u.Scheme == ""
}

func (p *parser) check(n *yaml.Node, path string, def Target) (Check, bool) {
	c := Check{Retries: 3, Interval: 2 * time.Second, Timeout: 10 * time.Second}
	f, ok := p.mapping(n, path, "http", "retries", "interval", "timeout")
	if !ok {
		return c, false
	}
	if n, path := p.require(f, "http"); n != nil {
		if pr := p.probe(n, path, &def); pr != nil {
			c.Probe = *pr
		}
	}
	if n, path := f.get("retries"); n != nil {
		if r, ok := p.integer(n, path); ok {
			if r < 0 || r > 100 {
				p.addf(n, path, "want 0 to 100, got %d", r)
			}
			c.Retries = r
		}
	}
	c.Interval = p.durationIn(f, "interval", c.Interval, 0, 0)
	c.Timeout = p.durationIn(f, "timeout", c.Timeout, positive, 0)
	return c, true
}

func (p *parser) approval(n *yaml.Node, path string) *Approval {
	f, ok := p.mapping(n, path, "approvers", "required", "requesterCanApprove", "timeout")
	if !ok {
		return nil
	}
	a := &Approval{Required: 1, Timeout: 72 * time.Hour}
	if n, path := p.require(f, "approvers"); n != nil {
		names, nodes, ok := p.strs(n, path)
		if ok && len(n.Content) == 0 {
			p.addf(n, path, "want at least one approver")
		}
		seen := make(map[string]bool)
		for i, name := range names {
			at := index(path, nodes[i].index)
			switch {
			case name == "":
				p.addf(nodes[i].node, at, "want a user name, got \"\"")
			case seen[name]:
				p.addf(nodes[i].node, at, "duplicate approver %s", quote(name))
			default:
				seen[name] = true
				a.Approvers = append(a.Approvers, name)
				p.user(nodes[i].node, at, name)
			}
		}
	}
	if n, path := f.get("required"); n != nil {
		if r, ok := p.integer(n, path); ok {
			switch {
			case r < 1:
				p.addf(n, path, "want at least 1, got %d", r)
			case len(a.Approvers) > 0 && r > len(a.Approvers):
				p.addf(n, path, "%d approvals required but only %d approvers", r, len(a.Approvers))
			}
			a.Required = r
		}
	}
	if n, path := f.get("requesterCanApprove"); n != nil {
		a.RequesterCanApprove, _ = p.boolean(n, path)
	}
	a.Timeout = p.durationIn(f, "timeout", a.Timeout, positive, 0)
	return a
}

func (p *parser) gate(n *yaml.Node, path string) (Gate, bool) {
	g := Gate{Every: 30 * time.Second, Timeout: 30 * time.Minute}
	f, ok := p.mapping(n, path, "http", "metric", "delay", "every", "minSuccess", "timeout")
	if !ok {
		return g, false
	}
	httpNode, httpPath := f.get("http")
	metricNode, metricPath := f.get("metric")
	switch {
	case httpNode != nil && metricNode != nil:
		p.addf(n, path, "want one of http and metric, got both")
	case httpNode == nil && metricNode == nil:
		p.addf(n, path, "want http or metric")
	case httpNode != nil:
		g.HTTP = p.probe(httpNode, httpPath, nil)
	default:
		g.Metric = p.metric(metricNode, metricPath)
	}
	g.Delay = p.durationIn(f, "delay", g.Delay, 0, 0)
	g.Every = p.durationIn(f, "every", g.Every, 100*time.Millisecond, 0)
	g.MinSuccess = p.durationIn(f, "minSuccess", g.MinSuccess, 0, 0)
	g.Timeout = p.durationIn(f, "timeout", g.Timeout, positive, 0)
	if g.Timeout > 0 && g.MinSuccess >= g.Timeout {
		n, path := f.get("minSuccess")
		p.addf(n, path, "%v is not shorter than the timeout (%v)", g.MinSuccess, g.Timeout)
	}
	return g, true
}

func (p *parser) metric(n *yaml.Node, path string) *Metric {
	f, ok := p.mapping(n, path, "app", "slot", "maxErrorRate", "maxP95", "window", "minRequests")
	if !ok {
		return nil
	}
	t, _ := p.target(f)
	m := &Metric{App: t.App, Slot: t.Slot, MaxErrorRate: 1, Window: 5 * time.Minute}
	rateNode, ratePath := f.get("maxErrorRate")
	if rateNode != nil {
		if r, ok := p.number(rateNode, ratePath); ok {
			if !(r >= 0 && r <= 1) {
				p.addf(rateNode, ratePath, "want 0 to 1, got %v", r)
			}
			m.MaxErrorRate = r
		}
	}
	p95Node, _ := f.get("maxP95")
	if p95Node != nil {
		m.MaxP95 = p.durationIn(f, "maxP95", 0, positive, 0)
	}
	if rateNode == nil && p95Node == nil {
		p.addf(n, path, "want maxErrorRate, maxP95 or both")
	}
	m.Window = p.durationIn(f, "window", m.Window, time.Second, 10*time.Minute)
	if n, path := f.get("minRequests"); n != nil {
		if r, ok := p.integer(n, path); ok {
			if r < 0 {
				p.addf(n, path, "must not be negative")
			}
			m.MinRequests = r
		}
	}
	return m
}
