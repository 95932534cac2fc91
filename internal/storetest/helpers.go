package storetest

import (
	"context"
	"testing"

	"github.com/hotswap/hotswap"
)

// t0 is short for T0 in the tests.
var t0 = T0

// masterKey returns a master key with value v.
func masterKey(v string) hotswap.Key {
	return hotswap.Key{Scope: hotswap.ScopeMaster, Name: hotswap.MasterKeyName, Value: v}
}

// mustCreateApp creates app name with a master key.
func mustCreateApp(t testing.TB, db Store, name string) {
	t.Helper()
	if err := db.CreateApp(context.Background(), hotswap.App{Name: name}, []hotswap.Key{masterKey("master-" + name)}); err != nil {
		t.Fatalf("CreateApp(%q) = %v", name, err)
	}
}

// mustCreateSlot creates slot name of app.
func mustCreateSlot(t testing.TB, db Store, app, name string) {
	t.Helper()
	if err := db.CreateSlot(context.Background(), hotswap.Slot{App: app, Name: name}, nil); err != nil {
		t.Fatalf("CreateSlot(%q, %q) = %v", app, name, err)
	}
}

// checkKind fails t unless err has kind want.
func checkKind(t testing.TB, err error, want hotswap.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want kind %v", want)
	}
	if got := hotswap.ErrorKind(err); got != want {
		t.Fatalf("ErrorKind(%v) = %v, want %v", err, got, want)
	}
}

// errCase is a call that must fail with kind, and with message msg when
// msg is not empty.
type errCase struct {
	name string
	err  error
	kind hotswap.Kind
	msg  string
}

// checkErrCases checks each case in a subtest.
func checkErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkKind(t, tc.err, tc.kind)
			if tc.msg != "" {
				if got := hotswap.ErrorMessage(tc.err); got != tc.msg {
					t.Errorf("message = %q, want %q", got, tc.msg)
				}
			}
		})
	}
}
