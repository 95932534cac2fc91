package portal

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"github.com/hotswap/hotswap"
)

// usersData is the users page's data.
type usersData struct {
	Users []hotswap.User
	Roles []string
	// Token is the token just made for TokenUser, shown this once.
	Token, TokenUser string
}

var userRoles = []string{"deployer", "approver", "admin"}

func (p *Portal) usersPage(w http.ResponseWriter, r *http.Request) {
	p.renderUsers(w, r, http.StatusOK, nil, "", "")
}

func (p *Portal) renderUsers(w http.ResponseWriter, r *http.Request, status int, f *form, user, token string) {
	us, err := p.cfg.Store.ListUsers(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, status, "users", &view{Title: "Users", Nav: "users", Form: f, Data: usersData{Users: us, Roles: userRoles, Token: token, TokenUser: user}})
}

// newUserToken returns a new random user token and the hash the store
// keeps of it, made as the API makes them.
func newUserToken() (token, hash string) {
	token = "hsu_" + base64.RawURLEncoding.EncodeToString(randomBytes(32))
	sum := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(sum[:])
}

// createUser makes a user and shows its token once.
func (p *Portal) createUser(w http.ResponseWriter, r *http.Request) {
	name, role := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("role")
	field, err := "name", hotswap.ValidateName("user", name)
	switch {
	case err != nil:
	case name == "admin":
		err = hotswap.Errorf(hotswap.Invalid, "user name admin is reserved for the admin token")
	case !slices.Contains(userRoles, role):
		field, err = "role", hotswap.Errorf(hotswap.Invalid, "role %q is not deployer, approver or admin", role)
	}
	token, hash := newUserToken()
	if err == nil {
		err = p.cfg.Store.CreateUser(r.Context(), hotswap.User{Name: name, Role: role, TokenHash: hash})
	}
	if err != nil {
		p.renderUsers(w, r, statusOf(err), failForm(r, "create-user", field, err), "", "")
		return
	}
	p.log.Info("user created", "user", name, "role", role, "by", actor(r).Name)
	p.renderUsers(w, r, http.StatusOK, nil, name, token)
}

// rotateToken gives a user a new token, shown once; the earlier one and
// the sessions signed in with it stop working at once.
func (p *Portal) rotateToken(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	token, hash := newUserToken()
	if _, err := p.cfg.Store.SetUserToken(r.Context(), name, hash); err != nil {
		p.setFlash(w, r, hotswap.ErrorMessage(err), true)
		http.Redirect(w, r, "/users", http.StatusSeeOther)
		return
	}
	p.log.Info("user token rotated", "user", name, "by", actor(r).Name)
	p.renderUsers(w, r, http.StatusOK, nil, name, token)
}
