package artifact

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hotswap/hotswap"
)

// zent is one entry of a test zip. A zero mode leaves the header as a
// non-Unix tool writes it.
type zent struct {
	name   string
	mode   fs.FileMode
	body   string
	method uint16
}

func makeZip(tb testing.TB, ents ...zent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		h := &zip.FileHeader{Name: e.name, Method: e.method}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			tb.Fatalf("create %q: %v", e.name, err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// rawZip writes one deflated entry whose header claims size bytes, whatever
// data really holds.
func rawZip(tb testing.TB, name string, data []byte, size uint64) []byte {
	tb.Helper()
	var comp bytes.Buffer
	fw, err := flate.NewWriter(&comp, flate.BestCompression)
	if err != nil {
		tb.Fatal(err)
	}
	fw.Write(data)
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name:               name,
		Method:             zip.Deflate,
		CRC32:              crc32.ChecksumIEEE(data),
		CompressedSize64:   uint64(comp.Len()),
		UncompressedSize64: size,
	})
	if err != nil {
		tb.Fatal(err)
	}
	w.Write(comp.Bytes())
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func openStore(tb testing.TB, l Limits) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "store"), l)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// listDir returns the names in dir.
func listDir(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// checkClean fails unless the store holds only an empty tmp and want.
func checkClean(tb testing.TB, s *Store, want ...string) {
	tb.Helper()
	if diff := cmp.Diff(listDir(tb, s.dir), append(slices.Clone(want), "sums", "tmp")); diff != "" {
		tb.Errorf("store dir (-got +want):\n%s", diff)
	}
	// Every stored package has its manifest, and only those.
	if diff := cmp.Diff(listDir(tb, s.sums), want, cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("sums dir (-got +want):\n%s", diff)
	}
	if got := listDir(tb, s.tmp); len(got) != 0 {
		tb.Errorf("tmp holds %q, want nothing", got)
	}
}

func put(tb testing.TB, s *Store, data []byte, check func(string) error) (string, error) {
	tb.Helper()
	return s.Put(context.Background(), bytes.NewReader(data), check)
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func TestPutInvalid(t *testing.T) {
	valid := makeZip(t, zent{name: "hello.txt", body: "hello world", method: zip.Store})
	crcBad := bytes.Replace(valid, []byte("hello world"), []byte("hello w0rld"), 1)
	many := []zent{{name: "a"}, {name: "b"}, {name: "c"}, {name: "d"}}
	tests := []struct {
		name   string
		data   []byte
		limits Limits
		want   string
	}{
		{"not a zip", []byte("hello, not a zip at all"), Limits{}, "not a valid zip"},
		{"empty input", nil, Limits{}, "not a valid zip"},
		{"truncated", valid[:len(valid)-10], Limits{}, "not a valid zip"},
		{"crc mismatch", crcBad, Limits{}, `entry "hello.txt" is corrupt`},
		{"dotdot", makeZip(t, zent{name: "../evil", body: "x"}), Limits{}, `entry "../evil": path element ".." is not allowed`},
		{"inner dotdot", makeZip(t, zent{name: "a/../../evil", body: "x"}), Limits{}, `entry "a/../../evil": path element ".."`},
		{"backslash dotdot", makeZip(t, zent{name: `..\evil`, body: "x"}), Limits{}, `path element ".." is not allowed`},
		{"dot", makeZip(t, zent{name: "./x", body: "x"}), Limits{}, `path element "." is not allowed`},
		{"absolute", makeZip(t, zent{name: "/etc/passwd", body: "x"}), Limits{}, `entry "/etc/passwd": absolute paths`},
		{"drive", makeZip(t, zent{name: `C:\x`, body: "x"}), Limits{}, `absolute paths`},
		{"drive relative", makeZip(t, zent{name: `c:x`, body: "x"}), Limits{}, `absolute paths`},
		{"unc", makeZip(t, zent{name: `\\server\share\x`, body: "x"}), Limits{}, `absolute paths`},
		{"backslash root", makeZip(t, zent{name: `\x`, body: "x"}), Limits{}, `absolute paths`},
		{"nul", makeZip(t, zent{name: "a\x00b", body: "x"}), Limits{}, "NUL byte"},
		{"not utf-8", makeZip(t, zent{name: "bi\xf6/run", body: "x"}), Limits{}, `entry "bi\xf6/run": name is not valid UTF-8`},
		{"link not utf-8", makeZip(t, zent{name: "l", mode: fs.ModeSymlink | 0o777, body: "r\xe9sum\xe9"}), Limits{}, `link "l": target is not valid UTF-8`},
		{"empty name", makeZip(t, zent{name: "", body: "x"}), Limits{}, "empty name"},
		{"empty element", makeZip(t, zent{name: "a//b", body: "x"}), Limits{}, `entry "a//b": empty path element`},
		{"long element", makeZip(t, zent{name: strings.Repeat("x", 256), body: "x"}), Limits{}, "longer than 255 bytes"},
		{"duplicate", makeZip(t, zent{name: "a", body: "1"}, zent{name: "a", body: "2"}), Limits{}, `entry "a" appears twice`},
		{"duplicate via backslash", makeZip(t, zent{name: "d/a", body: "1"}, zent{name: `d\a`, body: "2"}), Limits{}, `appears twice`},
		{"file and dir", makeZip(t, zent{name: "a", body: "1"}, zent{name: "a/"}), Limits{}, `entry "a/" appears twice`},
		{"too many entries", makeZip(t, many...), Limits{MaxFiles: 3}, "4 entries, more than the limit of 3"},
		{"too large", makeZip(t, zent{name: "big", body: strings.Repeat("x", 2000)}), Limits{MaxUncompressed: 1000}, `larger than 1000 bytes uncompressed (at entry "big")`},
		{"too large in sum", makeZip(t, zent{name: "a", body: strings.Repeat("x", 600)}, zent{name: "b", body: strings.Repeat("x", 600)}), Limits{MaxUncompressed: 1000}, `(at entry "b")`},
		{"fifo", makeZip(t, zent{name: "p", mode: fs.ModeNamedPipe | 0o644}), Limits{}, `entry "p" is a special file`},
		{"device", makeZip(t, zent{name: "d", mode: fs.ModeDevice | 0o644}), Limits{}, `entry "d" is a special file`},
		{"link absolute", makeZip(t, zent{name: "l", mode: fs.ModeSymlink | 0o777, body: "/etc/passwd"}), Limits{}, `link "l" points outside the package`},
		{"link up", makeZip(t, zent{name: "a/l", mode: fs.ModeSymlink | 0o777, body: "../../x"}), Limits{}, `link "a/l" points outside the package`},
		{"link drive", makeZip(t, zent{name: "l", mode: fs.ModeSymlink | 0o777, body: "C:/x"}), Limits{}, `link "l" points outside the package`},
		{"link backslash", makeZip(t, zent{name: "l", mode: fs.ModeSymlink | 0o777, body: `..\x`}), Limits{}, `link "l": target contains a backslash`},
		{"link empty", makeZip(t, zent{name: "l", mode: fs.ModeSymlink | 0o777}), Limits{}, `link "l" has an empty target`},
		{
			// s resolves to the root, so s/../.. is above it although it
			// looks lexically inside.
			"link through link",
			makeZip(t,
				zent{name: "x/y/s", mode: fs.ModeSymlink | 0o777, body: "../.."},
				zent{name: "x/y/t", mode: fs.ModeSymlink | 0o777, body: "s/../.."}),
			Limits{}, `link "x/y/t" points outside the package`,
		},
		{
			"link loop",
			makeZip(t,
				zent{name: "a", mode: fs.ModeSymlink | 0o777, body: "b"},
				zent{name: "b", mode: fs.ModeSymlink | 0o777, body: "a"}),
			Limits{}, "too many levels of links",
		},
		{
			"file through link",
			makeZip(t,
				zent{name: "d/"},
				zent{name: "l", mode: fs.ModeSymlink | 0o777, body: "d"},
				zent{name: "l/x", body: "x"}),
			Limits{}, `entry "l/x" is inside link "l"`,
		},
		{
			"file through later link",
			makeZip(t,
				zent{name: "l/x", body: "x"},
				zent{name: "l", mode: fs.ModeSymlink | 0o777, body: "."}),
			Limits{}, `entry "l/x" is inside link "l"`,
		},
		{"file in file", makeZip(t, zent{name: "f", body: "x"}, zent{name: "f/x", body: "x"}), Limits{}, `entry "f/x" is inside "f", which is a file`},
	}
	// An unknown compression method, set after writing.
	um := makeZip(t, zent{name: "m", body: "x", method: zip.Store})
	if i := bytes.LastIndex(um, []byte("PK\x01\x02")); i >= 0 {
		um[i+10] = 99 // central directory: compression method
		tests = append(tests, struct {
			name   string
			data   []byte
			limits Limits
			want   string
		}{"unknown method", um, Limits{}, `entry "m" uses an unsupported compression method (99)`})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, tc.limits)
			called := false
			got, err := put(t, s, tc.data, func(string) error { called = true; return nil })
			if err == nil {
				t.Fatalf("Put = %s, nil; want error containing %q", got, tc.want)
			}
			if k := hotswap.ErrorKind(err); k != hotswap.Invalid {
				t.Errorf("error kind = %v, want %v (error: %v)", k, hotswap.Invalid, err)
			}
			if msg := hotswap.ErrorMessage(err); !strings.Contains(msg, tc.want) {
				t.Errorf("error message = %q, want it to contain %q", msg, tc.want)
			}
			if called {
				t.Error("check was called for an invalid package")
			}
			checkClean(t, s)
		})
	}
}

func TestPutZipBomb(t *testing.T) {
	const limit = 1 << 20
	zeros := make([]byte, 16<<20)
	tests := []struct {
		name string
		data []byte
	}{
		// The header tells the truth: 16 MiB.
		{"honest", rawZip(t, "bomb", zeros, uint64(len(zeros)))},
		// The header claims 1000 bytes; only reading shows the truth.
		{"lying header", rawZip(t, "bomb", zeros, 1000)},
		// The header claims just under the limit.
		{"lying near limit", rawZip(t, "bomb", zeros, limit-1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.data) > 1<<20 {
				t.Fatalf("bomb is %d bytes compressed, want a small one", len(tc.data))
			}
			s := openStore(t, Limits{MaxUncompressed: limit})
			_, err := put(t, s, tc.data, nil)
			if k := hotswap.ErrorKind(err); err == nil || k != hotswap.Invalid {
				t.Fatalf("Put error = %v (kind %v), want an Invalid error", err, k)
			}
			if msg := hotswap.ErrorMessage(err); !strings.Contains(msg, `"bomb"`) {
				t.Errorf("error message = %q, want it to name the entry", msg)
			}
			checkClean(t, s)
		})
	}
}

func TestPut(t *testing.T) {
	data := makeZip(t,
		zent{name: "host.json", body: "{}", mode: 0o600},
		zent{name: "bin/handler", body: "#!/bin/sh\n", mode: 0o700},
		zent{name: `win\style.txt`, body: "w"}, // FAT mode 0666
		zent{name: "empty/", mode: fs.ModeDir | 0o700},
		zent{name: "current", mode: fs.ModeSymlink | 0o777, body: "bin"},
	)
	s := openStore(t, Limits{})
	var checked []string
	digest, err := put(t, s, data, func(dir string) error {
		checked = append(checked, dir)
		b, err := os.ReadFile(filepath.Join(dir, "host.json"))
		if err != nil || string(b) != "{}" {
			t.Errorf("check: host.json = %q, %v; want {}", b, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := digest, sum(data); got != want {
		t.Errorf("digest = %s, want %s", got, want)
	}
	got := tree(t, s.Dir(digest))
	want := map[string]string{
		".":             "dir 755",
		"host.json":     "file 644 {}",
		"bin":           "dir 755",
		"bin/handler":   "file 755 #!/bin/sh\n",
		"win":           "dir 755",
		"win/style.txt": "file 644 w",
		"empty":         "dir 755",
		"current":       "link bin",
	}
	if diff := cmp.Diff(got, storedModes(want)); diff != "" {
		t.Errorf("stored tree (-got +want):\n%s", diff)
	}
	if len(checked) != 1 || strings.HasPrefix(checked[0], s.Dir(digest)) {
		t.Errorf("check ran on %q, want once on a temporary directory", checked)
	}

	// The same content again: the stored directory is checked, not rebuilt.
	checked = nil
	digest2, err := put(t, s, data, func(dir string) error { checked = append(checked, dir); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if digest2 != digest {
		t.Errorf("second digest = %s, want %s", digest2, digest)
	}
	if diff := cmp.Diff(checked, []string{s.Dir(digest)}); diff != "" {
		t.Errorf("second check dirs (-got +want):\n%s", diff)
	}
	checkClean(t, s, digest)

	// A failing check of stored content fails the Put but keeps the content.
	errCheck := hotswap.Errorf(hotswap.Invalid, "host.json: missing version")
	if _, err := put(t, s, data, func(string) error { return errCheck }); !errors.Is(err, errCheck) {
		t.Errorf("Put with failing check = %v, want %v", err, errCheck)
	}
	checkClean(t, s, digest)
}

// tree describes every path under dir as "kind perm [content]".
func tree(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, name)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := strings.TrimPrefix(info.Mode().Perm().String(), "-")
		perm = strings.NewReplacer("rwx", "7", "rw-", "6", "r-x", "5", "r--", "4", "---", "0").Replace(perm)
		switch {
		case d.IsDir():
			m[rel] = "dir " + perm
		case d.Type() == fs.ModeSymlink:
			t, err := os.Readlink(name)
			if err != nil {
				return err
			}
			m[rel] = "link " + t
		default:
			b, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			m[rel] = "file " + perm + " " + string(b)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestPutCheckFails(t *testing.T) {
	s := openStore(t, Limits{})
	data := makeZip(t, zent{name: "a/b/c.txt", body: "c"})
	errCheck := errors.New("no host.json")
	_, err := put(t, s, data, func(dir string) error {
		if _, err := os.Stat(filepath.Join(dir, "a/b/c.txt")); err != nil {
			t.Errorf("check: %v", err)
		}
		return errCheck
	})
	if !errors.Is(err, errCheck) {
		t.Fatalf("Put error = %v, want %v", err, errCheck)
	}
	checkClean(t, s)
	if s.Has(sum(data)) {
		t.Error("Has = true after a failed check")
	}
}

func TestPutConcurrent(t *testing.T) {
	s := openStore(t, Limits{})
	same := makeZip(t, zent{name: "same.txt", body: strings.Repeat("same ", 10000)})
	var want []string
	var zips [][]byte
	for i := range 8 {
		zips = append(zips, same)
		other := makeZip(t, zent{name: "other.txt", body: strings.Repeat("x", i+1)})
		zips = append(zips, other)
		want = append(want, sum(other))
	}
	want = append(want, sum(same))
	slices.Sort(want)

	var wg sync.WaitGroup
	errs := make([]error, len(zips))
	digests := make([]string, len(zips))
	for i, z := range zips {
		wg.Go(func() {
			digests[i], errs[i] = put(t, s, z, nil)
		})
	}
	wg.Wait()
	for i := range zips {
		if errs[i] != nil {
			t.Errorf("Put %d: %v", i, errs[i])
		} else if got, want := digests[i], sum(zips[i]); got != want {
			t.Errorf("Put %d = %s, want %s", i, got, want)
		}
	}
	got, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("List (-got +want):\n%s", diff)
	}
	checkClean(t, s, want...)
}

func TestPutCancelled(t *testing.T) {
	s := openStore(t, Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Put(ctx, bytes.NewReader(makeZip(t, zent{name: "a", body: "a"})), nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put error = %v, want %v", err, context.Canceled)
	}
	checkClean(t, s)
}

func TestStoreDigests(t *testing.T) {
	s := openStore(t, Limits{})
	data := makeZip(t, zent{name: "a", body: "a"})
	digest, err := put(t, s, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Dir(digest), filepath.Join(s.dir, digest); got != want {
		t.Errorf("Dir = %q, want %q", got, want)
	}
	if !filepath.IsAbs(s.Dir(digest)) {
		t.Errorf("Dir = %q, want an absolute path", s.Dir(digest))
	}
	for _, bad := range []string{"", "tmp", "..", strings.ToUpper(digest), digest[:63], digest + "0", "../" + digest[3:], strings.Repeat("g", 64)} {
		if got := s.Dir(bad); got != "" {
			t.Errorf("Dir(%q) = %q, want \"\"", bad, got)
		}
		if s.Has(bad) {
			t.Errorf("Has(%q) = true", bad)
		}
	}
	if !s.Has(digest) {
		t.Error("Has = false after Put")
	}
	if err := s.Remove(digest); err != nil {
		t.Fatal(err)
	}
	if s.Has(digest) {
		t.Error("Has = true after Remove")
	}
	if err := s.Remove(digest); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("second Remove = %v, want a NotFound error", err)
	}
	if err := s.Remove("tmp"); hotswap.ErrorKind(err) != hotswap.Invalid {
		t.Errorf("Remove(tmp) = %v, want an Invalid error", err)
	}
	got, err := s.List()
	if err != nil || len(got) != 0 {
		t.Errorf("List = %q, %v; want nothing", got, err)
	}
	checkClean(t, s)
}

func TestOpenCleansLeftovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := Open(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	digest, err := put(t, s, makeZip(t, zent{name: "a", body: "a"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	// What a crash in the middle of Put or Remove leaves behind.
	os.WriteFile(filepath.Join(s.tmp, "put-123.zip"), []byte("partial"), 0o600)
	os.MkdirAll(filepath.Join(s.tmp, "put-456", "a", "b"), 0o700)
	os.Chmod(filepath.Join(s.tmp, "put-456", "a"), 0o500) // RemoveAll must still cope
	os.WriteFile(filepath.Join(s.tmp, "put-456", "x"), []byte("x"), 0o600)

	s, err = Open(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, s, digest)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o711 {
		t.Errorf("store dir mode = %v, %v; want 0711", fi.Mode(), err)
	}
}

func TestZipDir(t *testing.T) {
	src := t.TempDir()
	if err := os.Chmod(src, 0o755); err != nil { // the root is stored as 0755
		t.Fatal(err)
	}
	mk := func(name string, mode fs.FileMode, body string) {
		t.Helper()
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("host.json", 0o644, `{"version": "2.0"}`)
	mk("handler", 0o755, "#!/bin/sh\necho hi\n")
	mk("HttpTrigger/function.json", 0o644, "{}")
	mk("node_modules/pkg/bin/cli.js", 0o755, "cli")
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "node_modules/.bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../pkg/bin/cli.js", filepath.Join(src, "node_modules/.bin/cli")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("HttpTrigger", filepath.Join(src, "alias")); err != nil {
		t.Fatal(err)
	}

	var z1, z2 bytes.Buffer
	if err := ZipDir(src, &z1); err != nil {
		t.Fatal(err)
	}
	if err := ZipDir(src, &z2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(z1.Bytes(), z2.Bytes()) {
		t.Error("ZipDir twice gave different bytes")
	}

	s := openStore(t, Limits{})
	digest, err := put(t, s, z1.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tree(t, s.Dir(digest)), storedModes(tree(t, src))); diff != "" {
		t.Errorf("stored tree (-got +want):\n%s", diff)
	}

	// Times do not change the digest.
	os.Chtimes(filepath.Join(src, "host.json"), zipTime.AddDate(3, 0, 0), zipTime.AddDate(3, 0, 0))
	var z3 bytes.Buffer
	if err := ZipDir(src, &z3); err != nil {
		t.Fatal(err)
	}
	if got, want := sum(z3.Bytes()), digest; got != want {
		t.Errorf("digest after touching a file = %s, want %s", got, want)
	}
}

// TestPutTooLarge: a zip over the size limit is TooLarge (413), like Spool's
// refusal, and the message names the limit and the size.
func TestPutTooLarge(t *testing.T) {
	s := openStore(t, Limits{MaxCompressed: 100})
	data := makeZip(t, zent{name: "big", body: strings.Repeat("x", 300)})
	for _, tc := range []struct {
		name string
		r    io.Reader
		want string
	}{
		{"size known", bytes.NewReader(data), fmt.Sprintf("package is %d bytes, larger than the limit of 100 bytes", len(data))},
		{"size unknown", io.MultiReader(bytes.NewReader(data)), "package is more than 100 bytes, larger than the limit of 100 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Put(context.Background(), tc.r, nil)
			if k := hotswap.ErrorKind(err); k != hotswap.TooLarge {
				t.Fatalf("Put = %q, %v (kind %v); want a %v error", got, err, k, hotswap.TooLarge)
			}
			if msg := hotswap.ErrorMessage(err); msg != tc.want {
				t.Errorf("message = %q, want %q", msg, tc.want)
			}
			checkClean(t, s)
		})
	}
}
