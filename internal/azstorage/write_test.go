package azstorage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/sas"
	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/azurite"
)

func TestQueueMessages(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"string", `"hello"`, []string{"hello"}},
		{"string with escapes", `"a\"b\n\u00e9"`, []string{"a\"b\né"}},
		{"object", `{"id": 1, "item":"tea"}`, []string{`{"id": 1, "item":"tea"}`}},
		{"number", ` 42 `, []string{"42"}},
		{"bool", `true`, []string{"true"}},
		{"array", `["a", {"b":2}, 3, null, ["c"]]`, []string{"a", `{"b":2}`, "3", `["c"]`}},
		{"empty array", `[]`, []string{}},
		{"null", `null`, nil},
		{"empty", ``, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := QueueMessages(json.RawMessage(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("QueueMessages(%s) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
	for _, bad := range []string{`{`, `"unterminated`, `[1,`, `nope`, `[1] 2`} {
		if _, err := QueueMessages(json.RawMessage(bad)); err == nil || hotswap.ErrorKind(err) != hotswap.Invalid {
			t.Errorf("QueueMessages(%s) error %v, want Invalid", bad, err)
		}
	}
}

func TestBlobBytes(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"string", `"line 1\nline 2"`, "line 1\nline 2", true},
		{"object", `{"a": [1, 2]}`, `{"a": [1, 2]}`, true},
		{"array", `[1,2]`, `[1,2]`, true},
		{"null", `null`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := BlobBytes(json.RawMessage(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want || ok != tc.ok {
				t.Errorf("BlobBytes(%s) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, _, err := BlobBytes(json.RawMessage(`{x}`)); err == nil {
		t.Error("BlobBytes of invalid JSON: no error")
	}
}

func TestSplitBlobPath(t *testing.T) {
	for _, tc := range []struct{ in, c, b, err string }{
		{in: "out/report.txt", c: "out", b: "report.txt"},
		{in: "out/2024/05/report.txt", c: "out", b: "2024/05/report.txt"},
		{in: "report.txt", err: "want container/name"},
		{in: "out/", err: "want container/name"},
		{in: "Out/x", err: `container name "Out"`},
		{in: "a-/x", err: `container name "a-"`},
		{in: "a--b/x", err: `container name "a--b"`},
		{in: "ab/x", err: `container name "ab"`},
		{in: "out/" + strings.Repeat("x", 1025), err: "at most 1024"},
	} {
		c, b, err := SplitBlobPath(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SplitBlobPath(%.30q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || c != tc.c || b != tc.b {
			t.Errorf("SplitBlobPath(%q) = %q, %q, %v; want %q, %q", tc.in, c, b, err, tc.c, tc.b)
		}
	}
}

func TestQueueName(t *testing.T) {
	var a Account // no network: the name is checked first
	for _, name := range []string{"", "ab", "Orders", "orders_1", "-orders", "orders-", "or--ders", strings.Repeat("q", 64)} {
		if _, err := a.Queue(name); err == nil || !strings.Contains(err.Error(), "queue name") {
			t.Errorf("Queue(%q) error %v, want a queue name error", name, err)
		}
	}
	if _, err := (Account{}).Queue("orders"); err == nil || !strings.Contains(err.Error(), "no queue endpoint") {
		t.Errorf("Queue on an account without a queue endpoint: %v", err)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// receive dequeues every message of the queue (up to 32) and decodes them.
func receive(t *testing.T, ctx context.Context, acct Account, queue string, b64 bool) []string {
	t.Helper()
	q, err := acct.Queue(queue)
	if err != nil {
		t.Fatal(err)
	}
	res, err := q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: to.Ptr(int32(32))})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, m := range res.Messages {
		text := *m.MessageText
		if b64 {
			b, err := base64.StdEncoding.DecodeString(text)
			if err != nil {
				t.Fatalf("message %q is not base64: %v", text, err)
			}
			text = string(b)
		}
		got = append(got, text)
	}
	return got
}

func TestWriteQueueAzurite(t *testing.T) {
	t.Parallel()
	srv := azurite.Start(t)
	acct, err := ParseConnectionString(srv.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	writes := []string{`"hello <queue> & ünïcode"`, `{"order":1,"items":["tea"]}`, `["a", {"b":2}, 3]`}
	want := []string{"hello <queue> & ünïcode", `{"order":1,"items":["tea"]}`, "a", `{"b":2}`, "3"}
	for _, b64 := range []bool{true, false} {
		queue := "orders-base64"
		if !b64 {
			queue = "orders-none"
		}
		for _, w := range writes { // the first write creates the queue
			if err := WriteQueue(ctx, acct, queue, json.RawMessage(w), b64); err != nil {
				t.Fatalf("WriteQueue(%s): %v", w, err)
			}
		}
		got := receive(t, ctx, acct, queue, b64)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("queue %s messages mismatch (-want +got):\n%s", queue, diff)
		}
	}
	// A raw (encoding none) message must be the text itself, not base64.
	if err := WriteQueue(ctx, acct, "orders-none", json.RawMessage(`"plain"`), false); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, ctx, acct, "orders-none", false); !cmp.Equal(got, []string{"plain"}) {
		t.Errorf("raw message %q, want [plain]", got)
	}

	big := json.RawMessage(`"` + strings.Repeat("x", 50<<10) + `"`) // 50 KiB, 67 KiB in base64
	if err := WriteQueue(ctx, acct, "orders-big", big, true); err == nil || !strings.Contains(err.Error(), "over the 65536-byte limit") {
		t.Errorf("oversized message: error %v", err)
	}
	if err := WriteQueue(ctx, acct, "orders-big", big, false); err != nil {
		t.Errorf("50 KiB raw message: %v", err)
	}
}

func TestWriteBlobAzurite(t *testing.T) {
	t.Parallel()
	srv := azurite.Start(t)
	acct, err := ParseConnectionString(srv.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	download := func(path string) string {
		t.Helper()
		cname, name, err := SplitBlobPath(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := acct.Container(cname)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.NewBlobClient(name).DownloadStream(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct{ path, value, want string }{
		{"results/order-1.txt", `"done: tea\n"`, "done: tea\n"},
		{"results/2024/05/order-2.json", `{"order":2}`, `{"order":2}`},
		{"results/order-1.txt", `"replaced"`, "replaced"}, // an existing blob is replaced
	} {
		if err := WriteBlob(ctx, acct, tc.path, json.RawMessage(tc.value)); err != nil {
			t.Fatalf("WriteBlob(%s): %v", tc.path, err)
		}
		if got := download(tc.path); got != tc.want {
			t.Errorf("blob %s = %q, want %q", tc.path, got, tc.want)
		}
	}
}

// TestCredentialsAzurite checks that the emulator enforces the key, so the
// success above proves the signing: a wrong key fails with a clear error
// that does not show the key.
func TestCredentialsAzurite(t *testing.T) {
	t.Parallel()
	srv := azurite.Start(t)
	ctx := testContext(t)
	wrongKey := base64.StdEncoding.EncodeToString([]byte("this is not the devstoreaccount1 key"))
	wrong, err := ParseConnectionString(strings.Replace(srv.ConnectionString(), azurite.Key, wrongKey, 1))
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"queue": WriteQueue(ctx, wrong, "orders", json.RawMessage(`"x"`), true),
		"blob":  WriteBlob(ctx, wrong, "results/x.txt", json.RawMessage(`"x"`)),
	} {
		if err == nil {
			t.Fatalf("%s write with a wrong key: no error", name)
		}
		msg := err.Error()
		if !strings.Contains(msg, "403") || !strings.Contains(msg, "refused the credential") {
			t.Errorf("%s write with a wrong key: error %q, want a 403 that names the credential", name, msg)
		}
		if strings.Contains(msg, wrongKey) || strings.Contains(msg, "\n") {
			t.Errorf("%s write error is not one line without the key: %q", name, msg)
		}
	}

	// A SAS made with the real key works through the SAS form.
	right, err := ParseConnectionString(srv.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	q, err := right.Queue("sas-orders")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Create(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cred, err := azqueue.NewSharedKeyCredential(azurite.Account, azurite.Key)
	if err != nil {
		t.Fatal(err)
	}
	qp, err := sas.QueueSignatureValues{
		Version:     sas.Version,
		Protocol:    sas.ProtocolHTTPSandHTTP, // Azurite speaks http
		ExpiryTime:  time.Now().Add(time.Hour).UTC(),
		Permissions: (&sas.QueuePermissions{Add: true, Read: true, Process: true}).String(),
		QueueName:   "sas-orders",
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	sig := qp.Encode()
	sas, err := ParseConnectionString("QueueEndpoint=" + srv.QueueEndpoint + ";SharedAccessSignature=" + sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteQueue(ctx, sas, "sas-orders", json.RawMessage(`"via sas"`), true); err != nil {
		t.Fatalf("WriteQueue with a SAS: %v", err)
	}
	if got := receive(t, ctx, sas, "sas-orders", true); !cmp.Equal(got, []string{"via sas"}) {
		t.Errorf("SAS queue messages %q, want [via sas]", got)
	}
}
