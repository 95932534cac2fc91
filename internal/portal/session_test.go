package portal

import (
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// cookieOf returns the value of b's cookie name, or "".
func (b *browser) cookieOf(name string) string {
	for _, c := range b.c.Jar.Cookies(mustURL(b.e.t, b.e.srv.URL)) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// send sends a request with the given cookies and headers, without
// following redirects.
func (e *env) send(method, path, ctype string, body io.Reader, cookies map[string]string, hdr map[string]string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// signedOut reports whether a session cookie is refused: a page redirects
// to the sign-in page and a form gets 401.
func (e *env) signedOut(t testing.TB, session string) bool {
	t.Helper()
	resp, _ := e.send("GET", "/apps", "", nil, map[string]string{sessionCookie: session}, nil)
	page := resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(resp.Header.Get("Location"), "/signin")
	resp, _ = e.send("POST", "/apps", "application/x-www-form-urlencoded", strings.NewReader("name=x"), map[string]string{sessionCookie: session}, nil)
	form := resp.StatusCode == http.StatusUnauthorized
	if page != form {
		t.Errorf("the page says signed out %v, the form %v", page, form)
	}
	return page && form
}

func TestSignOutEndsSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(adminToken)
	copied := b.cookieOf(sessionCookie)
	if copied == "" || e.signedOut(t, copied) {
		t.Fatal("no working session cookie after signing in")
	}
	if status, body := b.post("/signout", nil); status != http.StatusOK || !strings.Contains(body, `id="signin-form"`) {
		t.Fatalf("sign out = %d, want the sign-in page", status)
	}
	if !e.signedOut(t, copied) {
		t.Error("a copy of the session cookie works after signing out")
	}
	// Signing in again starts a session that works.
	b.signIn(adminToken)
	if e.signedOut(t, b.cookieOf(sessionCookie)) {
		t.Error("the session after signing in again is refused")
	}
}

func TestSessionBoundToToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// A user deleted and made again, with a new token.
	b := e.browser()
	b.signIn(e.addUser("ci", "deployer"))
	old := b.cookieOf(sessionCookie)
	if e.signedOut(t, old) {
		t.Fatal("the user's session is refused")
	}
	if err := e.db.DeleteUser(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	e.addUserToken("ci", "deployer", "tok-ci-a-new-token-0123456789")
	if !e.signedOut(t, old) {
		t.Error("a session signed in with a deleted user's token works for the new user of that name")
	}

	// The admin token replaced: a portal on the same store (a restart)
	// keeps sessions of the same token and ends those of an earlier one.
	a := e.browser()
	a.signIn(adminToken)
	admin := a.cookieOf(sessionCookie)
	same, err := New(ctx, e.portal.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := same.session(ctx, admin); !ok {
		t.Error("after a restart with the same admin token the session is refused")
	}
	cfg := e.portal.cfg
	cfg.AdminToken = "hs_a-new-admin-token-0123456789"
	rotated, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if who, ok := rotated.session(ctx, admin); ok {
		t.Errorf("after the admin token changed the old session still works, as %v", who)
	}
}

// addUserToken creates a user with the given token.
func (e *env) addUserToken(name, role, token string) {
	e.t.Helper()
	if err := e.db.CreateUser(context.Background(), hotswap.User{Name: name, Role: role, TokenHash: tokenHash(token)}); err != nil {
		e.t.Fatal(err)
	}
}

func TestSigninCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/signin")
	cookie, csrf := b.cookieOf(signinCookie), b.csrf
	if cookie == "" || csrf == "" {
		t.Fatalf("the sign-in page set no CSRF cookie (%q) or field (%q)", cookie, csrf)
	}
	other := e.browser()
	other.get("/signin")

	form := func(csrf string) io.Reader {
		return strings.NewReader(url.Values{"token": {adminToken}, "csrf": {csrf}, "next": {"/apps"}}.Encode())
	}
	tests := []struct {
		name    string
		cookies map[string]string
		csrf    string
		hdr     map[string]string
		want    int
	}{
		{"no cookie, no token", nil, "", nil, http.StatusForbidden},
		{"no token", map[string]string{signinCookie: cookie}, "", nil, http.StatusForbidden},
		{"no cookie", nil, csrf, nil, http.StatusForbidden},
		{"wrong token", map[string]string{signinCookie: cookie}, "bm90LXRoZS10b2tlbg", nil, http.StatusForbidden},
		{"another browser's token", map[string]string{signinCookie: cookie}, other.csrf, nil, http.StatusForbidden},
		{"other origin", map[string]string{signinCookie: cookie}, csrf, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"cross-site fetch", map[string]string{signinCookie: cookie}, csrf, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"other referer", map[string]string{signinCookie: cookie}, csrf, map[string]string{"Referer": "https://evil.example/signin"}, http.StatusForbidden},
		{"good", map[string]string{signinCookie: cookie}, csrf, map[string]string{"Origin": e.srv.URL, "Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
		{"good, no browser headers", map[string]string{signinCookie: cookie}, csrf, nil, http.StatusSeeOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.send("POST", "/signin", "application/x-www-form-urlencoded", form(tc.csrf), tc.cookies, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("sign-in POST = %d, want %d:\n%s", resp.StatusCode, tc.want, body)
			}
			started := false
			for _, c := range resp.Cookies() {
				started = started || c.Name == sessionCookie && c.MaxAge > 0
			}
			if started != (tc.want == http.StatusSeeOther) {
				t.Errorf("session started: %v", started)
			}
		})
	}
}

func TestCookieFlags(t *testing.T) {
	for _, tc := range []struct {
		name, public string
		tls, secure  bool
	}{
		{"http", "", false, false},
		{"public http", "http://portal.example", false, false},
		{"public https", "https://portal.example", false, true},
		{"tls", "", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := e.portal.cfg
			cfg.PublicURL = tc.public
			p, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(p)
			if tc.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			c := srv.Client()
			c.CheckRedirect = noRedirect.CheckRedirect
			// By hand: a jar keeps Secure cookies from an http URL to itself.
			resp, err := c.Get(srv.URL + "/signin")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			m := csrfRe.FindStringSubmatch(string(page))
			if m == nil || len(resp.Cookies()) != 1 {
				t.Fatalf("the sign-in page has no CSRF token or sets %d cookies", len(resp.Cookies()))
			}
			all := resp.Cookies()
			req, _ := http.NewRequest("POST", srv.URL+"/signin", strings.NewReader(url.Values{"token": {adminToken}, "csrf": {m[1]}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(all[0])
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign in = %d", resp.StatusCode)
			}
			all = append(all, resp.Cookies()...)
			seen := map[string]bool{}
			for _, c := range all {
				seen[c.Name] = true
				if c.Secure != tc.secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
					t.Errorf("cookie %s: Secure %v HttpOnly %v SameSite %v, want Secure %v, HttpOnly, Lax", c.Name, c.Secure, c.HttpOnly, c.SameSite, tc.secure)
				}
			}
			for _, name := range []string{sessionCookie, signinCookie, flashCookie} {
				if !seen[name] {
					t.Errorf("signing in sets no cookie %s", name)
				}
			}
		})
	}
	cfg := newEnv(t).portal.cfg
	cfg.PublicURL = "portal.example"
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), `"portal.example"`) {
		t.Errorf("New with a public URL without scheme: err %v, want one naming it", err)
	}
}

// blockedBody is a request body that sends head, then waits until
// release is closed (or a minute passes) before sending the rest.
type blockedBody struct {
	head    io.Reader
	release chan struct{}
	rest    io.Reader
	waited  bool
}

func (b *blockedBody) Read(p []byte) (int, error) {
	n, err := b.head.Read(p)
	if n > 0 || err != io.EOF {
		return n, err
	}
	if !b.waited {
		b.waited = true
		select {
		case <-b.release:
		case <-time.After(time.Minute):
		}
	}
	return b.rest.Read(p)
}

// multipartHead is the start of a deploy form: fields in order, then the
// head of the file part.
func multipartHead(fields [][2]string) (head, ctype, boundary string) {
	var sb strings.Builder
	mw := multipart.NewWriter(&sb)
	for _, f := range fields {
		_ = mw.WriteField(f[0], f[1])
	}
	_, _ = mw.CreateFormFile("package", "big.zip")
	return sb.String(), mw.FormDataContentType(), mw.Boundary()
}

// TestUploadRefusedBeforeBody sends deploy uploads that must be refused
// from what comes before the file, and holds the file back until the
// answer came: an answer that waits for the body fails the test.
func TestUploadRefusedBeforeBody(t *testing.T) {
	e := newEnv(t)
	if _, err := e.ops.CreateApp(context.Background(), "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	qa := e.browser()
	qa.signIn(e.addUser("qa-lead", "approver"))
	qa.get("/apps/orders/slots/production")
	ci := e.browser()
	ci.signIn(e.addUser("ci", "deployer"))
	ci.get("/apps/orders/slots/production")

	tests := []struct {
		name    string
		session string
		fields  [][2]string
		want    int
	}{
		{"anonymous", "", [][2]string{{"csrf", "x"}}, http.StatusUnauthorized},
		{"forged session", "YWRtaW4.c2ln", [][2]string{{"csrf", "x"}}, http.StatusUnauthorized},
		{"approver", qa.cookieOf(sessionCookie), [][2]string{{"csrf", qa.csrf}}, http.StatusForbidden},
		{"deployer without token", ci.cookieOf(sessionCookie), [][2]string{{"message", "m"}}, http.StatusForbidden},
		{"deployer with a wrong token", ci.cookieOf(sessionCookie), [][2]string{{"csrf", qa.csrf}, {"message", "m"}}, http.StatusForbidden},
		{"deployer with the token after another field", ci.cookieOf(sessionCookie), [][2]string{{"message", "m"}, {"csrf", ci.csrf}}, http.StatusForbidden},
	}
	const size = 50 << 20
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			head, ctype, boundary := multipartHead(tc.fields)
			body := &blockedBody{
				head:    strings.NewReader(head),
				release: make(chan struct{}),
				rest:    io.MultiReader(io.LimitReader(zeros{}, size), strings.NewReader("\r\n--"+boundary+"--\r\n")),
			}
			req, _ := http.NewRequest("POST", e.srv.URL+"/apps/orders/slots/production/deploy", body)
			req.Header.Set("Content-Type", ctype)
			req.ContentLength = int64(len(head)) + size + int64(len("\r\n--"+boundary+"--\r\n"))
			if tc.session != "" {
				req.AddCookie(&http.Cookie{Name: sessionCookie, Value: tc.session})
			}
			start := time.Now()
			resp, err := noRedirect.Do(req)
			close(body.release)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("deploy upload = %d, want %d", resp.StatusCode, tc.want)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("the answer took %s: it waited for the body", d)
			}
			if ds, _ := e.ops.Deployments(context.Background(), "orders", "production"); len(ds) != 0 {
				t.Errorf("the upload made %d deployments", len(ds))
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestUploadFormErrors(t *testing.T) {
	e := newEnv(t)
	if _, err := e.ops.CreateApp(context.Background(), "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(adminToken)
	b.get("/apps/orders/slots/production")
	session, csrf := b.cookieOf(sessionCookie), b.csrf

	send := func(t *testing.T, write func(mw *multipart.Writer)) (int, string) {
		t.Helper()
		var sb strings.Builder
		mw := multipart.NewWriter(&sb)
		write(mw)
		mw.Close()
		resp, body := e.send("POST", "/apps/orders/slots/production/deploy", mw.FormDataContentType(), strings.NewReader(sb.String()), map[string]string{sessionCookie: session}, nil)
		return resp.StatusCode, body
	}
	t.Run("no file chosen", func(t *testing.T) {
		status, body := send(t, func(mw *multipart.Writer) {
			mw.WriteField("csrf", csrf)
			mw.WriteField("message", "kept")
			mw.CreateFormFile("package", "")
		})
		if status != http.StatusBadRequest {
			t.Errorf("deploy without a file = %d, want 400", status)
		}
		mustContain(t, body, "choose a .zip package to upload", `value="kept"`)
	})
	t.Run("empty file", func(t *testing.T) {
		status, body := send(t, func(mw *multipart.Writer) {
			mw.WriteField("csrf", csrf)
			mw.CreateFormFile("package", "app.zip")
		})
		if status != http.StatusBadRequest {
			t.Errorf("deploy of an empty file = %d, want 400", status)
		}
		mustContain(t, body, "the file app.zip is empty")
	})
	t.Run("fields too large", func(t *testing.T) {
		status, body := send(t, func(mw *multipart.Writer) {
			mw.WriteField("csrf", csrf)
			mw.WriteField("message", strings.Repeat("m", maxFormBytes+1))
			fw, _ := mw.CreateFormFile("package", "app.zip")
			fw.Write([]byte("PK"))
		})
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("deploy with a 1 MiB message = %d, want 413", status)
		}
		mustContain(t, body, "larger than 1 MiB")
	})
	t.Run("not multipart", func(t *testing.T) {
		resp, body := e.send("POST", "/apps/orders/slots/production/deploy", "application/x-www-form-urlencoded",
			strings.NewReader(url.Values{"csrf": {csrf}}.Encode()), map[string]string{sessionCookie: session}, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("deploy as a plain form = %d, want 400", resp.StatusCode)
		}
		mustContain(t, body, "multipart/form-data")
	})
	if ds, _ := e.ops.Deployments(context.Background(), "orders", "production"); len(ds) != 0 {
		t.Errorf("the refused uploads made %d deployments", len(ds))
	}
}

func TestUploadOverPackageLimit(t *testing.T) {
	e := newEnv(t)
	cfg := e.portal.cfg
	cfg.MaxPackageBytes = 64 << 10
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(p)
	t.Cleanup(e.srv.Close)
	if _, err := e.ops.CreateApp(context.Background(), "admin", "orders"); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(adminToken)
	b.get("/apps/orders/slots/production")
	status, body := b.upload("/apps/orders/slots/production/deploy", nil, make([]byte, 2<<20))
	if status != http.StatusBadRequest {
		t.Errorf("deploy of 2 MiB with a 64 KiB limit = %d, want 400", status)
	}
	mustContain(t, body, "the package is larger than 65536 bytes")
}
