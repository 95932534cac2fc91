package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/hotswap/hotswap/internal/azstorage"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// readInputs reads fn's blob input bindings into data, by binding name:
// each blob's text as a JSON string (base64 if it is not UTF-8, see
// blobData), or null when there is no such blob, as the Functions host
// passes a missing blob. vals are the trigger's bound names, for the path's
// expressions ({name}, {queueTrigger}, {id} of a JSON message...).
func readInputs(ctx context.Context, fn *funcapp.Function, settings, vals map[string]string, data map[string]json.RawMessage) error {
	for _, in := range fn.Inputs {
		v, err := readInput(ctx, in, settings, vals)
		if err != nil {
			return fmt.Errorf("input binding %q (type blob): %w", in.Name, err)
		}
		data[in.Name] = v
	}
	return nil
}

func readInput(ctx context.Context, in funcapp.Input, settings, vals map[string]string) (json.RawMessage, error) {
	acct, err := azstorage.Resolve(settings, in.Connection)
	if err != nil {
		return nil, fmt.Errorf("connection: %w", err)
	}
	path, err := azstorage.ExpandSettings(in.Path, settings)
	if err != nil {
		return nil, err
	}
	if path, err = azstorage.Expand(path, vals, time.Now()); err != nil {
		return nil, err
	}
	cname, name, _ := strings.Cut(path, "/")
	if name == "" {
		return nil, fmt.Errorf("path %q is not container/name", path)
	}
	c, err := acct.Container(cname)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	resp, err := c.NewBlobClient(name).DownloadStream(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return json.RawMessage("null"), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, blobMaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", path, err)
	}
	if len(b) > blobMaxSize {
		return nil, fmt.Errorf("blob %s is more than the %d bytes an input binding passes", path, blobMaxSize)
	}
	return blobData(b), nil
}

// checkInputs returns why fn's blob inputs cannot be read with the app
// settings (a connection or %setting% missing), or nil.
func checkInputs(fn *funcapp.Function, settings map[string]string) error {
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
