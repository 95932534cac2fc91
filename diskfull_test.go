package hotswap

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

func TestDiskFull(t *testing.T) {
	enospc := &fs.PathError{Op: "write", Path: "/data/packages/tmp/put-1.zip", Err: syscall.ENOSPC}
	for _, tc := range []struct {
		name, what string
		err        error
		kind       Kind
		msg        string
	}{
		{"wrapped ENOSPC", "the package", fmt.Errorf("put package: %w", enospc), StorageFull,
			"disk full: no space left on device while writing the package"},
		{"quota", "", syscall.EDQUOT, StorageFull, "disk quota exceeded"},
		{"other error", "the package", errors.New("boom"), Internal, "internal error"},
		{"already classified", "the database", &Error{Kind: StorageFull, Msg: "disk full: database"}, StorageFull, "disk full: database"},
		{"domain error", "x", Errorf(Invalid, "bad zip"), Invalid, "bad zip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DiskFull(tc.err, tc.what)
			if k := ErrorKind(got); k != tc.kind {
				t.Errorf("kind = %v, want %v", k, tc.kind)
			}
			if m := ErrorMessage(got); m != tc.msg {
				t.Errorf("message = %q, want %q", m, tc.msg)
			}
			if !errors.Is(got, tc.err) && tc.kind == StorageFull && tc.name != "already classified" {
				t.Errorf("%v does not wrap %v", got, tc.err)
			}
		})
	}
	if DiskFull(nil, "x") != nil {
		t.Error("DiskFull(nil) != nil")
	}
}
