package portal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	manage               // admin: users
)

func allowed(who release.Actor, need access) bool {
	switch need {
	case read:
		return true
	case manage:
		return who.Role == "admin"
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

// A session cookie holds the user, the expiry, the user's sign-out
// generation when it was made, a binding to the token signed in with, and a
// nonce, with their HMAC. The server keeps what can end a session early:
// signing out counts the user's generation up, which ends every session of
// that user (a copied cookie too), and the binding is an HMAC of the hash of
// the token, so a session ends when its user's token changes (a user deleted
// and made again, the admin token replaced). A restart ends no session that
// neither of those ended: the secret and the generations are in the store.

// sessionFields is how many newline-separated fields a session payload has.
const sessionFields = 5

// tokenHash is the hex sha256 of a token, as the users table keeps it.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// binding ties a session of user to the hash of the token it signed in
// with.
func (p *Portal) binding(user, hash string) string {
	return b64.EncodeToString(p.mac("token", user, hash))
}

func genKey(user string) string { return "portal.session-generation." + user }

// generation returns user's sign-out generation.
func (p *Portal) generation(ctx context.Context, user string) (uint64, error) {
	v, ok, err := p.cfg.Store.GetMeta(ctx, genKey(user))
	if err != nil || !ok {
		return 0, err
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("session generation of %s: %w", user, err)
	}
	return n, nil
}

// endSessions ends every session of user.
func (p *Portal) endSessions(ctx context.Context, user string) error {
	p.genMu.Lock()
	defer p.genMu.Unlock()
	n, err := p.generation(ctx, user)
	if err != nil {
		return err
	}
	return p.cfg.Store.SetMeta(ctx, genKey(user), strconv.FormatUint(n+1, 10))
}

// newSession returns the cookie value of a session of who, signed in with a
// token whose hash is hash, until expires.
func (p *Portal) newSession(ctx context.Context, who release.Actor, hash string, expires time.Time) (string, error) {
	gen, err := p.generation(ctx, who.Name)
	if err != nil {
		return "", err
	}
	payload := strings.Join([]string{
		who.Name, strconv.FormatInt(expires.Unix(), 10), strconv.FormatUint(gen, 10),
		p.binding(who.Name, hash), b64.EncodeToString(randomBytes(12)),
	}, "\n")
	return b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(p.mac("session", payload)), nil
}

// session checks a session cookie value and returns its user, with the
// role the user has now. A session of a deleted user, of a token that
// changed since, or of a user who signed out since is refused.
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
	if len(f) != sessionFields {
		return release.Actor{}, false
	}
	name, bound := f[0], f[3]
	exp, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || p.cfg.Now().Unix() >= exp {
		return release.Actor{}, false
	}
	who := release.Actor{Name: name, Role: "admin"}
	hash := *p.adminHash.Load() // the admin token's user is not in the users table
	if name != adminUser {
		u, err := p.cfg.Store.GetUser(ctx, name)
		if err != nil {
			return release.Actor{}, false
		}
		who.Role, hash = u.Role, u.TokenHash
	}
	if !hmac.Equal([]byte(bound), []byte(p.binding(name, hash))) {
		return release.Actor{}, false
	}
	gen, err := p.generation(ctx, name)
	if err != nil {
		p.log.Error("read session generation", "user", name, "err", err)
		return release.Actor{}, false
	}
	if strconv.FormatUint(gen, 10) != f[2] {
		return release.Actor{}, false
	}
	return who, true
}

// adminUser is the name the admin token acts as; no user may take it.
const adminUser = "admin"

// csrfToken is the CSRF token of a session: an HMAC of its cookie value.
func (p *Portal) csrfToken(session string) string {
	return b64.EncodeToString(p.mac("csrf", session))
}

// secure reports whether cookies set in answer to r get the Secure flag:
// when r came over TLS or the portal's public URL is https.
func (p *Portal) secure(r *http.Request) bool { return r.TLS != nil || p.https }

// cookie returns a cookie of the portal: HttpOnly, SameSite=Lax, on every
// path, Secure when p.secure(r). maxAge < 0 deletes it.
func (p *Portal) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: p.secure(r), SameSite: http.SameSiteLaxMode}
}

// signedIn resolves r's session, from the cookie alone, and attaches it to
// the request context. It reads nothing of the body.
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
	rc.flash, rc.flashErr = p.takeFlash(w, r)
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

// gate checks what a POST needs before its body is read: a same-origin
// request, a signed-in user, and the access. It answers and returns false
// when one is missing; the server then closes the connection rather than
// read a large body.
func (p *Portal) gate(w http.ResponseWriter, r *http.Request, need access) (*http.Request, bool) {
	if err := p.checkOrigin(r); err != nil {
		p.refuse(w, r, err.Error())
		return r, false
	}
	r, ok := p.signedIn(w, r)
	if !ok {
		p.renderSignin(w, r, http.StatusUnauthorized, refererNext(r), nil, "Your session has ended. Sign in again.")
		return r, false
	}
	if !allowed(actor(r), need) {
		p.refuse(w, r, roleMessage(actor(r)))
		return r, false
	}
	return r, true
}

// checkCSRF reports whether the form of r carries its session's CSRF token.
func checkCSRF(r *http.Request) bool {
	got := r.PostFormValue(csrfField)
	return got != "" && hmac.Equal([]byte(got), []byte(reqOf(r).csrf))
}

// action wraps a POST handler of a small form: the origin, the session and
// the access are checked from the headers, then at most maxFormBytes of the
// body are read and the CSRF token checked.
func (p *Portal) action(need access, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r, ok := p.gate(w, r, need)
		if !ok {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			// The whole body fits in memory, so nothing goes to disk.
			if err := r.ParseMultipartForm(maxFormBytes); err != nil {
				p.render(w, r, http.StatusBadRequest, "error", &view{Title: "Bad request", Data: formError(err)})
				return
			}
			defer r.MultipartForm.RemoveAll()
		} else if err := r.ParseForm(); err != nil {
			p.render(w, r, http.StatusBadRequest, "error", &view{Title: "Bad request", Data: formError(err)})
			return
		}
		if !checkCSRF(r) {
			p.refuse(w, r, "invalid or missing CSRF token")
			return
		}
		h(w, r)
	}
}

// formError says why a form could not be read.
func formError(err error) string {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fmt.Sprintf("the form is larger than %d bytes", tooBig.Limit)
	}
	return "the form could not be read: " + err.Error()
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

// The sign-in form has no session to take its CSRF token from, so it gets
// one of its own, a double submit: a random cookie, and in the form an HMAC
// of it, which a forger cannot make without the secret.
const signinCookie = "hotswap_signin"

// signinToken returns the CSRF token of the sign-in form, setting the
// sign-in cookie when r has no valid one.
func (p *Portal) signinToken(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(signinCookie)
	v := ""
	if err == nil {
		if b, err := b64.DecodeString(c.Value); err == nil && len(b) == 16 {
			v = c.Value
		}
	}
	if v == "" {
		v = b64.EncodeToString(randomBytes(16))
		http.SetCookie(w, p.cookie(r, signinCookie, v, 0))
	}
	return b64.EncodeToString(p.mac("signin", v))
}

// signinCSRF reports whether a sign-in POST carries the token of its
// sign-in cookie.
func (p *Portal) signinCSRF(r *http.Request) bool {
	c, err := r.Cookie(signinCookie)
	got := r.PostFormValue(csrfField)
	if err != nil || c.Value == "" || got == "" {
		return false
	}
	return hmac.Equal([]byte(got), []byte(b64.EncodeToString(p.mac("signin", c.Value))))
}

// renderSignin shows the sign-in page with a fresh form, an error on the
// token field when f has one, and flash as an error message.
func (p *Portal) renderSignin(w http.ResponseWriter, r *http.Request, status int, next string, f *form, flash string) {
	v := &view{Title: "Sign in", Form: f, Data: next, CSRF: p.signinToken(w, r), Flash: flash, FlashErr: flash != ""}
	p.render(w, r, status, "signin", v)
}

func (p *Portal) signinPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if r2, ok := p.signedIn(w, r); ok {
		http.Redirect(w, r2, next, http.StatusSeeOther)
		return
	}
	p.renderSignin(w, r, http.StatusOK, next, nil, "")
}

// signin checks the token, which is never logged nor shown again, and
// starts a session. The request must come from this portal's own sign-in
// form: same origin, and its CSRF token.
func (p *Portal) signin(w http.ResponseWriter, r *http.Request) {
	if err := p.checkOrigin(r); err != nil {
		p.refuse(w, r, err.Error())
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		p.render(w, r, http.StatusBadRequest, "error", &view{Title: "Bad request", Data: formError(err)})
		return
	}
	next := safeNext(r.PostFormValue("next"))
	if !p.signinCSRF(r) {
		p.renderSignin(w, r, http.StatusForbidden, next, nil, "This sign-in form has expired or did not come from this portal. Sign in again.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	who, ok := p.cfg.Authenticate(r.Context(), token)
	if !ok {
		f := &form{ID: "signin", Values: url.Values{}, Errors: map[string]string{"token": "That token is not valid. Use your API token or the admin token."}}
		p.renderSignin(w, r, http.StatusUnauthorized, next, f, "")
		return
	}
	value, err := p.newSession(r.Context(), who, tokenHash(token), p.cfg.Now().Add(sessionTTL))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	http.SetCookie(w, p.cookie(r, sessionCookie, value, int(sessionTTL/time.Second)))
	http.SetCookie(w, p.cookie(r, signinCookie, "", -1))
	p.log.Info("portal sign-in", "user", who.Name, "role", who.Role)
	p.setFlash(w, r, "Signed in as "+who.Name+" ("+who.Role+")", false)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signout ends every session of the user, so a copy of the cookie stops
// working too, and drops the cookie.
func (p *Portal) signout(w http.ResponseWriter, r *http.Request) {
	who := actor(r)
	if err := p.endSessions(r.Context(), who.Name); err != nil {
		p.fail(w, r, err)
		return
	}
	http.SetCookie(w, p.cookie(r, sessionCookie, "", -1))
	p.log.Info("portal sign-out", "user", who.Name)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// setFlash leaves a message for the next page, in a cookie read once.
func (p *Portal) setFlash(w http.ResponseWriter, r *http.Request, msg string, isErr bool) {
	if msg == "" {
		return
	}
	v := "ok:" + msg
	if isErr {
		v = "err:" + msg
	}
	http.SetCookie(w, p.cookie(r, flashCookie, b64.EncodeToString([]byte(v)), 60))
}

func (p *Portal) takeFlash(w http.ResponseWriter, r *http.Request) (string, bool) {
	c, err := r.Cookie(flashCookie)
	if err != nil || r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, ".json") {
		return "", false
	}
	http.SetCookie(w, p.cookie(r, flashCookie, "", -1))
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
