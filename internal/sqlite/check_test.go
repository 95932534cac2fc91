package sqlite

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotswap/hotswap"
)

// fillAndClose writes enough rows for the file to span many pages, then
// closes the store (which checkpoints the WAL into the file).
func fillAndClose(t testing.TB, path string) {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	mustCreateApp(t, db, "shop")
	for i := range 300 {
		err := db.AddActivity(context.Background(), hotswap.Activity{App: "shop", Actor: "t", Action: "deploy", Detail: strings.Repeat("x", 200) + string(rune('a'+i%26))})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// garble overwrites count pages of the file from page first (0-based) with
// random bytes.
func garble(t testing.TB, path string, first, count int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	if int64((first+count)*page) > fi.Size() {
		t.Fatalf("%s has %d bytes, fewer than %d pages", path, fi.Size(), first+count)
	}
	junk := make([]byte, count*page)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	if _, err := f.WriteAt(junk, int64(first*page)); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesCorruptDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"pages in the middle", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			pages := int(fi.Size() / 4096)
			garble(t, path, pages/2, 3)
		}},
		{"not a database", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("this is not a database\n", 500)), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hotswap.db")
			fillAndClose(t, path)
			tc.damage(t, path)
			db, err := Open(context.Background(), path)
			if err == nil {
				db.Close()
				t.Fatal("Open of a corrupt database succeeded")
			}
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Open = %v (%T), want a *CorruptError", err, err)
			}
			msg := err.Error()
			for _, want := range []string{path, "is corrupt", "restore the file from a backup", "-wal and -shm"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
		})
	}
}

func TestOpenAcceptsHealthyDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hotswap.db")
	fillAndClose(t, path)
	db := openAt(t, path)
	if db.Created() {
		t.Error("Created() = true for an existing database")
	}
	ok, err := db.HasApps(context.Background())
	if err != nil || !ok {
		t.Errorf("HasApps() = %v, %v, want true", ok, err)
	}
}

func TestCreated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "hotswap.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !db.Created() {
		t.Error("Created() = false for a new file")
	}
	if ok, err := db.HasApps(context.Background()); err != nil || ok {
		t.Errorf("HasApps() = %v, %v on a new database, want false", ok, err)
	}
	db.Close()

	db = openAt(t, path)
	if db.Created() {
		t.Error("Created() = true on reopening")
	}
	db.Close()

	// A truncated file is a new database to SQLite.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path)
	if !db.Created() {
		t.Error("Created() = false for a file truncated to nothing")
	}
}
