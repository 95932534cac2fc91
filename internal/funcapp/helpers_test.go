package funcapp

import (
	"errors"
	"testing"

	"github.com/hotswap/hotswap"
)

// checkInvalid fails unless err is a hotswap Invalid error with message want.
func checkInvalid(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %q", want)
	}
	var e *hotswap.Error
	if !errors.As(err, &e) || e.Kind != hotswap.Invalid {
		t.Errorf("err = %#v, want a hotswap.Error of kind Invalid", err)
	}
	if got := err.Error(); got != want {
		t.Errorf("err = %q\nwant  %q", got, want)
	}
}
