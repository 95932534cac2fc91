package hotswap

import (
	"errors"
	"fmt"
)

// Kind classifies an Error. The HTTP layer maps each kind to one status code.
type Kind int

// The closed set of error kinds.
const (
	Internal Kind = iota
	Invalid
	NotFound
	Conflict
	Unauthorized
	Forbidden
	FailedPrecondition
	Unavailable
	// StorageFull means the disk (or a quota) ran out while writing; see DiskFull.
	StorageFull
	TooLarge // a body or package over its size limit
)

var kindNames = [...]string{
	Internal:           "internal",
	Invalid:            "invalid",
	NotFound:           "not_found",
	Conflict:           "conflict",
	Unauthorized:       "unauthorized",
	Forbidden:          "forbidden",
	FailedPrecondition: "failed_precondition",
	Unavailable:        "unavailable",
	StorageFull:        "storage_full",
	TooLarge:           "too_large",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is the error type of the domain. Msg is safe to show to a client; Err
// carries internal detail for the server log.
type Error struct {
	Kind Kind
	Op   string // operation, e.g. "deploy"
	Msg  string // client-facing message
	Err  error  // underlying cause, may be nil
}

func (e *Error) Error() string {
	var s string
	if e.Op != "" {
		s = e.Op + ": "
	}
	switch {
	case e.Msg != "" && e.Err != nil:
		return s + e.Msg + ": " + e.Err.Error()
	case e.Msg != "":
		return s + e.Msg
	case e.Err != nil:
		return s + e.Err.Error()
	}
	return s + e.Kind.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k with a formatted client-facing message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// ErrorKind returns the kind of the first *Error in err's chain, or Internal.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// ErrorMessage returns the client-facing message of err: the Msg of the first
// *Error in its chain that has one, or a generic text for internal errors.
func ErrorMessage(err error) string {
	var e *Error
	for errors.As(err, &e) {
		if e.Msg != "" {
			return e.Msg
		}
		err = e.Err
		if err == nil {
			break
		}
	}
	return "internal error"
}
