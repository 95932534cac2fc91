package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hotswap/hotswap"
)

// destructive lists the commands that ask before they act, each with what
// it destroys.
var destructive = map[string]func(args []string, o options) string{
	"app delete": func(args []string, _ options) string {
		return "delete app " + args[0] + " with all its slots, keys, settings and deployments"
	},
	"slot delete": func(args []string, _ options) string {
		return "delete slot " + args[0] + "/" + args[1] + " with its keys and settings"
	},
	"rollout abort": func(args []string, _ options) string {
		what := "the running progressive swap of " + args[0]
		if len(args) > 1 {
			what = "progressive swap " + args[1] + " of " + args[0]
		}
		return "abort " + what + ": its slot's share of production's requests goes back to production and nothing is swapped"
	},
	"keys delete": func(args []string, o options) string {
		what := "host key " + args[1]
		if o.function != "" {
			what = "function key " + o.function + "/" + args[1]
		}
		return "delete " + what + " of " + args[0] + "/" + o.slot + " (clients using it get 401)"
	},
}

// registerFlags registers on fs the global flags, cmd's flags, --yes for a
// destructive command, and the short flags of them all.
func registerFlags(fs *flag.FlagSet, cmd *command, g *globals, x *cmdEnv) {
	g.register(fs)
	if cmd.flags != nil {
		cmd.flags(fs, &x.opts)
	}
	if destructive[cmd.name] != nil {
		fs.BoolVar(&x.yes, "yes", false, "do not ask for confirmation")
	}
	addShortFlags(fs)
}

// stdinTerminal reports whether Env.Stdin is a terminal someone can answer
// a question on.
func stdinTerminal(env Env) bool {
	if env.StdinTerminal != nil {
		return env.StdinTerminal()
	}
	f, ok := env.Stdin.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// confirm asks, for a destructive command without --yes, whether to go on:
// on a terminal it reads the answer from stdin; elsewhere it refuses, for a
// script must say --yes. A nil error means go on.
func confirm(_ context.Context, x *cmdEnv, env Env, args []string) error {
	describe := destructive[x.cmd.name]
	if describe == nil || x.yes {
		return nil
	}
	what := describe(args, x.opts)
	if !stdinTerminal(env) {
		return &usageError{x.cmd, fmt.Sprintf("this would %s: pass --yes (-y) to confirm; standard input is not a terminal, so hotswap cannot ask", what)}
	}
	fmt.Fprintf(env.Stderr, "This will %s.\nContinue? [y/N] ", what)
	line, err := bufio.NewReader(x.stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("read the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	if err == io.EOF {
		fmt.Fprintln(env.Stderr)
	}
	return fmt.Errorf("%s cancelled: nothing was deleted", x.cmd.name)
}

// keysDeleteCheck refuses the master key before asking to delete it.
func keysDeleteCheck(x *cmdEnv, args []string) error {
	if args[1] == hotswap.MasterKeyName {
		return &usageError{x.cmd, "the master key cannot be deleted; renew it with: hotswap keys renew APP _master"}
	}
	return nil
}
