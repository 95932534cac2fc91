package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/hotswap/hotswap/internal/azstorage"
	"github.com/hotswap/hotswap/internal/azurite"
	"github.com/hotswap/hotswap/internal/cli"
)

var (
	queueAppOnce sync.Once
	queueAppDir  string
	queueAppErr  error
)

// queueAppPackage returns a folder holding the queueapp test handler (queue
// triggered functions that log each message they take), built once per run.
func queueAppPackage(t testing.TB) string {
	t.Helper()
	queueAppOnce.Do(func() {
		if queueAppDir, queueAppErr = os.MkdirTemp("", "hotswap-queueapp-"); queueAppErr != nil {
			return
		}
		src := filepath.Join(repoRoot(), "cmd/hotswap/testdata/queueapp")
		if queueAppErr = os.CopyFS(filepath.Join(queueAppDir, "queueapp"), os.DirFS(src)); queueAppErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(queueAppDir, "queueapp", "handler"), "./cmd/hotswap/testdata/queueapp")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			queueAppErr = fmt.Errorf("build queueapp: %v\n%s", err, out)
		}
	})
	if queueAppErr != nil {
		t.Fatal(queueAppErr)
	}
	return filepath.Join(queueAppDir, "queueapp")
}

// storage is an Azurite for one test.
type storage struct {
	t    testing.TB
	conn string
	acct azstorage.Account
}

func startStorage(t testing.TB) *storage {
	t.Helper()
	srv := azurite.Start(t)
	acct, err := azstorage.ParseConnectionString(srv.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	return &storage{t: t, conn: srv.ConnectionString(), acct: acct}
}

func (st *storage) queue(name string) *azqueue.QueueClient {
	st.t.Helper()
	q, err := st.acct.Queue(name)
	if err != nil {
		st.t.Fatal(err)
	}
	return q
}

// send enqueues texts (base64, as the Functions host expects by default),
// creating the queue when missing.
func (st *storage) send(queue string, texts ...string) {
	st.t.Helper()
	q := st.queue(queue)
	ctx := context.Background()
	for _, s := range texts {
		_, err := q.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte(s)), nil)
		if err != nil && strings.Contains(err.Error(), "QueueNotFound") {
			if _, err = q.Create(ctx, nil); err == nil {
				_, err = q.EnqueueMessage(ctx, base64.StdEncoding.EncodeToString([]byte(s)), nil)
			}
		}
		if err != nil {
			st.t.Fatal(err)
		}
	}
}

// count returns the messages in a queue, visible or not; -1 when it does
// not exist.
func (st *storage) count(queue string) int {
	st.t.Helper()
	p, err := st.queue(queue).GetProperties(context.Background(), nil)
	if err != nil {
		if strings.Contains(err.Error(), "QueueNotFound") {
			return -1
		}
		st.t.Fatal(err)
	}
	return int(*p.ApproximateMessagesCount)
}

func setSettings(s *server, app, slot string, settings ...map[string]any) {
	s.t.Helper()
	s.must(http.StatusOK, "PATCH", "/api/v1/apps/"+app+"/slots/"+slot+"/settings", map[string]any{"set": settings}, nil)
}

// listener returns what the API says a function's trigger listener does.
func listener(s *server, app, slot, fn string) (l struct {
	State, Queue, Error   string
	Invocations, Failures int
	Poisoned              int
	SharedWith            []string
}) {
	s.t.Helper()
	var v struct {
		Listener *struct {
			State, Queue, Error   string
			Invocations, Failures int
			Poisoned              int
			SharedWith            []string
		}
	}
	s.must(http.StatusOK, "GET", "/api/v1/apps/"+app+"/slots/"+slot+"/functions/"+fn, nil, &v)
	if v.Listener == nil {
		s.t.Fatalf("function %s in %s/%s has no listener in the API", fn, app, slot)
	}
	return *v.Listener
}

// eventually polls cond until it holds or the generous deadline passes.
func eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logLines returns the lines of stream in app/slot's log.
func logLines(s *server, app, slot, stream string) []string {
	s.t.Helper()
	_, lines := s.logHas(app, slot, stream, func(string) bool { return false })
	var out []string
	for _, l := range lines {
		if l.Stream == stream {
			out = append(out, l.Text)
		}
	}
	return out
}

// TestQueueTrigger deploys queueapp against Azurite: a message runs the
// queue function once and is deleted; a function that always fails has its
// message moved to <queue>-poison after maxDequeueCount (5) tries.
func TestQueueTrigger(t *testing.T) {
	t.Parallel()
	st := startStorage(t)
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "qa"}, nil)
	setSettings(s, "qa", "production", map[string]any{"name": "Storage", "value": st.conn})
	dep := s.deploy("qa", "production", zipDir(t, queueAppPackage(t)))

	t.Run("message runs the function and is deleted", func(t *testing.T) {
		st.send("work", "order 1")
		want := "work got order 1 on " + dep + " try 1"
		eventually(t, "the work function to log "+want, 60*time.Second, func() bool {
			ok, _ := s.logHas("qa", "production", "work", func(text string) bool { return text == want })
			return ok
		})
		eventually(t, "the message to be deleted", 30*time.Second, func() bool { return st.count("work") == 0 })
		time.Sleep(time.Second)
		if got := logLines(s, "qa", "production", "work"); len(got) != 1 {
			t.Errorf("work log = %q, want the message run once", got)
		}
	})

	t.Run("failing function's message moves to the poison queue after 5 tries", func(t *testing.T) {
		st.send("bad", "bad order")
		eventually(t, "the message to move to bad-poison", 60*time.Second, func() bool {
			return st.count("bad-poison") == 1 && st.count("bad") == 0
		})
		var fails int
		for _, l := range logLines(s, "qa", "production", "host") {
			if strings.Contains(l, "queue function fail failed on message") {
				fails++
			}
		}
		if fails != 5 {
			t.Errorf("host log has %d failures of fail, want 5 (maxDequeueCount)", fails)
		}
		resp, err := st.queue("bad-poison").PeekMessage(context.Background(), nil)
		if err != nil || len(resp.Messages) != 1 {
			t.Fatalf("peek bad-poison: %v", err)
		}
		if got, _ := base64.StdEncoding.DecodeString(*resp.Messages[0].MessageText); string(got) != "bad order" {
			t.Errorf("poison message = %q, want %q", got, "bad order")
		}
	})

	t.Run("outputs are written before the message is deleted", func(t *testing.T) {
		st.send("orders", `{"id": "42"}`)
		eventually(t, "the receipt blob", 60*time.Second, func() bool {
			c, err := st.acct.Container("receipts")
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.NewBlobClient("42.txt").DownloadStream(context.Background(), nil)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "receipt for 42" {
				t.Fatalf("receipts/42.txt = %q, want %q", b, "receipt for 42")
			}
			return true
		})
		eventually(t, "the order message to be deleted", 30*time.Second, func() bool { return st.count("orders") == 0 })
	})

	t.Run("blob input bindings", func(t *testing.T) {
		st.upload("docs", "a.txt", "hello from a")
		st.send("lookups", "a.txt", "missing.txt")
		for _, want := range []string{`lookup a.txt: "hello from a"`, `lookup missing.txt: null`} {
			eventually(t, "the lookup function to log "+want, 60*time.Second, func() bool {
				ok, _ := s.logHas("qa", "production", "lookup", func(text string) bool { return text == want })
				return ok
			})
		}
	})

	t.Run("metrics", func(t *testing.T) {
		st.send("work", "waiting 1", "waiting 2")
		want := []string{
			`hotswap_trigger_invocations_total{app="qa",function="work",result="success",slot="production",trigger="queue"} `,
			`hotswap_trigger_invocations_total{app="qa",function="fail",result="failure",slot="production",trigger="queue"} 5`,
			`hotswap_trigger_poisoned_total{app="qa",function="fail",slot="production",trigger="queue"} 1`,
			`hotswap_queue_messages{app="qa",function="work",queue="work",slot="production"} `,
			`hotswap_queue_oldest_message_age_seconds{app="qa",function="work",queue="work",slot="production"} `,
		}
		eventually(t, "the trigger metrics", 30*time.Second, func() bool {
			resp, err := http.Get(s.api + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, w := range want {
				if !strings.Contains(string(body), w) {
					return false
				}
			}
			return true
		})
	})

	t.Run("hotswap functions lists each trigger's state", func(t *testing.T) {
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), []string{"--server", s.api, "--token", s.token, "functions", "qa"},
			cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, WorkDir: t.TempDir()})
		if code != 0 {
			t.Fatalf("hotswap functions: exit %d\n%s%s", code, out.String(), errb.String())
		}
		rows := map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n")[1:] {
			f := strings.Fields(line)
			rows[f[0]] = f
		}
		if r := rows["work"]; len(r) < 4 || r[1] != "queue" || (r[2] != "idle" && r[2] != "listening") || r[3] != "work" {
			t.Errorf("work row = %q, want queue, idle or listening, work", r)
		}
		if r := rows["onblob"]; len(r) < 4 || r[1] != "blob" || r[3] != "uploads/{name}:" {
			t.Errorf("onblob row = %q, want blob, its path and a note", r)
		}
		if !strings.Contains(out.String(), "container uploads does not exist yet") {
			t.Errorf("hotswap functions does not say the blob container is missing:\n%s", out.String())
		}
	})

	t.Run("the host admin API and the slot page show each listener", func(t *testing.T) {
		master := findKey(s.keys("qa", "production"), "master", "", "_master")
		_, body := s.fn("GET", "qa.localhost", "/admin/functions", map[string]string{"x-functions-key": master}, nil)
		var fns []struct {
			Name     string
			Listener *struct {
				Queue       string
				State       string
				Invocations int64
				QueueLength *int64
			}
		}
		if err := json.Unmarshal(body, &fns); err != nil {
			t.Fatalf("/admin/functions: %v\n%s", err, body)
		}
		work := false
		for _, f := range fns {
			if f.Name == "work" {
				work = f.Listener != nil && f.Listener.Queue == "work" && f.Listener.State != "" && f.Listener.Invocations >= 1 && f.Listener.QueueLength != nil
			}
		}
		if !work {
			t.Errorf("/admin/functions = %s, want the work listener with its queue, state, invocations and queue length", body)
		}
		u := newPortalUser(t, s)
		u.signIn(s.token)
		resp, page := u.get("/apps/qa/slots/production")
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-testid="listener-stats-work"`) || !regexp.MustCompile(`[1-9][0-9]* invocations, 0 failed`).MatchString(page) {
			t.Errorf("slot page (%d) does not show the work listener's invocations", resp.StatusCode)
		}
	})

	t.Run("the API shows each listener", func(t *testing.T) {
		if l := listener(s, "qa", "production", "work"); l.Queue != "work" || l.State == "failing" || l.Invocations < 1 || l.Failures != 0 {
			t.Errorf("work listener = %+v, want queue work, invocations, no failure", l)
		}
		if l := listener(s, "qa", "production", "fail"); l.Queue != "bad" || l.Failures != 5 || l.Poisoned != 1 || !strings.Contains(l.Error, "500") {
			t.Errorf("fail listener = %+v, want queue bad, 5 failures, 1 poisoned, the last error", l)
		}
	})
}

// TestQueueTriggerDisabledInSlot: a function disabled in a slot by a sticky
// setting never takes a message there; enabling it runs the waiting one.
func TestQueueTriggerDisabledInSlot(t *testing.T) {
	t.Parallel()
	st := startStorage(t)
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "qa"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/qa/slots", map[string]string{"name": "staging"}, nil)
	setSettings(s, "qa", "staging",
		map[string]any{"name": "Storage", "value": st.conn},
		map[string]any{"name": "AzureWebJobs.work.Disabled", "value": "true", "slotSetting": true})
	dep := s.deploy("qa", "staging", zipDir(t, queueAppPackage(t)))
	st.send("work", "held")
	time.Sleep(4 * time.Second) // several polls, had it been listening
	if got := logLines(s, "qa", "staging", "work"); len(got) != 0 {
		t.Fatalf("disabled work ran in staging: %q", got)
	}
	if n := st.count("work"); n != 1 {
		t.Fatalf("work queue holds %d messages, want the 1 untouched", n)
	}
	if l := listener(s, "qa", "staging", "work"); l.State != "disabled" {
		t.Errorf("work listener = %+v, want disabled", l)
	}
	s.must(http.StatusOK, "PATCH", "/api/v1/apps/qa/slots/staging/settings", map[string]any{"unset": []string{"AzureWebJobs.work.Disabled"}}, nil)
	want := "work got held on " + dep + " try 1"
	eventually(t, "the enabled function to take the message", 60*time.Second, func() bool {
		ok, _ := s.logHas("qa", "staging", "work", func(text string) bool { return text == want })
		return ok
	})
}

// TestQueueTriggerSwap: under a stream of messages, swaps hand the queue
// from the retiring process set to the new one: every message is handled,
// none fails (no invocation is cut off), and after the last swap only the
// deployment now in production takes messages (staging has the function
// disabled by a sticky setting).
func TestQueueTriggerSwap(t *testing.T) {
	t.Parallel()
	st := startStorage(t)
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "qa"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/qa/slots", map[string]string{"name": "staging"}, nil)
	setSettings(s, "qa", "production", map[string]any{"name": "Storage", "value": st.conn, "slotSetting": true})
	setSettings(s, "qa", "staging",
		map[string]any{"name": "Storage", "value": st.conn, "slotSetting": true},
		map[string]any{"name": "AzureWebJobs.slow.Disabled", "value": "true", "slotSetting": true})
	pkg := queueAppPackage(t)
	depA := s.deploy("qa", "production", zipDir(t, pkg))
	depB := s.deploy("qa", "staging", zipDir(t, pkg))

	sent := 0
	sendSome := func(n int) {
		for range n {
			st.send("slow", fmt.Sprintf("m%d", sent))
			sent++
		}
	}
	sendSome(10)
	for i := range 3 {
		sendSome(5)
		s.must(http.StatusOK, "POST", "/api/v1/apps/qa/swap", map[string]string{"slot": "staging"}, nil)
		sendSome(5)
		_ = i
	}
	// Production now serves depB (three swaps); only it may take what is
	// sent from now on.
	after := sent
	time.Sleep(time.Second) // the retired set's in-flight invocations end
	sendSome(10)

	done := func() map[string][]string {
		got := make(map[string][]string)
		for _, slot := range []string{"production", "staging"} {
			for _, l := range logLines(s, "qa", slot, "slow") {
				text, dep, ok := strings.Cut(strings.TrimPrefix(l, "slow done "), " on ")
				if ok {
					got[text] = append(got[text], dep)
				}
			}
		}
		return got
	}
	eventually(t, fmt.Sprintf("all %d messages to be handled", sent), 120*time.Second, func() bool {
		return len(done()) == sent
	})
	eventually(t, "the queue to be empty", 30*time.Second, func() bool { return st.count("slow") == 0 })
	got := done()
	for i := range sent {
		m := fmt.Sprintf("m%d", i)
		if len(got[m]) == 0 {
			t.Errorf("message %s was lost", m)
		}
		if i >= after {
			for _, d := range got[m] {
				if d != depB {
					t.Errorf("message %s, sent after the last swap, ran on %s, want only %s (the retired listener kept pulling)", m, d, depB)
				}
			}
		}
	}
	for _, slot := range []string{"production", "staging"} {
		for _, l := range logLines(s, "qa", slot, "host") {
			if strings.Contains(l, "queue function slow failed") || strings.Contains(l, "cut off") {
				t.Errorf("%s log: %s (an invocation failed or was cut off)", slot, l)
			}
		}
	}
	if l := listener(s, "qa", "production", "slow"); len(l.SharedWith) != 0 {
		t.Errorf("production slow listener = %+v, want no sharedWith (disabled in staging)", l)
	}
	_ = depA
}

// upload writes a blob, creating its container when missing.
func (st *storage) upload(containerName, name, content string) {
	st.t.Helper()
	c, err := st.acct.Container(containerName)
	if err != nil {
		st.t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Create(ctx, nil); err != nil && !strings.Contains(err.Error(), "ContainerAlreadyExists") {
		st.t.Fatal(err)
	}
	if _, err := c.NewBlockBlobClient(name).UploadBuffer(ctx, []byte(content), nil); err != nil {
		st.t.Fatal(err)
	}
}

// TestBlobTrigger: an uploaded blob runs the blob function once, with the
// name its path binds; after a server restart it does not run again (its
// receipt is in storage), while a new blob does.
func TestBlobTrigger(t *testing.T) {
	t.Parallel()
	st := startStorage(t)
	dir := t.TempDir()
	s := startServer(t, dir)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "qa"}, nil)
	setSettings(s, "qa", "production", map[string]any{"name": "Storage", "value": st.conn})
	dep := s.deploy("qa", "production", zipDir(t, queueAppPackage(t)))

	st.upload("uploads", "a.txt", "first")
	want := "blob got a.txt: first on " + dep
	eventually(t, "the blob function to log "+want, 60*time.Second, func() bool {
		ok, _ := s.logHas("qa", "production", "onblob", func(text string) bool { return text == want })
		return ok
	})
	s.main.Close()

	s = startServer(t, dir)
	st.upload("uploads", "b.txt", "second")
	want = "blob got b.txt: second on " + dep
	eventually(t, "the blob function to log "+want+" after the restart", 60*time.Second, func() bool {
		ok, _ := s.logHas("qa", "production", "onblob", func(text string) bool { return text == want })
		return ok
	})
	time.Sleep(time.Second)
	if got := logLines(s, "qa", "production", "onblob"); len(got) != 1 {
		t.Errorf("after the restart the blob function logged %q, want only b.txt (a.txt has its receipt)", got)
	}
}

// TestQueueTriggerSwapPreview: while staging's content is in preview under
// production's settings, it takes no message (work is disabled in staging
// by a sticky setting, and a preview pulls nothing); production's current
// deployment takes them all. After the swap completes, the new production
// content takes the messages.
func TestQueueTriggerSwapPreview(t *testing.T) {
	t.Parallel()
	st := startStorage(t)
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "qa"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/qa/slots", map[string]string{"name": "staging"}, nil)
	setSettings(s, "qa", "production", map[string]any{"name": "Storage", "value": st.conn, "slotSetting": true})
	setSettings(s, "qa", "staging",
		map[string]any{"name": "Storage", "value": st.conn, "slotSetting": true},
		map[string]any{"name": "AzureWebJobs.work.Disabled", "value": "true", "slotSetting": true})
	pkg := queueAppPackage(t)
	depA := s.deploy("qa", "production", zipDir(t, pkg))
	depB := s.deploy("qa", "staging", zipDir(t, pkg))

	ran := func() map[string]string { // message -> deployment
		got := make(map[string]string)
		for _, slot := range []string{"production", "staging"} {
			for _, l := range logLines(s, "qa", slot, "work") {
				rest, ok := strings.CutPrefix(l, "work got ")
				text, dep, ok2 := strings.Cut(rest, " on ")
				if ok && ok2 {
					got[text] = strings.Fields(dep)[0]
				}
			}
		}
		return got
	}
	s.must(http.StatusOK, "POST", "/api/v1/apps/qa/swap", map[string]any{"slot": "staging", "preview": true}, nil)
	for i := range 12 {
		st.send("work", fmt.Sprintf("p%d", i))
	}
	eventually(t, "the messages sent during the preview", 60*time.Second, func() bool { return len(ran()) == 12 })
	for m, dep := range ran() {
		if dep != depA {
			t.Errorf("message %s sent during the preview ran on %s, want %s (production's current content; the preview pulls nothing)", m, dep, depA)
		}
	}
	s.must(http.StatusOK, "POST", "/api/v1/apps/qa/swap/complete", nil, nil)
	time.Sleep(time.Second)
	for i := range 6 {
		st.send("work", fmt.Sprintf("c%d", i))
	}
	eventually(t, "the messages sent after the swap", 60*time.Second, func() bool { return len(ran()) == 18 })
	for m, dep := range ran() {
		if strings.HasPrefix(m, "c") && dep != depB {
			t.Errorf("message %s sent after the swap ran on %s, want %s", m, dep, depB)
		}
	}
}

// TestQueueTriggerMissingConnection: without its connection setting a queue
// function is not runnable, with the reason, and the deploy stands; once the
// setting is there it runs.
func TestQueueTriggerMissingConnection(t *testing.T) {
	t.Parallel()
	st := startStorage(t)
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "qa"}, nil)
	dep := s.deploy("qa", "production", zipDir(t, queueAppPackage(t)))
	var fn struct {
		Runnable bool
		Reason   string
	}
	s.must(http.StatusOK, "GET", "/api/v1/apps/qa/slots/production/functions/work", nil, &fn)
	if want := `binding "msg" (type queueTrigger): connection: app setting Storage is not set`; fn.Runnable || fn.Reason != want {
		t.Errorf("work = %+v, want not runnable with reason %q", fn, want)
	}
	if ok, lines := s.logHas("qa", "production", "host", func(text string) bool {
		return strings.Contains(text, "queue function work does not run: ") && strings.Contains(text, "app setting Storage is not set")
	}); !ok {
		t.Errorf("slot log has no line saying why work does not run: %v", lines)
	}
	if l := listener(s, "qa", "production", "work"); l.State != "not runnable" || !strings.Contains(l.Error, "app setting Storage is not set") {
		t.Errorf("work listener = %+v, want not runnable with the reason", l)
	}

	setSettings(s, "qa", "production", map[string]any{"name": "Storage", "value": st.conn})
	fn.Runnable, fn.Reason = false, ""
	s.must(http.StatusOK, "GET", "/api/v1/apps/qa/slots/production/functions/work", nil, &fn)
	if !fn.Runnable || fn.Reason != "" {
		t.Errorf("with its setting, work = %+v, want runnable", fn)
	}
	st.send("work", "now")
	want := "work got now on " + dep + " try 1"
	eventually(t, "the work function to log "+want, 60*time.Second, func() bool {
		ok, _ := s.logHas("qa", "production", "work", func(text string) bool { return text == want })
		return ok
	})
}

// drain takes every message from a queue (deleting them) and returns their
// decoded texts.
func (st *storage) drain(queue string) []string {
	st.t.Helper()
	q := st.queue(queue)
	var out []string
	for {
		resp, err := q.DequeueMessages(context.Background(), &azqueue.DequeueMessagesOptions{NumberOfMessages: ptrTo(int32(32)), VisibilityTimeout: ptrTo(int32(60))})
		if err != nil {
			if strings.Contains(err.Error(), "QueueNotFound") {
				return out
			}
			st.t.Fatal(err)
		}
		if len(resp.Messages) == 0 {
			return out
		}
		for _, m := range resp.Messages {
			b, err := base64.StdEncoding.DecodeString(*m.MessageText)
			if err != nil {
				st.t.Fatalf("relayed message %q is not base64: %v", *m.MessageText, err)
			}
			out = append(out, string(b))
			if _, err := q.DeleteMessage(context.Background(), *m.MessageID, *m.PopReceipt, nil); err != nil {
				st.t.Fatal(err)
			}
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestQueueTriggerStream: under a steady stream of messages, 20 swaps and 5
// deploys lose no message and cut off no invocation. The relay function
// copies each message to the queue relayed (an output binding), which the
// test reads back.
func TestQueueTriggerStream(t *testing.T) {
	t.Parallel()
	st := startStorage(t)
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "qa"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/qa/slots", map[string]string{"name": "staging"}, nil)
	setSettings(s, "qa", "production", map[string]any{"name": "Storage", "value": st.conn})
	setSettings(s, "qa", "staging", map[string]any{"name": "Storage", "value": st.conn})
	zip := zipDir(t, queueAppPackage(t))
	s.deploy("qa", "production", zip)
	s.deploy("qa", "staging", zip)

	st.send("stream", "s0-0")
	stop := make(chan struct{})
	sentc := make(chan []string)
	var sentN atomic.Int64
	const senders = 2
	for g := range senders {
		go func() {
			var sent []string
			defer func() { sentc <- sent }()
			q := st.queue("stream")
			for n := 1; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("s%d-%d", g, n)
				if _, err := q.EnqueueMessage(context.Background(), base64.StdEncoding.EncodeToString([]byte(text)), nil); err != nil {
					t.Errorf("send %s: %v", text, err)
					return
				}
				sent = append(sent, text)
				sentN.Add(1)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	// At least 20 swaps and 5 deploys, and on until 200 messages were
	// sent during them: Azurite takes its time on a loaded machine.
	began := time.Now()
	for i := 0; i < 20 || sentN.Load() < 200 && time.Since(began) < 2*time.Minute; i++ {
		s.must(http.StatusOK, "POST", "/api/v1/apps/qa/swap", map[string]string{"slot": "staging"}, nil)
		if i%4 == 0 {
			s.deploy("qa", "production", zip)
		}
		time.Sleep(150 * time.Millisecond) // a steady stream between the flips
	}
	close(stop)
	sent := []string{"s0-0"}
	for range senders {
		sent = append(sent, <-sentc...)
	}
	if len(sent) < 200 {
		t.Fatalf("only %d messages sent during the swaps; the test needs a stream", len(sent))
	}
	got := make(map[string]int)
	deadline := time.Now().Add(180 * time.Second)
	for len(got) < len(sent) && time.Now().Before(deadline) {
		for _, r := range st.drain("relayed") {
			text, _, _ := strings.Cut(r, " on ")
			got[text]++
		}
		time.Sleep(100 * time.Millisecond)
	}
	var missing []string
	for _, m := range sent {
		if got[m] == 0 {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		// Say where they are: still in the queue (hidden by a lease that
		// was not released) or gone.
		t.Errorf("%d of %d messages not relayed after 3 minutes: %s; queue stream holds %d (visible or not), stream-poison %d",
			len(missing), len(sent), strings.Join(missing[:min(len(missing), 20)], " "), st.count("stream"), st.count("stream-poison"))
		for _, slot := range []string{"production", "staging"} {
			t.Logf("%s relay listener: %+v", slot, listener(s, "qa", slot, "relay"))
		}
	}
	for _, slot := range []string{"production", "staging"} {
		for _, l := range logLines(s, "qa", slot, "host") {
			if strings.Contains(l, "queue function relay") {
				t.Errorf("%s log: %s (an invocation failed or was cut off)", slot, l)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d messages through 20 swaps and 5 deploys", len(sent))
	// Both slots take messages from the same queue: the API says so.
	if l := listener(s, "qa", "production", "relay"); len(l.SharedWith) != 1 || l.SharedWith[0] != "staging" {
		t.Errorf("production relay listener = %+v, want sharedWith [staging]", l)
	}
	// So does the slot page.
	u := newPortalUser(t, s)
	u.signIn(s.token)
	if _, page := u.get("/apps/qa/slots/production"); !strings.Contains(page, `data-testid="shared-relay">Slot staging also takes work from here`) ||
		!strings.Contains(page, `data-testid="listener-relay">`) {
		t.Errorf("the production slot page does not warn that staging takes relay's messages too")
	}
}

// TestQueueTriggerSurvivesKill: a message whose invocation is in the
// handler when the server is killed (SIGKILL) is not lost: after its lease
// (shortened to 6s here, 10 minutes by default) the restarted server runs
// it again, and only then deletes it.
func TestQueueTriggerSurvivesKill(t *testing.T) {
	t.Parallel()
	st := startStorage(t)
	dataDir := t.TempDir()
	p := startProc(t, dataDir, "HOTSWAP_TEST_QUEUE_LEASE=6s")
	s := p.server(t, dataDir)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "qa"}, nil)
	setSettings(s, "qa", "production", map[string]any{"name": "Storage", "value": st.conn})
	s.deploy("qa", "production", zipDir(t, queueAppPackage(t)))

	st.send("hang", "k1")
	// The message is in flight once it is hidden (fetched, lease running).
	eventually(t, "the message to be fetched", 60*time.Second, func() bool {
		resp, err := st.queue("hang").PeekMessages(context.Background(), nil)
		return err == nil && len(resp.Messages) == 0
	})
	time.Sleep(500 * time.Millisecond) // in the handler, which takes a minute on a first try
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	if n := st.count("hang"); n != 1 {
		t.Fatalf("after the kill the queue holds %d messages, want the one in flight", n)
	}

	p = startProc(t, dataDir, "HOTSWAP_TEST_QUEUE_LEASE=6s")
	s = p.server(t, dataDir)
	eventually(t, "the message to run again after its lease", 60*time.Second, func() bool {
		ok, _ := s.logHas("qa", "production", "hang", func(text string) bool { return text == "hang done k1 try 2" })
		return ok
	})
	eventually(t, "the message to be deleted", 30*time.Second, func() bool { return st.count("hang") == 0 })
}

// TestOrderFlow runs the gopayload example against Azurite as a user would:
// the HTTP function order enqueues an order, the queue-triggered fulfil
// writes its receipt blob, and the blob-triggered receipt fires on it; the
// HTTP function status reads the receipt through a blob input binding.
func TestOrderFlow(t *testing.T) {
	t.Parallel()
	st := startStorage(t)
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "shop"}, nil)
	setSettings(s, "shop", "production", map[string]any{"name": "AzureWebJobsStorage", "value": st.conn})
	s.deploy("shop", "production", zipDir(t, examplePackage(t, "gopayload")))

	resp, body := s.fn("POST", "shop.localhost", "/api/orders", nil, []byte(`{"id":"o7","item":"tea","quantity":2}`))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/orders = %d %s, want 202", resp.StatusCode, body)
	}
	want := `receipt o7.json: {"id":"o7","item":"tea","quantity":2,"status":"fulfilled"}`
	eventually(t, "the receipt function to log "+want, 90*time.Second, func() bool {
		ok, _ := s.logHas("shop", "production", "receipt", func(text string) bool { return text == want })
		return ok
	})
	if ok, lines := s.logHas("shop", "production", "fulfil", func(text string) bool { return text == "fulfilled order o7 (try 1)" }); !ok {
		t.Errorf("fulfil did not log the order: %v", lines)
	}
	eventually(t, "the order message to be deleted", 30*time.Second, func() bool { return st.count("orders") == 0 })
	// status reads the receipt through its blob input receipts/{id}.json.
	resp, body = s.fn("GET", "shop.localhost", "/api/orders/o7", nil, nil)
	if resp.StatusCode != http.StatusOK || string(body) != `{"id":"o7","item":"tea","quantity":2,"status":"fulfilled"}` {
		t.Errorf("GET /api/orders/o7 = %d %s, want 200 with the receipt", resp.StatusCode, body)
	}
	if resp, body = s.fn("GET", "shop.localhost", "/api/orders/o8", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /api/orders/o8 = %d %s, want 404 (no receipt)", resp.StatusCode, body)
	}
}
