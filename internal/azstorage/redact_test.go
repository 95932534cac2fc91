package azstorage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A network failure (*url.Error, holding the request's URL) reaches no
// error with the shared access signature or the URL's user info.
func TestRedactSAS(t *testing.T) {
	t.Parallel()
	acct, err := ParseConnectionString("BlobEndpoint=http://127.0.0.1:1/acct;QueueEndpoint=http://127.0.0.1:1/acct;SharedAccessSignature=sv=2022-11-02&sig=SECRETSIG")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := []error{
		WriteQueue(ctx, acct, "orders", json.RawMessage(`"x"`), true),
		WriteBlob(ctx, acct, "out/a.txt", json.RawMessage(`"x"`)),
	}
	for _, err := range errs {
		if err == nil {
			t.Fatal("writing to a closed port succeeded")
		}
		if strings.Contains(err.Error(), "SECRETSIG") || strings.Contains(err.Error(), "sig=") {
			t.Errorf("the SAS leaked: %v", err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%v does not say where", err)
		}
	}
	wrapped := fmt.Errorf("read: %w", &url.Error{Op: "Get", URL: "https://user:pw@a.blob.core.windows.net/c/b?sv=1&sig=S", Err: errors.New("timeout")})
	if got, want := Redact(wrapped).Error(), `read: Get "https://a.blob.core.windows.net/c/b": timeout`; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if Redact(nil) != nil {
		t.Error("Redact(nil) != nil")
	}
}
