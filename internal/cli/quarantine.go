package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hotswap/hotswap"
)

func quarantinePath(app, deployment string) string {
	return appPath(app) + "/deployments/" + url.PathEscape(deployment) + "/quarantine"
}

// quarantine quarantines a deployment's content (a deploy or release of the
// same digest or artifact version is refused), or lifts it with --lift.
func quarantine(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	app, dep := args[0], args[1]
	if x.opts.lift {
		if printed, err := x.call(ctx, http.MethodDelete, quarantinePath(app, dep), nil, nil); printed || err != nil {
			return err
		}
		_, err := fmt.Fprintf(x.stdout, "quarantine of deployment %s of %s lifted: its content may be deployed again\n", dep, app)
		return err
	}
	var ans struct {
		Quarantine hotswap.Quarantine `json:"quarantine"`
	}
	body := struct {
		Reason string `json:"reason"`
	}{x.opts.reason}
	if printed, err := x.call(ctx, http.MethodPost, quarantinePath(app, dep), body, &ans); printed || err != nil {
		return err
	}
	q := ans.Quarantine
	what := "content " + shortDigest(q.Digest)
	if q.Version != "" {
		what += " (version " + q.Version + ")"
	}
	_, err := fmt.Fprintf(x.stdout, "deployment %s of %s quarantined at %s: %s is refused by deploy and releases unless --force\nreason: %s\n",
		dep, app, q.At.UTC().Format(time.RFC3339), what, q.Reason)
	return err
}

// quarantineCheck refuses --reason with --lift.
func quarantineCheck(x *cmdEnv, args []string) error {
	if x.opts.lift && x.opts.reason != "" {
		return &usageError{x.cmd, "--reason is for quarantining, not with --lift"}
	}
	return nil
}
