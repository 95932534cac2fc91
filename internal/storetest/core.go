package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
)

func testApps(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "orders")
	mustCreateApp(t, db, "billing")

	got, err := db.GetApp(ctx, "orders")
	if err != nil {
		t.Fatalf("GetApp: %v", err)
	}
	if diff := cmp.Diff(got, hotswap.App{Name: "orders", CreatedAt: t0}); diff != "" {
		t.Errorf("GetApp (-got +want):\n%s", diff)
	}
	apps, err := db.ListApps(ctx)
	if err != nil {
		t.Fatalf("ListApps: %v", err)
	}
	want := []hotswap.App{{Name: "billing", CreatedAt: t0.Add(time.Second)}, {Name: "orders", CreatedAt: t0}}
	if diff := cmp.Diff(apps, want); diff != "" {
		t.Errorf("ListApps (-got +want):\n%s", diff)
	}
	slot, err := db.GetSlot(ctx, "orders", hotswap.ProductionSlot)
	if err != nil {
		t.Fatalf("GetSlot production: %v", err)
	}
	if diff := cmp.Diff(slot, hotswap.Slot{App: "orders", Name: "production", CreatedAt: t0}); diff != "" {
		t.Errorf("production slot (-got +want):\n%s", diff)
	}

	errCases := []struct {
		name string
		err  error
		kind hotswap.Kind
		msg  string
	}{
		{"duplicate", db.CreateApp(ctx, hotswap.App{Name: "orders"}, nil), hotswap.Conflict, `app "orders" already exists`},
		{"invalid name", db.CreateApp(ctx, hotswap.App{Name: "Orders"}, nil), hotswap.Invalid, ""},
		{"invalid key", db.CreateApp(ctx, hotswap.App{Name: "x"}, []hotswap.Key{{Scope: "root", Name: "a", Value: "v"}}), hotswap.Invalid, ""},
		{"get missing", func() error { _, err := db.GetApp(ctx, "nope"); return err }(), hotswap.NotFound, `app "nope" not found`},
		{"delete missing", db.DeleteApp(ctx, "nope"), hotswap.NotFound, `app "nope" not found`},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			checkKind(t, tc.err, tc.kind)
			if tc.msg != "" {
				if got := hotswap.ErrorMessage(tc.err); got != tc.msg {
					t.Errorf("message = %q, want %q", got, tc.msg)
				}
			}
		})
	}
	// The refused app with an invalid key left nothing behind.
	if _, err := db.GetApp(ctx, "x"); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("GetApp(x) after refused create = %v, want NotFound", err)
	}

	if err := db.DeleteApp(ctx, "billing"); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
	apps, err = db.ListApps(ctx)
	if err != nil {
		t.Fatalf("ListApps: %v", err)
	}
	if diff := cmp.Diff(apps, []hotswap.App{{Name: "orders", CreatedAt: t0}}); diff != "" {
		t.Errorf("ListApps after delete (-got +want):\n%s", diff)
	}
}

func testHostLabelCollision(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	type step struct {
		app, slot string // slot "" creates the app
	}
	tests := []struct {
		name  string
		setup []step
		try   step
		msg   string
	}{
		{
			name:  "app after slot",
			setup: []step{{"orders", ""}, {"orders", "staging"}},
			try:   step{"orders-staging", ""},
			msg:   `host name "orders-staging" is already used by app "orders" slot "staging"`,
		},
		{
			name:  "slot after app",
			setup: []step{{"orders-staging", ""}, {"orders", ""}},
			try:   step{"orders", "staging"},
			msg:   `host name "orders-staging" is already used by app "orders-staging" slot "production"`,
		},
		{
			name:  "slot after slot",
			setup: []step{{"a", ""}, {"a-b", ""}, {"a", "b-c"}},
			try:   step{"a-b", "c"},
			msg:   `host name "a-b-c" is already used by app "a" slot "b-c"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t)
			for _, s := range tc.setup {
				if s.slot == "" {
					mustCreateApp(t, db, s.app)
				} else {
					mustCreateSlot(t, db, s.app, s.slot)
				}
			}
			var err error
			if tc.try.slot == "" {
				err = db.CreateApp(ctx, hotswap.App{Name: tc.try.app}, []hotswap.Key{masterKey("m")})
			} else {
				err = db.CreateSlot(ctx, hotswap.Slot{App: tc.try.app, Name: tc.try.slot}, nil)
			}
			checkKind(t, err, hotswap.Conflict)
			if got := hotswap.ErrorMessage(err); got != tc.msg {
				t.Errorf("message = %q, want %q", got, tc.msg)
			}
			// Nothing of the refused app or slot is left.
			if tc.try.slot == "" {
				if _, err := db.GetApp(ctx, tc.try.app); hotswap.ErrorKind(err) != hotswap.NotFound {
					t.Errorf("GetApp after refused create = %v, want NotFound", err)
				}
			} else if _, err := db.GetSlot(ctx, tc.try.app, tc.try.slot); hotswap.ErrorKind(err) != hotswap.NotFound {
				t.Errorf("GetSlot after refused create = %v, want NotFound", err)
			}
		})
	}
}

func testSlots(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "orders") // t0
	mustCreateApp(t, db, "billing")
	for _, s := range []string{"staging", "canary"} {
		mustCreateSlot(t, db, "orders", s)
	}
	mustCreateSlot(t, db, "billing", "dev")

	slots, err := db.ListSlots(ctx, "orders")
	if err != nil {
		t.Fatalf("ListSlots: %v", err)
	}
	want := []hotswap.Slot{
		{App: "orders", Name: "production", CreatedAt: t0},
		{App: "orders", Name: "canary", CreatedAt: t0.Add(3 * time.Second)},
		{App: "orders", Name: "staging", CreatedAt: t0.Add(2 * time.Second)},
	}
	if diff := cmp.Diff(slots, want); diff != "" {
		t.Errorf("ListSlots (-got +want):\n%s", diff)
	}
	all, err := db.ListAllSlots(ctx)
	if err != nil {
		t.Fatalf("ListAllSlots: %v", err)
	}
	var names []string
	for _, s := range all {
		names = append(names, s.App+"/"+s.Name)
	}
	if diff := cmp.Diff(names, []string{"billing/production", "billing/dev", "orders/production", "orders/canary", "orders/staging"}); diff != "" {
		t.Errorf("ListAllSlots (-got +want):\n%s", diff)
	}

	errCases := []struct {
		name string
		err  error
		kind hotswap.Kind
		msg  string
	}{
		{"duplicate", db.CreateSlot(ctx, hotswap.Slot{App: "orders", Name: "staging"}, nil), hotswap.Conflict, `slot "staging" of app "orders" already exists`},
		{"duplicate production", db.CreateSlot(ctx, hotswap.Slot{App: "orders", Name: "production"}, nil), hotswap.Conflict, ""},
		{"missing app", db.CreateSlot(ctx, hotswap.Slot{App: "nope", Name: "staging"}, nil), hotswap.NotFound, `app "nope" not found`},
		{"invalid name", db.CreateSlot(ctx, hotswap.Slot{App: "orders", Name: "-x"}, nil), hotswap.Invalid, ""},
		{"missing deployment", db.CreateSlot(ctx, hotswap.Slot{App: "orders", Name: "x", DeploymentID: "d9"}, nil), hotswap.NotFound, ""},
		{"get missing", func() error { _, err := db.GetSlot(ctx, "orders", "nope"); return err }(), hotswap.NotFound, `slot "nope" of app "orders" not found`},
		{"get missing app", func() error { _, err := db.GetSlot(ctx, "nope", "staging"); return err }(), hotswap.NotFound, `app "nope" not found`},
		{"list missing app", func() error { _, err := db.ListSlots(ctx, "nope"); return err }(), hotswap.NotFound, ""},
		{"delete production", db.DeleteSlot(ctx, "orders", "production"), hotswap.FailedPrecondition, "the production slot cannot be deleted"},
		{"delete missing", db.DeleteSlot(ctx, "orders", "nope"), hotswap.NotFound, ""},
		{"set deployment missing", db.SetSlotDeployment(ctx, "orders", "staging", "d9"), hotswap.NotFound, ""},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			checkKind(t, tc.err, tc.kind)
			if tc.msg != "" {
				if got := hotswap.ErrorMessage(tc.err); got != tc.msg {
					t.Errorf("message = %q, want %q", got, tc.msg)
				}
			}
		})
	}

	if err := db.DeleteSlot(ctx, "orders", "canary"); err != nil {
		t.Fatalf("DeleteSlot: %v", err)
	}
	if _, err := db.GetSlot(ctx, "orders", "canary"); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("GetSlot after delete = %v, want NotFound", err)
	}
	// The host name is free again.
	mustCreateApp(t, db, "orders-canary")
}

func testDeployments(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "orders")
	mustCreateApp(t, db, "billing")
	mustCreateSlot(t, db, "orders", "staging")

	d1 := hotswap.Deployment{ID: "d1", App: "orders", Slot: "production", Digest: "sha256:1", Author: "ann", Message: "first", Status: hotswap.DeployPending, CreatedAt: t0.Add(time.Hour)}
	d2 := hotswap.Deployment{ID: "d2", App: "orders", Slot: "staging", Digest: "sha256:2", Author: "bob", Message: "second", CreatedAt: t0.Add(2 * time.Hour)}
	d3 := hotswap.Deployment{ID: "d3", App: "orders", Slot: "production", Digest: "sha256:3", CreatedAt: t0.Add(3 * time.Hour)}
	for _, d := range []hotswap.Deployment{d1, d2, d3} {
		if err := db.CreateDeployment(ctx, d); err != nil {
			t.Fatalf("CreateDeployment(%s): %v", d.ID, err)
		}
	}

	d1.Status = hotswap.DeployDeploying
	d1.StatusText = "starting"
	d1.StartedAt = t0.Add(time.Hour + time.Second)
	if err := db.UpdateDeployment(ctx, d1); err != nil {
		t.Fatalf("UpdateDeployment: %v", err)
	}
	got, err := db.GetDeployment(ctx, "orders", "d1")
	if err != nil {
		t.Fatalf("GetDeployment: %v", err)
	}
	if diff := cmp.Diff(got, d1); diff != "" {
		t.Errorf("GetDeployment (-got +want):\n%s", diff)
	}

	lists := []struct {
		slot string
		want []hotswap.Deployment
	}{
		{"", []hotswap.Deployment{d3, d2, d1}},
		{"production", []hotswap.Deployment{d3, d1}},
		{"staging", []hotswap.Deployment{d2}},
		{"gone", nil},
	}
	for _, tc := range lists {
		t.Run("list "+tc.slot, func(t *testing.T) {
			got, err := db.ListDeployments(ctx, "orders", tc.slot)
			if err != nil {
				t.Fatalf("ListDeployments: %v", err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ListDeployments(%q) (-got +want):\n%s", tc.slot, diff)
			}
			latest, err := db.LatestDeployment(ctx, "orders", tc.slot)
			if len(tc.want) == 0 {
				checkKind(t, err, hotswap.NotFound)
				return
			}
			if err != nil {
				t.Fatalf("LatestDeployment: %v", err)
			}
			if diff := cmp.Diff(latest, tc.want[0]); diff != "" {
				t.Errorf("LatestDeployment(%q) (-got +want):\n%s", tc.slot, diff)
			}
		})
	}

	if err := db.SetSlotDeployment(ctx, "orders", "staging", "d1"); err != nil {
		t.Fatalf("SetSlotDeployment: %v", err)
	}
	slot, err := db.GetSlot(ctx, "orders", "staging")
	if err != nil {
		t.Fatalf("GetSlot: %v", err)
	}
	if slot.DeploymentID != "d1" {
		t.Errorf("staging DeploymentID = %q, want d1", slot.DeploymentID)
	}
	if err := db.SetSlotDeployment(ctx, "orders", "staging", ""); err != nil {
		t.Fatalf("SetSlotDeployment clear: %v", err)
	}
	if slot, _ := db.GetSlot(ctx, "orders", "staging"); slot.DeploymentID != "" {
		t.Errorf("staging DeploymentID after clear = %q, want empty", slot.DeploymentID)
	}

	errCases := []struct {
		name string
		err  error
		kind hotswap.Kind
	}{
		{"duplicate id", db.CreateDeployment(ctx, hotswap.Deployment{ID: "d1", App: "orders", Slot: "production"}), hotswap.Conflict},
		{"no id", db.CreateDeployment(ctx, hotswap.Deployment{App: "orders", Slot: "production"}), hotswap.Invalid},
		{"missing slot", db.CreateDeployment(ctx, hotswap.Deployment{ID: "d9", App: "orders", Slot: "nope"}), hotswap.NotFound},
		{"missing app", db.CreateDeployment(ctx, hotswap.Deployment{ID: "d9", App: "nope", Slot: "production"}), hotswap.NotFound},
		{"update missing", db.UpdateDeployment(ctx, hotswap.Deployment{ID: "d9", App: "orders"}), hotswap.NotFound},
		{"get other app's", func() error { _, err := db.GetDeployment(ctx, "billing", "d1"); return err }(), hotswap.NotFound},
		{"point at other app's", db.SetSlotDeployment(ctx, "billing", "production", "d1"), hotswap.NotFound},
		{"list missing app", func() error { _, err := db.ListDeployments(ctx, "nope", ""); return err }(), hotswap.NotFound},
		{"latest of app without", func() error { _, err := db.LatestDeployment(ctx, "billing", ""); return err }(), hotswap.NotFound},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			checkKind(t, tc.err, tc.kind)
		})
	}
}

func testDeployTo(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "orders")
	mustCreateSlot(t, db, "orders", "staging")
	d := hotswap.Deployment{ID: "d1", App: "orders", Slot: "staging", Status: hotswap.DeployDeploying, CreatedAt: t0.Add(time.Hour), StartedAt: t0.Add(time.Hour)}
	if err := db.CreateDeployment(ctx, d); err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}

	t.Run("slot gone changes nothing", func(t *testing.T) {
		d := d
		d.Slot = "gone"
		d.StatusText = "should not be stored"
		checkKind(t, db.DeployTo(ctx, d), hotswap.NotFound)
		got, err := db.GetDeployment(ctx, "orders", "d1")
		if err != nil {
			t.Fatalf("GetDeployment: %v", err)
		}
		want := d
		want.Slot = "staging"
		want.StatusText = ""
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("deployment after failed DeployTo (-got +want):\n%s", diff)
		}
	})
	t.Run("missing deployment", func(t *testing.T) {
		checkKind(t, db.DeployTo(ctx, hotswap.Deployment{ID: "d9", App: "orders", Slot: "staging"}), hotswap.NotFound)
		slot, err := db.GetSlot(ctx, "orders", "staging")
		if err != nil {
			t.Fatalf("GetSlot: %v", err)
		}
		if slot.DeploymentID != "" {
			t.Errorf("DeploymentID = %q after failed DeployTo, want empty", slot.DeploymentID)
		}
	})
	t.Run("success", func(t *testing.T) {
		d := d
		d.StatusText = "deployed"
		d.EndedAt = time.Time{} // set by DeployTo
		defer db.clock.set(t0.Add(2 * time.Hour))()
		if err := db.DeployTo(ctx, d); err != nil {
			t.Fatalf("DeployTo: %v", err)
		}
		got, err := db.GetDeployment(ctx, "orders", "d1")
		if err != nil {
			t.Fatalf("GetDeployment: %v", err)
		}
		want := d
		want.Status = hotswap.DeploySuccess
		want.EndedAt = t0.Add(2 * time.Hour)
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("deployment (-got +want):\n%s", diff)
		}
		slot, err := db.GetSlot(ctx, "orders", "staging")
		if err != nil {
			t.Fatalf("GetSlot: %v", err)
		}
		if slot.DeploymentID != "d1" {
			t.Errorf("DeploymentID = %q, want d1", slot.DeploymentID)
		}
	})
}

func testSettings(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "orders")
	mustCreateSlot(t, db, "orders", "staging")

	set := []hotswap.Setting{
		{Name: "ZED", Value: "1"},
		{Name: "AzureWebJobs.f.Disabled", Value: "true", Sticky: true},
		{Name: "DB_URL", Value: "postgres://x"},
	}
	if err := db.SetSettings(ctx, "orders", "staging", set); err != nil {
		t.Fatalf("SetSettings: %v", err)
	}
	if err := db.SetSettings(ctx, "orders", "staging", []hotswap.Setting{{Name: "ZED", Value: "2", Sticky: true}}); err != nil {
		t.Fatalf("SetSettings upsert: %v", err)
	}
	want := []hotswap.Setting{
		{Name: "AzureWebJobs.f.Disabled", Value: "true", Sticky: true},
		{Name: "DB_URL", Value: "postgres://x"},
		{Name: "ZED", Value: "2", Sticky: true},
	}
	list := func(t testing.TB) []hotswap.Setting {
		t.Helper()
		got, err := db.ListSettings(ctx, "orders", "staging")
		if err != nil {
			t.Fatalf("ListSettings: %v", err)
		}
		return got
	}
	if diff := cmp.Diff(list(t), want); diff != "" {
		t.Errorf("ListSettings (-got +want):\n%s", diff)
	}
	if got, err := db.ListSettings(ctx, "orders", "production"); err != nil || len(got) != 0 {
		t.Errorf("ListSettings(production) = %v, %v; want none", got, err)
	}

	errCases := []struct {
		name string
		err  error
		kind hotswap.Kind
		msg  string
	}{
		{"bad name", db.SetSettings(ctx, "orders", "staging", []hotswap.Setting{{Name: "NEW", Value: "x"}, {Name: "A=B", Value: "x"}}), hotswap.Invalid, ""},
		{"bad value", db.SetSettings(ctx, "orders", "staging", []hotswap.Setting{{Name: "NEW", Value: "a\x00b"}}), hotswap.Invalid, ""},
		{"set missing slot", db.SetSettings(ctx, "orders", "nope", []hotswap.Setting{{Name: "NEW", Value: "x"}}), hotswap.NotFound, ""},
		{"list missing slot", func() error { _, err := db.ListSettings(ctx, "orders", "nope"); return err }(), hotswap.NotFound, ""},
		{"unset missing", db.UnsetSettings(ctx, "orders", "staging", []string{"ZED", "NOPE", "DB_URL"}), hotswap.NotFound, `setting "NOPE" of slot "staging" of app "orders" not found`},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			checkKind(t, tc.err, tc.kind)
			if tc.msg != "" {
				if got := hotswap.ErrorMessage(tc.err); got != tc.msg {
					t.Errorf("message = %q, want %q", got, tc.msg)
				}
			}
		})
	}
	// None of the refused calls changed anything.
	if diff := cmp.Diff(list(t), want); diff != "" {
		t.Errorf("ListSettings after refused changes (-got +want):\n%s", diff)
	}

	if err := db.UnsetSettings(ctx, "orders", "staging", []string{"ZED", "DB_URL"}); err != nil {
		t.Fatalf("UnsetSettings: %v", err)
	}
	if diff := cmp.Diff(list(t), want[:1]); diff != "" {
		t.Errorf("ListSettings after unset (-got +want):\n%s", diff)
	}
}

func testKeys(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	mustCreateApp(t, db, "orders")
	host := hotswap.Key{Scope: hotswap.ScopeHost, Name: "default", Value: "host-default"}
	fn := hotswap.Key{Scope: hotswap.ScopeFunction, Function: "hello", Name: "default", Value: "fn-default"}
	if err := db.CreateSlot(ctx, hotswap.Slot{App: "orders", Name: "staging"}, []hotswap.Key{masterKey("m-staging"), host}); err != nil {
		t.Fatalf("CreateSlot: %v", err)
	}
	if err := db.PutKey(ctx, "orders", "staging", fn); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	host.Value = "host-rotated"
	if err := db.PutKey(ctx, "orders", "staging", host); err != nil {
		t.Fatalf("PutKey replace: %v", err)
	}
	list := func(t testing.TB, slot string) []hotswap.Key {
		t.Helper()
		got, err := db.ListKeys(ctx, "orders", slot)
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		return got
	}
	want := []hotswap.Key{fn, host, masterKey("m-staging")}
	if diff := cmp.Diff(list(t, "staging"), want); diff != "" {
		t.Errorf("ListKeys(staging) (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(list(t, "production"), []hotswap.Key{masterKey("master-orders")}); diff != "" {
		t.Errorf("ListKeys(production) (-got +want):\n%s", diff)
	}

	errCases := []struct {
		name string
		err  error
		kind hotswap.Kind
	}{
		{"bad name", db.PutKey(ctx, "orders", "staging", hotswap.Key{Scope: hotswap.ScopeHost, Name: "a b", Value: "v"}), hotswap.Invalid},
		{"bad scope", db.PutKey(ctx, "orders", "staging", hotswap.Key{Scope: "admin", Name: "a", Value: "v"}), hotswap.Invalid},
		{"function key without function", db.PutKey(ctx, "orders", "staging", hotswap.Key{Scope: hotswap.ScopeFunction, Name: "a", Value: "v"}), hotswap.Invalid},
		{"put missing slot", db.PutKey(ctx, "orders", "nope", host), hotswap.NotFound},
		{"delete master", db.DeleteKey(ctx, "orders", "staging", hotswap.ScopeMaster, "", hotswap.MasterKeyName), hotswap.FailedPrecondition},
		{"delete missing", db.DeleteKey(ctx, "orders", "staging", hotswap.ScopeHost, "", "nope"), hotswap.NotFound},
		{"delete wrong function", db.DeleteKey(ctx, "orders", "staging", hotswap.ScopeFunction, "other", "default"), hotswap.NotFound},
		{"delete missing slot", db.DeleteKey(ctx, "orders", "nope", hotswap.ScopeHost, "", "default"), hotswap.NotFound},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			checkKind(t, tc.err, tc.kind)
		})
	}

	if err := db.DeleteKey(ctx, "orders", "staging", hotswap.ScopeFunction, "hello", "default"); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if diff := cmp.Diff(list(t, "staging"), want[1:]); diff != "" {
		t.Errorf("ListKeys after delete (-got +want):\n%s", diff)
	}
}

func testMeta(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	if v, ok, err := db.GetMeta(ctx, "admin_token"); err != nil || ok || v != "" {
		t.Fatalf("GetMeta of unset = %q, %v, %v; want \"\", false, nil", v, ok, err)
	}
	for _, v := range []string{"first", "second"} {
		if err := db.SetMeta(ctx, "admin_token", v); err != nil {
			t.Fatalf("SetMeta: %v", err)
		}
		got, ok, err := db.GetMeta(ctx, "admin_token")
		if err != nil || !ok || got != v {
			t.Errorf("GetMeta = %q, %v, %v; want %q, true, nil", got, ok, err, v)
		}
	}
}

func testOperations(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	op1 := hotswap.Operation{ID: "op1", App: "orders", Kind: "deploy", Slot: "staging", Target: "d1", Phase: "upload", Actor: "ann", Node: "node-1"}
	if err := db.BeginOperation(ctx, op1); err != nil {
		t.Fatalf("BeginOperation: %v", err)
	}
	op1.State, op1.StartedAt = hotswap.OpRunning, t0

	err := db.BeginOperation(ctx, hotswap.Operation{ID: "op2", App: "orders", Kind: "swap"})
	checkKind(t, err, hotswap.Conflict)
	wantMsg := `app "orders" has a running deploy (operation op1) started 2025-03-01T12:00:00Z`
	if got := hotswap.ErrorMessage(err); got != wantMsg {
		t.Errorf("message = %q, want %q", got, wantMsg)
	}
	// Another app is not blocked.
	op3 := hotswap.Operation{ID: "op3", App: "billing", Kind: "swap", StartedAt: t0.Add(time.Minute)}
	if err := db.BeginOperation(ctx, op3); err != nil {
		t.Fatalf("BeginOperation(billing): %v", err)
	}
	op3.State = hotswap.OpRunning

	if err := db.SetOperationPhase(ctx, "op1", "warm-up", "3 instances"); err != nil {
		t.Fatalf("SetOperationPhase: %v", err)
	}
	op1.Phase, op1.Detail = "warm-up", "3 instances"
	running, err := db.RunningOperations(ctx)
	if err != nil {
		t.Fatalf("RunningOperations: %v", err)
	}
	if diff := cmp.Diff(running, []hotswap.Operation{op1, op3}); diff != "" {
		t.Errorf("RunningOperations (-got +want):\n%s", diff)
	}

	if err := db.EndOperation(ctx, "op1", hotswap.OpSucceeded, "done"); err != nil {
		t.Fatalf("EndOperation: %v", err)
	}
	// The refused BeginOperation above read the clock once too.
	op1.State, op1.Detail, op1.EndedAt = hotswap.OpSucceeded, "done", t0.Add(2*time.Second)
	op2 := hotswap.Operation{ID: "op2", App: "orders", Kind: "swap"}
	if err := db.BeginOperation(ctx, op2); err != nil {
		t.Fatalf("BeginOperation after end: %v", err)
	}
	op2.State, op2.StartedAt = hotswap.OpRunning, t0.Add(3*time.Second)

	ops, err := db.ListOperations(ctx, "orders", 0)
	if err != nil {
		t.Fatalf("ListOperations: %v", err)
	}
	if diff := cmp.Diff(ops, []hotswap.Operation{op2, op1}); diff != "" {
		t.Errorf("ListOperations (-got +want):\n%s", diff)
	}
	ops, err = db.ListOperations(ctx, "", 2)
	if err != nil {
		t.Fatalf("ListOperations all: %v", err)
	}
	if diff := cmp.Diff(ops, []hotswap.Operation{op3, op2}); diff != "" {
		t.Errorf("ListOperations(all, 2) (-got +want):\n%s", diff)
	}

	errCases := []struct {
		name string
		err  error
		kind hotswap.Kind
	}{
		{"duplicate id", db.BeginOperation(ctx, hotswap.Operation{ID: "op1", App: "other", Kind: "deploy"}), hotswap.Conflict},
		{"no id", db.BeginOperation(ctx, hotswap.Operation{App: "other", Kind: "deploy"}), hotswap.Invalid},
		{"no kind", db.BeginOperation(ctx, hotswap.Operation{ID: "op9", App: "other"}), hotswap.Invalid},
		{"phase of ended", db.SetOperationPhase(ctx, "op1", "x", ""), hotswap.FailedPrecondition},
		{"phase of missing", db.SetOperationPhase(ctx, "op9", "x", ""), hotswap.NotFound},
		{"end ended", db.EndOperation(ctx, "op1", hotswap.OpFailed, ""), hotswap.FailedPrecondition},
		{"end missing", db.EndOperation(ctx, "op9", hotswap.OpFailed, ""), hotswap.NotFound},
		{"end in bad state", db.EndOperation(ctx, "op2", hotswap.OpRunning, ""), hotswap.Invalid},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			checkKind(t, tc.err, tc.kind)
		})
	}
}

func testBeginOperationConcurrent(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.BeginOperation(ctx, hotswap.Operation{ID: fmt.Sprintf("op%d", i), App: "orders", Kind: "deploy"})
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case hotswap.ErrorKind(err) != hotswap.Conflict:
			t.Errorf("BeginOperation op%d = %v, want nil or Conflict", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d BeginOperation calls succeeded, want exactly 1", wins)
	}
	running, err := db.RunningOperations(ctx)
	if err != nil {
		t.Fatalf("RunningOperations: %v", err)
	}
	if len(running) != 1 {
		t.Errorf("%d running operations, want 1", len(running))
	}
}

// TestConcurrentWrites checks that concurrent writers and readers queue
// rather than fail with SQLITE_BUSY.
func testConcurrentWrites(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	const n = 40
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("app%d", i)
			if err := db.CreateApp(ctx, hotswap.App{Name: name}, []hotswap.Key{masterKey("m")}); err != nil {
				errs <- err
				return
			}
			errs <- db.SetSettings(ctx, name, hotswap.ProductionSlot, []hotswap.Setting{{Name: "A", Value: "1"}})
		})
		wg.Go(func() {
			_, err := db.ListAllSlots(ctx)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent call: %v", err)
		}
	}
	apps, err := db.ListApps(ctx)
	if err != nil {
		t.Fatalf("ListApps: %v", err)
	}
	if len(apps) != n {
		t.Errorf("%d apps, want %d", len(apps), n)
	}
}

func testActivity(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	entries := []hotswap.Activity{
		{App: "orders", Actor: "ann", Action: "deploy", Slot: "staging", Detail: "d1", Result: "ok"},
		{App: "billing", Actor: "bob", Action: "create app", Result: "ok"},
		{App: "orders", Actor: "ann", Action: "swap", Slot: "staging", Result: "slot busy"},
	}
	for _, a := range entries {
		if err := db.AddActivity(ctx, a); err != nil {
			t.Fatalf("AddActivity: %v", err)
		}
	}
	for i := range entries {
		entries[i].ID = int64(i + 1)
		entries[i].Time = t0.Add(time.Duration(i) * time.Second)
	}
	tests := []struct {
		name  string
		app   string
		limit int
		want  []hotswap.Activity
	}{
		{"app", "orders", 0, []hotswap.Activity{entries[2], entries[0]}},
		{"app limit", "orders", 1, []hotswap.Activity{entries[2]}},
		{"all", "", 0, []hotswap.Activity{entries[2], entries[1], entries[0]}},
		{"none", "nope", 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.ListActivity(ctx, tc.app, tc.limit)
			if err != nil {
				t.Fatalf("ListActivity: %v", err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ListActivity(%q, %d) (-got +want):\n%s", tc.app, tc.limit, diff)
			}
		})
	}
}

// populate gives app a slot, settings, keys, a deployment served by both
// slots, an operation and an activity entry.
func populate(t testing.TB, db Store, app string) {
	t.Helper()
	ctx := context.Background()
	mustCreateApp(t, db, app)
	mustCreateSlot(t, db, app, "staging")
	d := hotswap.Deployment{ID: app + "-d1", App: app, Slot: "staging", Digest: "sha256:" + app, Author: "ann", Status: hotswap.DeployDeploying}
	steps := []error{
		db.SetSettings(ctx, app, "staging", []hotswap.Setting{{Name: "A", Value: "1", Sticky: true}}),
		db.PutKey(ctx, app, "staging", hotswap.Key{Scope: hotswap.ScopeHost, Name: "default", Value: "h"}),
		db.CreateDeployment(ctx, d),
		db.DeployTo(ctx, d),
		db.SetSlotDeployment(ctx, app, hotswap.ProductionSlot, d.ID),
		db.BeginOperation(ctx, hotswap.Operation{ID: app + "-op1", App: app, Kind: "deploy", Slot: "staging", Node: "node-a"}),
		db.AddActivity(ctx, hotswap.Activity{App: app, Actor: "ann", Action: "deploy", Slot: "staging", Result: "ok"}),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatalf("populate %s: %v", app, err)
	}
}

// snapshot is all the store holds about one app.
type snapshot struct {
	App         hotswap.App
	Slots       []hotswap.Slot
	Settings    map[string][]hotswap.Setting
	Keys        map[string][]hotswap.Key
	Deployments []hotswap.Deployment
	Operations  []hotswap.Operation
	Activity    []hotswap.Activity
}

func takeSnapshot(t testing.TB, db Store, app string) snapshot {
	t.Helper()
	ctx := context.Background()
	s := snapshot{Settings: map[string][]hotswap.Setting{}, Keys: map[string][]hotswap.Key{}}
	var err error
	var errs []error
	s.App, err = db.GetApp(ctx, app)
	errs = append(errs, err)
	s.Slots, err = db.ListSlots(ctx, app)
	errs = append(errs, err)
	for _, slot := range s.Slots {
		s.Settings[slot.Name], err = db.ListSettings(ctx, app, slot.Name)
		errs = append(errs, err)
		s.Keys[slot.Name], err = db.ListKeys(ctx, app, slot.Name)
		errs = append(errs, err)
	}
	s.Deployments, err = db.ListDeployments(ctx, app, "")
	errs = append(errs, err)
	s.Operations, err = db.ListOperations(ctx, app, 0)
	errs = append(errs, err)
	s.Activity, err = db.ListActivity(ctx, app, 0)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("snapshot of %s: %v", app, err)
	}
	return s
}

func testDeleteAppCascade(t *testing.T, open func(t *testing.T) *env) {
	ctx := context.Background()
	db := open(t)
	populate(t, db, "orders")
	populate(t, db, "billing")
	if err := db.PutTimerStatus(ctx, "orders", "staging", "tick", hotswap.TimerStatus{Schedule: "* * * * * *", Next: t0, Updated: t0}); err != nil {
		t.Fatalf("PutTimerStatus: %v", err)
	}
	before := takeSnapshot(t, db, "billing")

	if err := db.DeleteApp(ctx, "orders"); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
	if _, err := db.GetApp(ctx, "orders"); hotswap.ErrorKind(err) != hotswap.NotFound {
		t.Errorf("GetApp after delete = %v, want NotFound", err)
	}
	if ops, err := db.ListOperations(ctx, "orders", 0); err != nil || len(ops) != 0 {
		t.Errorf("ListOperations after delete = %v, %v; want none", ops, err)
	}
	if running, err := db.RunningOperations(ctx); err != nil || len(running) != 1 || running[0].App != "billing" {
		t.Errorf("RunningOperations after delete = %+v, %v; want billing's only", running, err)
	}
	if list, err := db.ListActivity(ctx, "orders", 0); err != nil || len(list) != 0 {
		t.Errorf("ListActivity after delete = %v, %v; want none", list, err)
	}
	if used, err := db.DigestInUse(ctx, "sha256:orders"); err != nil || used {
		t.Errorf("DigestInUse of the deleted app's package = %v, %v; want false", used, err)
	}
	// The other app is untouched.
	if diff := cmp.Diff(takeSnapshot(t, db, "billing"), before); diff != "" {
		t.Errorf("billing after deleting orders (-got +want):\n%s", diff)
	}
	// The name and its host names are free again, and nothing of the old
	// app comes back with the new one: its deployment IDs and operation
	// are free, and its slots have no old settings, keys or timers.
	populate(t, db, "orders")
	s := takeSnapshot(t, db, "orders")
	if len(s.Deployments) != 1 || len(s.Operations) != 1 || len(s.Activity) != 1 || len(s.Settings["staging"]) != 1 || len(s.Keys["staging"]) != 1 {
		t.Errorf("recreated app has leftovers of the deleted one: %+v", s)
	}
	if _, ok, err := db.GetTimerStatus(ctx, "orders", "staging", "tick"); ok || err != nil {
		t.Errorf("GetTimerStatus of the recreated app = %v, %v; want false, nil", ok, err)
	}
}

func testReopen(t *testing.T, open func(t *testing.T) *env) {
	e := open(t)
	db := Store(e)
	populate(t, db, "orders")
	mustCreateApp(t, db, "billing")
	if err := db.SetMeta(context.Background(), "admin_token", "secret"); err != nil {
		t.Fatalf("SetMeta: %v", err)
	}
	want := []snapshot{takeSnapshot(t, db, "orders"), takeSnapshot(t, db, "billing")}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db = e.reopen()
	if db.Created() {
		t.Error("Created() = true on reopening")
	}
	got := []snapshot{takeSnapshot(t, db, "orders"), takeSnapshot(t, db, "billing")}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("after reopen (-got +want):\n%s", diff)
	}
	if v, ok, err := db.GetMeta(context.Background(), "admin_token"); err != nil || !ok || v != "secret" {
		t.Errorf("GetMeta after reopen = %q, %v, %v; want secret", v, ok, err)
	}
	// The running operation survived the restart, as crash recovery needs.
	running, err := db.RunningOperations(context.Background())
	if err != nil {
		t.Fatalf("RunningOperations: %v", err)
	}
	if len(running) != 1 || running[0].ID != "orders-op1" || running[0].Node != "node-a" {
		t.Errorf("RunningOperations after reopen = %+v, want orders-op1 of node-a", running)
	}
}
