package hotswap

import (
	"errors"
	"syscall"
)

// DiskFull returns err as an *Error of kind StorageFull whose message says
// what ran out, and while writing what (e.g. "the package"; empty: not
// said), when err is or wraps ENOSPC or EDQUOT. Any other err, nil, or an
// error already of kind StorageFull is returned as is.
func DiskFull(err error, what string) error {
	if err == nil || ErrorKind(err) == StorageFull {
		return err
	}
	var msg string
	switch {
	case errors.Is(err, syscall.ENOSPC):
		msg = "disk full: no space left on device"
	case errors.Is(err, syscall.EDQUOT):
		msg = "disk quota exceeded"
	default:
		return err
	}
	if what != "" {
		msg += " while writing " + what
	}
	return &Error{Kind: StorageFull, Msg: msg, Err: err}
}
