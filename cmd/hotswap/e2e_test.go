package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestExamplesThroughHost deploys every example and calls every function
// through the host, comparing bodies byte for byte.
func TestExamplesThroughHost(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "nodeapp"}, nil)
	s.must(http.StatusOK, "PATCH", "/api/v1/apps/orders/slots/production/settings", map[string]any{"set": []map[string]any{{"name": "APP_VERSION", "value": "1.0.0"}}}, nil)

	s.deploy("orders", "production", zipDir(t, examplePackage(t, "goforward")))
	s.deploy("orders", "staging", zipDir(t, examplePackage(t, "gopayload")))
	s.deploy("nodeapp", "production", zipDir(t, examplePackage(t, "node")))

	prodKey := findKey(s.keys("orders", "production"), "function", "hello", "default")
	stagingKey := findKey(s.keys("orders", "staging"), "function", "hello", "default")
	nodeKey := findKey(s.keys("nodeapp", "production"), "function", "hello", "default")
	if prodKey == "" || stagingKey == "" || nodeKey == "" || prodKey == stagingKey {
		t.Fatalf("function keys: production %q, staging %q, node %q: want distinct, non-empty", prodKey, stagingKey, nodeKey)
	}
	big := make([]byte, 1<<20)
	rand.Read(big)
	text := []byte(strings.Repeat("héllo, wörld ✓\n", 4000))

	tests := []struct {
		name, method, host, path string
		hdr                      map[string]string
		body                     []byte
		wantStatus               int
		wantBody                 string // exact, when not empty
		wantBytes                []byte // exact, when not nil
		wantHeader               map[string]string
	}{
		{name: "forward hello", method: "GET", host: "orders.localhost", path: "/api/hello?name=Ada&code=" + prodKey, wantStatus: 200,
			wantBody: `{"message":"Hello, Ada","site":"orders","slot":"Production","version":"1.0.0"}`},
		{name: "forward hello with header key", method: "POST", host: "orders.localhost", path: "/api/hello", hdr: map[string]string{"x-functions-key": prodKey}, wantStatus: 200,
			wantBody: `{"message":"Hello, world","site":"orders","slot":"Production","version":"1.0.0"}`},
		{name: "forward echo 1MiB binary", method: "POST", host: "orders.localhost", path: "/api/echo?x=1&y=2", body: big, wantStatus: 200, wantBytes: big,
			wantHeader: map[string]string{"X-Echo-Method": "POST", "X-Echo-Query": "x=1&y=2", "X-Echo-Path": "/api/echo"}},
		{name: "forward route constraint", method: "GET", host: "orders.localhost", path: "/api/products/books/42", wantStatus: 200, wantBody: `{"category":"books","id":42}`},
		{name: "forward optional part", method: "GET", host: "orders.localhost", path: "/api/products/books", wantStatus: 200, wantBody: `{"category":"books","id":null}`},
		{name: "forward constraint fails", method: "GET", host: "orders.localhost", path: "/api/products/books/abc", wantStatus: 404},
		{name: "forward wrong method", method: "DELETE", host: "orders.localhost", path: "/api/echo", wantStatus: 404}, // as on Azure
		{name: "unknown route", method: "GET", host: "orders.localhost", path: "/api/nope", wantStatus: 404},
		{name: "unknown app", method: "GET", host: "nosuch.localhost", path: "/api/hello", wantStatus: 404},
		{name: "unknown slot", method: "GET", host: "orders-nosuch.localhost", path: "/api/hello", wantStatus: 404},
		{name: "payload hello", method: "GET", host: "orders-staging.localhost", path: "/api/hello?name=Bob", hdr: map[string]string{"x-functions-key": stagingKey}, wantStatus: 200,
			wantBody: `{"message":"Hello, Bob","slot":"staging","version":""}`},
		{name: "payload echo $return", method: "POST", host: "orders-staging.localhost", path: "/api/echo", body: text, wantStatus: 200, wantBytes: text,
			wantHeader: map[string]string{"Content-Type": "text/plain"}},
		{name: "payload params", method: "GET", host: "orders-staging.localhost", path: "/api/items/7", wantStatus: 200, wantBody: `{"id":7}`},
		{name: "payload no output 204", method: "POST", host: "orders-staging.localhost", path: "/api/fire", wantStatus: 204},
		{name: "payload failed invocation", method: "GET", host: "orders-staging.localhost", path: "/api/fail", wantStatus: 500},
		{name: "node hello", method: "GET", host: "nodeapp.localhost", path: "/api/hello?name=Lin&code=" + nodeKey, wantStatus: 200,
			wantBody: `{"message":"Hello from Node, Lin","slot":"Production"}`},
		{name: "node echo 1MiB binary", method: "POST", host: "nodeapp.localhost", path: "/api/echo", body: big, hdr: map[string]string{"Content-Type": "application/octet-stream"}, wantStatus: 200, wantBytes: big},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := fnRequest(t, s.client, s.fnAddr, tc.method, tc.host, tc.path, tc.hdr, tc.body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %.300s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Errorf("body = %q, want %q", body, tc.wantBody)
			}
			if tc.wantBytes != nil && !bytes.Equal(body, tc.wantBytes) {
				t.Errorf("body differs: got %d bytes, want %d", len(body), len(tc.wantBytes))
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}

	t.Run("payload Logs reach the slot log", func(t *testing.T) {
		found, lines := s.logHas("orders", "staging", "hello", func(text string) bool { return text == "hello called for Bob" })
		if !found {
			t.Errorf("the handler's Logs line is not in the slot log: %+v", lines)
		}
	})

	t.Run("get function URL", func(t *testing.T) {
		var fn struct{ InvokeURL string }
		s.must(http.StatusOK, "GET", "/api/v1/apps/orders/slots/staging/functions/hello", nil, &fn)
		want := "http://orders-staging.localhost:" + portOf(s.fnAddr) + "/api/hello?code=" + stagingKey
		if fn.InvokeURL != want {
			t.Fatalf("invokeUrl = %q, want %q", fn.InvokeURL, want)
		}
		path := strings.TrimPrefix(fn.InvokeURL, "http://orders-staging.localhost:"+portOf(s.fnAddr))
		resp, _ := s.fn("GET", "orders-staging.localhost", path, nil, nil)
		if resp.StatusCode != 200 {
			t.Errorf("calling the function URL = %d, want 200", resp.StatusCode)
		}
	})
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// TestAuthMatrix checks each auth level against each kind of key.
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "shop"}, nil)
	s.must(http.StatusCreated, "POST", "/api/v1/apps/shop/slots", map[string]string{"name": "staging"}, nil)
	pkg := zipDir(t, examplePackage(t, "goforward"))
	s.deploy("shop", "production", pkg)
	s.deploy("shop", "staging", pkg)
	prod, staging := s.keys("shop", "production"), s.keys("shop", "staging")
	keys := map[string]string{
		"none":                 "",
		"wrong":                "this-is-not-a-key-at-all-1234567890",
		"function key":         findKey(prod, "function", "hello", "default"),
		"other function's key": findKey(prod, "function", "echo", "default"),
		"host key":             findKey(prod, "host", "", "default"),
		"master key":           findKey(prod, "master", "", "_master"),
		"staging function key": findKey(staging, "function", "hello", "default"),
		"staging host key":     findKey(staging, "host", "", "default"),
		"staging master key":   findKey(staging, "master", "", "_master"),
	}
	levels := map[string]string{"anonymous": "/api/health", "function": "/api/hello", "admin": "/api/admin/info"}
	want := map[string]map[string]int{
		"anonymous": {"none": 200, "wrong": 200, "function key": 200, "other function's key": 200, "host key": 200, "master key": 200, "staging function key": 200, "staging host key": 200, "staging master key": 200},
		"function":  {"none": 401, "wrong": 401, "function key": 200, "other function's key": 401, "host key": 200, "master key": 200, "staging function key": 401, "staging host key": 401, "staging master key": 401},
		"admin":     {"none": 401, "wrong": 401, "function key": 401, "other function's key": 401, "host key": 401, "master key": 200, "staging function key": 401, "staging host key": 401, "staging master key": 401},
	}
	for level, path := range levels {
		for keyName, key := range keys {
			for _, via := range []string{"header", "query"} {
				t.Run(level+"/"+keyName+"/"+via, func(t *testing.T) {
					p, hdr := path, map[string]string{}
					if key != "" {
						if via == "header" {
							hdr["x-functions-key"] = key
						} else {
							p += "?code=" + key
						}
					}
					resp, body := s.fn("GET", "shop.localhost", p, hdr, nil)
					if resp.StatusCode != want[level][keyName] {
						t.Errorf("status = %d, want %d (%s)", resp.StatusCode, want[level][keyName], body)
					}
				})
			}
		}
	}
	t.Run("header key is checked before code", func(t *testing.T) {
		resp, _ := s.fn("GET", "shop.localhost", "/api/hello?code="+keys["function key"], map[string]string{"x-functions-key": "wrong-wrong-wrong-wrong"}, nil)
		if resp.StatusCode != 401 {
			t.Errorf("status = %d, want 401", resp.StatusCode)
		}
	})
	t.Run("disabled function is 404 but for the master key", func(t *testing.T) {
		s.must(http.StatusOK, "PATCH", "/api/v1/apps/shop/slots/production/settings", map[string]any{"set": []map[string]any{{"name": "AzureWebJobs.hello.Disabled", "value": "true"}}}, nil)
		if resp, _ := s.fn("GET", "shop.localhost", "/api/hello?code="+keys["function key"], nil, nil); resp.StatusCode != 404 {
			t.Errorf("disabled with function key = %d, want 404", resp.StatusCode)
		}
		if resp, _ := s.fn("GET", "shop.localhost", "/api/hello?code="+keys["master key"], nil, nil); resp.StatusCode != 200 {
			t.Errorf("disabled with master key = %d, want 200", resp.StatusCode)
		}
	})
}

// TestHostAdminAPI exercises the Azure-shaped admin API on a slot host name.
func TestHostAdminAPI(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "shop"}, nil)
	s.deploy("shop", "production", zipDir(t, examplePackage(t, "goforward")))
	master := findKey(s.keys("shop", "production"), "master", "", "_master")
	mk := map[string]string{"x-functions-key": master}

	if resp, _ := s.fn("GET", "shop.localhost", "/admin/host/status", nil, nil); resp.StatusCode != 401 {
		t.Fatalf("status without key = %d, want 401", resp.StatusCode)
	}
	resp, body := s.fn("GET", "shop.localhost", "/admin/host/status", mk, nil)
	var status struct{ State string }
	if resp.StatusCode != 200 || json.Unmarshal(body, &status) != nil || status.State != "Running" {
		t.Fatalf("host status = %d %s", resp.StatusCode, body)
	}
	resp, body = s.fn("GET", "shop.localhost", "/admin/functions", mk, nil)
	var fns []struct {
		Name              string `json:"name"`
		InvokeURLTemplate string `json:"invoke_url_template"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &fns) != nil || len(fns) != 5 {
		t.Fatalf("functions = %d %s", resp.StatusCode, body)
	}
	// Set a named function key through the admin API, then use it.
	resp, body = s.fn("PUT", "shop.localhost", "/admin/functions/hello/keys/ci", mk, []byte(`{"name":"ci","value":"ci-key-0123456789abcdef"}`))
	if resp.StatusCode != 201 {
		t.Fatalf("PUT key = %d %s", resp.StatusCode, body)
	}
	if resp, _ := s.fn("GET", "shop.localhost", "/api/hello?code=ci-key-0123456789abcdef", nil, nil); resp.StatusCode != 200 {
		t.Errorf("new key refused: %d", resp.StatusCode)
	}
	resp, body = s.fn("GET", "shop.localhost", "/admin/functions/hello/keys", mk, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ci"`) || !strings.Contains(string(body), `"links"`) {
		t.Errorf("list keys = %d %s", resp.StatusCode, body)
	}
	if resp, _ := s.fn("DELETE", "shop.localhost", "/admin/functions/hello/keys/ci", mk, nil); resp.StatusCode != 204 {
		t.Errorf("DELETE key = %d", resp.StatusCode)
	}
	if resp, _ := s.fn("GET", "shop.localhost", "/api/hello?code=ci-key-0123456789abcdef", nil, nil); resp.StatusCode != 401 {
		t.Errorf("deleted key still works: %d", resp.StatusCode)
	}
	// POST generates a host key.
	resp, body = s.fn("POST", "shop.localhost", "/admin/host/keys/deploy", mk, nil)
	var gen struct{ Value string }
	if resp.StatusCode != 201 || json.Unmarshal(body, &gen) != nil || len(gen.Value) < 32 {
		t.Fatalf("POST host key = %d %s", resp.StatusCode, body)
	}
	if resp, _ := s.fn("GET", "shop.localhost", "/api/hello?code="+gen.Value, nil, nil); resp.StatusCode != 200 {
		t.Errorf("generated host key refused: %d", resp.StatusCode)
	}
}
