package funcapp

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseHost(t *testing.T) {
	tests := []struct {
		name string
		json string
		want *Host
	}{
		{
			name: "minimal",
			json: `{"version": "2.0", "customHandler": {"description": {"defaultExecutablePath": "handler"}}}`,
			want: &Host{ExecutablePath: "handler", RoutePrefix: "api"},
		},
		{
			name: "full",
			json: `{"customHandler": {"description": {"defaultExecutablePath": "bin/handler", "workingDirectory": "./app/", "arguments": ["-v", "%X%"]},
				"enableForwardingHttpRequest": true}, "extensions": {"http": {"routePrefix": "/v1/fn/"}}, "logging": {"logLevel": {"default": "Information"}}}`,
			want: &Host{ExecutablePath: "bin/handler", WorkingDirectory: "app", Arguments: []string{"-v", "%X%"}, EnableForwarding: true, RoutePrefix: "v1/fn"},
		},
		{
			name: "empty prefix",
			json: `{"customHandler": {"description": {"defaultExecutablePath": "node", "arguments": ["index.js"]}}, "extensions": {"http": {"routePrefix": ""}}}`,
			want: &Host{ExecutablePath: "node", Arguments: []string{"index.js"}, RoutePrefix: ""},
		},
		{
			name: "keys are case-insensitive",
			json: `{"CustomHandler": {"Description": {"DefaultExecutablePath": "h", "WorkingDirectory": "."}, "EnableForwardingHTTPRequest": true}, "Extensions": {"HTTP": {"RoutePrefix": "/"}}}`,
			want: &Host{ExecutablePath: "h", EnableForwarding: true, RoutePrefix: ""},
		},
		{
			name: "executable relative to the working directory may go up to the root",
			json: `{"customHandler": {"description": {"defaultExecutablePath": "../handler", "workingDirectory": "app"}}}`,
			want: &Host{ExecutablePath: "../handler", WorkingDirectory: "app", RoutePrefix: "api"},
		},
		{
			name: "queues",
			json: `{"customHandler": {"description": {"defaultExecutablePath": "h"}}, "extensions": {"queues": {"batchSize": 4, "maxPollingInterval": "00:00:02",
				"visibilityTimeout": "00:00:01.5", "maxDequeueCount": 2, "messageEncoding": "None"}}}`,
			want: &Host{ExecutablePath: "h", RoutePrefix: "api", Queues: QueueOptions{BatchSize: 4, NewBatchThreshold: 2,
				MaxPollingInterval: 2 * time.Second, VisibilityTimeout: 1500 * time.Millisecond, MaxDequeueCount: 2}},
		},
		{
			name: "queues: polling interval in milliseconds, threshold set",
			json: `{"customHandler": {"description": {"defaultExecutablePath": "h"}}, "extensions": {"queues": {"maxPollingInterval": 2000, "newBatchThreshold": 0}}}`,
			want: &Host{ExecutablePath: "h", RoutePrefix: "api", Queues: QueueOptions{BatchSize: 16, NewBatchThreshold: 0,
				MaxPollingInterval: 2 * time.Second, MaxDequeueCount: 5, Base64: true}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHost([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.Queues == (QueueOptions{}) {
				tc.want.Queues = DefaultQueueOptions()
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ParseHost mismatch (-got +want):\n%s", diff)
			}
		})
	}
}

func TestParseHostErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want string
	}{
		{"empty", ``, `host.json: file is empty`},
		{"syntax", "{\n  \"customHandler\": {,\n}", `host.json: invalid JSON at line 2, column 21: invalid character ',' looking for beginning of object key string`},
		{"not an object", `[]`, `host.json: want a JSON object, got array`},
		{"no customHandler", `{"version": "2.0"}`, `host.json: customHandler is missing`},
		{"no description", `{"customHandler": {}}`, `host.json: customHandler.description is missing`},
		{"no executable", `{"customHandler": {"description": {"arguments": []}}}`, `host.json: customHandler.description.defaultExecutablePath is missing`},
		{"blank executable", `{"customHandler": {"description": {"defaultExecutablePath": "  "}}}`, `host.json: customHandler.description.defaultExecutablePath is missing`},
		{"wrong version", `{"version": "1.0", "customHandler": {"description": {"defaultExecutablePath": "h"}}}`, `host.json: version "1.0" is not supported (want "2.0")`},
		{"executable type", `{"customHandler": {"description": {"defaultExecutablePath": 5}}}`, `host.json: customHandler.description.defaultExecutablePath: want a string, got number`},
		{"arguments type", `{"customHandler": {"description": {"defaultExecutablePath": "h", "arguments": "-v"}}}`, `host.json: customHandler.description.arguments: want an array, got string`},
		{"forwarding type", `{"customHandler": {"description": {"defaultExecutablePath": "h"}, "enableForwardingHttpRequest": "yes"}}`, `host.json: customHandler.enableForwardingHttpRequest: want a boolean, got string`},
		{"absolute executable", `{"customHandler": {"description": {"defaultExecutablePath": "/usr/bin/node"}}}`, `host.json: customHandler.description.defaultExecutablePath "/usr/bin/node" must be relative to the app root or a command name`},
		{"executable escapes", `{"customHandler": {"description": {"defaultExecutablePath": "../../h", "workingDirectory": "a"}}}`, `host.json: customHandler.description.defaultExecutablePath "../../h" escapes the app root`},
		{"working directory escapes", `{"customHandler": {"description": {"defaultExecutablePath": "h", "workingDirectory": "a/../.."}}}`, `host.json: customHandler.description.workingDirectory "a/../.." escapes the app root`},
		{"absolute working directory", `{"customHandler": {"description": {"defaultExecutablePath": "h", "workingDirectory": "/srv"}}}`, `host.json: customHandler.description.workingDirectory "/srv" must be a path relative to the app root`},
		{"prefix empty segment", `{"customHandler": {"description": {"defaultExecutablePath": "h"}}, "extensions": {"http": {"routePrefix": "a//b"}}}`, `host.json: extensions.http.routePrefix "a//b" has an empty segment`},
		{"prefix brace", `{"customHandler": {"description": {"defaultExecutablePath": "h"}}, "extensions": {"http": {"routePrefix": "{x}"}}}`, `host.json: extensions.http.routePrefix "{x}": character '{' is not allowed`},
		{"queues batch size", `{"customHandler": {"description": {"defaultExecutablePath": "h"}}, "extensions": {"queues": {"batchSize": 33}}}`, `host.json: extensions.queues.batchSize 33 is not between 1 and 32`},
		{"queues polling", `{"customHandler": {"description": {"defaultExecutablePath": "h"}}, "extensions": {"queues": {"maxPollingInterval": "2s"}}}`, `host.json: extensions.queues.maxPollingInterval "2s" is not a time span such as "00:00:30"`},
		{"queues polling too short", `{"customHandler": {"description": {"defaultExecutablePath": "h"}}, "extensions": {"queues": {"maxPollingInterval": 50}}}`, `host.json: extensions.queues.maxPollingInterval 50ms is less than 100ms`},
		{"queues encoding", `{"customHandler": {"description": {"defaultExecutablePath": "h"}}, "extensions": {"queues": {"messageEncoding": "utf8"}}}`, `host.json: extensions.queues.messageEncoding "utf8" is not base64 or none`},
		{"queues dequeue count", `{"customHandler": {"description": {"defaultExecutablePath": "h"}}, "extensions": {"queues": {"maxDequeueCount": 0}}}`, `host.json: extensions.queues.maxDequeueCount 0 is less than 1`},
		{"trailing data", `{"customHandler": {"description": {"defaultExecutablePath": "h"}}} x`, `host.json: invalid JSON at line 1, column 68: invalid character 'x' after top-level value`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHost([]byte(tc.json))
			checkInvalid(t, err, tc.want)
			if got != nil {
				t.Errorf("host = %+v, want nil", got)
			}
		})
	}
}

func TestExpandArgs(t *testing.T) {
	settings := map[string]string{"PORT": "8080", "EMPTY": "", "PCT": "%PORT%"}
	lookup := func(k string) (string, bool) { v, ok := settings[k]; return v, ok }
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"nil", nil, nil},
		{"plain", []string{"a", "b"}, []string{"a", "b"}},
		{"setting", []string{"--port=%PORT%"}, []string{"--port=8080"}},
		{"two settings", []string{"%PORT%:%PORT%"}, []string{"8080:8080"}},
		{"unknown kept", []string{"%NOPE%-%PORT%"}, []string{"%NOPE%-8080"}},
		{"empty value", []string{"[%EMPTY%]"}, []string{"[]"}},
		{"escaped percent", []string{"100%%", "%%PORT%%"}, []string{"100%", "%PORT%"}},
		{"lone percent", []string{"50% off"}, []string{"50% off"}},
		{"no recursion", []string{"%PCT%"}, []string{"%PORT%"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ExpandArgs(tc.args, lookup)
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ExpandArgs(%q) mismatch (-got +want):\n%s", tc.args, diff)
			}
		})
	}
}
