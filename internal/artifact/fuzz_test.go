package artifact

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hotswap/hotswap"
)

func FuzzPut(f *testing.F) {
	link := fs.ModeSymlink | 0o777
	f.Add(makeZip(f, zent{name: "host.json", body: "{}"}, zent{name: "bin/run", body: "#!/bin/sh", mode: 0o755}))
	f.Add(makeZip(f, zent{name: "d/"}, zent{name: "d/l", mode: link, body: "../host.json"}, zent{name: "host.json", body: "{}"}))
	f.Add(makeZip(f, zent{name: "x/y/s", mode: link, body: "../.."}, zent{name: "x/y/t", mode: link, body: "s/../.."}))
	f.Add(makeZip(f, zent{name: "l", mode: link, body: "d"}, zent{name: "l/x", body: "x"}))
	f.Add(makeZip(f, zent{name: `..\evil`, body: "x"}))
	f.Add(makeZip(f, zent{name: "a", body: "1"}, zent{name: "a/"}))
	f.Add(rawZip(f, "bomb", make([]byte, 4<<10), 10))
	f.Add([]byte("PK\x05\x06"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		s, err := Open(filepath.Join(parent, "store"), Limits{MaxUncompressed: 1 << 20, MaxFiles: 200})
		if err != nil {
			t.Fatal(err)
		}
		digest, err := s.Put(context.Background(), bytes.NewReader(data), nil)
		if err != nil {
			if k := hotswap.ErrorKind(err); k != hotswap.Invalid {
				t.Fatalf("Put error of kind %v, want %v: %v", k, hotswap.Invalid, err)
			}
			checkClean(t, s)
			return
		}
		checkClean(t, s, digest)
		if got := listDir(t, parent); len(got) != 1 || got[0] != "store" {
			t.Fatalf("store parent holds %q, want only store", got)
		}
		// Every link must resolve inside the package; os.Root refuses a
		// path that leaves it.
		root, err := os.OpenRoot(s.Dir(digest))
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		err = fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type() != fs.ModeSymlink {
				return nil
			}
			_, err = root.Stat(name)
			if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP) {
				return nil
			}
			return err
		})
		if err != nil {
			t.Fatalf("stored package: %v", err)
		}
	})
}
