package funcapp

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Output binding types hotswap writes, besides http.
const (
	OutputQueue = "queue"
	OutputBlob  = "blob"
)

// Output is an output binding other than http: after a successful
// invocation, the handler's value for it (Outputs[Name], or ReturnValue for
// $return) is written to its target.
type Output struct {
	Name string // binding name; "$return" for the return value
	Type string // OutputQueue or OutputBlob
	// Queue is the queue name (queue outputs), and Path the blob path
	// "container/name" (blob outputs), as written: they may hold binding
	// expressions such as {name}, {rand-guid}, {DateTime} and %setting%.
	Queue, Path string
	// Connection names the app setting with the storage connection; ""
	// means AzureWebJobsStorage.
	Connection string
}

// storageOutput reads a non-trigger binding that is a queue or blob output.
// ok is false when b is not one; why is set when it is one that is not
// valid, and the function is then not runnable.
func storageOutput(b *Binding, raw json.RawMessage) (o Output, ok bool, why string) {
	typ := strings.ToLower(b.Type)
	if typ != OutputQueue && typ != OutputBlob || !strings.EqualFold(b.Direction, "out") {
		return Output{}, false, ""
	}
	var p struct {
		QueueName  string `json:"queueName"`
		Path       string `json:"path"`
		Connection string `json:"connection"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return Output{}, true, fmt.Sprintf("binding %q (type %s) is not valid: %v", b.Name, b.Type, err)
	}
	o = Output{Name: b.Name, Type: typ, Queue: strings.TrimSpace(p.QueueName), Path: strings.TrimSpace(p.Path), Connection: strings.TrimSpace(p.Connection)}
	switch typ {
	case OutputQueue:
		if o.Queue == "" {
			return o, true, fmt.Sprintf("binding %q (type queue): queueName is missing", b.Name)
		}
	case OutputBlob:
		c, n, _ := strings.Cut(o.Path, "/")
		if c == "" || n == "" {
			return o, true, fmt.Sprintf("binding %q (type blob): path %q is not container/name", b.Name, o.Path)
		}
	}
	return o, true, ""
}
