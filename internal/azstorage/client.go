package azstorage

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
)

// httpClient is shared by every client this package makes, so connections
// to a storage account are pooled across functions and invocations. Its
// fields are set once here and never changed.
var httpClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	},
}

// clientOptions bounds the SDK's retries (its default is 3 tries of up to a
// minute each): an output write or a poll must fail within about a minute
// and a half, not hold an invocation for several.
var clientOptions = azcore.ClientOptions{
	Transport: httpClient,
	Retry: policy.RetryOptions{
		MaxRetries: 2,
		TryTimeout: 30 * time.Second,
	},
	Telemetry: policy.TelemetryOptions{ApplicationID: "hotswap"},
}

// Queue returns a client for the named queue of the account. It checks the
// name (3 to 63 lowercase letters, digits and single hyphens, as Azure
// requires) so a bad queueName fails here with a clear error rather than as
// a 400 from the service.
func (a Account) Queue(name string) (*azqueue.QueueClient, error) {
	if err := checkName("queue", name); err != nil {
		return nil, err
	}
	if a.QueueEndpoint == "" {
		return nil, invalid("%s has no queue endpoint", a)
	}
	u := a.QueueEndpoint + "/" + name
	opts := &azqueue.ClientOptions{ClientOptions: clientOptions}
	switch {
	case a.Key != "":
		cred, err := azqueue.NewSharedKeyCredential(a.Name, a.Key)
		if err != nil {
			return nil, invalid("account %s: the key is not valid base64", a.Name)
		}
		return azqueue.NewQueueClientWithSharedKeyCredential(u, cred, opts)
	case a.SAS != "":
		return azqueue.NewQueueClientWithNoCredential(u+"?"+a.SAS, opts)
	}
	return azqueue.NewQueueClientWithNoCredential(u, opts)
}

// Container returns a client for the named blob container of the account,
// after checking the name as Queue does.
func (a Account) Container(name string) (*container.Client, error) {
	if err := checkName("container", name); err != nil {
		return nil, err
	}
	if a.BlobEndpoint == "" {
		return nil, invalid("%s has no blob endpoint", a)
	}
	u := a.BlobEndpoint + "/" + name
	opts := &container.ClientOptions{ClientOptions: clientOptions}
	switch {
	case a.Key != "":
		cred, err := container.NewSharedKeyCredential(a.Name, a.Key)
		if err != nil {
			return nil, invalid("account %s: the key is not valid base64", a.Name)
		}
		return container.NewClientWithSharedKeyCredential(u, cred, opts)
	case a.SAS != "":
		return container.NewClientWithNoCredential(u+"?"+a.SAS, opts)
	}
	return container.NewClientWithNoCredential(u, opts)
}

// checkName applies Azure's rule for queue and container names.
func checkName(kind, name string) error {
	ok := len(name) >= 3 && len(name) <= 63 && !strings.Contains(name, "--") &&
		name[0] != '-' && name[len(name)-1] != '-'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return invalid("%s name %q: use 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit", kind, clipName(name))
	}
	return nil
}

func clipName(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// storageError is a failed storage request, told in one line: what was
// done, the HTTP status and Azure's error code, and for 401/403 a hint about
// the credential. It unwraps to the SDK's *azcore.ResponseError, so callers
// can test codes with queueerror.HasCode or bloberror.HasCode.
type storageError struct {
	op  string
	err error
}

func (e *storageError) Error() string {
	var re *azcore.ResponseError
	if !errors.As(e.err, &re) {
		return e.op + ": " + e.err.Error()
	}
	s := fmt.Sprintf("%s: %d %s", e.op, re.StatusCode, re.ErrorCode)
	if re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized {
		s += " (the storage account refused the credential: check the connection's AccountKey or SharedAccessSignature)"
	}
	return s
}

func (e *storageError) Unwrap() error { return e.err }

func storageErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return &storageError{op: op, err: Redact(err)}
}
