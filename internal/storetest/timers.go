package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

func testTimerStatus(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "cron")
	mustCreateSlot(t, db, "cron", "staging")

	if _, ok, err := db.GetTimerStatus(ctx, "cron", "production", "tick"); ok || err != nil {
		t.Fatalf("GetTimerStatus of nothing = %v, %v; want false, nil", ok, err)
	}
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	first := hotswap.TimerStatus{Schedule: "0 0 3 * * *", Next: at, Updated: at.Add(-time.Hour)}
	second := hotswap.TimerStatus{Schedule: "0 0 3 * * *", Last: at, Next: at.Add(24 * time.Hour), Updated: at.Add(time.Second)}
	for _, want := range []hotswap.TimerStatus{first, second} {
		if err := db.PutTimerStatus(ctx, "cron", "production", "tick", want); err != nil {
			t.Fatalf("PutTimerStatus: %v", err)
		}
		got, ok, err := db.GetTimerStatus(ctx, "cron", "production", "tick")
		if err != nil || !ok {
			t.Fatalf("GetTimerStatus = %v, %v", ok, err)
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("GetTimerStatus (-got +want):\n%s", diff)
		}
	}
	// A late write of an earlier status (a slow run finishing after a
	// later one) changes nothing; a new schedule may move Next back.
	if err := db.PutTimerStatus(ctx, "cron", "production", "tick", first); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := db.GetTimerStatus(ctx, "cron", "production", "tick"); !got.Next.Equal(second.Next) {
		t.Errorf("an earlier status overwrote a later one: Next = %v, want %v", got.Next, second.Next)
	}
	hourly := hotswap.TimerStatus{Schedule: "0 0 * * * *", Next: at.Add(time.Hour), Updated: at.Add(2 * time.Second)}
	if err := db.PutTimerStatus(ctx, "cron", "production", "tick", hourly); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := db.GetTimerStatus(ctx, "cron", "production", "tick"); got.Schedule != hourly.Schedule || !got.Next.Equal(hourly.Next) {
		t.Errorf("a new schedule did not replace the status: %+v", got)
	}
	// Each slot has its own status.
	if _, ok, _ := db.GetTimerStatus(ctx, "cron", "staging", "tick"); ok {
		t.Error("staging has production's timer status")
	}
	// A slot that is gone stores nothing, and deleting a slot drops its
	// timers' status.
	if err := db.PutTimerStatus(ctx, "cron", "nope", "tick", first); err != nil {
		t.Errorf("PutTimerStatus for a missing slot: %v", err)
	}
	if _, ok, _ := db.GetTimerStatus(ctx, "cron", "nope", "tick"); ok {
		t.Error("a missing slot got a timer status")
	}
	if err := db.PutTimerStatus(ctx, "cron", "staging", "tick", first); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteSlot(ctx, "cron", "staging"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.GetTimerStatus(ctx, "cron", "staging", "tick"); ok {
		t.Error("the deleted slot's timer status is still stored")
	}
	if err := db.DeleteApp(ctx, "cron"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.GetTimerStatus(ctx, "cron", "production", "tick"); ok {
		t.Error("the deleted app's timer status is still stored")
	}
}
