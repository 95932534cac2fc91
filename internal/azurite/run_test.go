package azurite

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRun checks the non-test entry point the benchmark uses: it serves,
// and its stop func closes both ports.
func TestRun(t *testing.T) {
	t.Parallel()
	if _, err := find(); err != nil {
		Start(t) // skips, or fails under CI, with the same message as every Azurite test
	}
	s, stop, err := Run(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(s.QueueEndpoint + "?comp=list")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get("Server"); !strings.HasPrefix(got, "Azurite-Queue/") {
		t.Errorf("Server %q, want Azurite-Queue/...", got)
	}
	stop()
	for _, u := range []string{s.BlobEndpoint, s.QueueEndpoint} {
		host := strings.TrimPrefix(u, "http://")
		host = host[:strings.IndexByte(host, '/')]
		if c, err := net.DialTimeout("tcp", host, 2*time.Second); err == nil {
			c.Close()
			t.Errorf("%s still answers after stop", host)
		}
	}
}
