package azurite

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestStart(t *testing.T) {
	t.Parallel()
	var s *Server
	t.Run("running", func(t *testing.T) {
		s = Start(t)
		for _, tc := range []struct{ url, server string }{
			{s.BlobEndpoint + "?comp=list", "Azurite-Blob/"},
			{s.QueueEndpoint + "?comp=list", "Azurite-Queue/"},
		} {
			res, err := http.Get(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			// Unsigned requests are refused, by Azurite itself.
			if got := res.Header.Get("Server"); !strings.HasPrefix(got, tc.server) {
				t.Errorf("GET %s: Server %q, want %s...", tc.url, got, tc.server)
			}
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("GET %s: status %d, want 403 for an unsigned request", tc.url, res.StatusCode)
			}
		}
		cs := s.ConnectionString()
		for _, want := range []string{"AccountName=devstoreaccount1;", "AccountKey=" + Key + ";",
			"BlobEndpoint=" + s.BlobEndpoint + ";", "QueueEndpoint=" + s.QueueEndpoint + ";"} {
			if !strings.Contains(cs, want) {
				t.Errorf("ConnectionString() = %q, lacks %q", cs, want)
			}
		}
	})
	if s == nil {
		t.Fatal("no server")
	}
	// The subtest's cleanup stopped Azurite: its ports are closed.
	for _, u := range []string{s.BlobEndpoint, s.QueueEndpoint} {
		host := strings.TrimPrefix(u, "http://")
		host = host[:strings.IndexByte(host, '/')]
		if c, err := net.DialTimeout("tcp", host, 2*time.Second); err == nil {
			c.Close()
			t.Errorf("%s still answers after cleanup", host)
		}
	}
}

// TestStartTwice checks that two emulators run side by side, as parallel
// tests need.
func TestStartTwice(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	if a.BlobEndpoint == b.BlobEndpoint || a.QueueEndpoint == b.QueueEndpoint {
		t.Fatalf("two servers share endpoints: %+v %+v", a, b)
	}
	for _, s := range []*Server{a, b} {
		res, err := http.Get(s.QueueEndpoint + "?comp=list")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
}
