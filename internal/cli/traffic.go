package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/hotswap/hotswap"
)

// Traffic routing rules: a share of the requests to an app's production
// host name goes to other slots (testing in production).

type trafficJSON struct {
	Shares []hotswap.TrafficShare `json:"shares"`
}

func trafficPath(app string) string { return appPath(app) + "/traffic" }

// parseShares reads SLOT=PERCENT arguments ("staging=10", "canary=2.5%").
func parseShares(x *cmdEnv, args []string) ([]hotswap.TrafficShare, error) {
	shares := make([]hotswap.TrafficShare, 0, len(args))
	for _, a := range args {
		slot, pct, ok := strings.Cut(a, "=")
		if !ok || slot == "" {
			return nil, &usageError{x.cmd, fmt.Sprintf("%q is not SLOT=PERCENT (e.g. staging=10)", a)}
		}
		p, err := strconv.ParseFloat(strings.TrimSuffix(pct, "%"), 64)
		if err != nil {
			return nil, &usageError{x.cmd, fmt.Sprintf("%q: the percent %q is not a number from 0 to 100", a, pct)}
		}
		shares = append(shares, hotswap.TrafficShare{Slot: slot, Percent: p})
	}
	return shares, nil
}

func printTraffic(w io.Writer, app string, shares []hotswap.TrafficShare) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "SLOT\tPERCENT")
	rest := 100.0
	for _, s := range shares {
		rest -= s.Percent
	}
	fmt.Fprintf(tw, "%s\t%s%%\n", hotswap.ProductionSlot, hotswap.FormatPercent(max(rest, 0)))
	for _, s := range shares {
		fmt.Fprintf(tw, "%s\t%s%%\n", s.Slot, hotswap.FormatPercent(s.Percent))
	}
	return tw.Flush()
}

func trafficCall(ctx context.Context, x *cmdEnv, method, app string, body any) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var ans trafficJSON
	if printed, err := x.call(ctx, method, trafficPath(app), body, &ans); printed || err != nil {
		return err
	}
	return printTraffic(x.stdout, app, ans.Shares)
}

func trafficShow(ctx context.Context, x *cmdEnv, args []string) error {
	return trafficCall(ctx, x, http.MethodGet, args[0], nil)
}

func trafficSet(ctx context.Context, x *cmdEnv, args []string) error {
	shares, err := parseShares(x, args[1:])
	if err != nil {
		return err
	}
	return trafficCall(ctx, x, http.MethodPut, args[0], trafficJSON{Shares: shares})
}

func trafficClear(ctx context.Context, x *cmdEnv, args []string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if printed, err := x.call(ctx, http.MethodDelete, trafficPath(args[0]), nil, nil); printed || err != nil {
		return err
	}
	_, err := fmt.Fprintf(x.stdout, "traffic rules of %s cleared: production serves all its requests\n", args[0])
	return err
}
