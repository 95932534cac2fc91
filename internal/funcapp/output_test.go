package funcapp

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStorageOutputs(t *testing.T) {
	const httpIn = `{"type":"httpTrigger","direction":"in","name":"req","methods":["post"]}`
	for _, tc := range []struct {
		name     string
		bindings string
		outputs  []Output
		reason   string // "" when runnable
	}{
		{name: "http with a queue output",
			bindings: httpIn + `,{"type":"http","direction":"out","name":"res"},{"type":"queue","direction":"out","name":"msg","queueName":"orders","connection":"Store"}`,
			outputs:  []Output{{Name: "msg", Type: OutputQueue, Queue: "orders", Connection: "Store"}}},
		{name: "http with a blob output and a queue $return",
			bindings: httpIn + `,{"type":"http","direction":"out","name":"res"},{"type":"Blob","direction":"out","name":"doc","path":"out/{rand-guid}.json"},{"type":"queue","direction":"out","name":"$return","queueName":"q"}`,
			outputs:  []Output{{Name: "doc", Type: OutputBlob, Path: "out/{rand-guid}.json"}, {Name: "$return", Type: OutputQueue, Queue: "q"}}},
		{name: "timer with a queue output",
			bindings: `{"type":"timerTrigger","direction":"in","name":"t","schedule":"0 */5 * * * *"},{"type":"queue","direction":"out","name":"msg","queueName":"orders"}`,
			outputs:  []Output{{Name: "msg", Type: OutputQueue, Queue: "orders"}}},
		{name: "queue output without a queueName",
			bindings: httpIn + `,{"type":"http","direction":"out","name":"res"},{"type":"queue","direction":"out","name":"msg"}`,
			outputs:  []Output{{Name: "msg", Type: OutputQueue}},
			reason:   `binding "msg" (type queue): queueName is missing`},
		{name: "blob output path without a container",
			bindings: httpIn + `,{"type":"http","direction":"out","name":"res"},{"type":"blob","direction":"out","name":"b","path":"justname"}`,
			outputs:  []Output{{Name: "b", Type: OutputBlob, Path: "justname"}},
			reason:   `binding "b" (type blob): path "justname" is not container/name`},
		{name: "a queue binding that is not an output is not supported",
			bindings: httpIn + `,{"type":"http","direction":"out","name":"res"},{"type":"queue","direction":"in","name":"msg","queueName":"q"}`,
			reason:   `binding "msg" (type queue) is not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFunction("fn", []byte(`{"bindings":[`+tc.bindings+`]}`))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(f.Outputs, tc.outputs); diff != "" {
				t.Errorf("outputs (-got +want):\n%s", diff)
			}
			if tc.reason == "" {
				if !f.Runnable {
					t.Errorf("not runnable: %s", f.Reason)
				}
			} else if f.Runnable || !strings.Contains(f.Reason, tc.reason) {
				t.Errorf("runnable %v, reason %q; want not runnable with %q", f.Runnable, f.Reason, tc.reason)
			}
			if f.Forward {
				t.Error("a function with more than an http output is forwarded")
			}
		})
	}
}
