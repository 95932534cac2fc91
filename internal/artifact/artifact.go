// Package artifact stores function app packages on local disk, addressed by
// the sha256 digest of the zip they came from.
//
// Put accepts a zip only after checking every entry: no path may leave the
// package, no link may point outside it, nothing is written through a link,
// and the sizes and entry count stay within Limits. A package is extracted
// into a temporary directory and renamed into place only when it passed
// every check, so a stored directory is always complete.
package artifact

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/hotswap/hotswap"
)

// Default limits, used for the zero fields of Limits.
const (
	DefaultMaxCompressed   = 256 << 20
	DefaultMaxUncompressed = 1 << 30
	DefaultMaxFiles        = 20000
)

// Limits bound what a package may hold. Zero (or negative) fields take the
// defaults.
type Limits struct {
	MaxCompressed   int64 // bytes of the zip itself; default 256 MiB
	MaxUncompressed int64 // total bytes after extraction; default 1 GiB
	MaxFiles        int   // entries (files, dirs, links); default 20000
}

func (l Limits) withDefaults() Limits {
	if l.MaxCompressed <= 0 {
		l.MaxCompressed = DefaultMaxCompressed
	}
	if l.MaxUncompressed <= 0 {
		l.MaxUncompressed = DefaultMaxUncompressed
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	return l
}

// Store is a directory of extracted packages, one subdirectory per digest,
// plus a tmp subdirectory for work in progress. It is safe for concurrent
// use. Removing a digest while a Put of the same content runs is the
// caller's business: Put may then return a digest that is gone.
type Store struct {
	dir    string // absolute
	tmp    string // dir/tmp
	sums   string // dir/sums: the manifest of each package, see Verify
	limits Limits
	// sealed: stored content is made read-only and verified against its
	// manifest before it is used again (see Open and OpenUnsealed).
	sealed bool
	// mirror, when set, keeps each zip Put stores where other nodes can
	// fetch it (see SetMirror).
	mirror func(ctx context.Context, digest string, zip io.Reader) error
}

// SetMirror makes every successful Put also hand the zip it read to mirror,
// before Put returns, so that a package is in the shared store (the
// PostgreSQL store of a cluster) before any node is told to run it. A
// mirror error fails the Put. Call it before the store is used.
func (s *Store) SetMirror(mirror func(ctx context.Context, digest string, zip io.Reader) error) {
	s.mirror = mirror
}

// Open opens the store in dir, creating it if needed, and removes what
// interrupted Puts and Removes left in dir/tmp.
//
// dir is made 0711: handlers running as another user can reach a package
// whose digest they are given but cannot list the others. dir/tmp and
// dir/sums are 0700. When the process runs as root, the store is sealed:
// stored content is made read-only (files 0444 or 0555, directories 0555),
// including content stored by an earlier version, so handlers running as
// another user can read and run it but not change it, and a package is
// verified against its manifest before it is used again (see Verify).
func Open(dir string, limits Limits) (*Store, error) {
	return open(dir, limits, os.Geteuid() == 0)
}

// OpenUnsealed is Open for a server whose handlers run as its own user
// even when that is root: they can write into their package directory
// (and into sums/), so stored content is neither made read-only nor
// verified before reuse, which would only refuse packages a handler wrote
// its state into.
func OpenUnsealed(dir string, limits Limits) (*Store, error) {
	return open(dir, limits, false)
}

func open(dir string, limits Limits, sealed bool) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	s := &Store{dir: abs, tmp: filepath.Join(abs, "tmp"), sums: filepath.Join(abs, "sums"), limits: limits.withDefaults(), sealed: sealed}
	if err := os.MkdirAll(s.dir, 0o711); err != nil {
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	if err := os.Chmod(s.dir, 0o711); err != nil { // whatever it was before
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	if err := os.RemoveAll(s.tmp); err != nil {
		return nil, fmt.Errorf("open artifact store: clean %s: %w", s.tmp, err)
	}
	if err := os.Mkdir(s.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	if err := s.openSums(); err != nil {
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	if s.sealed {
		digests, err := s.List()
		if err != nil {
			return nil, fmt.Errorf("open artifact store: %w", err)
		}
		for _, d := range digests {
			if dir := s.Dir(d); !isSealed(dir) {
				// Stored by a server whose handlers could write into it:
				// its manifest is taken anew from the content as it is,
				// or what a handler wrote there would refuse it forever.
				if err := s.record(d, dir); err != nil {
					return nil, fmt.Errorf("open artifact store: %w", err)
				}
				if err := seal(dir); err != nil {
					return nil, fmt.Errorf("open artifact store: make package %s read-only: %w", d, err)
				}
			}
		}
	}
	return s, nil
}

// openSums creates dir/sums (0700) and removes what interrupted records left
// there and the manifests of packages that are gone.
func (s *Store) openSums() error {
	if err := os.MkdirAll(s.sums, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(s.sums, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(s.sums)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !validDigest(e.Name()) || !isDir(filepath.Join(s.dir, e.Name())) {
			if err := os.RemoveAll(filepath.Join(s.sums, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Put stores the zip read from r and returns its digest, the hex sha256 of
// the zip bytes.
//
// It reads at most MaxCompressed bytes, validates and extracts the zip into a
// temporary directory, calls check on that directory (the caller's content
// validation, which may also chmod files), and only if all of that succeeded
// renames the directory to Dir(digest). On error nothing is left on disk.
// Validation errors are *hotswap.Error of kind Invalid; check's error is
// returned as is.
//
// A zip over MaxCompressed bytes is an error of kind TooLarge.
//
// If the digest is already stored, Put runs check on the stored directory
// (the caller's validation may depend on settings that changed) and returns
// the digest without extracting again. In a sealed store (see Open) it first
// verifies the stored content (see Verify); content that changed is never
// refused but replaced: the zip is extracted afresh and atomically swapped
// in for the changed directory. Concurrent Puts of the same content
// both succeed and leave one directory. A nil check accepts everything.
func (s *Store) Put(ctx context.Context, r io.Reader, check func(dir string) error) (digest string, err error) {
	if s.mirror == nil {
		return s.put(ctx, r, check, nil)
	}
	return s.put(ctx, r, check, func(digest string, zf *os.File) error {
		if _, err := zf.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("put package %s: %w", digest, err)
		}
		if err := s.mirror(ctx, digest, zf); err != nil {
			return fmt.Errorf("put package %s into the shared store: %w", digest, err)
		}
		return nil
	})
}

func (s *Store) put(ctx context.Context, r io.Reader, check func(dir string) error, stored func(digest string, zf *os.File) error) (digest string, err error) {
	if stored == nil {
		stored = func(string, *os.File) error { return nil }
	}
	if check == nil {
		check = func(string) error { return nil }
	}
	zf, err := os.CreateTemp(s.tmp, "put-*.zip")
	if err != nil {
		return "", fmt.Errorf("put package: %w", err)
	}
	defer func() {
		zf.Close()
		os.Remove(zf.Name())
	}()

	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(zf, h), io.LimitReader(ctxReader{ctx, r}, s.limits.MaxCompressed+1))
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("put package: read: %w", err)
	}
	if n > s.limits.MaxCompressed {
		return "", hotswap.Errorf(hotswap.TooLarge, "package is %s, larger than the limit of %d bytes", sizeOf(r, n), s.limits.MaxCompressed)
	}
	digest = hexSum(h)
	final := filepath.Join(s.dir, digest)
	replace := false
	if isDir(final) {
		// The stored content is used again: in a sealed store it must
		// still be what was stored, or it is replaced from this zip.
		err := s.Verify(digest)
		if err == nil {
			if err := check(final); err != nil {
				return "", err
			}
			return digest, stored(digest, zf)
		}
		if hotswap.ErrorKind(err) != hotswap.FailedPrecondition {
			return "", err
		}
		replace = true
	}

	tmpdir, err := os.MkdirTemp(s.tmp, "put-*")
	if err != nil {
		return "", fmt.Errorf("put package: %w", err)
	}
	defer func() {
		if tmpdir != "" {
			os.RemoveAll(tmpdir)
		}
	}()
	if err := extract(ctx, zf, n, tmpdir, s.limits); err != nil {
		return "", err
	}
	if err := check(tmpdir); err != nil {
		return "", err
	}
	// The manifest is recorded after check, which may chmod, and before
	// the rename, so every stored package has one.
	if err := s.record(digest, tmpdir); err != nil {
		return "", err
	}
	if s.sealed {
		if err := seal(tmpdir); err != nil {
			return "", fmt.Errorf("put package %s: make read-only: %w", digest, err)
		}
	}
	if replace {
		// The changed content goes to tmpdir in the same step, so the
		// digest never names a missing or partial directory; tmpdir is
		// then removed by the deferred RemoveAll.
		err := unix.Renameat2(unix.AT_FDCWD, tmpdir, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE)
		if err == nil {
			if err := syncDir(s.dir); err != nil {
				return "", fmt.Errorf("put package %s: %w", digest, err)
			}
			return digest, stored(digest, zf)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("put package %s: replace changed content: %w", digest, err)
		}
		// Removed meanwhile: store it as new.
	}
	if err := os.Rename(tmpdir, final); err != nil {
		if isDir(final) {
			// A concurrent Put of the same content won; its check passed
			// on the same bytes and ours did too.
			return digest, stored(digest, zf)
		}
		return "", fmt.Errorf("put package %s: %w", digest, err)
	}
	tmpdir = ""
	if err := syncDir(s.dir); err != nil {
		return "", fmt.Errorf("put package %s: %w", digest, err)
	}
	return digest, stored(digest, zf)
}

// Dir returns the absolute directory holding the content of digest, or ""
// if digest is not 64 lowercase hex digits. The directory need not exist.
func (s *Store) Dir(digest string) string {
	if !validDigest(digest) {
		return ""
	}
	return filepath.Join(s.dir, digest)
}

// Has reports whether the content of digest is stored.
func (s *Store) Has(digest string) bool {
	d := s.Dir(digest)
	return d != "" && isDir(d)
}

// Remove deletes the content of digest. It first renames the directory into
// tmp, so the digest disappears at once and a crash leaves only garbage that
// Open removes. Removing a digest that is not stored is a NotFound error.
func (s *Store) Remove(digest string) error {
	d := s.Dir(digest)
	if d == "" {
		return hotswap.Errorf(hotswap.Invalid, "invalid package digest %q", digest)
	}
	trash := filepath.Join(s.tmp, "rm-"+rand.Text())
	if err := os.Rename(d, trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return hotswap.Errorf(hotswap.NotFound, "package %s not found", digest)
		}
		return fmt.Errorf("remove package %s: %w", digest, err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("remove package %s: %w", digest, err)
	}
	if err := os.Remove(s.sumPath(digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove package %s: %w", digest, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove package %s: %w", digest, err)
	}
	return nil
}

// List returns the stored digests in lexical order.
func (s *Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list packages: %w", err)
	}
	var digests []string
	for _, e := range ents {
		if e.IsDir() && validDigest(e.Name()) {
			digests = append(digests, e.Name())
		}
	}
	return digests, nil
}

// sizeOf describes the size of the zip read from r, of which n bytes were
// read before the limit stopped reading: exact when r tells it.
func sizeOf(r io.Reader, n int64) string {
	switch r := r.(type) {
	case interface{ Size() int64 }:
		return fmt.Sprintf("%d bytes", r.Size())
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			return fmt.Sprintf("%d bytes", fi.Size())
		}
	}
	return fmt.Sprintf("more than %d bytes", n-1)
}

func validDigest(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

func isDir(name string) bool {
	fi, err := os.Lstat(name)
	return err == nil && fi.IsDir()
}

func syncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncAll fsyncs the named files and directories of root, so that a stored
// digest never names a directory with truncated files after a crash. Large
// packages are synced a few files at a time: file systems batch concurrent
// fsyncs into one journal commit.
func syncAll(root *os.Root, names []string) error {
	const workers = 16
	if len(names) < 4*workers {
		for _, name := range names {
			if err := syncFile(root, name); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, workers)
	)
	for _, name := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := syncFile(root, name); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

func syncFile(root *os.Root, name string) error {
	f, err := root.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return nil
}

// ctxReader stops reading once ctx is done, so a slow upload of a cancelled
// request does not hold a Put.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
