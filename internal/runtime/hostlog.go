package runtime

import (
	"errors"
	"os/exec"
)

// hostLog writes a line of the set's own to Spec.Log, stream "host", so the
// slot log shows crashes and restarts beside the handler's output instead of
// only the server's stderr.
func (s *Set) hostLog(text string) {
	if s.spec.Log != nil {
		s.spec.Log("host", text)
	}
}

// exitStatus says how a handler process ended, from the error of Wait:
// "exit status 2", "signal: killed", or "exit status 0" for a clean exit.
func exitStatus(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	}
	return err.Error()
}
