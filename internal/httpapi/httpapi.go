// Package httpapi serves the control plane: the JSON REST API under /api/v1
// and the Kudu-compatible deploy endpoints, on the admin listener.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/apierr"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/release"
	"github.com/hotswap/hotswap/internal/rollout"
)

// Config configures a Server.
type Config struct {
	Ops        *ops.Service
	AdminToken string       // bearer token of the admin
	Domain     string       // for Kudu's <app>[-<slot>].scm.<domain> host names
	Logger     *slog.Logger // nil discards
	Version    string
	Store      Store           // users; nil: only the admin token works
	Releases   *release.Engine // nil: no release endpoints
	Metrics    http.Handler    // /metrics; nil: none
	// Rollouts runs progressive swaps; nil: their endpoints, and a swap
	// with a strategy, answer 503.
	Rollouts *rollout.Engine

	// RotateAdminToken makes, stores and returns a new admin token, and
	// tells every other holder of the old one (the portal); the Server
	// then takes it as the admin token. nil: the admin token cannot be
	// rotated through the API.
	RotateAdminToken func(ctx context.Context) (string, error)
	// Drain, called after the service started draining, stops the server
	// once the load balancer had time to notice (POST /api/v1/node/drain);
	// nil refuses drains.
	Drain func()
}

// Server is the control-plane HTTP handler.
type Server struct {
	cfg        Config
	adminToken atomic.Pointer[string] // the current admin token; "" for none
	rotating   sync.Mutex             // one admin token rotation at a time
	ops        *ops.Service
	log        *slog.Logger
	mux        *http.ServeMux
}

// New returns a Server with every route registered.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, ops: cfg.Ops, log: cfg.Logger, mux: http.NewServeMux()}
	s.adminToken.Store(&cfg.AdminToken)
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
	})

	m.HandleFunc("GET /api/v1/apps", s.auth(read, s.listApps))
	m.HandleFunc("POST /api/v1/apps", s.auth(deploy, s.createApp))
	m.HandleFunc("GET /api/v1/apps/{app}", s.auth(read, s.getApp))
	m.HandleFunc("DELETE /api/v1/apps/{app}", s.auth(deploy, s.deleteApp))

	m.HandleFunc("GET /api/v1/apps/{app}/slots", s.auth(read, s.listSlots))
	m.HandleFunc("POST /api/v1/apps/{app}/slots", s.auth(deploy, s.createSlot))
	m.HandleFunc("GET /api/v1/apps/{app}/slots/{slot}", s.auth(read, s.getSlot))
	m.HandleFunc("DELETE /api/v1/apps/{app}/slots/{slot}", s.auth(deploy, s.deleteSlot))
	m.HandleFunc("GET /api/v1/apps/{app}/slots/{slot}/functions/{function}", s.auth(read, s.getFunction))
	m.HandleFunc("GET /api/v1/apps/{app}/slots/{slot}/log", s.auth(read, s.slotLog))

	m.HandleFunc("POST /api/v1/apps/{app}/slots/{slot}/deploy", s.auth(deploy, s.progress(s.deploy, s.deployNoWait)))
	m.HandleFunc("GET /api/v1/apps/{app}/deployments", s.auth(read, s.listDeployments))
	m.HandleFunc("GET /api/v1/apps/{app}/deployments/{id}", s.auth(read, s.getDeployment))
	m.HandleFunc("POST /api/v1/apps/{app}/deployments/{id}/quarantine", s.auth(deploy, s.quarantine))
	m.HandleFunc("DELETE /api/v1/apps/{app}/deployments/{id}/quarantine", s.auth(deploy, s.liftQuarantine))

	m.HandleFunc("GET /api/v1/apps/{app}/slots/{slot}/keys", s.auth(deploy, s.listKeys))
	m.HandleFunc("PUT /api/v1/apps/{app}/slots/{slot}/keys/master", s.auth(deploy, s.putKey(hotswap.ScopeMaster)))
	m.HandleFunc("PUT /api/v1/apps/{app}/slots/{slot}/keys/host/{name}", s.auth(deploy, s.putKey(hotswap.ScopeHost)))
	m.HandleFunc("PUT /api/v1/apps/{app}/slots/{slot}/keys/functions/{function}/{name}", s.auth(deploy, s.putKey(hotswap.ScopeFunction)))
	m.HandleFunc("DELETE /api/v1/apps/{app}/slots/{slot}/keys/host/{name}", s.auth(deploy, s.deleteKey(hotswap.ScopeHost)))
	m.HandleFunc("DELETE /api/v1/apps/{app}/slots/{slot}/keys/functions/{function}/{name}", s.auth(deploy, s.deleteKey(hotswap.ScopeFunction)))

	m.HandleFunc("GET /api/v1/apps/{app}/slots/{slot}/settings", s.auth(deploy, s.listSettings))
	m.HandleFunc("PATCH /api/v1/apps/{app}/slots/{slot}/settings", s.auth(deploy, s.progress(s.patchSettings, nil)))

	m.HandleFunc("GET /api/v1/apps/{app}/activity", s.auth(read, s.activity))

	m.HandleFunc("GET /api/v1/apps/{app}/operations", s.auth(read, s.operations))
	m.HandleFunc("POST /api/v1/apps/{app}/swap", s.auth(deploy, s.progress(s.swap, s.swapNoWait)))
	m.HandleFunc("POST /api/v1/apps/{app}/swap/complete", s.auth(deploy, s.progress(s.completeSwap, nil)))
	m.HandleFunc("POST /api/v1/apps/{app}/swap/cancel", s.auth(deploy, s.progress(s.cancelSwap, nil)))
	m.HandleFunc("PUT /api/v1/apps/{app}/slots/{slot}/autoswap", s.auth(deploy, s.autoSwap))
	m.HandleFunc("POST /api/v1/apps/{app}/slots/{slot}/rollback", s.auth(deploy, s.progress(s.rollback, nil)))

	s.kuduRoutes()
	s.progressRoutes()
	s.releaseRoutes()
	s.nodeRoutes()
	s.trafficRoutes()
	s.rolloutRoutes()
	if s.cfg.Metrics != nil {
		m.Handle("GET /metrics", s.cfg.Metrics)
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if app, slot, ok := s.scmHost(r.Host); ok {
		s.kudu(w, r, app, slot, "")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// actor is the authenticated caller of a request.
type actor = release.Actor

// Access a route needs.
type access int

const (
	read   access = iota // any authenticated user
	deploy               // admin or deployer
	manage               // admin only
)

// roles names the roles that have the access, for a refusal.
func (a access) roles() string {
	switch a {
	case read:
		return "admin, deployer or approver"
	case deploy:
		return "deployer or admin"
	}
	return "admin"
}

func allowed(who actor, need access) bool {
	switch need {
	case read:
		return true
	case deploy:
		return who.Role == "admin" || who.Role == "deployer"
	}
	return who.Role == "admin"
}

// auth requires a valid token (the admin token or a user's; for Kudu
// clients also HTTP Basic with the token as the password) whose role grants
// the access the route needs.
func (s *Server) auth(need access, h func(http.ResponseWriter, *http.Request, actor)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, ok := s.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hotswap"`)
			apierr.Write(w, r, s.log, hotswap.Errorf(hotswap.Unauthorized, "a valid token is required: Authorization: Bearer <token>"))
			return
		}
		if !allowed(who, need) {
			apierr.Write(w, r, s.log, hotswap.Errorf(hotswap.Forbidden, "%s (role %s) may not do this: it needs the %s role", who.Name, who.Role, need.roles()))
			return
		}
		h(w, r, who)
	}
}

// Authenticate resolves a request's token to its user. The admin token is
// compared in constant time; a user token is looked up by its sha256, so the
// token itself is never stored or compared.
func (s *Server) Authenticate(r *http.Request) (release.Actor, bool) { return s.authenticate(r) }

func (s *Server) authenticate(r *http.Request) (actor, bool) {
	var token string
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			token = strings.TrimSpace(t)
		} else if _, p, ok := r.BasicAuth(); ok {
			token = p
		}
	}
	return s.tokenActor(r.Context(), token)
}

// TokenActor resolves a token to its user, as a request's bearer token is.
func (s *Server) TokenActor(ctx context.Context, token string) (release.Actor, bool) {
	return s.tokenActor(ctx, token)
}

func (s *Server) tokenActor(ctx context.Context, token string) (actor, bool) {
	if token == "" || len(token) > 512 {
		return actor{}, false
	}
	if admin := *s.adminToken.Load(); admin != "" && subtle.ConstantTimeCompare([]byte(token), []byte(admin)) == 1 {
		return actor{Name: "admin", Role: "admin"}, true
	}
	if s.cfg.Store == nil {
		return actor{}, false
	}
	sum := sha256.Sum256([]byte(token))
	u, err := s.cfg.Store.UserByTokenHash(ctx, hex.EncodeToString(sum[:]))
	if err != nil {
		return actor{}, false
	}
	return actor{Name: u.Name, Role: u.Role}, true
}

// decode reads one JSON value of at most 1 MiB into v, refusing unknown
// fields and trailing data.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return hotswap.Errorf(hotswap.Invalid, "request body is empty; expected JSON")
		}
		return hotswap.Errorf(hotswap.Invalid, "request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return hotswap.Errorf(hotswap.Invalid, "request body has data after the JSON value")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	apierr.Write(w, r, s.log, err)
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request, _ actor) {
	apps, err := s.ops.ListApps(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": apps})
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	app, err := s.ops.CreateApp(r.Context(), who.Name, in.Name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, app)
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request, _ actor) {
	app, err := s.ops.GetApp(r.Context(), r.PathValue("app"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, app)
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request, who actor) {
	forced, err := force(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.ops.DeleteApp(r.Context(), who.Name, r.PathValue("app"), ops.HoldOptions{Force: forced}); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listSlots(w http.ResponseWriter, r *http.Request, _ actor) {
	slots, err := s.ops.ListSlots(r.Context(), r.PathValue("app"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"slots": slots})
}

func (s *Server) createSlot(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Name      string `json:"name"`
		CloneFrom string `json:"cloneSettingsFrom"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	slot, err := s.ops.CreateSlot(r.Context(), who.Name, r.PathValue("app"), in.Name, in.CloneFrom)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, slot)
}

func (s *Server) getSlot(w http.ResponseWriter, r *http.Request, who actor) {
	slot, err := s.ops.GetSlot(r.Context(), r.PathValue("app"), r.PathValue("slot"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !mayReadKeys(who) {
		slot = withoutKeys(slot)
	}
	writeJSON(w, http.StatusOK, slot)
}

func (s *Server) deleteSlot(w http.ResponseWriter, r *http.Request, who actor) {
	forced, err := force(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.ops.DeleteSlot(r.Context(), who.Name, r.PathValue("app"), r.PathValue("slot"), ops.HoldOptions{Force: forced}); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getFunction(w http.ResponseWriter, r *http.Request, who actor) {
	fn, err := s.ops.Function(r.Context(), r.PathValue("app"), r.PathValue("slot"), r.PathValue("function"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !mayReadKeys(who) {
		fn.InvokeURL = stripCode(fn.InvokeURL)
	}
	writeJSON(w, http.StatusOK, fn)
}

func (s *Server) slotLog(w http.ResponseWriter, r *http.Request, _ actor) {
	n := 100
	if v := r.URL.Query().Get("tail"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
			s.fail(w, r, hotswap.Errorf(hotswap.Invalid, "tail must be a number from 1 to 1000"))
			return
		}
	}
	lines, err := s.ops.Log(r.Context(), r.PathValue("app"), r.PathValue("slot"), n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"lines": lines})
}

func (s *Server) deploy(w http.ResponseWriter, r *http.Request, who actor) {
	forced, err := force(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.ops.Deploy(r.Context(), ops.DeployRequest{
		App: r.PathValue("app"), Slot: r.PathValue("slot"), Actor: who.Name,
		Message: r.URL.Query().Get("message"), Package: r.Body, Force: forced,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	slot, err := s.ops.GetSlot(r.Context(), res.Deployment.App, res.Deployment.Slot)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		ops.DeployResult
		URL string `json:"url"`
	}{res, slot.URL})
}

// swapInput is the body of POST /api/v1/apps/{app}/swap.
type swapInput struct {
	Slot    string `json:"slot"`
	Target  string `json:"target"`
	Preview bool   `json:"preview"`
	// Expect is what the slots must serve for the swap to go on, checked
	// when its operation begins: {"source": ID, "target": ID}, target
	// optional ("" for an empty slot, left out for any). Kept raw so that
	// an explicit null is refused, not taken for "no check".
	Expect json.RawMessage `json:"expect"`
	rolloutSpec
}

// request reads the input as a swap of app by who, or says which field is
// wrong. A progressive swap (rolloutSpec given) is not read here.
func (in *swapInput) request(r *http.Request, who actor) (ops.SwapRequest, error) {
	forced, err := force(r)
	if err != nil {
		return ops.SwapRequest{}, err
	}
	req := ops.SwapRequest{App: r.PathValue("app"), Source: in.Slot, Target: in.Target, Preview: in.Preview, Actor: who.Name, Force: forced}
	req.Expect, err = swapExpectOf(in.Expect)
	return req, err
}

// swapExpectOf reads a swap's "expect"; nil when it was left out.
func swapExpectOf(raw json.RawMessage) (*ops.SwapExpect, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	if string(raw) == "null" {
		return nil, hotswap.Errorf(hotswap.Invalid, `"expect" is null: give {"source": DEPLOYMENT} (and "target"), or leave "expect" out`)
	}
	var x struct {
		Source json.RawMessage `json:"source"`
		Target json.RawMessage `json:"target"`
	}
	if raw[0] != '{' { // decode has checked it is one JSON value
		return nil, hotswap.Errorf(hotswap.Invalid, `"expect" must be an object {"source": DEPLOYMENT, "target": DEPLOYMENT}, not %.40s`, raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		field, unknown := strings.CutPrefix(err.Error(), "json: unknown field ")
		if unknown {
			return nil, hotswap.Errorf(hotswap.Invalid, `"expect" has an unknown field %s: it takes "source" and "target"`, field)
		}
		return nil, hotswap.Errorf(hotswap.Invalid, `"expect" is not an object with "source" and "target": %v`, err)
	}
	if len(x.Source) == 0 {
		return nil, hotswap.Errorf(hotswap.Invalid, `"expect.source" is required with "expect": the deployment the source slot must serve`)
	}
	src, err := expectedDeployment("expect.source", x.Source)
	if err == nil && src == "" {
		err = hotswap.Errorf(hotswap.Invalid, `"expect.source" is empty: give the deployment the source slot must serve`)
	}
	if err != nil {
		return nil, err
	}
	e := &ops.SwapExpect{Source: src, AnyTarget: len(x.Target) == 0}
	if !e.AnyTarget {
		if e.Target, err = expectedDeployment("expect.target", x.Target); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// expectedDeployment reads a deployment id of "expect": a string of at
// most hotswap.MaxDeploymentID bytes ("" names an empty slot).
func expectedDeployment(field string, raw json.RawMessage) (string, error) {
	var id string
	if string(raw) == "null" || json.Unmarshal(raw, &id) != nil {
		return "", hotswap.Errorf(hotswap.Invalid, `%q must be a deployment id (a string; "" for an empty slot), not %.40s`, field, raw)
	}
	if len(id) > hotswap.MaxDeploymentID {
		return "", hotswap.Errorf(hotswap.Invalid, `%q is %d bytes long; a deployment id is at most %d`, field, len(id), hotswap.MaxDeploymentID)
	}
	return id, nil
}

func (s *Server) swap(w http.ResponseWriter, r *http.Request, who actor) {
	var in swapInput
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if in.rolloutSpec.given() {
		s.swapRollout(w, r, who, in)
		return
	}
	req, err := in.request(r, who)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.ops.Swap(r.Context(), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) completeSwap(w http.ResponseWriter, r *http.Request, who actor) {
	forced, err := force(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.ops.CompleteSwap(r.Context(), who.Name, r.PathValue("app"), ops.HoldOptions{Force: forced})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) cancelSwap(w http.ResponseWriter, r *http.Request, who actor) {
	forced, err := force(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.ops.CancelSwap(r.Context(), who.Name, r.PathValue("app"), ops.HoldOptions{Force: forced})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) autoSwap(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Target string `json:"target"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	slot, err := s.ops.SetAutoSwap(r.Context(), who.Name, r.PathValue("app"), r.PathValue("slot"), in.Target)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, slot)
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Deployment string `json:"deployment"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if in.Deployment == "" {
		s.fail(w, r, hotswap.Errorf(hotswap.Invalid, "deployment is required"))
		return
	}
	forced, err := force(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.ops.RollbackTo(r.Context(), ops.RollbackRequest{App: r.PathValue("app"), Slot: r.PathValue("slot"), Deployment: in.Deployment, Actor: who.Name, Force: forced})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	slot, err := s.ops.GetSlot(r.Context(), r.PathValue("app"), r.PathValue("slot"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployment": d, "url": slot.URL})
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request, _ actor) {
	ds, err := s.ops.History(r.Context(), r.PathValue("app"), r.URL.Query().Get("slot"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployments": ds})
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request, _ actor) {
	d, err := s.ops.Deployment(r.Context(), r.PathValue("app"), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q, err := s.ops.DeploymentQuarantine(r.Context(), d.App, d.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		hotswap.Deployment
		Quarantine *hotswap.Quarantine `json:"quarantine,omitempty"`
	}{d, q})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, _ actor) {
	keys, err := s.ops.ListKeys(r.Context(), r.PathValue("app"), r.PathValue("slot"), r.URL.Query().Get("function"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func (s *Server) putKey(scope string) func(http.ResponseWriter, *http.Request, actor) {
	return func(w http.ResponseWriter, r *http.Request, who actor) {
		var in struct {
			Value string `json:"value"`
		}
		if err := decode(r, &in); err != nil {
			s.fail(w, r, err)
			return
		}
		k := hotswap.Key{Scope: scope, Function: r.PathValue("function"), Name: r.PathValue("name"), Value: in.Value}
		k, err := s.ops.SetKey(r.Context(), who.Name, r.PathValue("app"), r.PathValue("slot"), k)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, k)
	}
}

func (s *Server) deleteKey(scope string) func(http.ResponseWriter, *http.Request, actor) {
	return func(w http.ResponseWriter, r *http.Request, who actor) {
		err := s.ops.RemoveKey(r.Context(), who.Name, r.PathValue("app"), r.PathValue("slot"), scope, r.PathValue("function"), r.PathValue("name"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) listSettings(w http.ResponseWriter, r *http.Request, _ actor) {
	st, err := s.ops.ListSettings(r.Context(), r.PathValue("app"), r.PathValue("slot"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"settings": st})
}

func (s *Server) patchSettings(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Set   []hotswap.Setting `json:"set"`
		Unset []string          `json:"unset"`
	}
	forced, err := force(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := s.ops.UpdateSettings(r.Context(), who.Name, r.PathValue("app"), r.PathValue("slot"), in.Set, in.Unset, ops.HoldOptions{Force: forced})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"settings": st})
}

func (s *Server) activity(w http.ResponseWriter, r *http.Request, _ actor) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.fail(w, r, hotswap.Errorf(hotswap.Invalid, "limit must be a number from 1 to 1000"))
			return
		}
		limit = n
	}
	a, err := s.ops.Activity(r.Context(), r.PathValue("app"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"activity": a})
}

func (s *Server) operations(w http.ResponseWriter, r *http.Request, _ actor) {
	o, err := s.ops.Operations(r.Context(), r.PathValue("app"), 100)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"operations": o})
}
