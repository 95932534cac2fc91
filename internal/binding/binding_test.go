package binding

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap/internal/azstorage"
	"github.com/hotswap/hotswap/internal/azurite"
	"github.com/hotswap/hotswap/internal/funcapp"
	"github.com/hotswap/hotswap/internal/invoke"
)

func parse(t testing.TB, name, bindings string) *funcapp.Function {
	t.Helper()
	f, err := funcapp.ParseFunction(name, []byte(`{"bindings":[{"type":"httpTrigger","direction":"in","name":"req"},{"type":"http","direction":"out","name":"res"},`+bindings+`]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Runnable {
		t.Fatalf("%s is not runnable: %s", name, f.Reason)
	}
	return f
}

const devKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

func TestCheck(t *testing.T) {
	good := "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + devKey + ";QueueEndpoint=http://127.0.0.1:1/devstoreaccount1;BlobEndpoint=http://127.0.0.1:2/devstoreaccount1"
	for _, tc := range []struct {
		name     string
		bindings string
		settings map[string]string
		want     string // in the error; "" for none
	}{
		{name: "default connection", bindings: `{"type":"queue","direction":"out","name":"msg","queueName":"q"}`,
			settings: map[string]string{"AzureWebJobsStorage": good}},
		{name: "development storage", bindings: `{"type":"blob","direction":"out","name":"b","path":"c/{id}","connection":"Dev"}`,
			settings: map[string]string{"Dev": "UseDevelopmentStorage=true"}},
		{name: "missing default", bindings: `{"type":"queue","direction":"out","name":"msg","queueName":"q"}`,
			want: `binding "msg" (type queue): connection: app setting AzureWebJobsStorage is not set`},
		{name: "missing named", bindings: `{"type":"queue","direction":"out","name":"msg","queueName":"q","connection":"Orders"}`,
			settings: map[string]string{"AzureWebJobsStorage": good}, want: "Orders is not set"},
		{name: "invalid", bindings: `{"type":"queue","direction":"out","name":"msg","queueName":"q"}`,
			settings: map[string]string{"AzureWebJobsStorage": "AccountName=x;AccountKey=not base64!"}, want: `binding "msg" (type queue): connection: app setting AzureWebJobsStorage`},
		{name: "queue name from a missing setting", bindings: `{"type":"queue","direction":"out","name":"msg","queueName":"%QueueName%"}`,
			settings: map[string]string{"AzureWebJobsStorage": good}, want: "app setting QueueName is not set"},
		{name: "queue name from a setting", bindings: `{"type":"queue","direction":"out","name":"msg","queueName":"%QueueName%"}`,
			settings: map[string]string{"AzureWebJobsStorage": good, "QueueName": "orders"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := parse(t, "fn", tc.bindings)
			err := Check(f, tc.settings)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Check = %v, want an error saying %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "not base64!") {
				t.Errorf("the error echoes the key: %v", err)
			}
			reasons := Reasons(&funcapp.App{Functions: []*funcapp.Function{f}}, tc.settings)
			if got := reasons["fn"]; (err == nil) != (got == "") {
				t.Errorf("Reasons = %q, Check = %v", reasons, err)
			}
		})
	}
}

// TestWriteOutputs writes to a real Azurite: expressions in the blob path
// are expanded from the bound names and the clock, queue names from app
// settings, and a failed write names its binding.
func TestWriteOutputs(t *testing.T) {
	az := azurite.Start(t)
	settings := map[string]string{"AzureWebJobsStorage": az.ConnectionString(), "Q": "Jobs"}
	f := parse(t, "fn", `{"type":"queue","direction":"out","name":"msg","queueName":"%Q%"},
		{"type":"blob","direction":"out","name":"doc","path":"out/{id}-{DateTime}.txt"},
		{"type":"blob","direction":"out","name":"bad","path":"out/{nope}"}`)
	now := time.Date(2026, 12, 1, 18, 30, 5, 0, time.UTC)
	w := &Writer{Now: func() time.Time { return now }}
	app := &funcapp.App{Functions: []*funcapp.Function{f}, Host: &funcapp.Host{Queues: funcapp.DefaultQueueOptions()}}
	app.Host.Queues.Base64 = false
	ctx := context.Background()
	res := invoke.Result{Outputs: map[string]json.RawMessage{"msg": json.RawMessage(`"job 1"`), "doc": json.RawMessage(`"text"`)}}
	if err := w.WriteOutputs(ctx, app, settings, f, res, map[string]string{"id": "a1"}); err != nil {
		t.Fatal(err)
	}
	acct, err := azstorage.Resolve(settings, "")
	if err != nil {
		t.Fatal(err)
	}
	q, err := acct.Queue("jobs")
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.PeekMessages(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != 1 || *got.Messages[0].MessageText != "job 1" {
		t.Errorf("queue jobs holds %d messages, want one \"job 1\" (messageEncoding none)", len(got.Messages))
	}
	c, err := acct.Container("out")
	if err != nil {
		t.Fatal(err)
	}
	dl, err := c.NewBlobClient("a1-2026-12-01T18-30-05Z.txt").DownloadStream(ctx, nil)
	if err != nil {
		t.Fatalf("blob out/a1-2026-12-01T18-30-05Z.txt: %v", err)
	}
	b, _ := io.ReadAll(dl.Body)
	dl.Body.Close()
	if string(b) != "text" {
		t.Errorf("blob = %q, want text", b)
	}

	res.Outputs["bad"] = json.RawMessage(`"x"`)
	err = w.WriteOutputs(ctx, app, settings, f, res, map[string]string{"id": "a2"})
	if err == nil || !strings.Contains(err.Error(), `output binding "bad" (type blob)`) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("err = %v, want one naming the binding bad and the name nope", err)
	}
}
