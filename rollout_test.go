package hotswap

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseStrategy(t *testing.T) {
	for _, c := range []struct {
		in   string
		step time.Duration
		want string // Strategy.String()
	}{
		{"canary:10,25,50", 2 * time.Minute, "10% for 2m, 25% for 2m, 50% for 2m, then swap"},
		{"canary:10", 0, "10% for 5m, then swap"},
		{" canary: 5%, 20 ", time.Second, "5% for 1s, 20% for 1s, then swap"},
		{"Canary10Percent5Minutes", 0, "10% for 5m, then swap"},
		{"canary10percent30minutes", 0, "10% for 30m, then swap"},
		{"Linear10PercentEvery1Minute", 0, "10% for 1m, 20% for 1m, 30% for 1m, 40% for 1m, 50% for 1m, 60% for 1m, 70% for 1m, 80% for 1m, 90% for 1m, then swap"},
		{"Linear25PercentEvery3Minutes", 0, "25% for 3m, 50% for 3m, 75% for 3m, then swap"},
		{"AllAtOnce", 0, "swap at once"},
	} {
		st, err := ParseStrategy(c.in, c.step)
		if err != nil || st.String() != c.want {
			t.Errorf("ParseStrategy(%q, %v) = %q, %v; want %q", c.in, c.step, st.String(), err, c.want)
		}
	}
	for _, c := range []struct {
		in   string
		step time.Duration
		want string
	}{
		{"", 0, "empty"},
		{"blue-green", 0, "unknown"},
		{"canary:", 0, "is not a number"},
		{"canary:10,x", 0, `share 2, "x", is not a number`},
		{"canary:50,25", 0, "does not rise"},
		{"canary:0", 0, "not between 0 and 100"},
		{"canary:100", 0, "not between 0 and 100"},
		{"canary:NaN", 0, "not a number"},
		{"canary:10", 500 * time.Millisecond, "duration 500ms is not between"},
		{"canary:10", 48 * time.Hour, "is not between"},
		{"Canary10Percent5Minutes", time.Minute, "a preset sets its own step"},
		{"Canary10Percent0Minutes", 0, "is not between"},
		{"Linear0PercentEvery1Minute", 0, "more than 0%"},
		{"Linear1PercentEvery1Minute", 0, "at most 20"},
		{"canary:" + strings.Repeat("1,", 30) + "1", 0, "31 steps, at most 20"},
	} {
		if _, err := ParseStrategy(c.in, c.step); err == nil || ErrorKind(err) != Invalid || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseStrategy(%q, %v) = %v; want Invalid with %q", c.in, c.step, err, c.want)
		}
	}
}

func TestParseAnalysis(t *testing.T) {
	a, err := ParseAnalysis("maxErrorRate=1%, maxP95=300ms ,MINREQUESTS=200")
	if err != nil || a != (Analysis{MaxErrorRate: 0.01, MaxP95: Duration(300 * time.Millisecond), MinRequests: 200}) {
		t.Fatalf("ParseAnalysis = %+v, %v", a, err)
	}
	if got := a.String(); got != "maxErrorRate=1%,maxP95=300ms,minRequests=200" {
		t.Errorf("String() = %q", got)
	}
	if a, err := ParseAnalysis(""); err != nil || !a.IsZero() || a.String() != "none" {
		t.Errorf("empty analysis = %+v, %v", a, err)
	}
	for _, c := range []struct{ in, want string }{
		{"maxErrorRate", "is not key=value"},
		{"maxErrorRate=", "is not key=value"},
		{"maxErrorRate=0%", "would fail a step on its first error"},
		{"maxErrorRate=101%", "not a percent"},
		{"maxErrorRate=-1", "not a percent"},
		{"maxErrorRate=NaN", "not a percent"},
		{"maxP95=0s", "maxP95"},
		{"maxP95=2m", "maxP95"},
		{"minRequests=-1", "minRequests"},
		{"minRequests=1.5", "minRequests"},
		{"maxErrorRate=1%,maxErrorRate=2%", "given twice"},
		{"p99=3s", `unknown key "p99"`},
	} {
		if _, err := ParseAnalysis(c.in); err == nil || ErrorKind(err) != Invalid || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseAnalysis(%q) = %v; want Invalid with %q", c.in, err, c.want)
		}
	}
	for _, bad := range []Analysis{{MaxErrorRate: math.NaN()}, {MaxErrorRate: 2}, {MaxP95: Duration(-1)}, {MinRequests: -5}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(RolloutStep{Percent: 10, Duration: Duration(90 * time.Second)})
	if err != nil || string(b) != `{"percent":10,"duration":"1m30s"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var st RolloutStep
	if err := json.Unmarshal([]byte(`{"percent":10,"duration":"2m"}`), &st); err != nil || time.Duration(st.Duration) != 2*time.Minute {
		t.Errorf("Unmarshal = %+v, %v", st, err)
	}
	if err := json.Unmarshal([]byte(`{"duration":"soon"}`), &st); err == nil {
		t.Error("a duration of \"soon\" was accepted")
	}
	if err := json.Unmarshal([]byte(`{"duration":true}`), &st); err == nil {
		t.Error("a duration of true was accepted")
	}
}

// FuzzParseStrategy: any text either fails with Invalid or gives a
// strategy that validates, whose steps rise, and that parses the same from
// its own name.
func FuzzParseStrategy(f *testing.F) {
	for _, s := range []string{"canary:10,25,50", "Canary10Percent5Minutes", "Linear10PercentEvery1Minute", "AllAtOnce", "canary:1e400", "canary:,", "canary:99.999"} {
		f.Add(s, int64(0))
		f.Add(s, int64(time.Minute))
	}
	f.Fuzz(func(t *testing.T, s string, step int64) {
		st, err := ParseStrategy(s, time.Duration(step))
		if err != nil {
			if ErrorKind(err) != Invalid {
				t.Fatalf("ParseStrategy(%q) error of kind %v: %v", s, ErrorKind(err), err)
			}
			return
		}
		if err := st.Validate(); err != nil {
			t.Fatalf("ParseStrategy(%q) gave a strategy that does not validate: %v", s, err)
		}
		again, err := ParseStrategy(st.Name, time.Duration(step))
		if err != nil || again.String() != st.String() {
			t.Fatalf("ParseStrategy(%q) = %q, but its name parses to %q, %v", s, st, again, err)
		}
	})
}

// FuzzParseAnalysis: any text either fails with Invalid or gives an
// analysis that validates and round-trips through String.
func FuzzParseAnalysis(f *testing.F) {
	for _, s := range []string{"maxErrorRate=1%,maxP95=300ms,minRequests=200", "minRequests=0", "maxErrorRate=0.5", "maxP95=1m", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAnalysis(s)
		if err != nil {
			if ErrorKind(err) != Invalid {
				t.Fatalf("ParseAnalysis(%q) error of kind %v: %v", s, ErrorKind(err), err)
			}
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("ParseAnalysis(%q) = %+v, which does not validate: %v", s, a, err)
		}
		if a.IsZero() {
			return
		}
		b, err := ParseAnalysis(a.String())
		if err != nil || b.MaxP95 != a.MaxP95 || b.MinRequests != a.MinRequests || math.Abs(b.MaxErrorRate-a.MaxErrorRate) > 1e-4 {
			t.Fatalf("ParseAnalysis(%q) = %+v; its String %q parses to %+v, %v", s, a, a.String(), b, err)
		}
	})
}
