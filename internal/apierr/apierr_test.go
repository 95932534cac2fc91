package apierr

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/hotswap/hotswap"
)

func TestWrite(t *testing.T) {
	enospc := fmt.Errorf("spool: %w", &fs.PathError{Op: "write", Path: "/data/x", Err: syscall.ENOSPC})
	for _, tc := range []struct {
		name   string
		err    error
		status int
		kind   string
		msg    string
	}{
		{"domain", hotswap.Errorf(hotswap.NotFound, "app %q not found", "a"), 404, "not_found", `app "a" not found`},
		{"internal", fmt.Errorf("boom"), 500, "internal", "internal error"},
		{"disk full, said where", hotswap.DiskFull(enospc, "the package"), 507, "storage_full", "disk full: no space left on device while writing the package"},
		{"disk full, unclassified", enospc, 507, "storage_full", "disk full: no space left on device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Write(w, httptest.NewRequest("GET", "/x", nil), nil, tc.err)
			var b Body
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			if w.Code != tc.status || b.Error.Kind != tc.kind || b.Error.Message != tc.msg {
				t.Errorf("Write = %d %+v, want %d %s %q", w.Code, b.Error, tc.status, tc.kind, tc.msg)
			}
			if got := Status(tc.err); got != tc.status {
				t.Errorf("Status = %d, want %d", got, tc.status)
			}
			tw := httptest.NewRecorder()
			Text(tw, tc.err)
			if tw.Code != tc.status {
				t.Errorf("Text status = %d, want %d", tw.Code, tc.status)
			}
		})
	}
}
