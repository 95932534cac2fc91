package funcapp

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Input is a blob input binding: before the function runs, the blob at Path
// is read and passed in Data under Name (null when there is no such blob).
// hotswap reads them for every trigger: queue, blob, HTTP (payload mode)
// and timer.
type Input struct {
	Name string
	// Path is "container/name" as written: it may hold binding expressions
	// such as {name} or {queueTrigger}, and %setting%.
	Path string
	// Connection names the app setting with the storage connection; ""
	// means AzureWebJobsStorage.
	Connection string
}

// storageInput reads a non-trigger binding that is a blob input. ok is
// false when b is not one; why is set when it is one that cannot run, and
// the function is then not runnable.
func storageInput(b *Binding, raw json.RawMessage) (in Input, ok bool, why string) {
	if !strings.EqualFold(b.Type, "blob") || !strings.EqualFold(b.Direction, "in") {
		return Input{}, false, ""
	}
	var p struct {
		Path       string `json:"path"`
		Connection string `json:"connection"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return Input{}, true, fmt.Sprintf("binding %q (type blob) is not valid: %v", b.Name, err)
	}
	in = Input{Name: b.Name, Path: strings.TrimSpace(p.Path), Connection: strings.TrimSpace(p.Connection)}
	if c, n, _ := strings.Cut(in.Path, "/"); c == "" || n == "" {
		return in, true, fmt.Sprintf("binding %q (type blob): path %q is not container/name", b.Name, in.Path)
	}
	return in, true, ""
}
