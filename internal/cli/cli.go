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

	"github.com/hotswap/hotswap"
)

// Env is what a command may use of the process it runs in.
type Env struct {
	Stdout, Stderr io.Writer // nil: discarded
	// Stdin is read by pipeline apply -f -; nil reads as empty.
	Stdin io.Reader
	// Getenv reads an environment variable (os.Getenv in main); nil reads none.
	Getenv func(string) string
	// LookupEnv reads an environment variable and whether it is set, even
	// to "" (os.LookupEnv in main); nil: set when Getenv gives a value.
	LookupEnv func(string) (string, bool)
	// StdinTerminal reports whether Stdin is a terminal, where destructive
	// commands ask for confirmation; nil: whether it is an *os.File that is
	// a character device.
	StdinTerminal func() bool
	// Version is printed by hotswap version and --version; empty: the
	// module version of the build.
	Version string
	// WorkDir resolves the default token file ./hotswap-data/admin-token; empty
	// means the current directory.
	WorkDir string
}

const (
	defaultServer = "http://127.0.0.1:7070" // where serve listens by default
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
	server   string
	token    string
	tokenSet bool // --token given, even as ""
	output   string
	query    string
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.server, "server", g.server, "control-plane `URL` (env HOTSWAP_SERVER, default "+defaultServer+")")
	fs.Func("token", "API `token`: the admin token or a user's (env HOTSWAP_TOKEN, default ./"+tokenFile+")", func(s string) error {
		g.token, g.tokenSet = s, true
		return nil
	})
	fs.StringVar(&g.output, "output", g.output, "output `format`: table, wide (more columns), json or yaml (the API's answer)")
	fs.StringVar(&g.query, "query", g.query, queryHelp)
}

// options holds every command flag; each command registers the ones it takes.
type options struct {
	slot        string
	message     string
	function    string
	master      bool
	slotSetting bool
	tail        int
	target      string      // swap, autoswap: the target slot
	preview     bool        // swap: stop after preparing
	expect      givenString // swap: the deployment the source slot must serve
	complete    bool        // swap: flip the swap in preview
	cancel      bool        // swap: cancel the swap in preview
	disable     bool        // autoswap: turn auto swap off
	to          string      // rollback: the deployment
	limit       int         // activity
	cloneFrom   string      // slot create: the slot whose settings to copy
	role        string      // user create
	version     string      // artifact push, release create
	branch      string      // artifact push
	commit      string      // artifact push
	file        string      // pipeline apply: the definition, - for stdin
	stage       string      // release approve, reject, redeploy
	comment     string      // release approve, reject
	force       bool        // deploy, swap, rollback: go past a release's hold on the slot
	noWait      bool        // deploy, swap: return once the operation started
	reason      string      // quarantine: why
	lift        bool        // quarantine: end it
	strategy    string      // swap: the steps of a progressive swap
	step        string      // swap: how long each canary step lasts
	analysis    string      // swap: the limits each step must keep
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
	json   bool      // -o json or yaml, or --query: print the API's answer, not a table
	format string    // -o: table, wide, json or yaml
	query  string    // --query: the fields to print
	wide   bool      // -o wide: tables with more columns
	yes    bool      // --yes: a destructive command does not ask
	env    Env
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
	{name: "app delete", args: "APP [--yes]", summary: "delete an app with its slots, keys, settings and deployments", min: 1, max: 1, run: appDelete},
	{name: "slot create", args: "APP SLOT [--clone-settings-from SLOT]", summary: "create a slot (--clone-settings-from: copy another slot's app settings)", min: 2, max: 2,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.cloneFrom, "clone-settings-from", "", "copy the app settings of slot `name`")
		}, run: slotCreate},
	{name: "slot list", args: "APP", summary: "list an app's slots with their state and auto-swap target", min: 1, max: 1, run: slotList},
	{name: "slot delete", args: "APP SLOT [--yes]", summary: "delete a slot (not production)", min: 2, max: 2, run: slotDelete},
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
	{name: "keys delete", args: "APP NAME [--slot SLOT] [--function F] [--yes]", summary: "delete a host or function key", min: 2, max: 2, flags: keyFlags, check: keysDeleteCheck, run: keysDelete},
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
	{name: "swap", args: "APP --slot SOURCE [--target SLOT] [--preview] [--expect DEPLOYMENT] [--force] | APP --complete [--force] | APP --cancel [--force] | APP --slot SOURCE --strategy STEPS [--step D] [--analysis LIMITS] [--no-wait]",
		summary: "swap a slot into the target (default production); --preview stops after preparing, --complete or --cancel ends the preview; --strategy swaps progressively, step by step, and rolls back by itself when a step breaks --analysis", min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.slot, "slot", "", "the source slot `name`")
			fs.StringVar(&o.target, "target", "", "the target slot `name` (default production)")
			fs.BoolVar(&o.preview, "preview", false, "stop after preparing: the source URL serves its content with the target's slot settings")
			fs.BoolVar(&o.complete, "complete", false, "complete the swap in preview")
			fs.BoolVar(&o.cancel, "cancel", false, "cancel the swap in preview")
			fs.Var(&o.expect, "expect", "swap only while the source slot serves `DEPLOYMENT` (the build you tested); refused if another landed since")
			forceFlag(fs, o)
			noWaitFlag(fs, o)
			rolloutFlags(fs, o)
		}, check: swapCheck, run: swap},
	{name: "autoswap", args: "APP --slot SOURCE (--target SLOT | --disable)", summary: "swap a slot into the target after each successful deploy, or stop doing so", min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.slot, "slot", "", "the source slot `name`")
			fs.StringVar(&o.target, "target", "", "the target slot `name`")
			fs.BoolVar(&o.disable, "disable", false, "turn auto swap off")
		}, check: autoSwapCheck, run: autoSwap},
	{name: "rollout list", args: "APP [--limit N]", summary: "list an app's progressive swaps, newest first", min: 1, max: 1,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.IntVar(&o.limit, "limit", 0, "list the last `N` (server default 50, max 1000)")
		}, check: limitCheck, run: rolloutList},
	{name: "rollout show", args: "APP [ID]", summary: "show a progressive swap (default: the app's running one) with each step's figures", min: 1, max: 2, run: rolloutShow},
	{name: "rollout watch", args: "APP [ID]", summary: "follow a progressive swap (default: the app's running one) step by step until it ends (exit status 1 if it failed or was aborted)", min: 1, max: 2, run: rolloutWatch},
	{name: "rollout pause", args: "APP [ID]", summary: "pause a progressive swap: its share of production stays, no step ends", min: 1, max: 2, run: rolloutCommand(hotswap.RolloutPause)},
	{name: "rollout resume", args: "APP [ID]", summary: "resume a paused progressive swap: its step starts again", min: 1, max: 2, run: rolloutCommand(hotswap.RolloutResume)},
	{name: "rollout promote", args: "APP [ID]", summary: "skip a progressive swap's steps left and swap now", min: 1, max: 2, run: rolloutCommand(hotswap.RolloutPromote)},
	{name: "rollout abort", args: "APP [ID] [--yes]", summary: "abort a progressive swap: its share goes back to production and nothing is swapped", min: 1, max: 2, run: rolloutCommand(hotswap.RolloutAbort)},
	{name: "traffic show", args: "APP", summary: "show the share of production's requests each slot gets (testing in production)", min: 1, max: 1, run: trafficShow},
	{name: "traffic set", args: "APP SLOT=PERCENT...", summary: "send a share of production's requests to other slots (replaces the rules; a client stays on its slot by the x-ms-routing-name cookie)", min: 2, max: -1, run: trafficSet},
	{name: "traffic clear", args: "APP", summary: "send all of production's requests to production again", min: 1, max: 1, run: trafficClear},
	{name: "quarantine", args: "APP DEPLOYMENT [--reason TEXT] [--lift]", summary: "refuse a deployment's content (its digest, and its artifact version) to deploy and releases from now on, unless --force; --lift ends it", min: 2, max: 2,
		flags: func(fs *flag.FlagSet, o *options) {
			fs.StringVar(&o.reason, "reason", "", "why, shown to whoever is refused")
			fs.BoolVar(&o.lift, "lift", false, "end the quarantine")
		}, check: quarantineCheck, run: quarantine},
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
	{name: "completion", args: "bash|zsh|fish", summary: "print a shell completion script (bash: source <(hotswap completion bash))", min: 1, max: 1, noClient: true, check: completionCheck}, // run: set by init in completion.go
	{name: "version", summary: "print the version (also hotswap --version)", noClient: true, run: version},
	{name: "help", args: "[COMMAND]", summary: "print this help, or a command's help with its flags and examples", max: -1, noClient: true},
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
	showVersion := top.Bool("version", false, "print the version")
	addShortFlags(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(env.Stdout)
			return 0
		}
		fmt.Fprintf(env.Stderr, "hotswap: %s\n", flagError(top, err))
		printUsage(env.Stderr)
		return 2
	}
	if *showVersion {
		printVersion(env.Stdout, env.Version)
		return 0
	}
	cmd, rest := lookup(top.Args())
	if cmd == nil {
		if a := top.Args(); len(a) > 0 {
			if subs := subcommands(a[0]); subs != "" && len(a) == 2 && (a[1] == "-h" || a[1] == "--help" || a[1] == "-help") {
				printGroupHelp(env.Stdout, a[0])
				return 0
			} else if subs != "" && (len(a) == 1 || strings.HasPrefix(a[1], "-")) {
				fmt.Fprintf(env.Stderr, "hotswap: %s needs a subcommand: %s\n", a[0], subs)
			} else {
				fmt.Fprintf(env.Stderr, "hotswap: unknown command %q\n", strings.Join(a[:min(2, len(a))], " "))
				if s := suggestCommand(a); s != "" {
					fmt.Fprintf(env.Stderr, "did you mean \"hotswap %s\"?\n", s)
				}
				fmt.Fprintln(env.Stderr, "hotswap help lists the commands")
				return 2
			}
		}
		printUsage(env.Stderr)
		return 2
	}
	if cmd.name == "help" {
		return help(env, rest)
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
			fmt.Fprintf(env.Stderr, "(hotswap help %s: its flags and examples)\n", ue.cmd.name)
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
	x.env = env
	fs := newFlagSet("hotswap " + cmd.name)
	registerFlags(fs, cmd, g, x)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{cmd, flagError(fs, err)}
	}
	switch {
	case len(pos) < cmd.min:
		return &usageError{cmd, "missing arguments"}
	case cmd.max >= 0 && len(pos) > cmd.max:
		return &usageError{cmd, fmt.Sprintf("unexpected argument %q", pos[cmd.max])}
	}
	switch g.output {
	case "table":
	case "wide":
		x.wide = true
	case "json", "yaml":
		x.json = true
	default:
		return &usageError{cmd, fmt.Sprintf("invalid output format %q (use table, wide, json or yaml)", g.output)}
	}
	x.format, x.query = g.output, g.query
	if x.query != "" {
		x.json = true
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
	if err := confirm(ctx, x, env, pos); err != nil {
		return err
	}
	return x.refused(cmd.run(ctx, x, pos))
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

	token, source, err := resolveToken(g, env)
	if err != nil {
		return nil, err
	}
	return &client{
		base:        server,
		token:       token,
		tokenSource: source,
		http:        &http.Client{}, // no overall timeout: deploy may take long; calls carry a context
	}, nil
}

// resolveToken returns the token from --token, else HOTSWAP_TOKEN, else the
// token file under env.WorkDir, with where it came from for errors. A
// --token or HOTSWAP_TOKEN that is set but empty is an error, not a reason
// to fall back to the admin token file.
func resolveToken(g *globals, env Env) (token, source string, err error) {
	if g.tokenSet {
		if t := strings.TrimSpace(g.token); t != "" {
			return t, "--token", nil
		}
		return "", "", errors.New("--token is empty: give a token, or leave --token out to use HOTSWAP_TOKEN or ./" + tokenFile)
	}
	lookup := env.LookupEnv
	if lookup == nil {
		lookup = func(k string) (string, bool) {
			v := env.Getenv(k)
			return v, v != ""
		}
	}
	if v, ok := lookup("HOTSWAP_TOKEN"); ok {
		if t := strings.TrimSpace(v); t != "" {
			return t, "HOTSWAP_TOKEN", nil
		}
		return "", "", errors.New("HOTSWAP_TOKEN is set but empty: an empty token is no token (and not the admin token); set it to a token, or unset it to use ./" + tokenFile)
	}
	path := filepath.Join(env.WorkDir, filepath.FromSlash(tokenFile))
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", "", errNoToken
	}
	if err != nil {
		return "", "", fmt.Errorf("read token file: %w", err)
	}
	t := strings.TrimSpace(string(data))
	if t == "" {
		return "", "", fmt.Errorf("token file %s is empty: %w", path, errNoToken)
	}
	return t, "the token file " + path, nil
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `hotswap: a self-hosted function platform with deployment slots and release pipelines

usage: hotswap [--server URL] [--token TOKEN] [-o table|wide|json|yaml] [--query PATH] COMMAND [ARGS] [FLAGS]

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
  -o, --output table|wide|json|yaml
                   output format (default table); json and yaml print the API's answer
  --query PATH     print only the fields at PATH of the API's answer: a dotted path,
                   [] for every element of a list, [N] for one, e.g. --query 'apps[].name'
  --version        print the version

hotswap help COMMAND (or hotswap COMMAND --help) prints a command's flags and examples;
hotswap completion bash|zsh|fish prints a shell completion script.
`)
}

func version(ctx context.Context, x *cmdEnv, args []string) error {
	return printVersion(x.stdout, x.env.Version)
}

// printVersion prints version, or else the build's module version.
func printVersion(w io.Writer, version string) error {
	if version != "" {
		_, err := fmt.Fprintf(w, "hotswap %s\n", version)
		return err
	}
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
	_, err := fmt.Fprintf(w, "hotswap %s%s\n", v, rev)
	return err
}
