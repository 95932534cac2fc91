package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/ops"
)

// slowStartZip zips testdata/slowstart: a node handler that listens only
// START_DELAY_MS (3000 by default) after it starts.
func slowStartZip(t testing.TB) []byte {
	t.Helper()
	_, file, _, _ := goruntime.Caller(0)
	var buf bytes.Buffer
	if err := artifact.ZipDir(filepath.Join(filepath.Dir(file), "testdata", "slowstart"), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sseEvent is one server-sent event as it arrived.
type sseEvent struct {
	name, id, data string
	at             time.Time
}

func (e sseEvent) op(t testing.TB) ops.OperationEvent {
	t.Helper()
	var ev ops.OperationEvent
	if err := json.Unmarshal([]byte(e.data), &ev); err != nil {
		t.Fatalf("event %s: %v: %s", e.name, err, e.data)
	}
	return ev
}

// readSSE reads events until the stream ends, noting when each arrived.
func readSSE(t testing.TB, r io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	var data []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name != "" {
				cur.data, cur.at = strings.Join(data, "\n"), time.Now()
				out = append(out, cur)
			}
			cur, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		default:
			t.Fatalf("not an SSE line: %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read stream: %v", err)
	}
	return out
}

// request sends a request with the admin token and headers.
func (e *env) request(method, path string, body []byte, hdr map[string]string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

var streamed = map[string]string{"Accept": "text/event-stream"}

func phases(t testing.TB, evs []sseEvent) []string {
	t.Helper()
	var out []string
	for _, e := range evs {
		if e.name == "phase" || e.name == "end" {
			out = append(out, e.op(t).Phase)
		}
	}
	return out
}

// TestDeployStreamsPhases: a deploy asked with Accept: text/event-stream
// reports its phases as they happen: "starting" arrives while the handler
// takes its 3 s to listen, long before the result.
func TestDeployStreamsPhases(t *testing.T) {
	e := newEnv(t)
	e.must(adminToken, 201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)

	sent := time.Now()
	resp := e.request("POST", "/api/v1/apps/orders/slots/production/deploy?message=slow", slowStartZip(t), streamed)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("deploy with Accept: text/event-stream = %d %s, want 200 text/event-stream: %s", resp.StatusCode, ct, body)
	}
	evs := readSSE(t, resp.Body)
	want := []string{"receiving", "validating", "storing", "starting", "switching", "done"}
	if got := phases(t, evs); !slices.Equal(got, want) {
		t.Fatalf("phases = %q, want %q", got, want)
	}
	last := evs[len(evs)-1]
	if last.name != "result" {
		t.Fatalf("last event = %s %s, want result", last.name, last.data)
	}
	var res struct {
		Deployment struct{ ID, StatusText string }
		URL        string
	}
	if err := json.Unmarshal([]byte(last.data), &res); err != nil || res.Deployment.StatusText != "success" || res.URL == "" {
		t.Fatalf("result = %s (%v), want the deploy's JSON answer with status success", last.data, err)
	}
	var starting, end sseEvent
	for _, ev := range evs {
		switch ev.name {
		case "phase":
			if ev.op(t).Phase == "starting" {
				starting = ev
			}
		case "end":
			end = ev
		}
	}
	if gap := last.at.Sub(starting.at); gap < 2*time.Second {
		t.Errorf("\"starting\" arrived %v before the result, %v after the request; want it while the handler takes 3s to start", gap, starting.at.Sub(sent))
	}
	if ev := end.op(t); !ev.End || ev.State != "succeeded" || ev.OpID == "" || ev.Kind != "deploy" || ev.Elapsed < 2*time.Second {
		t.Errorf("end event = %+v, want a succeeded deploy's end after the 3s start", ev)
	}

	t.Run("refused before it begins", func(t *testing.T) {
		resp := e.request("POST", "/api/v1/apps/orders/slots/nope/deploy", slowStartZip(t), streamed)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("deploy to a missing slot = %d %s %s, want the plain 404 JSON", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("failing", func(t *testing.T) {
		resp := e.request("POST", "/api/v1/apps/orders/slots/production/deploy", []byte("not a zip"), streamed)
		evs := readSSE(t, resp.Body)
		if len(evs) < 2 || evs[len(evs)-1].name != "error" || !strings.Contains(evs[len(evs)-1].data, `"error"`) {
			t.Fatalf("failing deploy streamed %+v, want phases then event: error with the error JSON", evs)
		}
		if end := evs[len(evs)-2]; end.name != "end" || end.op(t).State != "failed" || end.op(t).Phase != "failed" {
			t.Errorf("before the error: %+v, want the failed end", end)
		}
	})
}

// TestNoWaitAndFollow: ?wait=false answers 202 with the operation at once;
// its events endpoint then replays what passed and follows it to its end;
// once ended it replays everything and closes; Last-Event-ID resumes.
func TestNoWaitAndFollow(t *testing.T) {
	e := newEnv(t)
	e.must(adminToken, 201, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	e.must(adminToken, 201, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)

	var acc struct {
		Operation, Events string
		Deployment        struct{ ID string }
	}
	t0 := time.Now()
	resp := e.request("POST", "/api/v1/apps/orders/slots/staging/deploy?wait=false", slowStartZip(t), nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 202 {
		t.Fatalf("deploy ?wait=false = %d %s, want 202", resp.StatusCode, body)
	}
	if took := time.Since(t0); took > 2500*time.Millisecond {
		t.Errorf("deploy ?wait=false answered after %v, want before the handler's 3s start", took)
	}
	if err := json.Unmarshal(body, &acc); err != nil || acc.Operation == "" || acc.Deployment.ID == "" || acc.Events != "/api/v1/operations/"+acc.Operation+"/events" {
		t.Fatalf("202 answer = %s (%v), want the operation, its events URL and the deployment", body, err)
	}
	if loc := resp.Header.Get("Location"); loc != acc.Events {
		t.Errorf("Location = %q, want %q", loc, acc.Events)
	}

	follow := e.request("GET", acc.Events, nil, nil)
	if follow.StatusCode != 200 || !strings.HasPrefix(follow.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events = %d %s", follow.StatusCode, follow.Header.Get("Content-Type"))
	}
	evs := readSSE(t, follow.Body)
	want := []string{"receiving", "validating", "storing", "starting", "switching", "done"}
	if got := phases(t, evs); !slices.Equal(got, want) {
		t.Fatalf("followed phases = %q, want %q", got, want)
	}
	for i, ev := range evs {
		if op := ev.op(t); op.Seq != i+1 || ev.id != strconv.Itoa(op.Seq) || op.OpID != acc.Operation {
			t.Errorf("event %d = id %q %+v, want number %d of %s", i, ev.id, op, i+1, acc.Operation)
		}
	}
	if end := evs[len(evs)-1]; end.name != "end" || end.op(t).State != "succeeded" {
		t.Errorf("last event = %s %s, want the succeeded end", end.name, end.data)
	}

	t.Run("replay", func(t *testing.T) {
		again := readSSE(t, e.request("GET", acc.Events, nil, nil).Body)
		if got := phases(t, again); !slices.Equal(got, want) {
			t.Errorf("replayed phases = %q, want %q", got, want)
		}
		resumed := readSSE(t, e.request("GET", acc.Events, nil, map[string]string{"Last-Event-ID": "4"}).Body)
		if got := phases(t, resumed); !slices.Equal(got, want[4:]) {
			t.Errorf("after Last-Event-ID 4: %q, want %q", got, want[4:])
		} // Reconnecting after the end (EventSource does) gets 204: stop.
		endID := strconv.Itoa(len(evs))
		if resp := e.request("GET", acc.Events, nil, map[string]string{"Last-Event-ID": endID}); resp.StatusCode != http.StatusNoContent {
			t.Errorf("after Last-Event-ID %s (the end): %d, want 204", endID, resp.StatusCode)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		code, body := e.call(adminToken, "GET", "/api/v1/operations/op-nope/events", nil, nil)
		if code != 404 || !strings.Contains(body, "op-nope") {
			t.Errorf("events of an unknown operation = %d %s, want 404 naming it", code, body)
		}
	})
	t.Run("swap", func(t *testing.T) {
		resp := e.request("POST", "/api/v1/apps/orders/swap?wait=false", []byte(`{"slot":"staging"}`), nil)
		body, _ := io.ReadAll(resp.Body)
		var acc struct{ Operation, Events string }
		if err := json.Unmarshal(body, &acc); resp.StatusCode != 202 || err != nil || acc.Operation == "" {
			t.Fatalf("swap ?wait=false = %d %s, want 202 with the operation", resp.StatusCode, body)
		}
		evs := readSSE(t, e.request("GET", acc.Events, nil, nil).Body)
		got := phases(t, evs)
		if len(got) == 0 || got[0] != "preparing production" || !slices.Contains(got, "warming") || got[len(got)-1] != "done" || got[len(got)-2] != "switching" {
			t.Errorf("swap phases = %q, want preparing production, warming, ..., switching, done", got)
		}
		var slot struct{ DeploymentID string }
		e.must(adminToken, 200, "GET", "/api/v1/apps/orders/slots/production", nil, &slot)
		if slot.DeploymentID == "" {
			t.Error("production serves nothing after the swap")
		}
	})
	t.Run("preview then complete", func(t *testing.T) {
		evs := readSSE(t, e.request("POST", "/api/v1/apps/orders/swap", []byte(`{"slot":"production","target":"staging","preview":true}`), streamed).Body)
		got := phases(t, evs)
		if len(got) < 2 || got[0] != "preparing staging" || got[len(got)-1] != "preview" || evs[len(evs)-1].name != "result" || !strings.Contains(evs[len(evs)-1].data, `"phase":"preview"`) {
			t.Fatalf("preview streamed phases %q and %+v, want preparing staging ... preview, then the preview result", got, evs[len(evs)-1])
		}
		evs = readSSE(t, e.request("POST", "/api/v1/apps/orders/swap/complete", nil, streamed).Body)
		// The preview's phases are not told again.
		if got := phases(t, evs); !slices.Equal(got, []string{"switching", "done"}) {
			t.Errorf("complete streamed phases %q, want switching, done", got)
		}
		if last := evs[len(evs)-1]; last.name != "result" || !strings.Contains(last.data, `"phase":"completed"`) {
			t.Errorf("complete's last event = %+v, want the completed result", last)
		}
	})
	t.Run("bad wait", func(t *testing.T) {
		code, body := e.call(adminToken, "POST", "/api/v1/apps/orders/swap?wait=maybe", `{"slot":"staging"}`, nil)
		if code != 400 || !strings.Contains(body, "wait") {
			t.Errorf("wait=maybe = %d %s, want 400 about wait", code, body)
		}
	})
}
