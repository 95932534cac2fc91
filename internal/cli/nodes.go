package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// nodes lists the nodes of the cluster with their version, state and last
// heartbeat (a single server lists itself).
func nodes(ctx context.Context, x *cmdEnv, _ []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ans struct {
		Self  string `json:"self"`
		Nodes []struct {
			ID         string    `json:"id"`
			Name       string    `json:"name"`
			Addr       string    `json:"addr"`
			Version    string    `json:"version"`
			State      string    `json:"state"`
			Generation int64     `json:"generation"`
			StartedAt  time.Time `json:"startedAt"`
			Age        int64     `json:"age"` // nanoseconds since the last heartbeat
		} `json:"nodes"`
	}
	if printed, err := x.call(ctx, http.MethodGet, "/api/v1/nodes", nil, &ans); printed || err != nil {
		return err
	}
	tw := newTable(x.stdout)
	fmt.Fprintln(tw, "NAME\tID\tADDRESS\tVERSION\tSTATE\tGENERATION\tHEARTBEAT")
	for _, n := range ans.Nodes {
		name := n.Name
		if n.ID != "" && n.ID == ans.Self {
			name += " (this one)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s ago\n", orDash(name), orDash(n.ID), n.Addr, n.Version, n.State, n.Generation, time.Duration(n.Age).Round(100*time.Millisecond))
	}
	return tw.Flush()
}

// drain drains the node at --url: it fails its load balancer health check,
// finishes the requests in flight and stops.
func drain(ctx context.Context, x *cmdEnv, _ []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ans struct {
		Node string `json:"node"`
	}
	if printed, err := x.call(ctx, http.MethodPost, "/api/v1/node/drain", nil, &ans); printed || err != nil {
		return err
	}
	fmt.Fprintf(x.stdout, "draining node %s: its health check fails now; it stops once its requests in flight are done\n", orDash(ans.Node))
	return nil
}
