package artifact

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// IgnoreFile is the file in a function app's folder that names, in
// gitignore syntax, what is not published, as Azure Functions Core Tools
// reads it.
const IgnoreFile = ".funcignore"

// Ignore is a parsed .funcignore: gitignore patterns, the last matching one
// deciding. The zero value ignores nothing beyond the defaults that are
// never packaged (see ZipProject).
type Ignore struct {
	rules []ignoreRule
}

type ignoreRule struct {
	re *regexp.Regexp
	// prefix, on rules that leave things out, matches as Core Tools'
	// .funcignore parser does: from the root, on any path that begins with
	// what the pattern names, so ".env" also leaves out ".env.production".
	prefix  *regexp.Regexp
	negate  bool
	dirOnly bool
}

// ParseIgnore reads patterns in gitignore syntax: one per line; blank lines
// and lines starting with # are skipped; ! re-includes; a trailing / matches
// only folders; a pattern with a / before its end is anchored at the root,
// one without matches a name at any depth; * and ? do not cross /, ** does;
// [a-z] classes; \ escapes. A line that is not a valid pattern is an error
// naming the line.
//
// Where Core Tools would leave out more than git, the pattern leaves out
// more, so that nothing Core Tools keeps out of a package (secrets, most
// often) gets into one: a UTF-8 byte order mark before the first line is
// dropped, whitespace around a pattern is dropped (trailing whitespace
// escaped with \ stays), and a pattern that leaves things out also leaves
// out, from the root, every path that begins with it (Core Tools matches
// prefixes: ".env" leaves out ".env.production").
func ParseIgnore(r io.Reader) (*Ignore, error) {
	ig := &Ignore{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		rule, ok, err := parseIgnoreLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if ok {
			ig.rules = append(ig.rules, rule)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ig, nil
}

func parseIgnoreLine(line string) (ignoreRule, bool, error) {
	line = trimIgnoreSpace(line)
	if line == "" || line[0] == '#' {
		return ignoreRule{}, false, nil
	}
	var r ignoreRule
	if line[0] == '!' {
		r.negate, line = true, line[1:]
	} else if strings.HasPrefix(line, `\!`) || strings.HasPrefix(line, `\#`) {
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") {
		r.dirOnly, line = true, strings.TrimRight(line, "/")
	}
	if line == "" {
		return ignoreRule{}, false, nil
	}
	anchored := strings.Contains(line, "/")
	line = strings.TrimPrefix(line, "/")
	glob, err := globRegexp(line)
	if err != nil {
		return r, false, err
	}
	depth := ""
	if !anchored {
		depth = "(?:.*/)?"
	}
	if r.re, err = regexp.Compile("^" + depth + glob + "$"); err != nil {
		return r, false, fmt.Errorf("pattern %q: %w", line, err)
	}
	// A folder-only rule leaves out the folder and so all it holds, which
	// is all Core Tools' prefix ("name/") would leave out.
	if !r.negate && !r.dirOnly {
		if r.prefix, err = regexp.Compile("^" + glob); err != nil {
			return r, false, fmt.Errorf("pattern %q: %w", line, err)
		}
	}
	return r, true, nil
}

// trimIgnoreSpace drops whitespace around a pattern line: a trailing \r,
// trailing spaces and tabs unless escaped with \ (as git does), and leading
// spaces and tabs (as Core Tools does; git would keep them and so publish
// "  secrets.json").
func trimIgnoreSpace(line string) string {
	line = strings.TrimLeft(line, " \t\uFEFF")
	for {
		trimmed := strings.TrimRight(line, " \t\r")
		if trimmed == line {
			return line
		}
		if strings.HasSuffix(trimmed, `\`) && !strings.HasSuffix(trimmed, `\\`) {
			// An escaped space or tab ends the pattern.
			return line[:len(trimmed)+1]
		}
		line = trimmed
	}
}

// globRegexp translates one gitignore pattern (without its leading /,
// trailing / or !) into a regular expression, unanchored.
func globRegexp(line string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '*' && strings.HasPrefix(line[i:], "**"):
			atStart := i == 0 || line[i-1] == '/'
			rest := line[i+2:]
			switch {
			case atStart && strings.HasPrefix(rest, "/"):
				b.WriteString("(?:.*/)?") // **/ : any folders, or none
				i += 2
			case atStart && rest == "":
				b.WriteString(".*") // /** : everything inside
				i++
			default:
				b.WriteString("[^/]*") // ** elsewhere is a plain *
				i++
			}
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			j := strings.IndexByte(line[i+1:], ']')
			if j < 0 {
				return "", errors.New("unclosed [ in " + line)
			}
			class := line[i+1 : i+1+j]
			if j == 0 { // "[]...]": ] first is literal
				k := strings.IndexByte(line[i+2:], ']')
				if k < 0 {
					return "", errors.New("unclosed [ in " + line)
				}
				class, j = line[i+1:i+2+k], k+1
			}
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			class = strings.ReplaceAll(class, `\`, `\\`)
			b.WriteString("[" + class + "]")
			i += j + 1
		case c == '\\' && i+1 < len(line):
			i++
			b.WriteString(regexp.QuoteMeta(line[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String(), nil
}

// Match reports whether the slash-separated path rel (relative to the
// folder) is ignored; dir says whether it is a folder.
func (ig *Ignore) Match(rel string, dir bool) bool {
	if ig == nil {
		return false
	}
	ignored := false
	for _, r := range ig.rules {
		if r.dirOnly && !dir {
			continue
		}
		if r.re.MatchString(rel) || (r.prefix != nil && r.prefix.MatchString(rel)) {
			ignored = !r.negate
		}
	}
	return ignored
}

// neverPackaged reports whether a path is left out of every package made
// from a folder, .funcignore or not: local.settings.json holds local
// secrets, .git the repository and .vscode the editor's settings, at any
// depth and in any case (on Windows and macOS LOCAL.SETTINGS.JSON is the
// same file).
func neverPackaged(rel string) bool {
	for part := range strings.SplitSeq(rel, "/") {
		switch strings.ToLower(part) {
		case "local.settings.json", ".git", ".vscode":
			return true
		}
	}
	return false
}

// ZipProject zips a function app's folder for publishing as Core Tools does:
// like ZipDir, leaving out what the folder's .funcignore names, and never
// packaging local.settings.json, .git or .vscode.
func ZipProject(dir string, w io.Writer) error {
	ig := &Ignore{}
	f, err := os.Open(filepath.Join(dir, IgnoreFile))
	switch {
	case err == nil:
		ig, err = ParseIgnore(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, IgnoreFile), err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", IgnoreFile, err)
	}
	return zipDir(dir, w, func(rel string, isDir bool) bool {
		return neverPackaged(rel) || ig.Match(rel, isDir)
	})
}
