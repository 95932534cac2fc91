package hotswap

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestDeploymentJSON: a deployment's status is written by name, and a
// running deployment has no endedAt instead of a zero date.
func TestDeploymentJSON(t *testing.T) {
	d := Deployment{ID: "d-1", Status: DeploySuccess, StatusText: "success", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	for _, want := range []string{`"status":"success"`, `"createdAt":"2026-01-02T03:04:05Z"`} {
		if !strings.Contains(got, want) {
			t.Errorf("JSON %s lacks %s", got, want)
		}
	}
	for _, unwanted := range []string{"startedAt", "endedAt", "0001-01-01"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("JSON %s has %s", got, unwanted)
		}
	}

	for _, tc := range []struct {
		in   string
		want DeploymentStatus
	}{{`"failed"`, DeployFailed}, {`"success"`, DeploySuccess}, {`4`, DeploySuccess}, {`0`, DeployPending}} {
		var s DeploymentStatus
		if err := json.Unmarshal([]byte(tc.in), &s); err != nil || s != tc.want {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", tc.in, s, err, tc.want)
		}
	}
	var s DeploymentStatus
	if err := json.Unmarshal([]byte(`"done"`), &s); err == nil {
		t.Errorf("Unmarshal(\"done\") succeeded, want an error")
	}
}
