package cli

import (
	"errors"
	"net/http"
)

// refused explains an API refusal of the command (issue 12, item 13): a
// 401 names where the token came from, a 403 names the refused command
// beside the server's word on the user, its role and the role needed.
// Other errors are returned as they are.
func (x *cmdEnv) refused(err error) error {
	ae, ok := errors.AsType[*apiError](err)
	if !ok {
		return err
	}
	switch ae.Status {
	case http.StatusUnauthorized:
		if x.client != nil {
			return x.client.refused(err)
		}
	case http.StatusForbidden:
		msg := ae.Message
		if msg == "" {
			msg = "the token's role may not do this"
		}
		ae.Message = x.cmd.name + " refused: " + msg
	}
	return err
}
