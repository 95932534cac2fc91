package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap/internal/azurite"
)

// The README's walkthrough runs as written (issue 12, items 14 and 15). The
// conventions, also noted in an HTML comment at the top of the walkthrough:
//
//   - Every ```sh block of the sections in readmeSections runs, in README
//     order, in one bash with set -euo pipefail, in a folder holding
//     go.mod, go.sum and the examples, as a clone of the repository would.
//   - A block right after a line "<!-- readme-test: skip: REASON -->" does
//     not run (building hotswap: the test builds it once and puts it on
//     PATH; starting Azurite on its default ports: the test starts one on
//     free ports and sets AZURE_STORAGE_CONNECTION_STRING to it).
//   - A command is a line, with the lines a trailing backslash or a
//     here-document carries on. Each must exit 0.
//   - Whole-line "# text" comments right after a command are output the
//     command must print, each on a line of its own: "..." stands for
//     anything and runs of spaces for any spacing. The server's documented
//     addresses (localhost:8080, 127.0.0.1:7070) stand for the ones the test
//     gives it through HOTSWAP_LISTEN and HOTSWAP_ADMIN; the CLI finds it
//     through HOTSWAP_SERVER, which the README's Kudu example uses too.

// readmeSections are the headings whose sections (up to the next heading of
// the same or a higher level) hold the walkthrough.
var readmeSections = []string{
	"## Walkthrough: the deployment-slots workflow",
	"### Queues and blobs with Azurite",
}

const readmeSkip = "<!-- readme-test: skip:"

// readmeCommand is one command of the walkthrough.
type readmeCommand struct {
	line   int      // in README.md, from 1
	text   string   // what bash runs, possibly several lines
	expect []string // output lines it must print (see matchOutput)
}

// readmeCommands returns the walkthrough's commands in order.
func readmeCommands(readme string) ([]readmeCommand, error) {
	lines := strings.Split(readme, "\n")
	var (
		cmds      []readmeCommand
		inSection bool
		level     int  // of the current section's heading
		skipNext  bool // the next fence follows a skip comment
		found     = map[string]bool{}
	)
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(line, "```") {
			// A fenced block: find its end.
			end := i + 1
			for end < len(lines) && !strings.HasPrefix(lines[end], "```") {
				end++
			}
			if end == len(lines) {
				return nil, fmt.Errorf("README.md:%d: code block is not closed", i+1)
			}
			if inSection && strings.TrimSpace(line) == "```sh" && !skipNext {
				block, err := splitCommands(lines[i+1:end], i+2)
				if err != nil {
					return nil, err
				}
				cmds = append(cmds, block...)
			}
			skipNext = false
			i = end
			continue
		}
		if strings.HasPrefix(line, "#") {
			n := len(line) - len(strings.TrimLeft(line, "#"))
			if strings.HasPrefix(line[n:], " ") {
				if inSection && n <= level {
					inSection = false
				}
				for _, h := range readmeSections {
					if line == h {
						inSection, level, found[h] = true, n, true
					}
				}
			}
		}
		if strings.HasPrefix(line, readmeSkip) {
			if !strings.HasSuffix(line, "-->") || strings.TrimSpace(strings.TrimSuffix(line[len(readmeSkip):], "-->")) == "" {
				return nil, fmt.Errorf("README.md:%d: a skip comment is one line and says why: %s REASON -->", i+1, readmeSkip)
			}
			skipNext = true
		} else if skipNext && strings.TrimSpace(line) != "" {
			return nil, fmt.Errorf("README.md:%d: a skip comment must be right before a code block", i)
		}
	}
	for _, h := range readmeSections {
		if !found[h] {
			return nil, fmt.Errorf("README.md has no heading %q", h)
		}
	}
	return cmds, nil
}

var heredoc = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_]+)['"]?`)

// splitCommands splits a block's lines (the first is README line first)
// into commands with their expected output.
func splitCommands(lines []string, first int) ([]readmeCommand, error) {
	var cmds []readmeCommand
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(strings.TrimSpace(line), "#"):
			if len(cmds) == 0 {
				return nil, fmt.Errorf("README.md:%d: output comment before any command", first+i)
			}
			c := &cmds[len(cmds)-1]
			c.expect = append(c.expect, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#")))
			continue
		}
		c := readmeCommand{line: first + i, text: line}
		for strings.HasSuffix(lines[i], `\`) && i+1 < len(lines) {
			i++
			c.text += "\n" + lines[i]
		}
		if m := heredoc.FindStringSubmatch(line); m != nil {
			for {
				i++
				if i == len(lines) {
					return nil, fmt.Errorf("README.md:%d: here-document %s is not ended", c.line, m[1])
				}
				c.text += "\n" + lines[i]
				if lines[i] == m[1] {
					break
				}
			}
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

// matchOutput reports whether out has a line matching want: "..." stands for
// anything, runs of spaces for any spacing.
func matchOutput(out, want string) bool {
	parts := strings.Split(collapse(want), "...")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	re := regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if re.MatchString(collapse(sc.Text())) {
			return true
		}
	}
	return false
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// readmeScript returns the bash script running cmds: each command's output
// goes to dir/N.out; a failing one writes its index and status to dir/failed
// and ends the script.
func readmeScript(cmds []readmeCommand) string {
	var b strings.Builder
	b.WriteString("set -euo pipefail\n")
	for i, c := range cmds {
		fmt.Fprintf(&b, "echo %d >\"$README_TEST_DIR/started\"\n{\n%s\n} >\"$README_TEST_DIR/%d.out\" 2>&1 || { echo \"%d $?\" >\"$README_TEST_DIR/failed\"; exit 1; }\n", i, c.text, i, i)
	}
	b.WriteString("echo done >\"$README_TEST_DIR/finished\"\n")
	return b.String()
}

func TestReadmeCommands(t *testing.T) {
	t.Parallel()
	readme := "intro\n```sh\nnot run\n```\n## Walkthrough: the deployment-slots workflow\n\n" +
		"```sh\nhotswap serve &\n#   control:   http://127.0.0.1:7070\ncurl -d x \\\n  http://a\n# {\"a\":1}\n```\n" +
		"<!-- readme-test: skip: built by the test -->\n```sh\ngo build\n```\n" +
		"```yaml\nname: x\n```\n### Sub\n```sh\ncat > f <<'EOF'\n# not a heading\nEOF\necho ok\n```\n" +
		"## Other\n```sh\nnot run either\n```\n### Queues and blobs with Azurite\n```sh\nhotswap app create shop\n```\n"
	got, err := readmeCommands(readme)
	if err != nil {
		t.Fatal(err)
	}
	want := []readmeCommand{
		{line: 8, text: "hotswap serve &", expect: []string{"control:   http://127.0.0.1:7070"}},
		{line: 10, text: "curl -d x \\\n  http://a", expect: []string{`{"a":1}`}},
		{line: 23, text: "cat > f <<'EOF'\n# not a heading\nEOF"},
		{line: 26, text: "echo ok"},
		{line: 34, text: "hotswap app create shop"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(readmeCommand{})); diff != "" {
		t.Errorf("readmeCommands (-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		"## Walkthrough: the deployment-slots workflow\n<!-- readme-test: skip: -->\n```sh\nx\n```\n### Queues and blobs with Azurite\n",
		"## Walkthrough: the deployment-slots workflow\n<!-- readme-test: skip: why -->\ntext\n```sh\nx\n```\n### Queues and blobs with Azurite\n",
		"## Walkthrough: the deployment-slots workflow\n```sh\n# out\n```\n### Queues and blobs with Azurite\n",
		"## Walkthrough: the deployment-slots workflow\n```sh\nx\n```\n",
	} {
		if _, err := readmeCommands(bad); err == nil {
			t.Errorf("readmeCommands(%q) = nil error", bad)
		}
	}
	for _, tc := range []struct {
		out, want string
		ok        bool
	}{
		{"a\nHTTP/1.1 401 Unauthorized\r\nb", "HTTP/1.1 401 Unauthorized", true},
		{"HTTP/1.1 200 OK", "HTTP/1.1 401 Unauthorized", false},
		{"2026-12-01T10:00:00Z order  order o7: 2 x tea", "... order order o7: 2 x tea", true},
		{"swapped a into b in 3ms (x) (instant revert: warm process sets reused)", "swapped a into b in ... (instant revert: warm process sets reused)", true},
		{"swapped a into b in 3ms (x)", "swapped a into b in ... (instant revert: warm process sets reused)", false},
		{"xx fulfil queue idle orders", "fulfil queue idle orders", false},
	} {
		if got := matchOutput(tc.out, tc.want); got != tc.ok {
			t.Errorf("matchOutput(%q, %q) = %v, want %v", tc.out, tc.want, got, tc.ok)
		}
	}
}

// TestReadmeWalkthrough runs the README's walkthrough commands, as written,
// with bash against the hotswap binary on PATH, the server the walkthrough
// itself starts (on free loopback ports) and a real Azurite.
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := readmeCommands(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) < 40 {
		t.Fatalf("found %d walkthrough commands in README.md, want at least 40: are the ```sh blocks still there?", len(cmds))
	}
	runReadme(t, cmds)
}

func runReadme(t *testing.T, cmds []readmeCommand) {
	bin := hotswapBinary(t)
	az := azurite.Start(t)

	// The working folder is what a clone offers the walkthrough.
	work := t.TempDir()
	shareTempDir(t, filepath.Join(work, "hotswap-data"))
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "go.sum", "examples/goforward", "examples/gopayload"} {
		src := filepath.Join(repoRoot(), f)
		fi, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		if fi.IsDir() {
			err = os.CopyFS(filepath.Join(work, f), os.DirFS(src))
		} else {
			var data []byte
			if data, err = os.ReadFile(src); err == nil {
				err = os.WriteFile(filepath.Join(work, f), data, 0o644)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	outDir := t.TempDir()
	script := filepath.Join(outDir, "walkthrough.sh")
	if err := os.WriteFile(script, []byte(readmeScript(cmds)), 0o600); err != nil {
		t.Fatal(err)
	}

	fnAddr, adminAddr := freeAddr(t), freeAddr(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOTSWAP_") && !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "AZURE_STORAGE_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOTSWAP_LISTEN="+fnAddr,
		"HOTSWAP_ADMIN="+adminAddr,
		"HOTSWAP_SERVER=http://"+adminAddr,
		"AZURE_STORAGE_CONNECTION_STRING="+az.ConnectionString(),
		"README_TEST_DIR="+outDir,
	)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir, cmd.Env = work, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The walkthrough leaves its server running in the background, in the
	// script's process group: stop it (and what it started) as a user would.
	t.Cleanup(func() { stopGroup(t, cmd.Process.Pid) })
	runErr := cmd.Wait()
	t.Logf("walkthrough: %d commands in %s", len(cmds), time.Since(start).Round(time.Millisecond))

	output := func(i int) string {
		data, _ := os.ReadFile(filepath.Join(outDir, strconv.Itoa(i)+".out"))
		return string(data)
	}
	if runErr != nil {
		var msg string
		if data, err := os.ReadFile(filepath.Join(outDir, "failed")); err == nil {
			var i, status int
			fmt.Sscan(string(data), &i, &status)
			msg = fmt.Sprintf("README.md:%d: exit status %d", cmds[i].line, status)
		} else if ctx.Err() != nil {
			msg = fmt.Sprintf("README.md:%d: still running after %s", cmds[lastStarted(outDir)].line, time.Since(start).Round(time.Second))
		} else {
			msg = fmt.Sprintf("README.md:%d: bash ended here: %v", cmds[lastStarted(outDir)].line, runErr)
		}
		i := lastStarted(outDir)
		t.Fatalf("%s\n$ %s\n%s%s", msg, cmds[i].text, output(i), out.String())
	}

	if _, err := os.Stat(filepath.Join(outDir, "finished")); err != nil {
		t.Fatalf("the walkthrough script ended with status 0 before its end, after README.md:%d: %s", cmds[lastStarted(outDir)].line, out.String())
	}
	if testing.Verbose() {
		for i, c := range cmds {
			t.Logf("README.md:%d $ %s\n%s", c.line, c.text, output(i))
		}
	}
	// The server's addresses stand for the documented defaults.
	fnPort := fnAddr[strings.LastIndex(fnAddr, ":")+1:]
	addrs := strings.NewReplacer("localhost:8080", "localhost:"+fnPort, "127.0.0.1:7070", adminAddr)
	for i, c := range cmds {
		for _, want := range c.expect {
			if !matchOutput(output(i), addrs.Replace(want)) {
				t.Errorf("README.md:%d: output has no line %q\n$ %s\n%s", c.line, want, c.text, output(i))
			}
		}
	}
}

// lastStarted returns the index of the command the script started last.
func lastStarted(dir string) int {
	data, _ := os.ReadFile(filepath.Join(dir, "started"))
	i, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return i
}

// stopGroup sends SIGTERM to the process group pgid and waits for it to
// end, then kills what is left.
func stopGroup(t testing.TB, pgid int) {
	syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if !groupAlive(pgid) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("the walkthrough's processes did not end within 30s of SIGTERM: killing them")
	syscall.Kill(-pgid, syscall.SIGKILL)
}

// groupAlive reports whether a process of the group pgid is running; an
// ended one whose parent has not reaped it yet (a zombie) does not count.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			return true
		}
	}
	return false
}
