package artifact

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/hotswap/hotswap"
)

func TestSpool(t *testing.T) {
	t.Parallel()
	s := openStore(t, Limits{MaxCompressed: 1000})
	if got := s.MaxPackageBytes(); got != 1000 {
		t.Errorf("MaxPackageBytes() = %d, want 1000", got)
	}
	ctx := context.Background()

	body := bytes.Repeat([]byte("z"), 1000)
	f, err := s.Spool(ctx, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("Spool of exactly the limit = %v", err)
	}
	if filepath.Dir(f.Name()) != s.tmp {
		t.Errorf("spooled to %s, want a file in %s", f.Name(), s.tmp)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("spooled file holds %d bytes (%v), want the %d read", len(got), err, len(body))
	}
	f.Close()
	os.Remove(f.Name())

	_, err = s.Spool(ctx, bytes.NewReader(append(body, 'z')))
	if hotswap.ErrorKind(err) != hotswap.TooLarge {
		t.Fatalf("Spool of one byte over the limit = %v (kind %v), want TooLarge", err, hotswap.ErrorKind(err))
	}
	if got := listDir(t, s.tmp); len(got) != 0 {
		t.Errorf("tmp holds %q after a refused spool, want nothing", got)
	}
	checkClean(t, s)
}
