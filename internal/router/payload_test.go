package router

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// sentRequest is the envelope as a handler decodes it.
type sentRequest struct {
	Data map[string]struct {
		URL          string              `json:"Url"`
		Method       string              `json:"Method"`
		Query        map[string]string   `json:"Query"`
		Headers      map[string][]string `json:"Headers"`
		Params       map[string]string   `json:"Params"`
		Body         string              `json:"Body"`
		BodyEncoding string              `json:"BodyEncoding"`
	} `json:"Data"`
	Metadata map[string]any `json:"Metadata"`
}

// readEnvelope reads e through r and checks the length it announced.
func readEnvelope(t testing.TB, e *envelope, r io.Reader) []byte {
	t.Helper()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) != e.Size() {
		t.Fatalf("envelope is %d bytes, Size says %d", len(got), e.Size())
	}
	return got
}

// bodyOf decodes the envelope and returns the body bytes it carries.
func bodyOf(t testing.TB, raw []byte) (body []byte, b64 bool, req sentRequest) {
	t.Helper()
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatalf("envelope is not JSON: %v\n%.300s", err, raw)
	}
	d := req.Data["req"]
	switch d.BodyEncoding {
	case "":
		return []byte(d.Body), false, req
	case "base64":
		b, err := base64.StdEncoding.DecodeString(d.Body)
		if err != nil {
			t.Fatalf("Body is not base64: %v", err)
		}
		return b, true, req
	}
	t.Fatalf("BodyEncoding %q", d.BodyEncoding)
	return nil, false, req
}

func TestEnvelope(t *testing.T) {
	for _, tc := range []struct {
		name, ctype string
		body        []byte
		b64         bool
	}{
		{"empty", "", nil, false},
		{"text", "text/plain", []byte("héllo wörld ✓ 𝄞"), false},
		{"escapes", "application/json", []byte("{\"a\":\"q\\\"</script>\"}\n\r\t\x00\x01\x1f\x7f\u2028"), false},
		{"invalid utf-8", "text/plain", []byte("ok \xff\xfe\x80 then \xc3"), true},
		{"png bytes", "image/png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), true},
		{"octet-stream text", "application/octet-stream", []byte("plain ascii"), true},
		{"multipart", `multipart/form-data; boundary="x"`, []byte("--x\r\n\r\nv\r\n--x--"), true},
		{"all bytes", "", func() []byte {
			b := make([]byte, 256*3+1)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := newEnvelope(envelopeRequest{
				Trigger: "req", URL: "http://a.localhost/api/x?q=1", Method: "POST", ContentType: tc.ctype,
				Query: map[string]string{"q": "1"}, Headers: map[string][]string{"Content-Type": {tc.ctype}},
				Params: map[string]string{"id": "7"}, Metadata: map[string]any{"id": "7"}, Body: tc.body,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, read := range []struct {
				name string
				r    func() io.Reader
			}{
				{"whole", e.Reader},
				{"one byte at a time", func() io.Reader { return iotest.OneByteReader(e.Reader()) }},
			} {
				raw := readEnvelope(t, e, read.r())
				got, b64, req := bodyOf(t, raw)
				if !bytes.Equal(got, tc.body) {
					t.Errorf("%s: body = %q, want %q", read.name, got, tc.body)
				}
				if b64 != tc.b64 {
					t.Errorf("%s: base64 = %v, want %v", read.name, b64, tc.b64)
				}
				d := req.Data["req"]
				if d.URL != "http://a.localhost/api/x?q=1" || d.Method != "POST" || d.Params["id"] != "7" || d.Query["q"] != "1" {
					t.Errorf("%s: trigger data = %+v", read.name, d)
				}
				if req.Metadata["id"] != "7" {
					t.Errorf("%s: Metadata = %v", read.name, req.Metadata)
				}
			}
		})
	}
}

// TestEnvelopeMemory checks that encoding a large body allocates little
// beyond the body itself, which it must not copy.
func TestEnvelopeMemory(t *testing.T) {
	body := bytes.Repeat([]byte("line \"quoted\"\t\\ ✓\n"), 8<<20/20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, ctype := range []string{"text/plain", "application/octet-stream"} {
		e, err := newEnvelope(envelopeRequest{Trigger: "req", ContentType: ctype, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, e.Reader())
		if err != nil || n != e.Size() {
			t.Fatalf("copied %d of %d: %v", n, e.Size(), err)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 {
		t.Errorf("encoding two %d-byte bodies allocated %d bytes, want < 256 KiB", len(body), got)
	}
}

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int64
		n     int
		limit int64
		err   error
	}{
		{"known size", 100 << 10, 100 << 10, 1 << 20, nil},
		{"unknown size", -1, 300 << 10, 1 << 20, nil},
		{"known size over the limit", 2 << 20, 2 << 20, 1 << 20, errTooLarge},
		{"unknown size over the limit", -1, 1<<20 + 1, 1 << 20, errTooLarge},
		{"unknown size at the limit", -1, 1 << 20, 1 << 20, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := bytes.Repeat([]byte("x"), tc.n)
			got, err := readBody(iotest.HalfReader(bytes.NewReader(src)), tc.size, tc.limit)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && !bytes.Equal(got, src) {
				t.Fatalf("read %d bytes, want %d", len(got), len(src))
			}
		})
	}
}

func TestPayloadGate(t *testing.T) {
	g := newPayloadGate(2)
	ctx := context.Background()
	if !g.enter(ctx, time.Millisecond) || !g.enter(ctx, time.Millisecond) {
		t.Fatal("the first two did not enter")
	}
	start := time.Now()
	if g.enter(ctx, 50*time.Millisecond) {
		t.Fatal("a third entered a gate of two")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("the third gave up after %v, want the wait of 50ms", d)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		g.leave()
	}()
	if !g.enter(ctx, 10*time.Second) {
		t.Fatal("a waiter did not enter when a turn was freed")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if g.enter(cctx, 10*time.Second) {
		t.Fatal("entered with a cancelled context")
	}
}

// FuzzEnvelope checks that any request body survives the envelope: the
// handler decodes exactly the bytes the client sent.
func FuzzEnvelope(f *testing.F) {
	f.Add([]byte("hello"), "text/plain")
	f.Add([]byte("\xff\x00\"\\"), "")
	f.Add([]byte("x"), "application/octet-stream")
	f.Fuzz(func(t *testing.T, body []byte, ctype string) {
		e, err := newEnvelope(envelopeRequest{Trigger: "req", ContentType: ctype, Body: body,
			Headers: map[string][]string{"Content-Type": {ctype}}})
		if err != nil {
			t.Fatal(err)
		}
		got, _, _ := bodyOf(t, readEnvelope(t, e, e.Reader()))
		if !bytes.Equal(got, body) && !(len(got) == 0 && len(body) == 0) {
			t.Fatalf("body %q arrived as %q", body, got)
		}
	})
}

// TestPayloadHandlerRedirectIsNotFollowed: a handler that answers an
// invocation with a redirect has failed it. The router does not follow the
// redirect, which would send the invocation (and the server's own request)
// wherever the handler points.
func TestPayloadHandlerRedirectIsNotFollowed(t *testing.T) {
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			var followed atomic.Int64
			f := newLeanFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/payload":
					io.Copy(io.Discard, r.Body)
					http.Redirect(w, r, "/elsewhere", code)
				case "/elsewhere":
					followed.Add(1)
					io.Copy(io.Discard, r.Body)
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"Outputs":{"res":{"statusCode":200,"body":"followed"}}}`)
				default:
					http.NotFound(w, r)
				}
			}))
			resp, body := f.raw("POST /api/payload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nhello")
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("status %d %q, want 500: the handler failed the invocation", resp.StatusCode, body)
			}
			if n := followed.Load(); n != 0 {
				t.Errorf("the router followed the handler's %d redirect %d times", code, n)
			}
		})
	}
}
