package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hotswap/hotswap"
)

// fakeClock is the events' time, moved by the test.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func testOp(id, app string, at time.Time) hotswap.Operation {
	return hotswap.Operation{ID: id, App: app, Kind: "deploy", Slot: "staging", State: hotswap.OpRunning, StartedAt: at}
}

// TestEventsRecordAndEnd: phases are numbered and timed from the start;
// after the end nothing more is recorded; the record is kept a few
// minutes, then forgotten.
func TestEventsRecordAndEnd(t *testing.T) {
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{start}
	h := &events{now: clock.now}
	h.begin(testOp("op-1", "orders", start))
	if evs, ok := h.get("op-1"); !ok || len(evs) != 0 {
		t.Fatalf("after begin: %v, %v; want known with no event", evs, ok)
	}
	clock.t = start.Add(1500 * time.Millisecond)
	h.publish("op-1", "starting", "handler of deployment d-1", false, hotswap.OpRunning)
	clock.t = start.Add(3 * time.Second)
	h.publish("op-1", PhaseDone, "", true, hotswap.OpSucceeded)
	if _, ok := h.publish("op-1", "late", "", false, hotswap.OpRunning); ok {
		t.Error("a phase after the end was recorded")
	}
	got, _ := h.get("op-1")
	want := []OperationEvent{
		{OpID: "op-1", App: "orders", Slot: "staging", Kind: "deploy", Phase: "starting", Detail: "handler of deployment d-1", At: start.Add(1500 * time.Millisecond), Elapsed: 1500 * time.Millisecond, State: "running", Seq: 1},
		{OpID: "op-1", App: "orders", Slot: "staging", Kind: "deploy", Phase: "done", At: start.Add(3 * time.Second), Elapsed: 3 * time.Second, End: true, State: "succeeded", Seq: 2},
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("events (-got +want):\n%s", d)
	}
	clock.t = start.Add(3*time.Second + keepEnded - time.Second)
	if _, ok := h.get("op-1"); !ok {
		t.Error("a finished operation was forgotten before keepEnded")
	}
	clock.t = start.Add(3*time.Second + keepEnded + time.Second)
	if evs, ok := h.get("op-1"); ok {
		t.Errorf("a finished operation is still kept after keepEnded: %v", evs)
	}
}

// TestEventsBounded: an operation keeps its newest maxOpEvents events, and
// at most maxEndedOps finished operations are kept.
func TestEventsBounded(t *testing.T) {
	start := time.Now()
	h := &events{}
	h.begin(testOp("op-long", "orders", start))
	for i := range maxOpEvents + 10 {
		h.publish("op-long", fmt.Sprint("phase ", i), "", false, hotswap.OpRunning)
	}
	h.publish("op-long", PhaseDone, "", true, hotswap.OpSucceeded)
	evs, _ := h.get("op-long")
	if len(evs) != maxOpEvents {
		t.Fatalf("kept %d events, want %d", len(evs), maxOpEvents)
	}
	if last := evs[len(evs)-1]; !last.End || last.Seq != maxOpEvents+11 {
		t.Errorf("last kept event = %+v, want the end, number %d", last, maxOpEvents+11)
	}
	for i := range maxEndedOps + 5 {
		id := fmt.Sprint("op-", i)
		h.begin(testOp(id, "orders", start))
		h.publish(id, PhaseDone, "", true, hotswap.OpSucceeded)
	}
	h.begin(testOp("op-running", "orders", start)) // prunes
	if _, ok := h.get("op-long"); ok {
		t.Error("the oldest finished operation is kept beyond maxEndedOps")
	}
	if n := len(h.ops); n > maxEndedOps+1 {
		t.Errorf("%d operations kept, want at most %d finished and the running one", n, maxEndedOps)
	}
	if _, ok := h.get("op-running"); !ok {
		t.Error("the running operation was pruned")
	}
}

// TestEventsSlowSubscriber: a subscriber that reads nothing never blocks a
// publish; it keeps the newest events, the end among them.
func TestEventsSlowSubscriber(t *testing.T) {
	h := &events{}
	ch, cancel := h.subscribe("orders")
	defer cancel()
	other, cancelOther := h.subscribe("billing")
	defer cancelOther()
	h.begin(testOp("op-1", "orders", time.Now()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 * subscriberBuf {
			h.publish("op-1", fmt.Sprint("phase ", i), "", false, hotswap.OpRunning)
		}
		h.publish("op-1", PhaseFailed, "boom", true, hotswap.OpFailed)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publishing blocked on a subscriber that reads nothing")
	}
	var last OperationEvent
	n := 0
	for len(ch) > 0 {
		last = <-ch
		n++
	}
	if n != subscriberBuf || !last.End || last.Detail != "boom" {
		t.Errorf("subscriber got %d events ending with %+v; want %d ending with the end", n, last, subscriberBuf)
	}
	if len(other) != 0 {
		t.Errorf("a subscriber of another app got %d events", len(other))
	}
}

// TestEventsChanged: the channel from changed is closed by the next event.
func TestEventsChanged(t *testing.T) {
	h := &events{}
	h.begin(testOp("op-1", "orders", time.Now()))
	c := h.changed()
	select {
	case <-c:
		t.Fatal("closed before any event")
	default:
	}
	h.publish("op-1", "starting", "", false, hotswap.OpRunning)
	select {
	case <-c:
	default:
		t.Fatal("not closed by an event")
	}
}

// TestOperationEventJSON: the field names and elapsed time in ms of the
// API's events.
func TestOperationEventJSON(t *testing.T) {
	e := OperationEvent{OpID: "op-1", App: "orders", Slot: "staging", Kind: "deploy", Phase: "starting", At: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Elapsed: 2100 * time.Millisecond, State: "running", Seq: 3}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"opId":"op-1","app":"orders","slot":"staging","kind":"deploy","phase":"starting","detail":"","at":"2026-12-01T12:00:00Z","elapsedMs":2100,"end":false,"state":"running","seq":3}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
	var back OperationEvent
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(back, e); d != "" {
		t.Errorf("round trip (-got +want):\n%s", d)
	}
}

// TestBackgroundReturnsRefusal: Background answers the error of a request
// refused before it began an operation.
func TestBackgroundReturnsRefusal(t *testing.T) {
	s, _ := testService(t, 0)
	_, err := s.Background(context.Background(), func(ctx context.Context) error {
		_, err := s.Swap(ctx, SwapRequest{App: "nope", Source: "staging"})
		return err
	})
	if hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("Background of a swap of a missing app = %v, want NotFound", err)
	}
}
