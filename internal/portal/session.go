package portal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/apierr"
	"github.com/hotswap/hotswap/internal/release"
)

const (
	sessionCookie = "hotswap_session"
	flashCookie   = "hotswap_flash"
	sessionTTL    = 12 * time.Hour
	csrfField     = "csrf"
	// maxFormBytes bounds a plain form; maxUploadBytes a deploy upload (the
	// artifact store applies its own, usually lower, package limit).
	maxFormBytes   = 1 << 20
	maxUploadBytes = 1 << 30
)

// Access a route needs.
type access int

const (
	read   access = iota // any signed-in user
	deploy               // admin or deployer
)

func allowed(who release.Actor, need access) bool {
	if need == read {
		return true
	}
	return who.Role == "admin" || who.Role == "deployer"
}

// reqCtx is what the portal knows of a signed-in request.
type reqCtx struct {
	actor    release.Actor
	csrf     string
	flash    string
	flashErr bool
}

type ctxKey struct{}

func reqOf(r *http.Request) *reqCtx {
	rc, _ := r.Context().Value(ctxKey{}).(*reqCtx)
	return rc
}

// actor returns the signed-in user of r.
func actor(r *http.Request) release.Actor {
	if rc := reqOf(r); rc != nil {
		return rc.actor
	}
	return release.Actor{}
}

func (p *Portal) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, p.secret)
	for _, s := range parts {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

var b64 = base64.RawURLEncoding

// newSession returns the cookie value of a session of who until expires:
// the user, role, expiry and a nonce, with their HMAC.
func (p *Portal) newSession(who release.Actor, expires time.Time) string {
	payload := strings.Join([]string{who.Name, who.Role, strconv.FormatInt(expires.Unix(), 10), b64.EncodeToString(randomBytes(12))}, "\n")
	return b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(p.mac("session", payload))
}

// session checks a session cookie value and returns its user. A user who
// was deleted since, or whose role changed, is looked up again.
func (p *Portal) session(ctx context.Context, value string) (release.Actor, bool) {
	enc, sig, ok := strings.Cut(value, ".")
	if !ok || len(value) > 2048 {
		return release.Actor{}, false
	}
	payload, err1 := b64.DecodeString(enc)
	mac, err2 := b64.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, p.mac("session", string(payload))) {
		return release.Actor{}, false
	}
	f := strings.Split(string(payload), "\n")
	if len(f) != 4 {
		return release.Actor{}, false
	}
	exp, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || p.cfg.Now().Unix() >= exp {
		return release.Actor{}, false
	}
	who := release.Actor{Name: f[0], Role: f[1]}
	if who.Name == "admin" && who.Role == "admin" {
		return who, true // the admin token's user is not in the users table
	}
	u, err := p.cfg.Store.GetUser(ctx, who.Name)
	if err != nil {
		return release.Actor{}, false
	}
	who.Role = u.Role
	return who, true
}

// csrfToken is the CSRF token of a session: an HMAC of its cookie value.
func (p *Portal) csrfToken(session string) string {
	return b64.EncodeToString(p.mac("csrf", session))
}

// signedIn resolves r's session and attaches it to the request context.
func (p *Portal) signedIn(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return r, false
	}
	who, ok := p.session(r.Context(), c.Value)
	if !ok {
		return r, false
	}
	rc := &reqCtx{actor: who, csrf: p.csrfToken(c.Value)}
	rc.flash, rc.flashErr = takeFlash(w, r)
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, rc)), true
}

// page wraps a GET handler: signed-in users with the access only; others go
// to the sign-in page.
func (p *Portal) page(need access, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r, ok := p.signedIn(w, r)
		if !ok {
			http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !allowed(actor(r), need) {
			p.refuse(w, r, roleMessage(actor(r)))
			return
		}
		h(w, r)
	}
}

// action wraps a POST handler: a signed-in user, a valid CSRF token, and
// the access the action needs, in that order.
func (p *Portal) action(need access, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			r.Body = http.MaxBytesReader(w, r.Body, maxUploadBytes)
			if err := r.ParseMultipartForm(32 << 20); err != nil {
				p.render(w, r, http.StatusBadRequest, "error", &view{Title: "Bad request", Data: "the form could not be read: " + err.Error()})
				return
			}
			defer r.MultipartForm.RemoveAll()
		} else {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				p.render(w, r, http.StatusBadRequest, "error", &view{Title: "Bad request", Data: "the form could not be read"})
				return
			}
		}
		r, ok := p.signedIn(w, r)
		if !ok {
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		}
		got := r.PostFormValue(csrfField)
		if got == "" || !hmac.Equal([]byte(got), []byte(reqOf(r).csrf)) {
			p.refuse(w, r, "invalid or missing CSRF token")
			return
		}
		if !allowed(actor(r), need) {
			p.refuse(w, r, roleMessage(actor(r)))
			return
		}
		h(w, r)
	}
}

func roleMessage(who release.Actor) string {
	return who.Name + " (role " + who.Role + ") may not do this"
}

// json wraps a JSON endpoint polled by the portal's script.
func (p *Portal) json(need access, h func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		r, ok := p.signedIn(w, r)
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"sign in again"}` + "\n"))
			return
		}
		if !allowed(actor(r), need) {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"forbidden"}` + "\n"))
			return
		}
		v, err := h(r)
		if err != nil {
			w.WriteHeader(apierr.Status(err))
			_ = json.NewEncoder(w).Encode(map[string]string{"error": hotswap.ErrorMessage(err)})
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}
}

func (p *Portal) signinPage(w http.ResponseWriter, r *http.Request) {
	if r2, ok := p.signedIn(w, r); ok {
		http.Redirect(w, r2, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	p.render(w, r, http.StatusOK, "signin", &view{Title: "Sign in", Data: safeNext(r.URL.Query().Get("next"))})
}

// signin checks the token, which is never logged nor shown again, and
// starts a session. Sign-in needs no CSRF token (there is no session yet);
// SameSite cookies and the token itself stand in for it.
func (p *Portal) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	_ = r.ParseForm()
	next := safeNext(r.PostFormValue("next"))
	who, ok := p.cfg.Authenticate(r.Context(), strings.TrimSpace(r.PostFormValue("token")))
	if !ok {
		f := &form{ID: "signin", Values: url.Values{}, Errors: map[string]string{"token": "That token is not valid. Use your API token or the admin token."}}
		p.render(w, r, http.StatusUnauthorized, "signin", &view{Title: "Sign in", Form: f, Data: next})
		return
	}
	exp := p.cfg.Now().Add(sessionTTL)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: p.newSession(who, exp), Path: "/", Expires: exp, MaxAge: int(sessionTTL / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode,
	})
	p.log.Info("portal sign-in", "user", who.Name, "role", who.Role)
	setFlash(w, r, "Signed in as "+who.Name+" ("+who.Role+")", false)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (p *Portal) signout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in target on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/signin") {
		return "/apps"
	}
	return next
}

// setFlash leaves a message for the next page, in a cookie read once.
func setFlash(w http.ResponseWriter, r *http.Request, msg string, isErr bool) {
	if msg == "" {
		return
	}
	v := "ok:" + msg
	if isErr {
		v = "err:" + msg
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: b64.EncodeToString([]byte(v)), Path: "/", MaxAge: 60, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

func takeFlash(w http.ResponseWriter, r *http.Request) (string, bool) {
	c, err := r.Cookie(flashCookie)
	if err != nil || r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, ".json") {
		return "", false
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	b, err := b64.DecodeString(c.Value)
	if err != nil {
		return "", false
	}
	s := string(b)
	if msg, ok := strings.CutPrefix(s, "err:"); ok {
		return msg, true
	}
	return strings.TrimPrefix(s, "ok:"), false
}
