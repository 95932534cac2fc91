package main

import (
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hotswap/hotswap"
)

// TestTrafficRouting: a 10% rule on production set through the API sends
// about a tenth of production's cookie-less requests to staging's
// deployment, each answer setting the routing cookie for the slot that
// served; the cookie pins a client, the query parameter picks a slot and
// "self" returns to production; a routed request is authorised with the
// keys of the host called (production's); clearing the rule sends
// everything to production again.
func TestTrafficRouting(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "shop"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/shop/slots", map[string]string{"name": "staging"}, nil)
	pkg := zipDir(t, examplePackage(t, "envapp"))
	prod := s.deploy("shop", hotswap.ProductionSlot, pkg)
	staging := s.deploy("shop", "staging", pkg)
	if prod == "" || staging == "" || prod == staging {
		t.Fatalf("deployments %q and %q", prod, staging)
	}

	var rule struct{ Shares []hotswap.TrafficShare }
	s.must(http.StatusOK, "PUT", "/api/v1/apps/shop/traffic", map[string]any{"shares": []map[string]any{{"slot": "staging", "percent": 10}}}, &rule)
	if len(rule.Shares) != 1 || rule.Shares[0] != (hotswap.TrafficShare{Slot: "staging", Percent: 10}) {
		t.Fatalf("PUT traffic answered %+v", rule.Shares)
	}

	// served sends one request to production's host name and returns the
	// deployment that served it and the routing cookie it set ("" none).
	served := func(path string, hdr map[string]string) (dep, cookie string) {
		t.Helper()
		resp, body := s.fn("GET", "shop.localhost", path, hdr, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d: %s", path, resp.StatusCode, body)
		}
		for _, c := range resp.Cookies() {
			if c.Name == "x-ms-routing-name" {
				if c.MaxAge != 3600 || c.Path != "/" || !c.HttpOnly {
					t.Errorf("routing cookie %q: want Max-Age=3600, Path=/, HttpOnly", resp.Header.Get("Set-Cookie"))
				}
				cookie = c.Value
			}
		}
		return resp.Header.Get("X-Deployment"), cookie
	}

	const n = 2000
	counts := map[string]int{}
	for range n {
		dep, cookie := served("/api/whoami", nil)
		counts[dep]++
		want := map[string]string{prod: "self", staging: "staging"}[dep]
		if cookie != want {
			t.Fatalf("a cookie-less request served by %s set the routing cookie %q, want %q", dep, cookie, want)
		}
	}
	if counts[prod]+counts[staging] != n {
		t.Fatalf("served by %v; want only %s and %s", counts, prod, staging)
	}
	// 10% of 2,000: the standard deviation is 0.67 points; 3 points is
	// more than 4 of them.
	if got := 100 * float64(counts[staging]) / n; math.Abs(got-10) > 3 {
		t.Errorf("staging served %.1f%% of %d cookie-less requests, want 10%% within 3 points", got, n)
	}

	// The cookie pins; the query parameter picks (and sets the cookie);
	// self returns to production.
	for range 20 {
		if dep, _ := served("/api/whoami", map[string]string{"Cookie": "x-ms-routing-name=staging"}); dep != staging {
			t.Fatalf("a client with the cookie for staging was served by %s", dep)
		}
		if dep, _ := served("/api/whoami", map[string]string{"Cookie": "x-ms-routing-name=self"}); dep != prod {
			t.Fatalf("a client with the cookie self was served by %s", dep)
		}
	}
	if dep, cookie := served("/api/whoami?x-ms-routing-name=staging", nil); dep != staging || cookie != "staging" {
		t.Errorf("?x-ms-routing-name=staging: served by %s, cookie %q; want %s and staging", dep, cookie, staging)
	}
	if dep, cookie := served("/api/whoami?x-ms-routing-name=self", map[string]string{"Cookie": "x-ms-routing-name=staging"}); dep != prod || cookie != "self" {
		t.Errorf("?x-ms-routing-name=self with the staging cookie: served by %s, cookie %q; want %s and self", dep, cookie, prod)
	}

	// A request routed to staging is authorised with production's keys,
	// the host name the client called, not with staging's.
	prodKey, stagingKey := findKey(s.keys("shop", hotswap.ProductionSlot), "host", "", "default"), findKey(s.keys("shop", "staging"), "host", "", "default")
	if prodKey == "" || stagingKey == "" || prodKey == stagingKey {
		t.Fatalf("host keys %q and %q", prodKey, stagingKey)
	}
	pin := map[string]string{"Cookie": "x-ms-routing-name=staging"}
	if resp, body := s.fn("GET", "shop.localhost", "/api/warm?code="+url.QueryEscape(prodKey), pin, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("routed to staging with production's key: %d %s, want 200", resp.StatusCode, body)
	}
	if resp, _ := s.fn("GET", "shop.localhost", "/api/warm?code="+url.QueryEscape(stagingKey), pin, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("routed to staging with staging's key on production's host name: %d, want 401", resp.StatusCode)
	}

	// Cleared: every cookie-less request goes to production again.
	s.must(http.StatusNoContent, "DELETE", "/api/v1/apps/shop/traffic", nil, nil)
	for range 200 {
		if dep, _ := served("/api/whoami", nil); dep != prod {
			t.Fatalf("after the rule was cleared, a cookie-less request was served by %s", dep)
		}
	}
	var acts struct{ Activity []hotswap.Activity }
	s.must(http.StatusOK, "GET", "/api/v1/apps/shop/activity?limit=5", nil, &acts)
	var log []string
	for _, a := range acts.Activity {
		log = append(log, a.Action+" "+a.Detail)
	}
	if got := strings.Join(log, "\n"); !strings.Contains(got, "traffic.set traffic set staging=10%") || !strings.Contains(got, "traffic.clear traffic cleared") {
		t.Errorf("activity log:\n%s\nwant the rule set and cleared", got)
	}
}
