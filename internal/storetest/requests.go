package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
)

// requestStore is the release engine's request inbox (internal/release
// cluster.go), which both stores keep.
type requestStore interface {
	AddReleaseRequest(ctx context.Context, r hotswap.ReleaseRequest) error
	TakeReleaseRequests(ctx context.Context, node string) ([]hotswap.ReleaseRequest, error)
	AnswerReleaseRequest(ctx context.Context, id, result string) error
	CancelReleaseRequest(ctx context.Context, id string) (bool, error)
	GetReleaseRequest(ctx context.Context, id string) (hotswap.ReleaseRequest, error)
	PruneReleaseRequests(ctx context.Context, before time.Time) error
}

func init() {
	tests = append(tests,
		test{"ReleaseRequests", testReleaseRequests},
		test{"ReleaseRequestsTakenOnce", testReleaseRequestsTakenOnce})
}

func requests(t *testing.T, e *env) requestStore {
	t.Helper()
	rs, ok := e.Store.(requestStore)
	if !ok {
		t.Fatalf("%T does not keep release requests", e.Store)
	}
	return rs
}

// testReleaseRequests: a request waits until taken or withdrawn, is taken
// once, keeps its first answer, and a taken one cannot be withdrawn.
func testReleaseRequests(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := requests(t, open(t))
	for _, id := range []string{"q-1", "q-2", "q-3"} {
		if err := db.AddReleaseRequest(ctx, hotswap.ReleaseRequest{ID: id, Kind: "decide", Args: `{"stage":"prod"}`, Node: "n-b"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddReleaseRequest(ctx, hotswap.ReleaseRequest{ID: "q-1", Kind: "abandon", Args: "{}", Node: "n-c"}); hotswap.ErrorKind(err) != hotswap.Conflict {
		t.Errorf("adding an id twice: err = %v, want Conflict", err)
	}
	q, err := db.GetReleaseRequest(ctx, "q-1")
	if err != nil {
		t.Fatal(err)
	}
	if q.Kind != "decide" || q.Args != `{"stage":"prod"}` || q.Node != "n-b" || q.CreatedAt.IsZero() || q.TakenBy != "" || !q.TakenAt.IsZero() || !q.DoneAt.IsZero() || q.Result != "" {
		t.Errorf("a new request = %+v", q)
	}
	if ok, err := db.CancelReleaseRequest(ctx, "q-2"); !ok || err != nil {
		t.Errorf("withdrawing a waiting request = %v, %v; want true", ok, err)
	}
	if ok, err := db.CancelReleaseRequest(ctx, "q-2"); ok || err != nil {
		t.Errorf("withdrawing it again = %v, %v; want false", ok, err)
	}

	got, err := db.TakeReleaseRequests(ctx, "n-a")
	if err != nil {
		t.Fatal(err)
	}
	if ids := requestIDs(got); ids != "q-1 q-3" {
		t.Errorf("taken %s, want q-1 q-3 oldest first (q-2 was withdrawn)", ids)
	}
	for _, q := range got {
		if q.TakenBy != "n-a" || q.TakenAt.IsZero() {
			t.Errorf("taken request %s: by %q at %v", q.ID, q.TakenBy, q.TakenAt)
		}
	}
	if again, err := db.TakeReleaseRequests(ctx, "n-b"); len(again) != 0 || err != nil {
		t.Errorf("taking again = %s, %v; want nothing", requestIDs(again), err)
	}
	if ok, err := db.CancelReleaseRequest(ctx, "q-1"); ok || err != nil {
		t.Errorf("withdrawing a taken request = %v, %v; want false", ok, err)
	}

	if err := db.AnswerReleaseRequest(ctx, "q-1", `{"release":{}}`); err != nil {
		t.Fatal(err)
	}
	if err := db.AnswerReleaseRequest(ctx, "q-1", `{"error":{}}`); err != nil {
		t.Errorf("answering twice: %v", err)
	}
	q, err = db.GetReleaseRequest(ctx, "q-1")
	if err != nil || q.DoneAt.IsZero() || q.Result != `{"release":{}}` || q.TakenBy != "n-a" {
		t.Errorf("the answered request = %+v, %v; want its first answer", q, err)
	}
	if q, err := db.GetReleaseRequest(ctx, "q-2"); err != nil || q.DoneAt.IsZero() || q.Result != "" || q.TakenBy != "" {
		t.Errorf("the withdrawn request = %+v, %v; want done, no result, not taken", q, err)
	}
	if err := db.AnswerReleaseRequest(ctx, "q-9", "{}"); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("answering an unknown request: err = %v, want NotFound", err)
	}
	if _, err := db.GetReleaseRequest(ctx, "q-9"); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("getting an unknown request: err = %v, want NotFound", err)
	}

	// Pruning drops what was made before the time given, answered or not.
	q3, err := db.GetReleaseRequest(ctx, "q-3")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PruneReleaseRequests(ctx, q3.CreatedAt); err != nil {
		t.Fatal(err)
	}
	for id, kept := range map[string]bool{"q-1": false, "q-2": false, "q-3": true} {
		_, err := db.GetReleaseRequest(ctx, id)
		if kept && err != nil || !kept && hotswap.ErrorKind(err) != hotswap.NotFound {
			t.Errorf("after pruning before q-3, get %s: err = %v (kept: %v)", id, err, kept)
		}
	}
}

// testReleaseRequestsTakenOnce: of concurrent takers, each request goes to
// exactly one.
func testReleaseRequestsTakenOnce(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := requests(t, open(t))
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := make(map[string]int)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				got, err := db.TakeReleaseRequests(ctx, fmt.Sprintf("n-%d", w))
				if err != nil {
					t.Errorf("take: %v", err)
					return
				}
				mu.Lock()
				for _, q := range got {
					taken[q.ID]++
				}
				done := len(taken) == n
				mu.Unlock()
				if done {
					return
				}
			}
		}()
	}
	for i := range n {
		if err := db.AddReleaseRequest(ctx, hotswap.ReleaseRequest{ID: fmt.Sprintf("q-%02d", i), Kind: "decide", Args: "{}", Node: "n-x"}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if len(taken) != n {
		t.Errorf("%d of %d requests taken", len(taken), n)
	}
	for id, times := range taken {
		if times != 1 {
			t.Errorf("request %s taken %d times", id, times)
		}
	}
}

func requestIDs(qs []hotswap.ReleaseRequest) string {
	ids := make([]string, len(qs))
	for i, q := range qs {
		ids[i] = q.ID
	}
	return strings.Join(ids, " ")
}
