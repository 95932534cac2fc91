package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

func testTraffic(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "shop")
	mustCreateSlot(t, db, "shop", "staging")
	mustCreateSlot(t, db, "shop", "canary")
	mustCreateApp(t, db, "other")
	mustCreateSlot(t, db, "other", "beta")

	if got, err := db.Traffic(ctx, "shop"); err != nil || len(got) != 0 {
		t.Fatalf("Traffic of a new app = %v, %v; want none", got, err)
	}
	want := []hotswap.TrafficShare{{Slot: "canary", Percent: 2.5}, {Slot: "staging", Percent: 10}}
	if err := db.SetTraffic(ctx, "shop", []hotswap.TrafficShare{want[1], want[0]}); err != nil {
		t.Fatalf("SetTraffic: %v", err)
	}
	got, err := db.Traffic(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Traffic (-got +want):\n%s", diff)
	}
	if got, _ := db.Traffic(ctx, "other"); len(got) != 0 {
		t.Errorf("another app has shop's traffic: %v", got)
	}

	// A new set replaces the whole rule; 0% is kept (pinnable only).
	if err := db.SetTraffic(ctx, "shop", []hotswap.TrafficShare{{Slot: "staging", Percent: 0}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Traffic(ctx, "shop"); !cmp.Equal(got, []hotswap.TrafficShare{{Slot: "staging", Percent: 0}}) {
		t.Errorf("Traffic after replacing = %v", got)
	}

	// Bad rules are refused whole, with what and where, and change nothing.
	for _, tc := range []struct {
		shares []hotswap.TrafficShare
		kind   hotswap.Kind
		msg    string
	}{
		{[]hotswap.TrafficShare{{Slot: "nope", Percent: 5}}, hotswap.NotFound, `slot "nope" of app "shop" not found`},
		{[]hotswap.TrafficShare{{Slot: "beta", Percent: 5}}, hotswap.NotFound, `slot "beta" of app "shop" not found`},
		{[]hotswap.TrafficShare{{Slot: "production", Percent: 5}}, hotswap.Invalid, "production"},
		{[]hotswap.TrafficShare{{Slot: "staging", Percent: 101}}, hotswap.Invalid, `slot "staging": percent 101 is not between 0 and 100`},
		{[]hotswap.TrafficShare{{Slot: "staging", Percent: -1}}, hotswap.Invalid, "percent -1"},
		{[]hotswap.TrafficShare{{Slot: "staging", Percent: 60}, {Slot: "canary", Percent: 41}}, hotswap.Invalid, "sum to 101%"},
		{[]hotswap.TrafficShare{{Slot: "staging", Percent: 1}, {Slot: "staging", Percent: 2}}, hotswap.Invalid, `slot "staging" has two shares`},
		{[]hotswap.TrafficShare{{Slot: "Bad", Percent: 1}}, hotswap.Invalid, "traffic share 1"},
	} {
		err := db.SetTraffic(ctx, "shop", tc.shares)
		if hotswap.ErrorKind(err) != tc.kind || !strings.Contains(hotswap.ErrorMessage(err), tc.msg) {
			t.Errorf("SetTraffic(%v) = %v (%v); want %v containing %q", tc.shares, err, hotswap.ErrorKind(err), tc.kind, tc.msg)
		}
	}
	if got, _ := db.Traffic(ctx, "shop"); !cmp.Equal(got, []hotswap.TrafficShare{{Slot: "staging", Percent: 0}}) {
		t.Errorf("a refused rule changed the traffic: %v", got)
	}
	if err := db.SetTraffic(ctx, "nope", nil); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("SetTraffic of a missing app = %v; want NotFound", err)
	}
	if _, err := db.Traffic(ctx, "nope"); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("Traffic of a missing app = %v; want NotFound", err)
	}

	// Deleting a slot drops its share; a slot of the same name made later
	// has none. Clearing leaves none.
	if err := db.SetTraffic(ctx, "shop", want); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteSlot(ctx, "shop", "canary"); err != nil {
		t.Fatal(err)
	}
	mustCreateSlot(t, db, "shop", "canary")
	if got, _ := db.Traffic(ctx, "shop"); !cmp.Equal(got, want[1:]) {
		t.Errorf("Traffic after deleting canary = %v; want %v", got, want[1:])
	}
	if err := db.SetTraffic(ctx, "shop", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Traffic(ctx, "shop"); len(got) != 0 {
		t.Errorf("Traffic after clearing = %v", got)
	}

	// Deleting the app drops its rules with it.
	if err := db.SetTraffic(ctx, "other", []hotswap.TrafficShare{{Slot: "beta", Percent: 50}}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteApp(ctx, "other"); err != nil {
		t.Fatalf("DeleteApp with traffic: %v", err)
	}
	mustCreateApp(t, db, "other")
	if got, _ := db.Traffic(ctx, "other"); len(got) != 0 {
		t.Errorf("a recreated app has the deleted one's traffic: %v", got)
	}
}
