package binding

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/hotswap/hotswap/internal/azstorage"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// inputTimeout bounds reading one blob input.
const inputTimeout = 5 * time.Minute

// ReadInputs reads fn's blob input bindings into data, by binding name:
// each blob's text as a JSON string (base64 if it is not UTF-8, see
// BlobData), or null when there is no such blob, as the Functions host
// passes a missing blob. vals are the names the trigger binds, for the
// path's expressions ({name}, {queueTrigger}, {Query.id}...); {rand-guid},
// {DateTime} and %setting% work everywhere. A blob of more than max bytes
// fails, as does a storage error: the error names the binding.
func ReadInputs(ctx context.Context, fn *funcapp.Function, settings, vals map[string]string, max int64, data map[string]json.RawMessage) error {
	for _, in := range fn.Inputs {
		v, err := readInput(ctx, in, settings, vals, max)
		if err != nil {
			return fmt.Errorf("input binding %q (type blob): %w", in.Name, err)
		}
		data[in.Name] = v
	}
	return nil
}

func readInput(ctx context.Context, in funcapp.Input, settings, vals map[string]string, max int64) (json.RawMessage, error) {
	acct, err := azstorage.Resolve(settings, in.Connection)
	if err != nil {
		return nil, fmt.Errorf("connection: %w", err)
	}
	path, err := InputPath(in, settings, vals, time.Now())
	if err != nil {
		return nil, err
	}
	cname, name, _ := strings.Cut(path, "/")
	c, err := acct.Container(cname)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, inputTimeout)
	defer cancel()
	resp, err := c.NewBlobClient(name).DownloadStream(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return json.RawMessage("null"), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", path, azstorage.Redact(err))
	}
	defer resp.Body.Close()
	if resp.ContentLength != nil && *resp.ContentLength > max {
		return nil, fmt.Errorf("blob %s is %d bytes, more than the %d an input binding passes", path, *resp.ContentLength, max)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", path, azstorage.Redact(err))
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("blob %s is more than the %d bytes an input binding passes", path, max)
	}
	return BlobData(b), nil
}

// InputPath is the blob path of in for one invocation: %setting% from the
// app settings, then the binding expressions from vals (see
// azstorage.Expand). It fails when a name has no value or the result is not
// container/name.
func InputPath(in funcapp.Input, settings, vals map[string]string, now time.Time) (string, error) {
	path, err := azstorage.ExpandSettings(in.Path, settings)
	if err != nil {
		return "", err
	}
	if path, err = azstorage.Expand(path, vals, now); err != nil {
		return "", err
	}
	if c, n, _ := strings.Cut(path, "/"); c == "" || n == "" {
		return "", fmt.Errorf("path %q is not container/name", path)
	}
	return path, nil
}

// CheckInputs returns why fn's blob inputs cannot be read with the app
// settings (a connection or %setting% missing), or nil. The error names the
// binding and never holds a setting's value.
func CheckInputs(fn *funcapp.Function, settings map[string]string) error {
	for _, in := range fn.Inputs {
		if _, err := azstorage.Resolve(settings, in.Connection); err != nil {
			return fmt.Errorf("binding %q (type blob): connection: %w", in.Name, err)
		}
		if _, err := azstorage.ExpandSettings(in.Path, settings); err != nil {
			return fmt.Errorf("binding %q (type blob): %w", in.Name, err)
		}
	}
	return nil
}

// BlobData is a blob as a function gets it: its text as a JSON string, or,
// when it is not UTF-8 text, its bytes in base64.
func BlobData(content []byte) json.RawMessage {
	s := string(content)
	if !utf8.Valid(content) {
		s = base64.StdEncoding.EncodeToString(content)
	}
	b, _ := json.Marshal(s)
	return b
}
