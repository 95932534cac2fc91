package main

import (
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// portalUser is one browser on the portal, over plain HTTP: its own
// cookies, redirects shown rather than followed.
type portalUser struct {
	t    testing.TB
	base string // http://127.0.0.1:port
	c    *http.Client
	csrf string // of the last page
}

var portalCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newPortalUser(t testing.TB, s *server) *portalUser {
	jar, _ := cookiejar.New(nil)
	return &portalUser{t: t, base: s.api, c: &http.Client{
		Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request and returns the answer with its body read.
func (u *portalUser) do(req *http.Request) (*http.Response, string) {
	u.t.Helper()
	resp, err := u.c.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if m := portalCSRF.FindSubmatch(data); m != nil {
		u.csrf = string(m[1])
	}
	return resp, string(data)
}

func (u *portalUser) get(path string) (*http.Response, string) {
	u.t.Helper()
	req, _ := http.NewRequest("GET", u.base+path, nil)
	return u.do(req)
}

// post sends form with the CSRF token of the last page, unless the form
// has one, and the extra headers.
func (u *portalUser) post(path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	u.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", u.csrf)
	}
	req, _ := http.NewRequest("POST", u.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return u.do(req)
}

// signIn signs in from the sign-in page, opens the page it leads to (for
// its CSRF token) and returns the session cookie.
func (u *portalUser) signIn(token string) string {
	u.t.Helper()
	u.get("/signin")
	resp, body := u.post("/signin", url.Values{"token": {token}}, map[string]string{"Origin": u.base})
	if resp.StatusCode != http.StatusSeeOther {
		u.t.Fatalf("sign in = %d:\n%s", resp.StatusCode, body)
	}
	if resp, _ := u.get(resp.Header.Get("Location")); resp.StatusCode != http.StatusOK {
		u.t.Fatalf("the page after signing in = %d", resp.StatusCode)
	}
	return u.cookie("hotswap_session")
}

func (u *portalUser) cookie(name string) string {
	base, _ := url.Parse(u.base)
	for _, c := range u.c.Jar.Cookies(base) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// sessionWorks reports whether a session cookie is taken: a page shows
// who is signed in (not the sign-in redirect) and a form answers other
// than 401.
func sessionWorks(t testing.TB, s *server, session string) bool {
	t.Helper()
	u := newPortalUser(t, s)
	req, _ := http.NewRequest("GET", s.api+"/apps", nil)
	req.AddCookie(&http.Cookie{Name: "hotswap_session", Value: session})
	resp, body := u.do(req)
	page := resp.StatusCode == http.StatusOK && strings.Contains(body, `id="current-user"`)
	if !page && (resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/signin")) {
		t.Fatalf("GET /apps = %d, neither the page nor the sign-in redirect", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", s.api+"/apps", strings.NewReader("name=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "hotswap_session", Value: session})
	resp, _ = u.do(req)
	if form := resp.StatusCode != http.StatusUnauthorized; form != page {
		t.Errorf("the page takes the session: %v, a form (answer %d): %v", page, resp.StatusCode, form)
	}
	return page
}

// TestPortalSessionRevoked: signing out ends the session, a copy of its
// cookie included, and so does a change of the token it signed in with; a
// restart keeps a session that neither ended.
func TestPortalSessionRevoked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir)

	// Sign out, then the copied cookie.
	u := newPortalUser(t, s)
	copied := u.signIn(s.token)
	if !sessionWorks(t, s, copied) {
		t.Fatal("the session does not work after signing in")
	}
	if resp, _ := u.post("/signout", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out = %d, want 303", resp.StatusCode)
	}
	if sessionWorks(t, s, copied) {
		t.Error("a copy of the session cookie works after signing out")
	}

	// A user deleted and made again with the same name has a new token.
	ciToken := s.createUser("ci", "deployer")
	ci := newPortalUser(t, s).signIn(ciToken)
	s.must(http.StatusNoContent, "DELETE", "/api/v1/users/ci", nil, nil)
	if sessionWorks(t, s, ci) {
		t.Error("the session of a deleted user works")
	}
	s.createUser("ci", "deployer")
	if sessionWorks(t, s, ci) {
		t.Error("the session of a deleted user works for the new user of that name")
	}

	// A restart keeps a session (the same admin token); replacing the admin
	// token (delete the file, restart) ends it. A signed-out session stays
	// ended.
	admin := newPortalUser(t, s).signIn(s.token)
	s.main.Close()
	s = startServer(t, dir)
	if !sessionWorks(t, s, admin) {
		t.Error("after a restart with the same admin token the session is refused")
	}
	if sessionWorks(t, s, copied) {
		t.Error("after a restart the signed-out session works again")
	}
	old := s.token
	s.main.Close()
	if err := os.Remove(filepath.Join(dir, "admin-token")); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, dir)
	if s.token == old {
		t.Fatal("the admin token did not change")
	}
	if sessionWorks(t, s, admin) {
		t.Error("a session of the replaced admin token works")
	}
	if !sessionWorks(t, s, newPortalUser(t, s).signIn(s.token)) {
		t.Error("a session of the new admin token is refused")
	}
}

// TestPortalSignInForgery: the sign-in form needs its CSRF token and a
// same-origin request, like every other form.
func TestPortalSignInForgery(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	tests := []struct {
		name string
		csrf bool
		hdr  map[string]string
	}{
		{"no CSRF token", false, nil},
		{"other Origin", true, map[string]string{"Origin": "https://evil.example"}},
		{"cross-site", true, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}},
		{"other Referer", true, map[string]string{"Referer": "https://evil.example/x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := newPortalUser(t, s)
			u.get("/signin")
			form := url.Values{"token": {s.token}}
			if !tc.csrf {
				form.Set("csrf", "")
			}
			resp, _ := u.post("/signin", form, tc.hdr)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("sign-in POST = %d, want 403", resp.StatusCode)
			}
			if u.cookie("hotswap_session") != "" {
				t.Error("the forged sign-in started a session")
			}
		})
	}
}

func TestPortalSecureCookies(t *testing.T) {
	t.Parallel()
	s := startServerWith(t, "", func(m *Main) { m.Config.PublicURL = "https://hotswap.example.com" })
	u := newPortalUser(t, s)
	resp, _ := u.get("/signin")
	cookies := resp.Cookies()
	resp, _ = u.post("/signin", url.Values{"token": {s.token}}, map[string]string{"Origin": "https://hotswap.example.com"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in from the public URL's origin = %d, want 303", resp.StatusCode)
	}
	cookies = append(cookies, resp.Cookies()...)
	names := map[string]bool{}
	for _, c := range cookies {
		names[c.Name] = true
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s: Secure %v, HttpOnly %v, SameSite %v; want Secure, HttpOnly, Lax", c.Name, c.Secure, c.HttpOnly, c.SameSite)
		}
	}
	if !names["hotswap_session"] {
		t.Error("signing in set no session cookie")
	}
}

// TestPortalNextStaysLocal signs in with next= values that lead off-site,
// as Go or a browser reads them; each must land on a local path.
func TestPortalNextStaysLocal(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	for _, next := range []string{
		"/%09/evil.example", "/\t/evil.example", "//evil.example", "/\\evil.example",
		"https://evil.example", "/%2F%2Fevil", "/%5Cevil.example", " //evil.example", "/apps/orders",
	} {
		t.Run(next, func(t *testing.T) {
			u := newPortalUser(t, s)
			resp, _ := u.get("/signin?next=" + url.QueryEscape(next))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("sign-in page = %d", resp.StatusCode)
			}
			resp, _ = u.post("/signin", url.Values{"token": {s.token}, "next": {next}}, nil)
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/") {
				t.Fatalf("sign in = %d to %q, want 303 to a path", resp.StatusCode, loc)
			}
			// A browser drops tabs and newlines, trims, and reads \ as /.
			seen := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(strings.TrimSpace(loc))
			base, _ := url.Parse("https://portal.example/signin")
			for _, l := range []string{loc, seen} {
				ref, err := url.Parse(l)
				if err != nil {
					t.Fatalf("Location %q: %v", l, err)
				}
				if host := base.ResolveReference(ref).Host; host != "portal.example" {
					t.Errorf("next=%q leads to host %q (Location %q)", next, host, loc)
				}
			}
			if next == "/apps/orders" && loc != next {
				t.Errorf("next=%q went to %q", next, loc)
			}
		})
	}
}

// listFiles returns the files under dir, and in os.TempDir those that
// multipart spooling makes.
func listFiles(t testing.TB, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[path] = true
		}
		return nil
	})
	spooled, _ := filepath.Glob(filepath.Join(os.TempDir(), "multipart-*"))
	for _, p := range spooled {
		out[p] = true
	}
	return out
}

// TestPortalUploadNeedsSessionFirst sends a 50 MiB deploy upload without a
// session and holds the file back: the answer must come before the body,
// and no file may appear in the data directory or the system temp
// directory meanwhile.
func TestPortalUploadNeedsSessionFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir)
	s.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	qa := newPortalUser(t, s)
	qaSession := qa.signIn(s.createUser("qa-lead", "approver"))
	for _, tc := range []struct {
		name, session string
		want          int
	}{
		{"anonymous", "", http.StatusUnauthorized},
		{"approver", qaSession, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var head strings.Builder
			mw := multipart.NewWriter(&head)
			mw.WriteField("csrf", qa.csrf)
			mw.CreateFormFile("package", "big.zip")
			const size = 50 << 20
			tail := "\r\n--" + mw.Boundary() + "--\r\n"
			pr, pw := io.Pipe()
			req, _ := http.NewRequest("POST", s.api+"/apps/orders/slots/production/deploy", pr)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.ContentLength = int64(head.Len()) + size + int64(len(tail))
			if tc.session != "" {
				req.AddCookie(&http.Cookie{Name: "hotswap_session", Value: tc.session})
			}
			before := listFiles(t, dir)
			// The head of the form and 1 MiB of the file, then nothing until
			// the answer came (or 30s passed).
			answered := make(chan struct{})
			go func() {
				pw.Write([]byte(head.String()))
				pw.Write(make([]byte, 1<<20))
				select {
				case <-answered:
					pw.CloseWithError(io.ErrUnexpectedEOF)
					return
				case <-time.After(30 * time.Second):
				}
				for sent := 1 << 20; sent < size; sent += 1 << 20 {
					if _, err := pw.Write(make([]byte, 1<<20)); err != nil {
						return
					}
				}
				pw.Write([]byte(tail))
				pw.Close()
			}()
			// Watch for files while the request runs.
			appeared := make(chan map[string]bool, 1)
			go func() {
				seen := map[string]bool{}
				for {
					for f := range listFiles(t, dir) {
						if !before[f] {
							seen[f] = true
						}
					}
					select {
					case <-answered:
						appeared <- seen
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
			start := time.Now()
			c := &http.Client{Timeout: 2 * time.Minute}
			resp, err := c.Do(req)
			close(answered)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("the answer took %s: the server waited for the body", took)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("deploy upload = %d, want %d", resp.StatusCode, tc.want)
			}
			for f := range <-appeared {
				t.Errorf("during the refused upload %s appeared", f)
			}
		})
	}
}
