package invoke

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// handler answers like a custom handler, and keeps what it was sent.
type handler struct {
	path, id, ctype string
	sent            struct {
		Data     map[string]json.RawMessage
		Metadata map[string]json.RawMessage
	}
	status int
	answer string
	delay  time.Duration
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.path, h.id, h.ctype = r.URL.Path, r.Header.Get("X-Azure-Functions-InvocationId"), r.Header.Get("Content-Type")
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &h.sent); err != nil {
		http.Error(w, "not JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	if h.delay > 0 {
		select {
		case <-time.After(h.delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
	io.WriteString(w, h.answer)
}

func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

var uuid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestInvokeRequest(t *testing.T) {
	h := &handler{answer: `{"Outputs":{"msg":["a",{"b":1}]},"Logs":["one","two"],"ReturnValue":"done"}`}
	addr := serve(t, h)
	now := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	iv := &Invoker{Now: func() time.Time { return now }}
	res, err := iv.Invoke(context.Background(), addr, Request{
		Function: "Work",
		Data:     map[string]json.RawMessage{"item": json.RawMessage(`"hello"`)},
		Metadata: map[string]json.RawMessage{"DequeueCount": json.RawMessage(`1`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.path != "/Work" || h.ctype != "application/json" || !uuid.MatchString(h.id) {
		t.Errorf("request to %q, Content-Type %q, invocation id %q; want /Work, application/json, a UUID", h.path, h.ctype, h.id)
	}
	if got := string(h.sent.Data["item"]); got != `"hello"` {
		t.Errorf("Data.item = %s, want \"hello\"", got)
	}
	if got := string(h.sent.Metadata["DequeueCount"]); got != "1" {
		t.Errorf("Metadata.DequeueCount = %s, want 1", got)
	}
	var sys struct{ MethodName, UtcNow, RandGuid string }
	if err := json.Unmarshal(h.sent.Metadata["sys"], &sys); err != nil {
		t.Fatalf("Metadata.sys: %v", err)
	}
	if sys.MethodName != "Work" || sys.UtcNow != "2026-12-01T18:00:00Z" || !uuid.MatchString(sys.RandGuid) {
		t.Errorf("sys = %+v, want MethodName Work, UtcNow 2026-12-01T18:00:00Z and a RandGuid", sys)
	}
	want := Result{
		Outputs:     map[string]json.RawMessage{"msg": json.RawMessage(`["a",{"b":1}]`)},
		Logs:        []string{"one", "two"},
		ReturnValue: json.RawMessage(`"done"`),
	}
	if diff := cmp.Diff(res, want); diff != "" {
		t.Errorf("result (-got +want):\n%s", diff)
	}
	if got := string(res.Output("$return")); got != `"done"` {
		t.Errorf(`Output("$return") = %s, want "done"`, got)
	}

	// A given invocation id is sent as is; no data is an empty object.
	if _, err := iv.Invoke(context.Background(), addr, Request{Function: "Work", InvocationID: "abc"}); err != nil {
		t.Fatal(err)
	}
	if h.id != "abc" || h.sent.Data == nil {
		t.Errorf("invocation id %q, Data %v; want abc and {}", h.id, h.sent.Data)
	}
}

func TestInvokeErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h      *handler
		iv     Invoker
		status int    // for a *StatusError
		is     error  // errors.Is
		want   string // in the message
		// answered is what Answered says: false only when no answer came.
		answered bool
	}{
		{name: "failed function", h: &handler{status: 500, answer: `{"error":"boom"}` + strings.Repeat("x", 1000)},
			status: 500, answered: true, want: `the handler answered 500: {"error":"boom"}xxx`},
		{name: "not found", h: &handler{status: 404}, status: 404, answered: true, want: "the handler answered 404"},
		{name: "answer too large", h: &handler{answer: `{"Logs":["` + strings.Repeat("x", 2000) + `"]}`},
			iv: Invoker{MaxAnswer: 1000}, is: ErrTooLarge, answered: true, want: "over 1000 bytes"},
		{name: "not JSON", h: &handler{answer: `{"Logs":`}, answered: true, want: "not valid JSON"},
		{name: "timeout", h: &handler{answer: `{}`, delay: 5 * time.Second},
			iv: Invoker{Timeout: 100 * time.Millisecond}, is: context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serve(t, tc.h)
			start := time.Now()
			_, err := tc.iv.Invoke(context.Background(), addr, Request{Function: "F"})
			if err == nil {
				t.Fatal("no error")
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			var se *StatusError
			if tc.status != 0 && (!errors.As(err, &se) || se.Status != tc.status) {
				t.Errorf("err = %v, want a StatusError %d", err, tc.status)
			}
			if se != nil && len(se.Excerpt) > excerptLen {
				t.Errorf("excerpt is %d bytes, want at most %d", len(se.Excerpt), excerptLen)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want one that is %v", err, tc.is)
			}
			if got := Answered(err); got != tc.answered {
				t.Errorf("Answered(%v) = %v, want %v", err, got, tc.answered)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestInvokeRedirectIsNotFollowed: a handler's redirect fails the
// invocation; the invocation is not sent where it points.
func TestInvokeRedirectIsNotFollowed(t *testing.T) {
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		var followed atomic.Int64
		addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				followed.Add(1)
				io.WriteString(w, `{}`)
				return
			}
			http.Redirect(w, r, "/elsewhere", code)
		}))
		_, err := (&Invoker{}).Invoke(context.Background(), addr, Request{Function: "F"})
		var se *StatusError
		if !errors.As(err, &se) || se.Status != code {
			t.Errorf("%d: err = %v; want a StatusError %d", code, err, code)
		}
		if n := followed.Load(); n != 0 {
			t.Errorf("%d: the invocation was sent where the redirect points %d times", code, n)
		}
	}
}

func TestInvokeEmptyAnswer(t *testing.T) {
	addr := serve(t, &handler{})
	var iv Invoker
	res, err := iv.Invoke(context.Background(), addr, Request{Function: "F"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs != nil || res.Logs != nil || res.ReturnValue != nil {
		t.Errorf("result = %+v, want none", res)
	}
}

func TestInvokeUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	var iv Invoker
	_, err := iv.Invoke(context.Background(), addr, Request{Function: "F"})
	if err == nil || Answered(err) {
		t.Fatalf("err = %v (answered %v), want an error with no answer", err, Answered(err))
	}
}
