// Package portal serves the web portal of hotswap on the admin listener:
// apps and their deployment slots, functions, keys, settings, deploys,
// swaps and progressive swaps, deployment history, release pipelines and
// the activity log, as server-rendered HTML (html/template, embedded) with
// a small script for the live parts. Users sign in with their API token;
// a signed session cookie, bound to the token and ended by signing out,
// and a same-origin check and CSRF token on every form protect what they
// do.
package portal

import (
	"context"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/apierr"
	"github.com/hotswap/hotswap/internal/artifact"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/release"
	"github.com/hotswap/hotswap/internal/rollout"
)

//go:embed templates static
var assets embed.FS

// Config configures a Portal.
type Config struct {
	Ops      *ops.Service    // required
	Releases *release.Engine // nil: no release pipeline pages
	Store    Store           // required: users, pipelines, artifacts, the session secret
	// Authenticate resolves an API token (a user's or the admin token) to
	// its user; required. It must compare in constant time.
	Authenticate func(ctx context.Context, token string) (release.Actor, bool)
	// AdminToken is the admin token; required. Sessions signed in with it
	// are bound to it and end when it changes.
	AdminToken string
	// PublicURL is the portal's address as browsers reach it, e.g.
	// https://hotswap.example.com behind a proxy. Empty: as reached. Forms
	// posted from its origin are accepted, and when it is https cookies get
	// the Secure flag even if TLS ends before the portal.
	PublicURL string
	// MaxPackageBytes bounds a deploy upload, as the package store does;
	// 0: the store's default (256 MiB).
	MaxPackageBytes int64
	Logger          *slog.Logger     // nil discards
	Version         string           // shown in the footer
	Now             func() time.Time // nil: time.Now; for session expiry
	Metrics         Metrics          // nil: no request charts on slot pages
	// Rollouts runs progressive swaps; nil: the portal shows none and
	// offers none.
	Rollouts *rollout.Engine
}

// Portal is the web portal's HTTP handler.
type Portal struct {
	cfg       Config
	log       *slog.Logger
	secret    []byte
	adminHash atomic.Pointer[string] // tokenHash of the admin token
	public    *url.URL
	https     bool // cookies are Secure whatever the request
	cop       *http.CrossOriginProtection
	genMu     sync.Mutex // serialises sign-out generation updates
	pages     map[string]*template.Template
	mux       *http.ServeMux
}

// secretKey is the meta key of the cookie-signing secret.
const secretKey = "portal.session-secret"

// New returns a Portal. The cookie-signing secret is made on first use and
// kept in the store, so sessions survive a restart.
func New(ctx context.Context, cfg Config) (*Portal, error) {
	if cfg.Ops == nil || cfg.Store == nil || cfg.Authenticate == nil || cfg.AdminToken == "" {
		return nil, errors.New("portal: Ops, Store, Authenticate and AdminToken are required")
	}
	if cfg.MaxPackageBytes <= 0 {
		cfg.MaxPackageBytes = artifact.DefaultMaxCompressed
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	secret, err := loadSecret(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	p := &Portal{cfg: cfg, log: cfg.Logger, secret: secret, cop: http.NewCrossOriginProtection(), mux: http.NewServeMux()}
	p.SetAdminToken(cfg.AdminToken)
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("portal: public URL %q is not an http:// or https:// URL", cfg.PublicURL)
		}
		if err := p.cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("portal: public URL %q: %w", cfg.PublicURL, err)
		}
		p.public, p.https = u, u.Scheme == "https"
	}
	if p.pages, err = parsePages(); err != nil {
		return nil, err
	}
	p.routes()
	return p, nil
}

func loadSecret(ctx context.Context, db Store) ([]byte, error) {
	v, ok, err := db.GetMeta(ctx, secretKey)
	if err != nil {
		return nil, fmt.Errorf("portal secret: %w", err)
	}
	if ok {
		if b, err := hex.DecodeString(v); err == nil && len(b) >= 32 {
			return b, nil
		}
	}
	b := randomBytes(32)
	if err := db.SetMeta(ctx, secretKey, hex.EncodeToString(b)); err != nil {
		return nil, fmt.Errorf("portal secret: %w", err)
	}
	return b, nil
}

var pageNames = []string{
	"signin", "apps", "app", "slot", "swap", "history", "activity",
	"pipelines", "pipeline", "editor", "release", "error", "nodes", "users",
	"rollout",
}

func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/charts.html", "templates/rollouts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("portal template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// ServeHTTP implements http.Handler.
// SetAdminToken replaces the admin token: sessions signed in with the
// earlier one end.
func (p *Portal) SetAdminToken(token string) {
	h := tokenHash(token)
	p.adminHash.Store(&h)
}

func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	p.mux.ServeHTTP(w, r)
}

func (p *Portal) routes() {
	m := p.mux
	static, _ := fs.Sub(assets, "static")
	fileServer := http.StripPrefix("/static/", http.FileServerFS(static))
	m.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		fileServer.ServeHTTP(w, r)
	}))
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/apps", http.StatusSeeOther)
	})
	m.HandleFunc("GET /signin", p.signinPage)
	m.HandleFunc("POST /signin", p.signin)
	m.HandleFunc("POST /signout", p.action(read, p.signout))

	m.HandleFunc("GET /apps", p.page(read, p.appsPage))
	m.HandleFunc("GET /nodes", p.page(read, p.nodesPage))
	m.HandleFunc("GET /users", p.page(manage, p.usersPage))
	m.HandleFunc("POST /users", p.action(manage, p.createUser))
	m.HandleFunc("POST /users/{name}/token", p.action(manage, p.rotateToken))
	m.HandleFunc("POST /apps", p.action(deploy, p.createApp))
	m.HandleFunc("GET /apps/{app}", p.page(read, p.appPage))
	m.HandleFunc("POST /apps/{app}/delete", p.action(deploy, p.deleteApp))
	m.HandleFunc("POST /apps/{app}/slots", p.action(deploy, p.createSlot))
	m.HandleFunc("POST /apps/{app}/traffic", p.action(deploy, p.setTraffic))
	m.HandleFunc("GET /apps/{app}/slots/{slot}", p.page(read, p.slotPage))
	m.HandleFunc("POST /apps/{app}/slots/{slot}/delete", p.action(deploy, p.deleteSlot))
	m.HandleFunc("POST /apps/{app}/slots/{slot}/deploy", p.upload(deploy, p.deploy))
	m.HandleFunc("POST /apps/{app}/slots/{slot}/keys", p.action(deploy, p.setKey))
	m.HandleFunc("POST /apps/{app}/slots/{slot}/keys/renew", p.action(deploy, p.renewKey))
	m.HandleFunc("POST /apps/{app}/slots/{slot}/keys/delete", p.action(deploy, p.deleteKey))
	m.HandleFunc("POST /apps/{app}/slots/{slot}/settings", p.action(deploy, p.setSetting))
	m.HandleFunc("POST /apps/{app}/slots/{slot}/settings/delete", p.action(deploy, p.deleteSetting))
	m.HandleFunc("POST /apps/{app}/slots/{slot}/autoswap", p.action(deploy, p.autoSwap))
	m.HandleFunc("GET /apps/{app}/swap", p.page(read, p.swapPage))
	m.HandleFunc("POST /apps/{app}/swap", p.action(deploy, p.swap))
	m.HandleFunc("POST /apps/{app}/swap/complete", p.action(deploy, p.completeSwap))
	m.HandleFunc("POST /apps/{app}/swap/cancel", p.action(deploy, p.cancelSwap))
	m.HandleFunc("GET /apps/{app}/deployments", p.page(read, p.historyPage))
	m.HandleFunc("POST /apps/{app}/rollback", p.action(deploy, p.rollback))
	m.HandleFunc("GET /apps/{app}/activity", p.page(read, p.activityPage))
	m.HandleFunc("GET /portal/apps/{app}/status.json", p.json(read, p.withOperation(p.appStatus)))
	m.HandleFunc("GET /portal/apps/{app}/slots/{slot}/status.json", p.json(read, p.withOperation(p.slotStatus)))
	p.rolloutRoutes()

	if p.cfg.Releases == nil {
		return
	}
	m.HandleFunc("GET /pipelines", p.page(read, p.pipelinesPage))
	m.HandleFunc("GET /pipelines/new", p.page(deploy, p.newPipelinePage))
	m.HandleFunc("POST /pipelines", p.action(deploy, p.applyPipeline))
	m.HandleFunc("GET /pipelines/{name}", p.page(read, p.pipelinePage))
	m.HandleFunc("GET /pipelines/{name}/edit", p.page(deploy, p.editPipelinePage))
	m.HandleFunc("POST /pipelines/{name}/edit", p.action(deploy, p.applyPipeline))
	m.HandleFunc("POST /pipelines/{name}/rename", p.action(deploy, p.renamePipeline))
	m.HandleFunc("POST /pipelines/{name}/releases", p.action(deploy, p.createRelease))
	m.HandleFunc("GET /releases/{id}", p.page(read, p.releasePage))
	m.HandleFunc("POST /releases/{id}/decide", p.action(read, p.decide))
	m.HandleFunc("POST /releases/{id}/redeploy", p.action(deploy, p.redeploy))
	m.HandleFunc("POST /releases/{id}/abandon", p.action(deploy, p.abandon))
	m.HandleFunc("GET /portal/releases/{id}/status.json", p.json(read, p.releaseStatus))
}

// view is what every page template gets.
type view struct {
	Title     string
	Nav       string // the active navigation entry: apps or pipelines
	User      release.Actor
	CSRF      string
	Flash     string
	FlashErr  bool
	Version   string
	Pipelines bool      // release pipelines are enabled
	StatusURL string    // polled by portal.js for live state; empty for none
	Form      *form     // the form that failed, with its values and errors
	Inbox     []waiting // release stages waiting for the user's approval
	PageURL   string    // a POST's page as a GET-able address; see pageURL
	Data      any
}

// CanDeploy reports whether the user may change apps, slots and releases.
func (v *view) CanDeploy() bool { return allowed(v.User, deploy) }

// SeesSecrets reports whether the user may see keys and setting values.
func (v *view) SeesSecrets() bool { return allowed(v.User, deploy) }

// form carries a submitted form back to its page after a validation error.
type form struct {
	ID     string
	Values url.Values
	Errors map[string]string
}

func newForm(id string, r *http.Request) *form {
	return &form{ID: id, Values: r.PostForm, Errors: map[string]string{}}
}

// Err returns the error of field in form id, if that form failed.
func (f *form) Err(id, field string) string {
	if f == nil || f.ID != id {
		return ""
	}
	return f.Errors[field]
}

// Val returns what the user typed into field of form id, or def.
func (f *form) Val(id, field, def string) string {
	if f == nil || f.ID != id {
		return def
	}
	return f.Values.Get(field)
}

// Is reports whether form id is the one that failed.
func (f *form) Is(id string) bool { return f != nil && f.ID == id }

// render writes page name with status.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	rc := reqOf(r)
	if rc != nil {
		v.User, v.CSRF = rc.actor, rc.csrf
		if v.Flash == "" {
			v.Flash, v.FlashErr = rc.flash, rc.flashErr
		}
		v.Inbox = p.inbox(r.Context(), rc.actor)
	}
	v.Version, v.Pipelines, v.PageURL = p.cfg.Version, p.cfg.Releases != nil, p.pageURL(r)
	var b strings.Builder
	if err := p.pages[name].ExecuteTemplate(&b, "layout", v); err != nil {
		p.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail shows err on an error page with the status of its kind.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := apierr.Status(err)
	if status == http.StatusInternalServerError {
		p.log.Error("portal request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	p.render(w, r, status, "error", &view{Title: http.StatusText(status), Data: hotswap.ErrorMessage(err)})
}

// refuse answers 403 with msg.
func (p *Portal) refuse(w http.ResponseWriter, r *http.Request, msg string) {
	p.render(w, r, http.StatusForbidden, "error", &view{Title: "Forbidden", Data: msg})
}

// done redirects to target after a successful POST, with a flash message.
func (p *Portal) done(w http.ResponseWriter, r *http.Request, target, flash string) {
	p.setFlash(w, r, flash, false)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

var funcs = template.FuncMap{
	"time": func(t time.Time) template.HTML {
		if t.IsZero() {
			return ""
		}
		u := t.UTC()
		return template.HTML(`<time datetime="` + u.Format(time.RFC3339) + `">` + u.Format("2006-01-02 15:04:05") + ` UTC</time>`)
	},
	"stateClass": stateClass,
	"slotState":  hotswap.SlotStateText,
	"join":       strings.Join,
	"slug":       slug,
	"traffic":    trafficShare,
	"shareVal":   trafficValue,
	"dur":        humanDur,
	"pathEscape": url.PathEscape,
	"tab":        func(app, tab string) any { return struct{ App, Tab string }{app, tab} },
	"inc":        func(i int) int { return i + 1 },
	"contains": func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	},
}

// stateClass returns the CSS class of a state badge.
func stateClass(state string) string { return "badge state-" + slug(state) }

// slug turns text into an id-safe token: lowercase letters, digits and
// hyphens.
func slug(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}
