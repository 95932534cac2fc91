package artifact

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/hotswap/hotswap"
)

const (
	maxName       = 1024    // bytes of an entry name
	maxElem       = 255     // bytes of one path element (NAME_MAX)
	maxTarget     = 1024    // bytes of a link target
	maxLinkHops   = 40      // links followed resolving one target, as Linux
	maxLinkBudget = 1 << 22 // path elements walked resolving all targets
)

type kind int

const (
	regular kind = iota
	directory
	symlink
)

// entry is a zip entry that passed the name and type checks.
type entry struct {
	f      *zip.File
	name   string // slash-separated, relative, clean, no trailing slash
	kind   kind
	target string // of a symlink
}

func invalid(format string, args ...any) error {
	return hotswap.Errorf(hotswap.Invalid, format, args...)
}

// extract validates the zip in ra and extracts it into dir, which must be
// empty. Everything is checked before anything is written, and the writing
// goes through an os.Root so that a hole in the checks still cannot write
// outside dir. Links are created last, so no file is written through one.
func extract(ctx context.Context, ra io.ReaderAt, size int64, dir string, l Limits) error {
	zr, err := zip.NewReader(ra, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // we check names ourselves
		return invalid("package is not a valid zip file: %v", err)
	}
	if len(zr.File) > l.MaxFiles {
		return invalid("package has %d entries, more than the limit of %d", len(zr.File), l.MaxFiles)
	}
	entries, err := validate(ctx, zr, l)
	if err != nil {
		return err
	}
	if err := write(ctx, entries, dir, l); err != nil {
		if _, ok := errors.AsType[*hotswap.Error](err); ok {
			return err
		}
		return fmt.Errorf("extract package: %w", err)
	}
	return nil
}

// validate checks the names, types and links of the entries of zr.
func validate(ctx context.Context, zr *zip.Reader, l Limits) ([]entry, error) {
	entries := make([]entry, 0, len(zr.File))
	kinds := make(map[string]kind, len(zr.File))
	var declared uint64
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name, err := cleanName(f.Name)
		if err != nil {
			return nil, err
		}
		e := entry{f: f, name: name}
		switch t := f.Mode().Type(); t {
		case 0:
			e.kind = regular
		case fs.ModeDir:
			e.kind = directory
		case fs.ModeSymlink:
			e.kind = symlink
		default:
			return nil, invalid("entry %q is a special file (%v): only files, directories and links are allowed", f.Name, t)
		}
		if _, dup := kinds[name]; dup {
			return nil, invalid("entry %q appears twice in the package", f.Name)
		}
		kinds[name] = e.kind
		if e.kind != directory {
			// Headers can lie, so write counts real bytes as well; this only
			// refuses an honest oversized package before extracting it.
			declared += f.UncompressedSize64
			if declared > uint64(l.MaxUncompressed) {
				return nil, invalid("package is larger than %d bytes uncompressed (at entry %q)", l.MaxUncompressed, f.Name)
			}
		}
		entries = append(entries, e)
	}
	for _, e := range entries {
		for i := 0; i < len(e.name); i++ {
			if e.name[i] != '/' {
				continue
			}
			p := e.name[:i]
			switch k, ok := kinds[p]; {
			case ok && k == regular:
				return nil, invalid("entry %q is inside %q, which is a file", e.f.Name, p)
			case ok && k == symlink:
				return nil, invalid("entry %q is inside link %q: writing through links is not allowed", e.f.Name, p)
			}
		}
	}

	targets := make(map[string]string)
	var total int64
	for i := range entries {
		e := &entries[i]
		if e.kind != symlink {
			continue
		}
		t, err := readTarget(e.f, &total, l)
		if err != nil {
			return nil, err
		}
		e.target = t
		targets[e.name] = t
	}
	budget := maxLinkBudget
	for _, e := range entries {
		if e.kind != symlink {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := resolve(targets, e.name, &budget); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// cleanName validates the name of a zip entry and returns it slash-separated
// without a trailing slash. Like Kudu, it takes a backslash for a separator.
func cleanName(raw string) (string, error) {
	if raw == "" {
		return "", invalid("package has an entry with an empty name")
	}
	if strings.IndexByte(raw, 0) >= 0 {
		return "", invalid("entry %q: name contains a NUL byte", raw)
	}
	if !utf8.ValidString(raw) {
		// Routes, logs and the portal all carry names as UTF-8 text; a
		// zip tool that wrote a legacy code page must be told, not guessed.
		return "", invalid("entry %q: name is not valid UTF-8 (re-create the zip with UTF-8 names)", raw)
	}
	if len(raw) > maxName {
		return "", invalid("entry %q: name is longer than %d bytes", raw, maxName)
	}
	name := strings.ReplaceAll(raw, `\`, "/")
	if isAbs(name) {
		return "", invalid("entry %q: absolute paths are not allowed", raw)
	}
	name = strings.TrimSuffix(name, "/")
	for elem := range strings.SplitSeq(name, "/") {
		switch {
		case elem == "":
			return "", invalid("entry %q: empty path element", raw)
		case elem == "." || elem == "..":
			return "", invalid("entry %q: path element %q is not allowed", raw, elem)
		case len(elem) > maxElem:
			return "", invalid("entry %q: path element longer than %d bytes", raw, maxElem)
		}
	}
	return name, nil
}

// isAbs reports whether the slash-separated p is absolute on Unix or Windows
// ("/x", "//host/share", "C:x", "C:/x").
func isAbs(p string) bool {
	if strings.HasPrefix(p, "/") {
		return true
	}
	return len(p) >= 2 && p[1] == ':' && ('a' <= p[0]|0x20 && p[0]|0x20 <= 'z')
}

// readTarget reads the target of link entry f, adding its size to total.
func readTarget(f *zip.File, total *int64, l Limits) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", openError(f, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxTarget+1))
	if err != nil {
		return "", invalid("entry %q is corrupt: %v", f.Name, err)
	}
	if len(b) > maxTarget {
		return "", invalid("link %q: target is longer than %d bytes", f.Name, maxTarget)
	}
	// Read to EOF so the CRC is checked.
	if n, err := rc.Read(make([]byte, 1)); n != 0 || (err != nil && err != io.EOF) {
		return "", invalid("entry %q is corrupt: %v", f.Name, err)
	}
	*total += int64(len(b))
	if *total > l.MaxUncompressed {
		return "", invalid("package is larger than %d bytes uncompressed (at entry %q)", l.MaxUncompressed, f.Name)
	}
	t := string(b)
	switch {
	case t == "":
		return "", invalid("link %q has an empty target", f.Name)
	case strings.IndexByte(t, 0) >= 0:
		return "", invalid("link %q: target contains a NUL byte", f.Name)
	case !utf8.ValidString(t):
		return "", invalid("link %q: target is not valid UTF-8", f.Name)
	case isAbs(t):
		return "", invalid("link %q points outside the package", f.Name)
	case strings.Contains(t, `\`):
		return "", invalid("link %q: target contains a backslash", f.Name)
	}
	return t, nil
}

// resolve follows the link name through the links of the package the way
// the kernel would, and fails if that leaves the package root. Elements
// that do not exist are taken lexically, which can only refuse more.
func resolve(targets map[string]string, name string, budget *int) error {
	var stack []string // resolved elements below the root
	if d := path.Dir(name); d != "." {
		stack = strings.Split(d, "/")
	}
	todo := strings.Split(targets[name], "/")
	for hops := 0; len(todo) > 0; {
		if *budget--; *budget < 0 {
			return invalid("package links are too deeply nested (at link %q)", name)
		}
		elem := todo[0]
		todo = todo[1:]
		switch elem {
		case "", ".":
		case "..":
			if len(stack) == 0 {
				return invalid("link %q points outside the package", name)
			}
			stack = stack[:len(stack)-1]
		default:
			stack = append(stack, elem)
			t, ok := targets[strings.Join(stack, "/")]
			if !ok {
				continue
			}
			if hops++; hops > maxLinkHops {
				return invalid("link %q: too many levels of links", name)
			}
			stack = stack[:len(stack)-1]
			todo = append(strings.Split(t, "/"), todo...)
		}
	}
	return nil
}

func openError(f *zip.File, err error) error {
	if errors.Is(err, zip.ErrAlgorithm) {
		return invalid("entry %q uses an unsupported compression method (%d)", f.Name, f.Method)
	}
	return invalid("entry %q is corrupt: %v", f.Name, err)
}

// write extracts the checked entries into dir.
func write(ctx context.Context, entries []entry, dir string, l Limits) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()

	made := map[string]bool{".": true}
	synced := []string{"."} // files and directories to fsync before the rename
	mkdirAll := func(name string) error {
		for i := 0; i <= len(name); i++ {
			if i < len(name) && name[i] != '/' {
				continue
			}
			p := name[:i]
			if made[p] {
				continue
			}
			if err := root.Mkdir(p, 0o755); err != nil {
				return err
			}
			if err := root.Chmod(p, 0o755); err != nil { // whatever the umask
				return err
			}
			made[p] = true
			synced = append(synced, p)
		}
		return nil
	}

	var total int64
	buf := make([]byte, 64<<10)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch e.kind {
		case directory:
			if err := mkdirAll(e.name); err != nil {
				return err
			}
		case regular:
			if d := path.Dir(e.name); d != "." {
				if err := mkdirAll(d); err != nil {
					return err
				}
			}
			if err := writeFile(ctx, root, e, buf, &total, l); err != nil {
				return err
			}
			synced = append(synced, e.name)
		}
	}
	for _, e := range entries {
		if e.kind != symlink {
			continue
		}
		if d := path.Dir(e.name); d != "." {
			if err := mkdirAll(d); err != nil {
				return err
			}
		}
		if err := root.Symlink(e.target, e.name); err != nil {
			return err
		}
	}
	return syncAll(root, synced)
}

// writeFile writes the regular file e, counting the bytes it really holds
// against MaxUncompressed rather than trusting its header.
func writeFile(ctx context.Context, root *os.Root, e entry, buf []byte, total *int64, l Limits) error {
	perm := fs.FileMode(0o644)
	if e.f.Mode()&0o111 != 0 {
		perm = 0o755
	}
	rc, err := e.f.Open()
	if err != nil {
		return openError(e.f, err)
	}
	defer rc.Close()
	out, err := root.OpenFile(e.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := out.Chmod(perm); err != nil { // whatever the umask
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := rc.Read(buf)
		if n > 0 {
			if *total += int64(n); *total > l.MaxUncompressed {
				return invalid("package is larger than %d bytes uncompressed (at entry %q)", l.MaxUncompressed, e.f.Name)
			}
			if _, err := out.Write(buf[:n]); err != nil {
				return fmt.Errorf("write %s: %w", e.name, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return invalid("entry %q is corrupt: %v", e.f.Name, rerr)
		}
	}
	return out.Close()
}
