package cli

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
)

// Shell completion scripts (hotswap completion bash|zsh|fish), made from
// the command table: command names, each command's flags, and -o's values.

// init sets the completion command's run: it reads the command table, so
// the table cannot name it (an initialization cycle).
func init() {
	for _, c := range commands {
		if c.name == "completion" {
			c.run = completion
		}
	}
}

// completionCheck refuses a shell it has no script for.
func completionCheck(x *cmdEnv, args []string) error {
	switch args[0] {
	case "bash", "zsh", "fish":
		return nil
	}
	return &usageError{x.cmd, fmt.Sprintf("no completion for shell %q: use bash, zsh or fish", args[0])}
}

func completion(ctx context.Context, x *cmdEnv, args []string) error {
	var s string
	switch args[0] {
	case "bash":
		s = bashCompletion()
	case "zsh":
		// zsh runs the bash script through its bash completion layer.
		s = "# zsh completion for hotswap: add to ~/.zshrc\n#   source <(hotswap completion zsh)\n" +
			"autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n" + bashCompletion()
	case "fish":
		s = fishCompletion()
	}
	_, err := fmt.Fprint(x.stdout, s)
	return err
}

// cmdFlags returns the flags cmd takes, global ones included, as typed
// (--slot, -s), and which of them take a value.
func cmdFlags(cmd *command) (all []*flag.Flag, fs *flag.FlagSet) {
	fs = newFlagSet(cmd.name)
	var g globals
	registerFlags(fs, cmd, &g, &cmdEnv{cmd: cmd})
	fs.VisitAll(func(f *flag.Flag) { all = append(all, f) })
	return all, fs
}

// topWords are the words that can start a command line.
func topWords() []string {
	words := []string{"serve"}
	for _, c := range commands {
		first, _, _ := strings.Cut(c.name, " ")
		if !slices.Contains(words, first) {
			words = append(words, first)
		}
	}
	return words
}

func bashCompletion() string {
	var b strings.Builder
	var valueFlags []string
	cases := map[string]string{} // command name -> its flags
	for _, c := range commands {
		flags, _ := cmdFlags(c)
		var names []string
		for _, f := range flags {
			names = append(names, dashed(f.Name))
			if !isBool(f) {
				for _, n := range []string{"-" + f.Name, "--" + f.Name} {
					if !slices.Contains(valueFlags, n) {
						valueFlags = append(valueFlags, n)
					}
				}
			}
		}
		cases[c.name] = strings.Join(names, " ")
	}
	var groups []string
	for _, w := range topWords() {
		if isGroup(w) {
			groups = append(groups, w)
		}
	}

	b.WriteString(`# bash completion for hotswap: add to ~/.bashrc
#   source <(hotswap completion bash)
_hotswap() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" w cmd="" i skip=0
    local -a words=()
    (( COMP_CWORD > 0 )) && prev="${COMP_WORDS[COMP_CWORD-1]}"
    local value_flags="` + strings.Join(valueFlags, " ") + `"
    for (( i = 1; i < COMP_CWORD; i++ )); do
        w="${COMP_WORDS[i]}"
        if (( skip )); then skip=0; continue; fi
        case "$w" in
            --*=*) ;;
            -*) [[ " $value_flags " == *" $w "* ]] && skip=1 ;;
            *) words+=("$w") ;;
        esac
    done
    case "$prev" in
        -o|--o|-output|--output)
            COMPREPLY=($(compgen -W "` + strings.Join(outputFormats, " ") + `" -- "$cur"))
            return ;;
    esac
    if [[ " $value_flags " == *" $prev "* ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    case "${words[0]}" in
        ` + strings.Join(groups, "|") + `) cmd="${words[0]} ${words[1]}" ;;
        *) cmd="${words[0]}" ;;
    esac
    if [[ "$cur" == -* ]]; then
        local flags=""
        case "$cmd" in
`)
	for _, c := range commands {
		fmt.Fprintf(&b, "            %q) flags=%q ;;\n", c.name, cases[c.name])
	}
	b.WriteString(`            *) flags="--server --token --output -o --query --help" ;;
        esac
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return
    fi
    if (( ${#words[@]} == 0 )); then
        COMPREPLY=($(compgen -W "` + strings.Join(topWords(), " ") + `" -- "$cur"))
        return
    fi
    case "${words[0]}" in
`)
	for _, g := range groups {
		subs := strings.ReplaceAll(subcommands(g), ",", "")
		fmt.Fprintf(&b, "        %s) if (( ${#words[@]} == 1 )); then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi ;;\n", g, subs)
	}
	b.WriteString(`        completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return ;;
        help) COMPREPLY=($(compgen -W "` + strings.Join(topWords(), " ") + `" -- "$cur")); return ;;
    esac
    COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _hotswap hotswap
`)
	return b.String()
}

func fishCompletion() string {
	var b strings.Builder
	b.WriteString("# fish completion for hotswap: hotswap completion fish > ~/.config/fish/completions/hotswap.fish\n")
	b.WriteString("complete -c hotswap -f\n")
	quote := func(s string) string {
		return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
	}
	for _, w := range topWords() {
		desc := "run the server"
		if isGroup(w) {
			desc = strings.ReplaceAll(subcommands(w), ",", "")
		} else if c, _ := lookup([]string{w}); c != nil {
			desc = c.summary
		}
		fmt.Fprintf(&b, "complete -c hotswap -n __fish_use_subcommand -a %s -d %s\n", w, quote(desc))
	}
	for _, c := range commands {
		group, sub, two := strings.Cut(c.name, " ")
		cond := "__fish_seen_subcommand_from " + group
		if two {
			subs := strings.ReplaceAll(subcommands(group), ",", "")
			fmt.Fprintf(&b, "complete -c hotswap -n %s -a %s -d %s\n",
				quote(cond+"; and not __fish_seen_subcommand_from "+subs), sub, quote(c.summary))
			cond += "; and __fish_seen_subcommand_from " + sub
		}
		flags, fs := cmdFlags(c)
		for _, f := range flags {
			if isShortAlias(fs, f.Name) {
				continue
			}
			line := "complete -c hotswap -n " + quote(cond)
			if len(f.Name) == 1 {
				line += " -s " + f.Name
			} else {
				line += " -l " + f.Name
				if s := shortOf(f.Name); s != "" {
					line += " -s " + s
				}
			}
			switch {
			case f.Name == "output":
				line += " -x -a " + quote(strings.Join(outputFormats, " "))
			case !isBool(f):
				line += " -r"
			}
			_, usage := flag.UnquoteUsage(f)
			b.WriteString(line + " -d " + quote(usage) + "\n")
		}
		if strings.Contains(c.args, "PATH") || c.name == "pipeline apply" {
			fmt.Fprintf(&b, "complete -c hotswap -n %s -F\n", quote(cond))
		}
	}
	b.WriteString("complete -c hotswap -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'\n")
	return b.String()
}
