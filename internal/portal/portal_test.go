package portal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/release"
	"github.com/hotswap/hotswap/internal/router"
	"github.com/hotswap/hotswap/internal/runtime"
	"github.com/hotswap/hotswap/internal/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const adminToken = "hs_admin-token-for-tests-0123456789"

// env is a portal over the real components: SQLite in a temp dir, the
// artifact store, handler processes and the release engine.
type env struct {
	t      testing.TB
	db     *sqlite.DB
	ops    *ops.Service
	rel    *release.Engine
	portal *Portal
	srv    *httptest.Server
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "hotswap.db"))
	if err != nil {
		t.Fatal(err)
	}
	arts, err := artifact.Open(filepath.Join(dir, "packages"), artifact.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	rt := runtime.NewManager(nil)
	o, err := ops.Open(ctx, ops.Config{
		Domain: "localhost", PublicAddr: "127.0.0.1:8080", Store: db, Artifacts: arts, Runtime: rt,
		Router: router.New(router.Config{Domain: "localhost"}), StartTimeout: 20 * time.Second, DrainGrace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := release.Open(ctx, release.Config{Store: db, Ops: o, Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(ctx context.Context, token string) (release.Actor, bool) {
		if subtle.ConstantTimeCompare([]byte(token), []byte(adminToken)) == 1 {
			return release.Actor{Name: "admin", Role: "admin"}, true
		}
		sum := sha256.Sum256([]byte(token))
		u, err := db.UserByTokenHash(ctx, hex.EncodeToString(sum[:]))
		if err != nil {
			return release.Actor{}, false
		}
		return release.Actor{Name: u.Name, Role: u.Role}, true
	}
	p, err := New(ctx, Config{Ops: o, Releases: e, Store: db, Authenticate: auth, AdminToken: adminToken, Logger: slog.New(slog.DiscardHandler), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(func() {
		srv.Close()
		e.Close()
		o.Close()
		rt.Close()
		db.Close()
	})
	return &env{t: t, db: db, ops: o, rel: e, portal: p, srv: srv}
}

// addUser creates a user and returns its token.
func (e *env) addUser(name, role string) string {
	e.t.Helper()
	token := "tok-" + name + "-0123456789abcdef"
	sum := sha256.Sum256([]byte(token))
	if err := e.db.CreateUser(context.Background(), hotswap.User{Name: name, Role: role, TokenHash: hex.EncodeToString(sum[:])}); err != nil {
		e.t.Fatal(err)
	}
	return token
}

// browser is a client with its own cookies, like one browser.
type browser struct {
	e    *env
	c    *http.Client
	csrf string // from the last page
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
}

func (b *browser) remember(body string) {
	if m := csrfRe.FindStringSubmatch(body); m != nil {
		b.csrf = m[1]
	}
}

// get fetches path, following redirects, and returns the status and body.
func (b *browser) get(path string) (int, string) {
	b.e.t.Helper()
	resp, err := b.c.Get(b.e.srv.URL + path)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	b.remember(string(data))
	return resp.StatusCode, string(data)
}

// post submits a form (with the CSRF token of the last page unless the
// form has one) and follows the redirect.
func (b *browser) post(path string, form url.Values) (int, string) {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok && b.csrf != "" {
		form.Set("csrf", b.csrf)
	}
	resp, err := b.c.PostForm(b.e.srv.URL+path, form)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	b.remember(string(data))
	return resp.StatusCode, string(data)
}

// upload posts a multipart form with a file field "package".
func (b *browser) upload(path string, fields map[string]string, zip []byte) (int, string) {
	b.e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if b.csrf != "" {
		_ = mw.WriteField("csrf", b.csrf)
	}
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("package", "app.zip")
	_, _ = fw.Write(zip)
	mw.Close()
	resp, err := b.c.Post(b.e.srv.URL+path, mw.FormDataContentType(), &buf)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	b.remember(string(data))
	return resp.StatusCode, string(data)
}

// signIn signs in from the sign-in page, whose CSRF token it takes.
func (b *browser) signIn(token string) string {
	b.e.t.Helper()
	b.get("/signin")
	status, body := b.post("/signin", url.Values{"token": {token}})
	if status != http.StatusOK || !strings.Contains(body, `id="signout"`) {
		b.e.t.Fatalf("sign in = %d, not signed in:\n%s", status, body)
	}
	return body
}

func mustContain(t testing.TB, body string, wants ...string) {
	t.Helper()
	failed := false
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
			failed = true
		}
	}
	if failed {
		t.Logf("page:\n%s", body)
	}
}

var (
	buildOnce sync.Once
	goforward []byte
	buildErr  error
)

// goforwardZip returns the goforward example, built, as a zip.
func goforwardZip(t testing.TB) []byte {
	t.Helper()
	buildOnce.Do(func() {
		root, _ := filepath.Abs(filepath.Join("..", ".."))
		dir, err := os.MkdirTemp("", "portal-goforward-")
		if err != nil {
			buildErr = err
			return
		}
		defer os.RemoveAll(dir)
		pkg := filepath.Join(dir, "goforward")
		if buildErr = os.CopyFS(pkg, os.DirFS(filepath.Join(root, "examples", "goforward"))); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(pkg, "handler"), "./examples/goforward")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build goforward: %v\n%s", err, out)
			return
		}
		var buf bytes.Buffer
		buildErr = artifact.ZipDir(pkg, &buf)
		goforward = buf.Bytes()
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return goforward
}

var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`name="csrf" value="[^"]+"`), `name="csrf" value="CSRF"`},
	{regexp.MustCompile(`(?s)(<pre class="log" id="slot-log"[^>]*>).*?(</pre>)`), `${1}LOG${2}`},
	{regexp.MustCompile(`(?s)(<pre class="log" id="stage-log-[^>]*>).*?(</pre>)`), `${1}LOG${2}`},
	{regexp.MustCompile(`d-\d{8}t\d{6}-[a-z2-7]+`), `d-ID`},
	{regexp.MustCompile(`\b([rp])-[0-9a-f]{16}\b`), `$1-ID`},
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z`), `TIME`},
	{regexp.MustCompile(`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC`), `TIME`},
	// Keys are 54 characters of URL-safe base64 and may start or end with
	// '-' or '_', where \b would not match.
	{regexp.MustCompile(`(^|[^A-Za-z0-9_-])[A-Za-z0-9_-]{54}([^A-Za-z0-9_-]|$)`), `${1}KEY${2}`},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), `127.0.0.1:PORT`},
	{regexp.MustCompile(`(data-testid="swap-duration">)\d+`), `${1}MS`},
}

func normalise(s string) string {
	for _, n := range normalisers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// golden compares a page with testdata/name.golden after normalising what
// changes from run to run; -update rewrites it.
func golden(t *testing.T, name, body string) {
	t.Helper()
	got := normalise(body)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs from the golden file at line %d:\n got: %s\nwant: %s\n(run go test -update to accept)", name, i+1, g, w)
			}
		}
	}
}

// waitFor polls cond until it holds or 30s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
