package main

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"

	"github.com/hotswap/hotswap/internal/azstorage"
	"github.com/hotswap/hotswap/internal/azurite"
)

// outPackage builds the outapp test handler (its functions answer with the
// outputs a request asks for) into a new folder, with function.json files
// for the given functions: name -> extra output bindings beside an
// anonymous POST httpTrigger "req" on route <name>/{id} and the http output
// "res".
func outPackage(t testing.TB, fns map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "outapp")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repoRoot(), "cmd/hotswap/testdata/outapp"))); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "handler"), "./cmd/hotswap/testdata/outapp")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build outapp: %v\n%s", err, out)
	}
	if err := os.Remove(filepath.Join(dir, "main.go")); err != nil {
		t.Fatal(err)
	}
	for name, outs := range fns {
		fj := `{"bindings": [{"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": "anonymous", "methods": ["post"], "route": "` + name + `/{id}"},
			{"type": "http", "direction": "out", "name": "res"}, ` + outs + `]}`
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "function.json"), []byte(fj), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHTTPOutputBindings: an HTTP function with queue and blob output
// bindings runs in payload mode against a real Azurite: its http output
// answers the caller, a queue output enqueues a string, an object (JSON) or
// an array (one message each, base64 as host.json's default
// messageEncoding), a blob output writes the blob at its expanded path. A
// failed function writes nothing; a failed write is a 500 and a slot-log
// line naming the binding, without the key; a missing connection setting
// makes the function not runnable (404) with the reason, and the deploy
// stands.
func TestHTTPOutputBindings(t *testing.T) {
	t.Parallel()
	az := azurite.Start(t)
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "shop"}, nil)
	const badKey = "QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5QmFkS2V5"
	s.setSettings("shop", "production", false,
		"AzureWebJobsStorage", az.ConnectionString(),
		"BadStore", strings.Replace(az.ConnectionString(), azurite.Key, badKey, 1),
		"OrdersQueue", "orders")
	pkg := outPackage(t, map[string]string{
		"send": `{"type": "queue", "direction": "out", "name": "msg", "queueName": "%OrdersQueue%"},
			{"type": "blob", "direction": "out", "name": "doc", "path": "docs/{id}.json", "connection": "AzureWebJobsStorage"},
			{"type": "queue", "direction": "out", "name": "$return", "queueName": "returns"}`,
		"badconn": `{"type": "queue", "direction": "out", "name": "msg", "queueName": "bad", "connection": "BadStore"}`,
		"noconn":  `{"type": "queue", "direction": "out", "name": "msg", "queueName": "none", "connection": "Missing"}`,
	})
	s.deploy("shop", "production", zipDir(t, pkg))

	acct, err := azstorage.ParseConnectionString(az.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// drain returns the texts of the messages on queue (base64-decoded),
	// removing them; none when the queue does not exist.
	drain := func(queue string) []string {
		t.Helper()
		q, err := acct.Queue(queue)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			resp, err := q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: ptr(int32(32))})
			if queueerror.HasCode(err, queueerror.QueueNotFound) {
				return got
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Messages) == 0 {
				return got
			}
			for _, m := range resp.Messages {
				b, err := base64.StdEncoding.DecodeString(*m.MessageText)
				if err != nil {
					t.Fatalf("message %q on %s is not base64: %v", *m.MessageText, queue, err)
				}
				got = append(got, string(b))
				if _, err := q.DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	blob := func(container, name string) (string, bool) {
		t.Helper()
		c, err := acct.Container(container)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.NewBlobClient(name).DownloadStream(ctx, nil)
		if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), true
	}
	call := func(path, body string) (int, string) {
		t.Helper()
		resp, b := s.fn("POST", "shop.localhost", path, map[string]string{"Content-Type": "application/json"}, []byte(body))
		return resp.StatusCode, string(b)
	}

	for _, tc := range []struct {
		name   string
		body   string
		orders []string // messages on orders
		ret    []string // messages on returns ($return)
	}{
		{name: "string", body: `{"outputs":{"msg":"hello"}}`, orders: []string{"hello"}},
		{name: "object", body: `{"outputs":{"msg":{"id":7,"item":"tea"}}}`, orders: []string{`{"id":7,"item":"tea"}`}},
		{name: "array", body: `{"outputs":{"msg":["a",{"b":2},3]}}`, orders: []string{"a", `{"b":2}`, "3"}},
		{name: "return value", body: `{"returnValue":"back"}`, ret: []string{"back"}},
		{name: "null writes nothing", body: `{"outputs":{"msg":null}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := call("/api/send/x", tc.body); status != 200 || body != "done" {
				t.Fatalf("send = %d %q, want 200 done", status, body)
			}
			if got := drain("orders"); !slices.Equal(got, tc.orders) {
				t.Errorf("orders = %q, want %q", got, tc.orders)
			}
			if got := drain("returns"); !slices.Equal(got, tc.ret) {
				t.Errorf("returns = %q, want %q", got, tc.ret)
			}
		})
	}

	t.Run("blob", func(t *testing.T) {
		if status, body := call("/api/send/o42", `{"outputs":{"doc":{"order":42}}}`); status != 200 || body != "done" {
			t.Fatalf("send = %d %q, want 200 done", status, body)
		}
		if got, ok := blob("docs", "o42.json"); !ok || got != `{"order":42}` {
			t.Errorf("blob docs/o42.json = %q (found %v), want {\"order\":42}", got, ok)
		}
	})

	t.Run("failed function writes nothing", func(t *testing.T) {
		status, _ := call("/api/send/f1", `{"outputs":{"msg":"never","doc":"never"},"fail":true}`)
		if status != http.StatusInternalServerError {
			t.Errorf("status = %d, want 500", status)
		}
		if got := drain("orders"); len(got) != 0 {
			t.Errorf("a failed function enqueued %q", got)
		}
		if _, ok := blob("docs", "f1.json"); ok {
			t.Error("a failed function wrote its blob")
		}
	})

	t.Run("failed write", func(t *testing.T) {
		status, body := call("/api/badconn/x", `{"outputs":{"msg":"lost"}}`)
		if status != http.StatusInternalServerError || body == "done" {
			t.Errorf("badconn = %d %q, want 500 and not the http output", status, body)
		}
		found, lines := s.logHas("shop", "production", "host", func(text string) bool {
			return strings.Contains(text, "of badconn failed") && strings.Contains(text, `output binding "msg" (type queue)`)
		})
		if !found {
			t.Errorf("no slot-log line names the failed binding: %+v", lines)
		}
		for _, l := range lines {
			if strings.Contains(l.Text, badKey) || strings.Contains(l.Text, azurite.Key) {
				t.Errorf("the slot log holds an account key: %q", l.Text)
			}
		}
	})

	t.Run("missing connection", func(t *testing.T) {
		var fn struct {
			Runnable bool
			Reason   string
		}
		s.must(http.StatusOK, "GET", "/api/v1/apps/shop/slots/production/functions/noconn", nil, &fn)
		if fn.Runnable || !strings.Contains(fn.Reason, `binding "msg" (type queue)`) || !strings.Contains(fn.Reason, "Missing is not set") {
			t.Errorf("noconn = %+v, want not runnable, saying app setting Missing is not set", fn)
		}
		if status, _ := call("/api/noconn/x", `{"outputs":{"msg":"x"}}`); status != http.StatusNotFound {
			t.Errorf("noconn answered %d, want 404", status)
		}
		// Setting it makes the function run, without a deploy.
		s.setSettings("shop", "production", false, "Missing", az.ConnectionString())
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, body := call("/api/noconn/x", `{"outputs":{"msg":"now"}}`)
			if status == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("noconn still answers %d %q after its setting was set", status, body)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got := drain("none"); !slices.Equal(got, []string{"now"}) {
			t.Errorf("none = %q, want [now]", got)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestTimerOutputBinding: a timer function's queue output is written after
// each run, and its Logs reach the slot log.
func TestTimerOutputBinding(t *testing.T) {
	t.Parallel()
	az := azurite.Start(t)
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "clock"}, nil)
	s.setSettings("clock", "production", false, "AzureWebJobsStorage", az.ConnectionString())
	pkg := outPackage(t, nil)
	if err := os.MkdirAll(filepath.Join(pkg, "tick"), 0o755); err != nil {
		t.Fatal(err)
	}
	fj := `{"bindings": [{"type": "timerTrigger", "direction": "in", "name": "t", "schedule": "*/1 * * * * *"},
		{"type": "queue", "direction": "out", "name": "msg", "queueName": "ticks"}]}`
	if err := os.WriteFile(filepath.Join(pkg, "tick", "function.json"), []byte(fj), 0o644); err != nil {
		t.Fatal(err)
	}
	s.deploy("clock", "production", zipDir(t, pkg))

	acct, err := azstorage.ParseConnectionString(az.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	q, err := acct.Queue("ticks")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := q.PeekMessages(context.Background(), nil)
		if err == nil && len(resp.Messages) > 0 {
			b, err := base64.StdEncoding.DecodeString(*resp.Messages[0].MessageText)
			if err != nil || string(b) != "tick from tick" {
				t.Errorf("message = %q (%v), want base64 of \"tick from tick\"", *resp.Messages[0].MessageText, err)
			}
			break
		}
		if err != nil && !queueerror.HasCode(err, queueerror.QueueNotFound) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			_, lines := s.logHas("clock", "production", "host", func(string) bool { return false })
			t.Fatalf("no message on ticks after 30s; log: %+v", lines)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if found, lines := s.logHas("clock", "production", "tick", func(text string) bool { return text == "timer tick" }); !found {
		t.Errorf("the timer's Logs are not in the slot log: %+v", lines)
	}
}
