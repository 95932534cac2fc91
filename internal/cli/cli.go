// Package cli is the command-line client of the hotswap control-plane API
// (docs/api.md): every command of the hotswap binary except serve.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

// Env is what a command may use of the process it runs in.
type Env struct {
	Stdout, Stderr io.Writer // nil: discarded
	// Stdin is read by pipeline apply -f -; nil reads as empty.
	Stdin io.Reader
	// Getenv reads an environment variable (os.Getenv in main); nil reads none.
	Getenv func(string) string
	// WorkDir resolves the default token file ./hotswap-data/admin-token; empty
	// means the current directory.
	WorkDir string
}

const (
	defaultServer = "http://localhost:7070"
	tokenFile     = "hotswap-data/admin-token"
	// requestTimeout bounds the calls that should answer quickly. Deploy,
	// swap and rollback wait for slots to serve, and artifact push uploads a
	// package of any size: those are bounded only by ctx.
	requestTimeout = 2 * time.Minute
)

// errNoToken is returned when no token source gives a token.
var errNoToken = errors.New("no token: pass --token, set HOTSWAP_TOKEN, or run in the directory holding hotswap-data")

// globals are the flags every command accepts, before or after its name.
type globals struct {
	server string
	token  string
	output string
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", g.server, "control-plane `URL` (env HOTSWAP_SERVER, default "+defaultServer+")")
	fs.StringVar(&g.token, "token", g.token, "API `token`: the admin token or a user's (env HOTSWAP_TOKEN, default ./"+tokenFile+")")
	fs.StringVar(&g.output, "o", g.output, "output `format`: table or json")
}

// options holds every command flag; each command registers the ones it takes.
type options struct {
	slot        string
	message     string
	function    string
	master      bool
	slotSetting bool
	tail        int
	target      string // swap, autoswap: the target slot
	preview     bool   // swap: stop after preparing
	complete    bool   // swap: flip the swap in preview
	cancel      bool   // swap: cancel the swap in preview
	disable     bool   // autoswap: turn auto swap off
	to          string // rollback: the deployment
	limit       int    // activity
	cloneFrom   string // slot create: the slot whose settings to copy
	role        string // user create
	version     string // artifact push, release create
	branch      string // artifact push
	commit      string // artifact push
	file        string // pipeline apply: the definition, - for stdin
	stage       string // release approve, reject, redeploy
	comment     string // release approve, reject
	force       bool   // deploy, swap, rollback: go past a release's hold on the slot
	noWait      bool   // deploy, swap: return once the operation started
}

// noWaitFlag registers --no-wait: start the operation and print its ID
// instead of following it (see operation watch).
func noWaitFlag(fs *flag.FlagSet, o *options) {
	fs.BoolVar(&o.noWait, "no-wait", false, "return once the operation started, printing its ID (follow it with hotswap operation watch ID)")
}

// forceFlag registers --force: deploy, swap or roll back a slot a waiting
// release holds, abandoning that release.
func forceFlag(fs *flag.FlagSet, o *options) {
	fs.BoolVar(&o.force, "force", false, "go on even if a waiting release holds the slot, abandoning that release")
}

// cmdEnv is what a command's run function gets.
type cmdEnv struct {
	cmd    *command
	client *client
	stdout io.Writer
	stderr io.Writer // progress with -o json; never nil
	stdin  io.Reader // never nil
	json   bool      // -o json: print the API's answer as is
	opts   options
}

// command is one CLI command, named by one or two words.
type command struct {
	name     string // "app create"
	args     string // positional arguments and flags for the usage line
	summary  string
	min, max int  // number of positional arguments; max -1: no limit
	noClient bool // runs without talking to the server
	flags    func(fs *flag.FlagSet, o *options)
	// check, if set, refuses a bad combination of flags (a *usageError)
	// before any token or server is needed.
	check func(x *cmdEnv, args []string) error
	run   func(ctx context.Context, x *cmdEnv, args []string) error
}

func (c *command) usage() string {
	s := "usage: hotswap " + c.name
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct {
	cmd *command // nil: the general usage applies
	msg string
}

func (e *usageError) Error() string { return e.msg }

func slotFlag(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.slot, "slot", "production", "slot `name`")
}

func keyFlags(fs *flag.FlagSet, o *options) {
	slotFlag(fs, o)
	fs.StringVar(&o.function, "function", "", "function `name` (function keys)")
}

var commands = []*command{
	{name: "app create", args: "APP", summary: "create an app with its production slot", min: 1, max: 1, run: appCreate},
	{name: "app list", summary: "list apps", run: appList},
	{name: "app show", args: "APP", summary: "show an app and its slots", min: 1, max: 1, run: appShow},
	{name: "app delete", args: "APP", summary: "delete an app with its slots, keys, settings and deployments", min: 1, max: 1, run: appDelete},
	{name: "slot create", args: "APP SLOT [--clone-settings-from SLOT]", summary: "create a slot (--clone-settings-from: copy another slot's app settings)", min: 2, max: 2,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.cloneFrom, "clone-settings-from", "", "copy the app settings of slot `name`")
		}, run: slotCreate},
	{name: "slot list", args: "APP", summary: "list an app's slots with their state and auto-swap target", min: 1, max: 1, run: slotList},
	{name: "slot delete", args: "APP SLOT", summary: "delete a slot (not production)", min: 2, max: 2, run: slotDelete},
	{name: "deploy", args: "APP PATH [--slot SLOT] [--message TEXT] [--force] [--no-wait]", summary: "deploy a folder (honouring .funcignore) or .zip file to a slot (then auto swap, if the slot has a target)", min: 2, max: 2,
		flags: func(fs *flag.FlagSet, o *options) {
			slotFlag(fs, o)
			fs.StringVar(&o.message, "message", "", "deployment `message`")
			forceFlag(fs, o)
			noWaitFlag(fs, o)
		}, run: deploy},
	{name: "functions", args: "APP [--slot SLOT]", summary: "list a slot's functions with their trigger, state (a queue or blob trigger's listener: listening, idle, failing...) and why", min: 1, max: 1, flags: slotFlag, run: functions},
	{name: "nodes", summary: "list the nodes of a cluster (several servers on one PostgreSQL store) with version, state and last heartbeat", run: nodes},
	{name: "drain", summary: "drain the server at --url (or HOTSWAP_URL): fail its load balancer health check, finish the requests in flight, stop", run: drain},
	{name: "url", args: "APP FUNCTION [--slot SLOT]", summary: "print a function's invoke URL", min: 2, max: 2, flags: slotFlag, run: funcURL},
	{name: "keys list", args: "APP [--slot SLOT] [--function F]", summary: "list a slot's keys", min: 1, max: 1, flags: keyFlags, run: keysList},
	{name: "keys set", args: "APP [NAME] VALUE [--slot SLOT] [--function F] [--master]", summary: "set a host key, a function key (--function) or the master key (NAME _master, or --master without NAME)", min: 2, max: 3,
		flags: func(fs *flag.FlagSet, o *options) {
			keyFlags(fs, o)
			fs.BoolVar(&o.master, "master", false, "set the master key")
		}, run: keysSet},
	{name: "keys renew", args: "APP [NAME] [--slot SLOT] [--function F] [--master]", summary: "replace a key with a generated value (the master key: NAME _master, or --master without NAME)", min: 1, max: 2,
		flags: func(fs *flag.FlagSet, o *options) {
			keyFlags(fs, o)
			fs.BoolVar(&o.master, "master", false, "renew the master key")
		}, run: keysRenew},
	{name: "keys delete", args: "APP NAME [--slot SLOT] [--function F]", summary: "delete a host or function key", min: 2, max: 2, flags: keyFlags, run: keysDelete},
	{name: "settings list", args: "APP [--slot SLOT]", summary: "list a slot's app settings (SLOT-SETTING true: stays with the slot on swap)", min: 1, max: 1, flags: slotFlag, run: settingsList},
	{name: "settings set", args: "APP NAME=VALUE... [--slot SLOT] [--slot-setting]", summary: "set app settings (--slot-setting: sticky to the slot, not swapped)", min: 2, max: -1,
		flags: func(fs *flag.FlagSet, o *options) {
			slotFlag(fs, o)
			fs.BoolVar(&o.slotSetting, "slot-setting", false, "mark the settings as slot settings")
		}, run: settingsSet},
	{name: "settings unset", args: "APP NAME... [--slot SLOT]", summary: "remove app settings", min: 2, max: -1, flags: slotFlag, run: settingsUnset},
	{name: "log", args: "APP [--slot SLOT] [--tail N]", summary: "print a slot's log", min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			slotFlag(fs, o)
			fs.IntVar(&o.tail, "tail", 0, "print the last `N` lines (server default 100, max 1000)")
		}, run: slotLog},
	{name: "deployments", args: "APP [--slot SLOT]", summary: "list an app's deployments, newest first, with where and when each served", min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.slot, "slot", "", "only the deployments to slot `name`")
		}, run: deploymentsList},
	{name: "swap", args: "APP --slot SOURCE [--target SLOT] [--preview] [--force] | APP --complete [--force] | APP --cancel [--force]",
		summary: "swap a slot into the target (default production); --preview stops after preparing, --complete or --cancel ends the preview", min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.slot, "slot", "", "the source slot `name`")
			fs.StringVar(&o.target, "target", "", "the target slot `name` (default production)")
			fs.BoolVar(&o.preview, "preview", false, "stop after preparing: the source URL serves its content with the target's slot settings")
			fs.BoolVar(&o.complete, "complete", false, "complete the swap in preview")
			fs.BoolVar(&o.cancel, "cancel", false, "cancel the swap in preview")
			forceFlag(fs, o)
			noWaitFlag(fs, o)
		}, check: swapCheck, run: swap},
	{name: "autoswap", args: "APP --slot SOURCE (--target SLOT | --disable)", summary: "swap a slot into the target after each successful deploy, or stop doing so", min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.slot, "slot", "", "the source slot `name`")
			fs.StringVar(&o.target, "target", "", "the target slot `name`")
			fs.BoolVar(&o.disable, "disable", false, "turn auto swap off")
		}, check: autoSwapCheck, run: autoSwap},
	{name: "rollback", args: "APP --slot SLOT --to DEPLOYMENT [--force]", summary: "make a slot serve an earlier deployment again", min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.slot, "slot", "", "slot `name`")
			fs.StringVar(&o.to, "to", "", "the deployment `id` (see hotswap deployments)")
			forceFlag(fs, o)
		}, check: rollbackCheck, run: rollback},
	{name: "operation watch", args: "ID", summary: "follow an operation's phases until it ends (exit status 1 if it failed); deploy and swap --no-wait print the ID", min: 1, max: 1, run: operationWatch},
	{name: "activity", args: "APP [--limit N]", summary: "list an app's activity log, newest first", min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.IntVar(&o.limit, "limit", 0, "print the last `N` entries (server default 100, max 1000)")
		}, check: limitCheck, run: activityList},
	{name: "user create", args: "NAME --role ROLE", summary: "create a user with role admin, deployer or approver and print its token (shown once)", min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.role, "role", "", "the user's `role`: admin, deployer or approver")
		}, check: userCreateCheck, run: userCreate},
	{name: "user list", summary: "list users and their roles", run: userList},
	{name: "user delete", args: "NAME", summary: "delete a user (its token stops working)", min: 1, max: 1, run: userDelete},
	{name: "user rotate", args: "NAME", summary: "give a user (or admin: the admin token) a new token and print it; the old one and its portal sessions stop working", min: 1, max: 1, run: userRotate},
	{name: "whoami", summary: "print the user the token acts as, and its role", run: whoami},
	{name: "artifact push", args: "FEED PATH --version V [--branch B] [--commit C]", summary: "push a folder or .zip file to a feed as an immutable version (may create releases)", min: 2, max: 2,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.version, "version", "", "the artifact's `version`")
			fs.StringVar(&o.branch, "branch", "", "the source `branch`")
			fs.StringVar(&o.commit, "commit", "", "the source `commit`")
		}, check: artifactPushCheck, run: artifactPush},
	{name: "artifact list", args: "FEED", summary: "list a feed's artifacts, newest first", min: 1, max: 1, run: artifactList},
	{name: "pipeline apply", args: "-f FILE", summary: "create a pipeline, or a new version of it, from a YAML definition (-f -: standard input)", max: 0,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.file, "f", "", "the definition `file`, - for standard input")
		}, check: pipelineApplyCheck, run: pipelineApply},
	{name: "pipeline list", summary: "list pipelines", run: pipelineList},
	{name: "pipeline show", args: "NAME", summary: "show a pipeline's definition and versions", min: 1, max: 1, run: pipelineShow},
	{name: "pipeline rename", args: "NAME NEWNAME", summary: "rename a pipeline (a new version; history and releases stay)", min: 2, max: 2, run: pipelineRename},
	{name: "release create", args: "PIPELINE [--version V]", summary: "start a release of a feed version (default the newest)", min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.version, "version", "", "the artifact `version` (default the feed's newest)")
		}, run: releaseCreate},
	{name: "release list", args: "[PIPELINE] [--limit N]", summary: "list releases, newest first, with their stages", max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.IntVar(&o.limit, "limit", 0, "list the last `N` releases (server default 50, max 1000)")
		}, check: limitCheck, run: releaseList},
	{name: "release show", args: "RELEASE", summary: "show a release (name or id): its stages, approvals, gates and logs", min: 1, max: 1, run: releaseShow},
	{name: "release approve", args: "RELEASE --stage STAGE [--comment TEXT]", summary: "approve a stage waiting for approval", min: 1, max: 1,
		flags: decisionFlags, check: stageCheck, run: releaseApprove},
	{name: "release reject", args: "RELEASE --stage STAGE [--comment TEXT]", summary: "reject a stage waiting for approval", min: 1, max: 1,
		flags: decisionFlags, check: stageCheck, run: releaseReject},
	{name: "release redeploy", args: "RELEASE --stage STAGE", summary: "run a stage (and those after it) again, or start a manual stage", min: 1, max: 1,
		flags: stageFlag, check: stageCheck, run: releaseRedeploy},
	{name: "release abandon", args: "RELEASE", summary: "abandon a release: no further stage runs", min: 1, max: 1, run: releaseAbandon},
	{name: "version", summary: "print the version", noClient: true, run: version},
	{name: "help", summary: "print this help", max: -1, noClient: true},
}

// Run executes one CLI command (args without the program name) and returns
// the process exit code: 0 on success, 1 when the command failed, 2 for a
// usage error.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}

	g := globals{output: "table"}
	top := newFlagSet("hotswap")
	g.register(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(env.Stdout)
			return 0
		}
		fmt.Fprintf(env.Stderr, "hotswap: %v\n", err)
		printUsage(env.Stderr)
		return 2
	}
	cmd, rest := lookup(top.Args())
	if cmd == nil {
		if a := top.Args(); len(a) > 0 {
			if subs := subcommands(a[0]); subs != "" && (len(a) == 1 || strings.HasPrefix(a[1], "-")) {
				fmt.Fprintf(env.Stderr, "hotswap: %s needs a subcommand: %s\n", a[0], subs)
			} else {
				fmt.Fprintf(env.Stderr, "hotswap: unknown command %q\n", strings.Join(a[:min(2, len(a))], " "))
			}
		}
		printUsage(env.Stderr)
		return 2
	}
	if cmd.name == "help" {
		printUsage(env.Stdout)
		return 0
	}

	err := runCommand(ctx, cmd, rest, &g, env)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(env.Stdout, cmd)
		return 0
	}
	fmt.Fprintf(env.Stderr, "hotswap: %v\n", err)
	if ue, ok := errors.AsType[*usageError](err); ok {
		if ue.cmd != nil {
			fmt.Fprintln(env.Stderr, ue.cmd.usage())
		} else {
			printUsage(env.Stderr)
		}
		return 2
	}
	return 1
}

func runCommand(ctx context.Context, cmd *command, args []string, g *globals, env Env) error {
	x := &cmdEnv{cmd: cmd, stdout: env.Stdout, stderr: env.Stderr, stdin: env.Stdin}
	if x.stdin == nil {
		x.stdin = strings.NewReader("")
	}
	fs := newFlagSet("hotswap " + cmd.name)
	g.register(fs)
	if cmd.flags != nil {
		cmd.flags(fs, &x.opts)
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{cmd, err.Error()}
	}
	switch {
	case len(pos) < cmd.min:
		return &usageError{cmd, "missing arguments"}
	case cmd.max >= 0 && len(pos) > cmd.max:
		return &usageError{cmd, fmt.Sprintf("unexpected argument %q", pos[cmd.max])}
	}
	switch g.output {
	case "table":
	case "json":
		x.json = true
	default:
		return &usageError{cmd, fmt.Sprintf("invalid output format %q (use table or json)", g.output)}
	}
	if cmd.check != nil {
		if err := cmd.check(x, pos); err != nil {
			return err
		}
	}
	if !cmd.noClient {
		if x.client, err = newClient(g, env); err != nil {
			return err
		}
	}
	return cmd.run(ctx, x, pos)
}

// lookup finds the command named by the first one or two words of args and
// returns it with the remaining arguments.
func lookup(args []string) (*command, []string) {
	if len(args) == 0 {
		return nil, nil
	}
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) < len(words) {
			continue
		}
		match := true
		for i, w := range words {
			if args[i] != w {
				match = false
				break
			}
		}
		if match {
			return c, args[len(words):]
		}
	}
	return nil, nil
}

// subcommands lists the subcommands of group, such as "app", or returns "".
func subcommands(group string) string {
	var subs []string
	for _, c := range commands {
		if g, sub, ok := strings.Cut(c.name, " "); ok && g == group {
			subs = append(subs, sub)
		}
	}
	return strings.Join(subs, ", ")
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Run reports the error with the usage line
	return fs
}

// parseInterleaved parses fs's flags wherever they appear among args and
// returns the positional arguments. After "--" everything is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func newClient(g *globals, env Env) (*client, error) {
	server := g.server
	if server == "" {
		server = env.Getenv("HOTSWAP_SERVER")
	}
	if server == "" {
		server = defaultServer
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	server = strings.TrimRight(server, "/")
	if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
		return nil, fmt.Errorf("server %q: use an http:// or https:// URL", server)
	}

	token, err := resolveToken(g, env)
	if err != nil {
		return nil, err
	}
	return &client{
		base:  server,
		token: token,
		http:  &http.Client{}, // no overall timeout: deploy may take long; calls carry a context
	}, nil
}

// resolveToken returns the token from --token, else HOTSWAP_TOKEN, else the
// token file under env.WorkDir.
func resolveToken(g *globals, env Env) (string, error) {
	if t := strings.TrimSpace(g.token); t != "" {
		return t, nil
	}
	if t := strings.TrimSpace(env.Getenv("HOTSWAP_TOKEN")); t != "" {
		return t, nil
	}
	path := filepath.Join(env.WorkDir, filepath.FromSlash(tokenFile))
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", errNoToken
	}
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	t := strings.TrimSpace(string(data))
	if t == "" {
		return "", errNoToken
	}
	return t, nil
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `hotswap: a self-hosted function platform with deployment slots and release pipelines

usage: hotswap [--server URL] [--token TOKEN] [-o table|json] COMMAND [ARGS] [FLAGS]

commands:
  serve
        run the server (see hotswap serve -h)
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\n        %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprint(w, `
global flags, before or after the command:
  --server URL     control-plane URL (else $HOTSWAP_SERVER, else `+defaultServer+`)
  --token TOKEN    API token, the admin's or a user's (else $HOTSWAP_TOKEN, else ./`+tokenFile+`)
  -o table|json    output format (default table); json prints the API's answer
`)
}

func printCommandHelp(w io.Writer, cmd *command) {
	fmt.Fprintln(w, cmd.usage())
	fmt.Fprintf(w, "\n%s\n\nflags:\n", cmd.summary)
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	var g globals
	g.output = "table"
	g.register(fs)
	if cmd.flags != nil {
		cmd.flags(fs, &options{})
	}
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func version(ctx context.Context, x *cmdEnv, args []string) error {
	v, rev := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " " + s.Value[:12]
			}
		}
	}
	_, err := fmt.Fprintf(x.stdout, "hotswap %s%s\n", v, rev)
	return err
}
