package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/release"
)

func (s *Server) releaseRoutes() {
	m := s.mux
	m.HandleFunc("GET /api/v1/whoami", s.auth(read, func(w http.ResponseWriter, r *http.Request, who actor) {
		writeJSON(w, http.StatusOK, map[string]string{"name": who.Name, "role": who.Role})
	}))
	if s.cfg.Store != nil {
		m.HandleFunc("POST /api/v1/users", s.auth(manage, s.createUser))
		m.HandleFunc("GET /api/v1/users", s.auth(manage, s.listUsers))
		m.HandleFunc("DELETE /api/v1/users/{name}", s.auth(manage, s.deleteUser))
		m.HandleFunc("POST /api/v1/users/{name}/token", s.auth(manage, s.rotateToken))
	}
	if s.cfg.Releases == nil {
		return
	}
	m.HandleFunc("POST /api/v1/feeds/{feed}/artifacts", s.auth(deploy, s.pushArtifact))
	m.HandleFunc("GET /api/v1/feeds/{feed}/artifacts", s.auth(read, s.listArtifacts))
	m.HandleFunc("POST /api/v1/pipelines", s.auth(deploy, s.applyPipeline))
	m.HandleFunc("GET /api/v1/pipelines", s.auth(read, s.listPipelines))
	m.HandleFunc("GET /api/v1/pipelines/{name}", s.auth(read, s.getPipeline))
	m.HandleFunc("POST /api/v1/pipelines/{name}/rename", s.auth(deploy, s.renamePipeline))
	m.HandleFunc("POST /api/v1/releases", s.auth(deploy, s.createRelease))
	m.HandleFunc("GET /api/v1/releases", s.auth(read, s.listReleases))
	m.HandleFunc("GET /api/v1/releases/{id}", s.auth(read, s.getRelease))
	m.HandleFunc("POST /api/v1/releases/{id}/approve", s.auth(read, s.decide(true)))
	m.HandleFunc("POST /api/v1/releases/{id}/reject", s.auth(read, s.decide(false)))
	m.HandleFunc("POST /api/v1/releases/{id}/redeploy", s.auth(deploy, s.redeploy))
	m.HandleFunc("POST /api/v1/releases/{id}/abandon", s.auth(deploy, s.abandon))
}

var roles = map[string]bool{"admin": true, "deployer": true, "approver": true}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := hotswap.ValidateName("user", in.Name); err != nil {
		s.fail(w, r, err)
		return
	}
	if in.Name == "admin" {
		s.fail(w, r, hotswap.Errorf(hotswap.Invalid, "user name admin is reserved for the admin token"))
		return
	}
	if !roles[in.Role] {
		s.fail(w, r, hotswap.Errorf(hotswap.Invalid, "role %q is not admin, deployer or approver", in.Role))
		return
	}
	token, hash, err := newUserToken()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u := hotswap.User{Name: in.Name, Role: in.Role, TokenHash: hash}
	if err := s.cfg.Store.CreateUser(r.Context(), u); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("user created", "user", in.Name, "role", in.Role, "by", who.Name)
	writeJSON(w, http.StatusCreated, map[string]string{"name": u.Name, "role": u.Role, "token": token})
}

// newUserToken returns a new random user token and the hash the store
// keeps of it.
func newUserToken() (token, hash string, err error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", err
	}
	token = "hsu_" + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(sum[:]), nil
}

// rotateToken gives a user, or the admin (user name admin), a new token.
// The earlier token stops working at once, and so do the portal sessions
// signed in with it.
func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request, who actor) {
	name := r.PathValue("name")
	if name == "admin" {
		if s.cfg.RotateAdminToken == nil {
			s.fail(w, r, hotswap.Errorf(hotswap.FailedPrecondition, "this server cannot rotate the admin token through the API; delete <data>/admin-token and restart"))
			return
		}
		s.rotating.Lock()
		token, err := s.cfg.RotateAdminToken(r.Context())
		if err == nil {
			s.adminToken.Store(&token)
		}
		s.rotating.Unlock()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.log.Info("admin token rotated", "by", who.Name)
		writeJSON(w, http.StatusOK, map[string]string{"name": "admin", "role": "admin", "token": token})
		return
	}
	token, hash, err := newUserToken()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.cfg.Store.SetUserToken(r.Context(), name, hash)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("user token rotated", "user", name, "by", who.Name)
	writeJSON(w, http.StatusOK, map[string]string{"name": u.Name, "role": u.Role, "token": token})
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ actor) {
	us, err := s.cfg.Store.ListUsers(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if us == nil {
		us = []hotswap.User{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": us})
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, _ actor) {
	if err := s.cfg.Store.DeleteUser(r.Context(), r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pushArtifact(w http.ResponseWriter, r *http.Request, who actor) {
	q := r.URL.Query()
	a := hotswap.Artifact{Feed: r.PathValue("feed"), Version: q.Get("version"), Branch: q.Get("branch"), Commit: q.Get("commit")}
	a, rels, err := s.cfg.Releases.PushArtifact(r.Context(), who, a, r.Body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	type ref struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	refs := []ref{}
	for _, rel := range rels {
		refs = append(refs, ref{rel.ID, rel.Name})
	}
	writeJSON(w, http.StatusCreated, map[string]any{"artifact": a, "releases": refs})
}

func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request, _ actor) {
	as, err := s.cfg.Store.ListArtifacts(r.Context(), r.PathValue("feed"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if as == nil {
		as = []hotswap.Artifact{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"artifacts": as})
}

func (s *Server) applyPipeline(w http.ResponseWriter, r *http.Request, who actor) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 256<<10+1))
	if err != nil {
		s.fail(w, r, hotswap.Errorf(hotswap.Invalid, "reading the definition failed: %v", err))
		return
	}
	if len(body) > 256<<10 {
		s.fail(w, r, hotswap.Errorf(hotswap.Invalid, "the definition is larger than 256 KiB"))
		return
	}
	p, err := s.cfg.Releases.ApplyPipeline(r.Context(), who, body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if p.Version == 1 {
		status = http.StatusCreated
	}
	writeJSON(w, status, redactPipeline(who, p))
}

func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request, who actor) {
	ps, err := s.cfg.Store.ListPipelines(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []hotswap.Pipeline{}
	}
	for i := range ps {
		ps[i] = redactPipeline(who, ps[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipelines": ps})
}

func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request, who actor) {
	p, err := s.cfg.Store.GetPipeline(r.Context(), r.PathValue("name"), false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	vs, err := s.cfg.Store.PipelineVersions(r.Context(), p.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !mayReadWebhooks(who) {
		for i := range vs {
			vs[i].Definition = release.RedactDefinition(vs[i].Definition)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"pipeline": redactPipeline(who, p), "versions": vs})
}

func (s *Server) renamePipeline(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.cfg.Releases.RenamePipeline(r.Context(), who, r.PathValue("name"), in.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redactPipeline(who, p))
}

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Pipeline string `json:"pipeline"`
		Version  string `json:"version"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	rel, err := s.cfg.Releases.CreateRelease(r.Context(), who, in.Pipeline, in.Version)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, redactRelease(who, rel))
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request, who actor) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.fail(w, r, hotswap.Errorf(hotswap.Invalid, "limit must be a number from 1 to 1000"))
			return
		}
		limit = n
	}
	rels, err := s.cfg.Releases.List(r.Context(), r.URL.Query().Get("pipeline"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, rel := range rels {
		redactRelease(who, rel)
	}
	writeJSON(w, http.StatusOK, map[string]any{"releases": rels})
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request, who actor) {
	rel, err := s.cfg.Releases.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redactRelease(who, rel))
}

func (s *Server) decide(approve bool) func(http.ResponseWriter, *http.Request, actor) {
	return func(w http.ResponseWriter, r *http.Request, who actor) {
		var in struct {
			Stage   string `json:"stage"`
			Comment string `json:"comment"`
		}
		if err := decode(r, &in); err != nil {
			s.fail(w, r, err)
			return
		}
		rel, err := s.cfg.Releases.Decide(r.Context(), who, r.PathValue("id"), in.Stage, approve, in.Comment)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, redactRelease(who, rel))
	}
}

func (s *Server) redeploy(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Stage string `json:"stage"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	rel, err := s.cfg.Releases.Redeploy(r.Context(), who, r.PathValue("id"), in.Stage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redactRelease(who, rel))
}

func (s *Server) abandon(w http.ResponseWriter, r *http.Request, who actor) {
	rel, err := s.cfg.Releases.Abandon(r.Context(), who, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redactRelease(who, rel))
}
