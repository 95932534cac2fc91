package trigger

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		max  time.Duration
		want []time.Duration
	}{
		{"default maximum", time.Minute, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 12800 * ms, 25600 * ms, 51200 * ms, time.Minute, time.Minute}},
		{"short maximum", 300 * ms, []time.Duration{100 * ms, 200 * ms, 300 * ms, 300 * ms}},
		{"maximum at the minimum", 100 * ms, []time.Duration{100 * ms, 100 * ms}},
		{"zero value", 0, []time.Duration{100 * ms, 100 * ms, 100 * ms}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := backoff{max: tc.max}
			var got []time.Duration
			for range tc.want {
				got = append(got, b.next())
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("waits (-got +want):\n%s", diff)
			}
			b.reset()
			if got := b.next(); got != 100*ms {
				t.Errorf("after reset: next = %v, want 100ms", got)
			}
		})
	}
}
