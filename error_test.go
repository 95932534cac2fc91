package hotswap

import (
	"fmt"
	"testing"
)

func TestErrorKindAndMessage(t *testing.T) {
	base := Errorf(NotFound, "app %q not found", "orders")
	wrapped := fmt.Errorf("show app: %w", base)
	if got := ErrorKind(wrapped); got != NotFound {
		t.Errorf("ErrorKind = %v, want not_found", got)
	}
	if got := ErrorMessage(wrapped); got != `app "orders" not found` {
		t.Errorf("ErrorMessage = %q", got)
	}
	if got := ErrorKind(fmt.Errorf("plain")); got != Internal {
		t.Errorf("ErrorKind(plain) = %v, want internal", got)
	}
	if got := ErrorMessage(fmt.Errorf("disk on fire")); got != "internal error" {
		t.Errorf("ErrorMessage(plain) = %q, must not leak detail", got)
	}
}
