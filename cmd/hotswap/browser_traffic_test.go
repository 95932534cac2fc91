package main

import (
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hotswap/hotswap"
)

// TestBrowserTrafficSticky: in a real browser, production's page under a
// 50% rule lands on one slot and stays there over 20 reloads (the routing
// cookie); ?x-ms-routing-name= moves it to the other slot, which it then
// keeps.
func TestBrowserTrafficSticky(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "shop"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/shop/slots", map[string]string{"name": "staging"}, nil)
	pkg := zipDir(t, examplePackage(t, "envapp"))
	prod := s.deploy("shop", hotswap.ProductionSlot, pkg)
	staging := s.deploy("shop", "staging", pkg)
	s.must(http.StatusOK, "PUT", "/api/v1/apps/shop/traffic", map[string]any{"shares": []map[string]any{{"slot": "staging", "percent": 50}}}, nil)

	_, port, err := net.SplitHostPort(s.fnAddr)
	if err != nil {
		t.Fatal(err)
	}
	site := "http://shop.localhost:" + port
	b := newBrowser(t, site, 120*time.Second)
	// servedBy is the deployment that answered the page shown.
	servedBy := func() string {
		t.Helper()
		var who struct{ Deployment string }
		text := eval[string](b, `document.body.innerText`)
		if err := json.Unmarshal([]byte(text), &who); err != nil {
			t.Fatalf("the page is not the handler's answer: %v\n%s", err, text)
		}
		return who.Deployment
	}
	b.do("open production's page", chromedp.Navigate(site+"/api/whoami"))
	first := servedBy()
	if first != prod && first != staging {
		t.Fatalf("served by %q, want %s or %s", first, prod, staging)
	}
	for i := range 20 {
		b.do("reload", chromedp.Reload())
		if got := servedBy(); got != first {
			t.Fatalf("reload %d was served by %s, the first load by %s: the client did not stay on its slot", i+1, got, first)
		}
	}

	other, name := staging, "staging"
	if first == staging {
		other, name = prod, "self"
	}
	b.do("pick the other slot", chromedp.Navigate(site+"/api/whoami?x-ms-routing-name="+name))
	if got := servedBy(); got != other {
		t.Fatalf("?x-ms-routing-name=%s was served by %s, want %s", name, got, other)
	}
	for i := range 5 {
		b.do("open without the parameter", chromedp.Navigate(site+"/api/whoami"))
		if got := servedBy(); got != other {
			t.Fatalf("load %d after picking %s was served by %s, want %s", i+1, name, got, other)
		}
	}
}
