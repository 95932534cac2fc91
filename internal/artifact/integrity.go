package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/hotswap/hotswap"
)

// A package's digest is the sha256 of the zip it came from, and the zip is
// not kept, so the digest alone cannot tell whether the extracted content
// was changed afterwards. Put therefore records a manifest of the content
// (every path with its kind, the sha256 of each file and the target of each
// link) in sums/<digest>, out of reach of handlers, and Verify compares the
// content with it before a stored package is used again.

// manifest maps each slash-separated path of a package to "D" (directory),
// "F <sha256>" (regular file), "L <quoted target>" (symbolic link) or "O"
// (anything else).
type manifest map[string]string

// scan builds the manifest of the package in dir. It never follows a link.
func scan(dir string) (manifest, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	m := make(manifest)
	err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		switch t := d.Type(); {
		case t.IsDir():
			m[name] = "D"
		case t&fs.ModeSymlink != 0:
			target, err := root.Readlink(name)
			if err != nil {
				return err
			}
			m[name] = "L " + strconv.Quote(target)
		case t.IsRegular():
			sum, err := fileSum(root, name)
			if err != nil {
				return err
			}
			m[name] = "F " + sum
		default:
			m[name] = "O"
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func fileSum(root *os.Root, name string) (string, error) {
	f, err := root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// encode returns the manifest as lines `"path" value`, sorted by path.
func (m manifest) encode() []byte {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(m)) {
		b.WriteString(strconv.Quote(name))
		b.WriteByte(' ')
		b.WriteString(m[name])
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func decodeManifest(b []byte) (manifest, error) {
	m := make(manifest)
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		q, err := strconv.QuotedPrefix(line)
		if err != nil || len(line) <= len(q) || line[len(q)] != ' ' {
			return nil, fmt.Errorf("line %d is malformed", i+1)
		}
		name, _ := strconv.Unquote(q)
		m[name] = line[len(q)+1:]
	}
	return m, nil
}

// diff describes the first difference between the recorded manifest want
// and got, in path order, or returns "" when they are equal.
func diff(want, got manifest) string {
	names := slices.Sorted(maps.Keys(want))
	for name := range got {
		if _, ok := want[name]; !ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		w, inWant := want[name]
		g, inGot := got[name]
		switch {
		case !inGot:
			return fmt.Sprintf("%s was removed", name)
		case !inWant:
			return fmt.Sprintf("%s was added", name)
		case w != g:
			return fmt.Sprintf("%s was changed", name)
		}
	}
	return ""
}

func (s *Store) sumPath(digest string) string { return filepath.Join(s.sums, digest) }

// record writes the manifest of the content in dir as the one of digest.
func (s *Store) record(digest, dir string) error {
	m, err := scan(dir)
	if err != nil {
		return fmt.Errorf("record package %s: %w", digest, err)
	}
	f, err := os.CreateTemp(s.sums, "tmp-*")
	if err != nil {
		return fmt.Errorf("record package %s: %w", digest, err)
	}
	_, err = f.Write(m.encode())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), s.sumPath(digest))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("record package %s: %w", digest, err)
	}
	return syncDir(s.sums)
}

// Verify checks that the stored content of digest is what Put stored: the
// same paths, file contents and link targets. A difference is a
// FailedPrecondition error that names the first path that differs. A
// package stored by a version that kept no manifest gets one now, from its
// content as it is.
//
// Only a sealed store (see Open) verifies. In an unsealed one handlers run
// as the owner of the content and may write into their package directory,
// and into sums/ too, so a check would protect nothing and only refuse
// packages a handler wrote its state into: Verify then only checks that
// the package is stored.
func (s *Store) Verify(digest string) error {
	dir := s.Dir(digest)
	if dir == "" {
		return hotswap.Errorf(hotswap.Invalid, "invalid package digest %q", digest)
	}
	if !isDir(dir) {
		return hotswap.Errorf(hotswap.NotFound, "package %s is not stored", digest)
	}
	if !s.sealed {
		return nil
	}
	b, err := os.ReadFile(s.sumPath(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return s.record(digest, dir)
	}
	if err != nil {
		return fmt.Errorf("verify package %s: %w", digest, err)
	}
	want, err := decodeManifest(b)
	if err != nil {
		return fmt.Errorf("verify package %s: manifest %s: %w", digest, s.sumPath(digest), err)
	}
	got, err := scan(dir)
	if err != nil {
		return fmt.Errorf("verify package %s: %w", digest, err)
	}
	if d := diff(want, got); d != "" {
		return hotswap.Errorf(hotswap.FailedPrecondition, "the stored content of package %s changed after it was stored (%s); deploy the package again", digest, d)
	}
	return nil
}

// A store is sealed (stored content read-only, verified before reuse) only
// when the server runs as root, where handlers run as another user.
// Otherwise handlers run as the owner of the files, who could make them
// writable again, and read-only directories would only get in the way of
// removing them (and of tests cleaning up their temporary directories).

// seal makes the content in dir read-only for everyone but root: files 0444,
// or 0555 when executable by anyone, directories 0555. Links are left
// alone (their mode is not used). dir itself is sealed last, so isSealed
// holds only once everything is.
func seal(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var mode fs.FileMode
		switch {
		case d.IsDir():
			mode = 0o555
		case info.Mode().IsRegular():
			mode = 0o444
			if info.Mode()&0o111 != 0 {
				mode = 0o555
			}
		default:
			return nil
		}
		if info.Mode().Perm() == mode {
			return nil
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		return err
	}
	return os.Chmod(dir, 0o555)
}

// isSealed reports whether the top directory of a stored package is sealed,
// which seal does last.
func isSealed(dir string) bool {
	fi, err := os.Lstat(dir)
	return err == nil && fi.Mode().Perm() == 0o555
}
