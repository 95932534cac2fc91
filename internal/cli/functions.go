package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// listenerJSON is a queue or blob trigger's listener, as the API shows it.
type listenerJSON struct {
	Queue      string   `json:"queue"`
	Path       string   `json:"path"`
	State      string   `json:"state"`
	Error      string   `json:"error"`
	Note       string   `json:"note"`
	SharedWith []string `json:"sharedWith"`
}

// functions lists a slot's functions with their trigger, state and why.
func functions(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ans struct {
		Functions []struct {
			functionJSON
			Route    string        `json:"route"`
			Schedule string        `json:"schedule"`
			Listener *listenerJSON `json:"listener"`
		} `json:"functions"`
	}
	if printed, err := x.call(ctx, http.MethodGet, slotPath(args[0], x.opts.slot), nil, &ans); printed || err != nil {
		return err
	}
	rows := make([]functionRow, 0, len(ans.Functions))
	for _, f := range ans.Functions {
		r := functionRow{name: f.Name, trigger: f.Trigger}
		switch {
		case !f.Runnable:
			r.state, r.detail = "not runnable", f.Reason
		case f.Disabled:
			r.state, r.detail = "disabled", "app setting AzureWebJobs."+f.Name+".Disabled"
		case f.Listener != nil:
			l := f.Listener
			r.state, r.detail = l.State, l.Queue+l.Path
			for _, s := range []string{l.Error, l.Note} {
				if s != "" {
					r.detail += ": " + s
				}
			}
			if len(l.SharedWith) > 0 {
				r.detail += " (also taken by slot " + strings.Join(l.SharedWith, ", ") + ")"
			}
		case f.Schedule != "":
			r.state, r.detail = "runnable", f.Schedule
		default:
			r.state, r.detail = "runnable", f.Route
		}
		rows = append(rows, r)
	}
	return printFunctions(x.stdout, rows)
}

type functionRow struct{ name, trigger, state, detail string }

func printFunctions(w io.Writer, rows []functionRow) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "FUNCTION\tTRIGGER\tSTATE\tDETAIL")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.name, r.trigger, r.state, orDash(r.detail))
	}
	return tw.Flush()
}
