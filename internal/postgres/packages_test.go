package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// countRows returns the number of rows query counts.
func countRows(t testing.TB, db *DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// chunkWriter records the largest single write.
type chunkWriter struct {
	bytes.Buffer
	largest int
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.largest = max(w.largest, len(p))
	return w.Buffer.Write(p)
}

// failReader fails the test if it is read.
type failReader struct{ t testing.TB }

func (r failReader) Read([]byte) (int, error) {
	r.t.Errorf("the content of a package already stored was read")
	return 0, io.EOF
}

func TestPackages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	content := randomBytes(t, 5<<20+123)
	digest := digestOf(content)

	if ok, err := db.HasPackage(ctx, digest); err != nil || ok {
		t.Fatalf("HasPackage before Put = %v, %v; want false", ok, err)
	}
	if err := db.GetPackage(ctx, digest, io.Discard); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Fatalf("GetPackage before Put = %v, want NotFound", err)
	}
	if err := db.PutPackage(ctx, digest, bytes.NewReader(content)); err != nil {
		t.Fatalf("PutPackage: %v", err)
	}
	if ok, err := db.HasPackage(ctx, digest); err != nil || !ok {
		t.Fatalf("HasPackage after Put = %v, %v; want true", ok, err)
	}
	if got := countRows(t, db, "SELECT count(*) FROM package_chunks WHERE digest = $1", digest); got != 6 {
		t.Errorf("%d chunks, want 6 (5 MiB and a bit in 1 MiB chunks)", got)
	}
	var w chunkWriter
	if err := db.GetPackage(ctx, digest, &w); err != nil {
		t.Fatalf("GetPackage: %v", err)
	}
	if !bytes.Equal(w.Bytes(), content) {
		t.Fatalf("GetPackage wrote %d bytes (sha256 %s), want the %d bytes put", w.Len(), digestOf(w.Bytes()), len(content))
	}
	if w.largest > chunkSize {
		t.Errorf("GetPackage wrote %d bytes at once, want at most a chunk (%d)", w.largest, chunkSize)
	}
	// Put again: a no-op that does not read the content.
	if err := db.PutPackage(ctx, digest, failReader{t}); err != nil {
		t.Fatalf("second PutPackage: %v", err)
	}

	// An empty package is a package.
	if err := db.PutPackage(ctx, digestOf(nil), bytes.NewReader(nil)); err != nil {
		t.Fatalf("PutPackage(empty): %v", err)
	}
	w.Reset()
	if err := db.GetPackage(ctx, digestOf(nil), &w); err != nil || w.Len() != 0 {
		t.Fatalf("GetPackage(empty) = %d bytes, %v; want none", w.Len(), err)
	}

	// Stored content that went bad is an error after the last byte.
	sqlExec(t, db, "UPDATE package_chunks SET data = set_byte(data, 0, get_byte(data, 0) # 1) WHERE digest = $1 AND seq = 3", digest)
	if err := db.GetPackage(ctx, digest, io.Discard); err == nil {
		t.Errorf("GetPackage of corrupted content succeeded")
	}
}

func TestPutPackageRefusesContentOfAnotherDigest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	content := randomBytes(t, 3<<20)
	wrong := digestOf([]byte("something else"))
	err := db.PutPackage(ctx, wrong, bytes.NewReader(content))
	if hotswap.ErrorKind(err) != hotswap.Invalid {
		t.Fatalf("PutPackage with a wrong digest = %v, want Invalid", err)
	}
	if got := countRows(t, db, "SELECT count(*) FROM packages") + countRows(t, db, "SELECT count(*) FROM package_chunks"); got != 0 {
		t.Errorf("%d rows of packages and chunks left, want none", got)
	}
	if ok, err := db.HasPackage(ctx, wrong); err != nil || ok {
		t.Errorf("HasPackage = %v, %v; want false", ok, err)
	}
	// The right content under that digest is taken afterwards.
	if err := db.PutPackage(ctx, wrong, bytes.NewReader([]byte("something else"))); err != nil {
		t.Errorf("PutPackage after a refused one: %v", err)
	}

	for _, d := range []string{"", "abc", digestOf(content)[:63] + "G", "ABCDEF" + digestOf(content)[6:]} {
		if err := db.PutPackage(ctx, d, bytes.NewReader(content)); hotswap.ErrorKind(err) != hotswap.Invalid {
			t.Errorf("PutPackage(%q) = %v, want Invalid", d, err)
		}
	}
	// A reader that fails leaves nothing either.
	readErr := errors.New("network down")
	err = db.PutPackage(ctx, digestOf(content), io.MultiReader(bytes.NewReader(content[:2<<20]), errReader{readErr}))
	if !errors.Is(err, readErr) {
		t.Errorf("PutPackage with a failing reader = %v, want %v", err, readErr)
	}
	if ok, err := db.HasPackage(ctx, digestOf(content)); err != nil || ok {
		t.Errorf("HasPackage after a failed read = %v, %v; want false", ok, err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// gatedReader reads r, but at its second read closes reached and waits
// until gate is closed.
type gatedReader struct {
	r       io.Reader
	reads   int
	reached chan<- struct{}
	gate    <-chan struct{}
}

func (g *gatedReader) Read(p []byte) (int, error) {
	if g.reads++; g.reads == 2 {
		close(g.reached)
		<-g.gate
	}
	return g.r.Read(p)
}

func TestPutPackageConcurrently(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := openClusterDB(t)
	content := randomBytes(t, 3<<20)
	digest := digestOf(content)

	// The first put stops after its first chunk until the second waits for
	// it in the database, so the two overlap.
	reached, gate := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	var open sync.Once
	defer open.Do(func() { close(gate) }) // before wg.Wait
	first := &gatedReader{r: bytes.NewReader(content), reached: reached, gate: gate}
	errs := make([]error, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs[0] = db.PutPackage(ctx, digest, first)
	}()
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the first put did not read its second chunk within 30s")
	}
	deadline := time.Now().Add(30 * time.Second)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs[1] = db.PutPackage(ctx, digest, bytes.NewReader(content))
	}()
	for countRows(t, db, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the second put did not wait for the first within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	open.Do(func() { close(gate) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("put %d: %v", i, err)
		}
	}
	if got := countRows(t, db, "SELECT count(*) FROM packages"); got != 1 {
		t.Errorf("%d package rows, want 1", got)
	}
	var w bytes.Buffer
	if err := db.GetPackage(ctx, digest, &w); err != nil || !bytes.Equal(w.Bytes(), content) {
		t.Errorf("GetPackage = %d bytes, %v; want the content", w.Len(), err)
	}
}

func TestDeletePackage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openClusterDB(t)
	keep, gone := randomBytes(t, 100), randomBytes(t, 2<<20+1)
	for _, b := range [][]byte{keep, gone} {
		if err := db.PutPackage(ctx, digestOf(b), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeletePackage(ctx, digestOf(gone)); err != nil {
		t.Fatalf("DeletePackage: %v", err)
	}
	if ok, err := db.HasPackage(ctx, digestOf(gone)); err != nil || ok {
		t.Errorf("HasPackage after Delete = %v, %v; want false", ok, err)
	}
	if err := db.GetPackage(ctx, digestOf(gone), io.Discard); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("GetPackage after Delete = %v, want NotFound", err)
	}
	if got := countRows(t, db, "SELECT count(*) FROM package_chunks WHERE digest = $1", digestOf(gone)); got != 0 {
		t.Errorf("%d chunks of the deleted package left, want 0", got)
	}
	var w chunkWriter
	if err := db.GetPackage(ctx, digestOf(keep), &w); err != nil || !bytes.Equal(w.Bytes(), keep) {
		t.Errorf("GetPackage of the other package after Delete = %d bytes, %v; want it whole", w.Len(), err)
	}
	// Deleting it again (another node pruned first) is no error; a bad
	// digest is Invalid.
	if err := db.DeletePackage(ctx, digestOf(gone)); err != nil {
		t.Errorf("second DeletePackage = %v, want nil", err)
	}
	if err := db.DeletePackage(ctx, "../x"); hotswap.ErrorKind(err) != hotswap.Invalid {
		t.Errorf("DeletePackage(bad digest) = %v, want Invalid", err)
	}
	// It can be put again.
	if err := db.PutPackage(ctx, digestOf(gone), bytes.NewReader(gone)); err != nil {
		t.Errorf("PutPackage after Delete: %v", err)
	}
	if ok, err := db.HasPackage(ctx, digestOf(gone)); err != nil || !ok {
		t.Errorf("HasPackage after put again = %v, %v; want true", ok, err)
	}
}
