package artifact

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestMirror: a cluster's nodes fetch packages from the shared store, so
// every Put hands the exact zip to the mirror before it returns, also when
// the content was stored before, and a mirror that fails fails the Put.
func TestMirror(t *testing.T) {
	data := makeZip(t, zent{name: "host.json", body: "{}", mode: 0o600})
	s := openStore(t, Limits{})
	got := map[string][]byte{}
	fail := false
	s.SetMirror(func(ctx context.Context, digest string, zip io.Reader) error {
		b, err := io.ReadAll(zip)
		if err != nil {
			return err
		}
		if fail {
			return errors.New("database is down")
		}
		got[digest] = b
		return nil
	})
	for i := range 2 { // the second Put finds the content stored
		digest, err := s.Put(context.Background(), bytes.NewReader(data), nil)
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		if !bytes.Equal(got[digest], data) {
			t.Fatalf("put %d: the mirror got %d bytes under %s, want the %d bytes of the zip", i, len(got[digest]), digest, len(data))
		}
		delete(got, digest)
	}
	fail = true
	_, err := s.Put(context.Background(), bytes.NewReader(data), nil)
	if err == nil || !strings.Contains(err.Error(), "shared store") || !strings.Contains(err.Error(), "database is down") {
		t.Fatalf("put with a failing mirror: %v; want an error naming the shared store and the cause", err)
	}
}
