package binding

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hotswap/hotswap/internal/funcapp"
)

// A blob input that cannot be read over the network fails without the
// connection's shared access signature in the error (it reaches the slot
// log and an HTTP caller's 500).
func TestReadInputsHidesSAS(t *testing.T) {
	t.Parallel()
	settings := map[string]string{"Docs": "BlobEndpoint=http://127.0.0.1:1/acct;SharedAccessSignature=sv=2022-11-02&sig=SECRETSIG"}
	fn := &funcapp.Function{Name: "f", Inputs: []funcapp.Input{{Name: "doc", Path: "docs/a.txt", Connection: "Docs"}}}
	err := ReadInputs(context.Background(), fn, settings, nil, 1<<20, map[string]json.RawMessage{})
	if err == nil {
		t.Fatal("reading from a closed port succeeded")
	}
	if strings.Contains(err.Error(), "SECRETSIG") || strings.Contains(err.Error(), "sig=") {
		t.Errorf("the SAS leaked: %v", err)
	}
	if !strings.Contains(err.Error(), "docs/a.txt") {
		t.Errorf("%v does not say which blob", err)
	}
}
