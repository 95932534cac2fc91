package cli

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Help, short flags and "did you mean" (issue 12, item 12): the conventions
// people bring from kubectl, gh and az.

// examples holds at least one example per command, printed by
// hotswap help COMMAND and hotswap COMMAND --help.
var examples = map[string][]string{
	"app create":       {"hotswap app create orders"},
	"app list":         {"hotswap app list", "hotswap app list -o json --query 'apps[].name'"},
	"app show":         {"hotswap app show orders", "hotswap app show orders --query 'slots[].url'"},
	"app delete":       {"hotswap app delete orders", "hotswap app delete orders --yes   # in a script: no question"},
	"slot create":      {"hotswap slot create orders staging --clone-settings-from production"},
	"slot list":        {"hotswap slot list orders", "hotswap slot list orders -o wide"},
	"slot delete":      {"hotswap slot delete orders staging", "hotswap slot delete orders staging -y"},
	"deploy":           {"hotswap deploy orders ./orders -s staging -m 'fix rounding'", "hotswap deploy orders build/orders.zip"},
	"functions":        {"hotswap functions orders -s staging"},
	"nodes":            {"hotswap nodes"},
	"drain":            {"HOTSWAP_SERVER=http://10.0.0.7:7070 hotswap drain"},
	"url":              {"hotswap url orders hello -s staging", "curl \"$(hotswap url orders hello)\""},
	"keys list":        {"hotswap keys list orders -s staging", "hotswap keys list orders --function hello"},
	"keys set":         {"hotswap keys set orders ci 0123456789abcdef0123", "hotswap keys set orders --master 0123456789abcdef0123"},
	"keys renew":       {"hotswap keys renew orders default", "hotswap keys renew orders --master"},
	"keys delete":      {"hotswap keys delete orders ci", "hotswap keys delete orders ci --function hello -s staging --yes"},
	"settings list":    {"hotswap settings list orders -s staging"},
	"settings set":     {"hotswap settings set orders DB_URL=postgres://db/orders GREETING=hi -s staging", "hotswap settings set orders FEATURE_X=on -s staging --slot-setting"},
	"settings unset":   {"hotswap settings unset orders GREETING -s staging"},
	"log":              {"hotswap log orders -s staging --tail 50"},
	"deployments":      {"hotswap deployments orders", "hotswap deployments orders -s staging -o json --query 'deployments[].status'"},
	"swap":             {"hotswap swap orders -s staging", "hotswap swap orders -s staging --preview", "hotswap swap orders --complete", "hotswap swap orders -s staging --strategy canary:10,25,50 --step 2m --analysis 'maxErrorRate=1%,maxP95=300ms,minRequests=200'", "hotswap swap orders -s staging --strategy Canary10Percent5Minutes --no-wait"},
	"rollout list":     {"hotswap rollout list orders", "hotswap rollout list orders -o wide --limit 10"},
	"rollout show":     {"hotswap rollout show orders", "hotswap rollout show orders ro-1a2b3c4d5e6f7a8b -o json"},
	"rollout watch":    {"hotswap rollout watch orders"},
	"rollout pause":    {"hotswap rollout pause orders"},
	"rollout resume":   {"hotswap rollout resume orders"},
	"rollout promote":  {"hotswap rollout promote orders"},
	"rollout abort":    {"hotswap rollout abort orders", "hotswap rollout abort orders ro-1a2b3c4d5e6f7a8b --yes"},
	"autoswap":         {"hotswap autoswap orders -s staging --target production", "hotswap autoswap orders -s staging --disable"},
	"traffic show":     {"hotswap traffic show orders"},
	"traffic set":      {"hotswap traffic set orders staging=10", "hotswap traffic set orders staging=10 canary=5"},
	"traffic clear":    {"hotswap traffic clear orders"},
	"quarantine":       {"hotswap quarantine orders d-20260102-030405-1a2b --reason '500s on checkout'", "hotswap quarantine orders d-20260102-030405-1a2b --lift"},
	"rollback":         {"hotswap rollback orders -s production --to d-20260102-030405-1a2b"},
	"operation watch":  {"hotswap operation watch op-20260102-030405-1a2b"},
	"activity":         {"hotswap activity orders --limit 20"},
	"user create":      {"hotswap user create ci --role deployer"},
	"user list":        {"hotswap user list"},
	"user delete":      {"hotswap user delete ci"},
	"user rotate":      {"hotswap user rotate ci"},
	"whoami":           {"hotswap whoami", "HOTSWAP_TOKEN=$CI_TOKEN hotswap whoami"},
	"artifact push":    {"hotswap artifact push orders ./orders --version 1.4.2 --branch main --commit 1a2b3c4"},
	"artifact list":    {"hotswap artifact list orders"},
	"pipeline apply":   {"hotswap pipeline apply -f pipeline.yaml", "cat pipeline.yaml | hotswap pipeline apply -f -"},
	"pipeline list":    {"hotswap pipeline list"},
	"pipeline show":    {"hotswap pipeline show orders"},
	"pipeline rename":  {"hotswap pipeline rename orders orders-eu"},
	"release create":   {"hotswap release create orders", "hotswap release create orders --version 1.4.2"},
	"release list":     {"hotswap release list orders --limit 10"},
	"release show":     {"hotswap release show orders-release-7"},
	"release approve":  {"hotswap release approve orders-release-7 --stage production --comment 'looks good'"},
	"release reject":   {"hotswap release reject orders-release-7 --stage production --comment 'wait for the fix'"},
	"release redeploy": {"hotswap release redeploy orders-release-7 --stage staging"},
	"release abandon":  {"hotswap release abandon orders-release-7"},
	"version":          {"hotswap version", "hotswap --version"},
	"completion":       {"source <(hotswap completion bash)", "echo 'source <(hotswap completion zsh)' >> ~/.zshrc", "hotswap completion fish > ~/.config/fish/completions/hotswap.fish"},
	"help":             {"hotswap help deploy", "hotswap deploy --help"},
}

// shortFlags maps each short flag to the long flag it stands for; a
// command has the short one wherever it has the long one.
var shortFlags = []struct{ short, long string }{
	{"s", "slot"},
	{"o", "output"},
	{"m", "message"},
	{"y", "yes"},
}

// addShortFlags registers the short flags of the long flags fs has.
func addShortFlags(fs *flag.FlagSet) {
	for _, sf := range shortFlags {
		if l := fs.Lookup(sf.long); l != nil && fs.Lookup(sf.short) == nil {
			fs.Var(l.Value, sf.short, "short for --"+sf.long)
		}
	}
}

// shortOf returns the short flag of long, or "".
func shortOf(long string) string {
	for _, sf := range shortFlags {
		if sf.long == long {
			return sf.short
		}
	}
	return ""
}

func isShortAlias(fs *flag.FlagSet, name string) bool {
	for _, sf := range shortFlags {
		if sf.short == name && fs.Lookup(sf.long) != nil {
			return true
		}
	}
	return false
}

// dashed writes a flag name as it is typed: -f, --slot.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// printFlags prints fs's flags, a short flag beside its long one:
//
//	-s, --slot name
//	      slot name (default "production")
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if isShortAlias(fs, f.Name) {
			return
		}
		names := dashed(f.Name)
		if s := shortOf(f.Name); s != "" {
			names = "-" + s + ", " + names
		}
		arg, usage := flag.UnquoteUsage(f)
		if arg == "value" && isBool(f) {
			arg = ""
		}
		line := "  " + names
		if arg != "" {
			line += " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "%s\n        %s\n", line, usage)
	})
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// printCommandHelp prints a command's usage, summary, flags and examples.
func printCommandHelp(w io.Writer, cmd *command) {
	fmt.Fprintln(w, cmd.usage())
	fmt.Fprintf(w, "\n%s\n", cmd.summary)
	if d := destructive[cmd.name]; d != nil {
		fmt.Fprintln(w, "\nIt asks for confirmation on a terminal; --yes (-y) confirms in advance, and without a terminal it refuses to act without --yes.")
	}
	fs := newFlagSet(cmd.name)
	var g globals
	g.output = "table"
	registerFlags(fs, cmd, &g, &cmdEnv{cmd: cmd})
	fmt.Fprintln(w, "\nflags:")
	printFlags(w, fs)
	if ex := examples[cmd.name]; len(ex) > 0 {
		fmt.Fprintln(w, "\nexamples:")
		for _, e := range ex {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// printGroupHelp prints the subcommands of group, such as "keys".
func printGroupHelp(w io.Writer, group string) {
	fmt.Fprintf(w, "usage: hotswap %s SUBCOMMAND [ARGS] [FLAGS]\n\nsubcommands:\n", group)
	for _, c := range commands {
		if g, _, ok := strings.Cut(c.name, " "); ok && g == group {
			fmt.Fprintf(w, "  %s\n        %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
		}
	}
	fmt.Fprintf(w, "\nhotswap help %s SUBCOMMAND prints a subcommand's flags and examples.\n", group)
}

// isGroup reports whether word names a group of commands, such as "app".
func isGroup(word string) bool { return subcommands(word) != "" }

// suggestCommand returns the command that args (an unknown command) most
// likely meant, as "deploy" or "app list", or "".
func suggestCommand(args []string) string {
	if len(args) == 0 {
		return ""
	}
	var candidates []string
	typed := args[0]
	if isGroup(args[0]) && len(args) > 1 {
		typed = args[0] + " " + args[1]
		for _, c := range commands {
			if strings.HasPrefix(c.name, args[0]+" ") {
				candidates = append(candidates, c.name)
			}
		}
	} else {
		seen := map[string]bool{"serve": true}
		candidates = append(candidates, "serve")
		for _, c := range commands {
			first, _, _ := strings.Cut(c.name, " ")
			if !seen[first] {
				seen[first] = true
				candidates = append(candidates, first)
			}
		}
		// A mistyped group with its subcommand: "ap list" for "app list".
		if len(args) > 1 {
			for _, c := range commands {
				if strings.Contains(c.name, " ") && distance(args[0]+" "+args[1], c.name) <= 2 {
					return c.name
				}
			}
		}
	}
	return nearest(typed, candidates)
}

// suggestFlag returns the flag of fs that name (without dashes) most
// likely meant, or "".
func suggestFlag(fs *flag.FlagSet, name string) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) > 1 {
			names = append(names, f.Name)
		}
	})
	return nearest(name, names)
}

// nearest returns the candidate closest to typed by edit distance, if it
// is close enough to be a typing mistake (or typed is its prefix), else "".
func nearest(typed string, candidates []string) string {
	sort.Strings(candidates)
	best, bestD := "", 3
	if len(typed) <= 3 {
		bestD = 2
	}
	for _, c := range candidates {
		d := distance(typed, c)
		if len(typed) >= 3 && strings.HasPrefix(c, typed) && d > 1 {
			d = 1 // "depl" for "deploy"
		}
		if d < bestD && d < len(c) {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Damerau-Levenshtein (optimal string alignment) edit
// distance of a and b: a swap of two neighbours counts as one edit.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// flagError turns the flag package's "flag provided but not defined: -x"
// into "unknown flag --x; did you mean --y?".
func flagError(fs *flag.FlagSet, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return err.Error()
	}
	msg := "unknown flag " + dashed(name)
	if s := suggestFlag(fs, name); s != "" {
		msg += "; did you mean " + dashed(s) + "?"
	}
	return msg
}

// help runs hotswap help [COMMAND]: the general usage, a group's
// subcommands, or a command's help, on stdout.
func help(env Env, args []string) int {
	if len(args) == 0 {
		printUsage(env.Stdout)
		return 0
	}
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		args = []string{"help"}
	}
	if cmd, rest := lookup(args); cmd != nil && len(rest) == 0 {
		printCommandHelp(env.Stdout, cmd)
		return 0
	}
	if len(args) == 1 && isGroup(args[0]) {
		printGroupHelp(env.Stdout, args[0])
		return 0
	}
	if len(args) == 1 && args[0] == "serve" {
		fmt.Fprintln(env.Stdout, "hotswap serve runs the server; hotswap serve -h lists its flags")
		return 0
	}
	fmt.Fprintf(env.Stderr, "hotswap help: unknown command %q\n", strings.Join(args, " "))
	if s := suggestCommand(args); s != "" {
		fmt.Fprintf(env.Stderr, "did you mean \"hotswap help %s\"?\n", s)
	}
	return 2
}
