package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/rollout"
)

// Progressive swaps (rollouts): a slot gets a growing share of production's
// requests, step by step, while its metrics are read against production's;
// the last step passed, it is swapped in (docs/api.md "Progressive swaps").
//
//	POST /api/v1/apps/{app}/rollouts                     start one: 201 Rollout
//	GET  /api/v1/apps/{app}/rollouts?limit=N             newest first
//	GET  /api/v1/apps/{app}/rollouts/{id}
//	POST /api/v1/apps/{app}/rollouts/{id}/{command}      pause, resume, promote, abort
//
// POST /api/v1/apps/{app}/swap with a "strategy" starts one as well (202).
// Starting and commanding need the deploy role, as a swap does.

// errRolloutsOff answers every rollout request of a server without an
// engine.
var errRolloutsOff = hotswap.Errorf(hotswap.Unavailable, "progressive swaps are not enabled on this server")

const (
	defaultRolloutList = 50
	maxRolloutList     = 1000
)

func (s *Server) rolloutRoutes() {
	s.mux.HandleFunc("POST /api/v1/apps/{app}/rollouts", s.auth(deploy, s.startRollout))
	s.mux.HandleFunc("GET /api/v1/apps/{app}/rollouts", s.auth(read, s.listRollouts))
	s.mux.HandleFunc("GET /api/v1/apps/{app}/rollouts/{id}", s.auth(read, s.getRollout))
	s.mux.HandleFunc("POST /api/v1/apps/{app}/rollouts/{id}/{command}", s.auth(deploy, s.commandRollout))
}

// rolloutSpec is how a request describes a progressive swap: the strategy,
// its step duration and the analysis as the CLI takes them, as text.
type rolloutSpec struct {
	Strategy string `json:"strategy"`
	Step     string `json:"step"`
	Analysis string `json:"analysis"`
}

// given reports whether the request asks for a progressive swap at all.
func (sp rolloutSpec) given() bool {
	return sp.Strategy != "" || sp.Step != "" || sp.Analysis != ""
}

// parse reads the spec; each error names the field and what it should be.
func (sp rolloutSpec) parse() (hotswap.Strategy, hotswap.Analysis, error) {
	if strings.TrimSpace(sp.Strategy) == "" {
		return hotswap.Strategy{}, hotswap.Analysis{}, hotswap.Errorf(hotswap.Invalid,
			`"strategy" is required with "step" or "analysis": canary:10,25,50, Canary10Percent5Minutes, Linear10PercentEvery1Minute or AllAtOnce`)
	}
	var step time.Duration
	if v := strings.TrimSpace(sp.Step); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return hotswap.Strategy{}, hotswap.Analysis{}, hotswap.Errorf(hotswap.Invalid, `"step": %q is not a duration such as 2m or 30s`, sp.Step)
		}
		step = d
	}
	st, err := hotswap.ParseStrategy(sp.Strategy, step)
	if err != nil {
		return hotswap.Strategy{}, hotswap.Analysis{}, err
	}
	a, err := hotswap.ParseAnalysis(sp.Analysis)
	if err != nil {
		return hotswap.Strategy{}, hotswap.Analysis{}, err
	}
	return st, a, nil
}

// beginRollout parses spec and starts app's progressive swap of slot into
// target, answering status with the rollout.
func (s *Server) beginRollout(w http.ResponseWriter, r *http.Request, who actor, status int, slot, target string, spec rolloutSpec) {
	if s.cfg.Rollouts == nil {
		s.fail(w, r, errRolloutsOff)
		return
	}
	if strings.TrimSpace(slot) == "" {
		s.fail(w, r, hotswap.Errorf(hotswap.Invalid, `"slot" is required: the slot whose share of production grows`))
		return
	}
	st, a, err := spec.parse()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ro, err := s.cfg.Rollouts.Start(r.Context(), rollout.StartRequest{
		App: r.PathValue("app"), Slot: slot, Target: target, Actor: who.Name, Strategy: st, Analysis: a,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", rolloutPath(ro.App, ro.ID))
	writeJSON(w, status, ro)
}

func rolloutPath(app, id string) string {
	return "/api/v1/apps/" + url.PathEscape(app) + "/rollouts/" + url.PathEscape(id)
}

func (s *Server) startRollout(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Slot   string `json:"slot"`
		Target string `json:"target"`
		rolloutSpec
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	s.beginRollout(w, r, who, http.StatusCreated, in.Slot, in.Target, in.rolloutSpec)
}

// swapRollout answers a swap request that names a strategy: it starts a
// progressive swap instead, 202 with the rollout, which goes on after the
// answer. A preview, or force (a rollout's swap does not go past a
// release's hold), does not go with it.
func (s *Server) swapRollout(w http.ResponseWriter, r *http.Request, who actor, in swapInput) {
	forced, err := force(r)
	switch {
	case err != nil:
		s.fail(w, r, err)
	case in.Preview:
		s.fail(w, r, hotswap.Errorf(hotswap.Invalid, `"preview" and "strategy" exclude each other: a progressive swap shares production's traffic instead of a preview`))
	case forced:
		s.fail(w, r, hotswap.Errorf(hotswap.Invalid, "force=true does not apply to a progressive swap: its swap respects a release's hold on the slots"))
	case len(in.Expect) > 0:
		s.fail(w, r, hotswap.Errorf(hotswap.Invalid, `"expect" does not apply to a progressive swap: it swaps what its steps analysed, and fails if either slot changes`))
	default:
		s.beginRollout(w, r, who, http.StatusAccepted, in.Slot, in.Target, in.rolloutSpec)
	}
}

func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request, _ actor) {
	if s.cfg.Rollouts == nil {
		s.fail(w, r, errRolloutsOff)
		return
	}
	limit := defaultRolloutList
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRolloutList {
			s.fail(w, r, hotswap.Errorf(hotswap.Invalid, "limit must be a number from 1 to %d, not %q", maxRolloutList, v))
			return
		}
		limit = n
	}
	app := r.PathValue("app")
	if err := s.ops.SlotExists(r.Context(), app, hotswap.ProductionSlot); err != nil {
		s.fail(w, r, err) // the app is missing: 404, not an empty list
		return
	}
	rs, err := s.cfg.Rollouts.List(r.Context(), app, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rs == nil {
		rs = []hotswap.Rollout{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rollouts": rs})
}

// appRollout returns the rollout the path names, NotFound if it is
// another app's.
func (s *Server) appRollout(r *http.Request) (hotswap.Rollout, error) {
	if s.cfg.Rollouts == nil {
		return hotswap.Rollout{}, errRolloutsOff
	}
	app, id := r.PathValue("app"), r.PathValue("id")
	ro, err := s.cfg.Rollouts.Get(r.Context(), id)
	if hotswap.ErrorKind(err) == hotswap.NotFound || err == nil && ro.App != app {
		return hotswap.Rollout{}, hotswap.Errorf(hotswap.NotFound, "progressive swap %q of app %q not found", id, app)
	}
	return ro, err
}

func (s *Server) getRollout(w http.ResponseWriter, r *http.Request, _ actor) {
	ro, err := s.appRollout(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ro)
}

func (s *Server) commandRollout(w http.ResponseWriter, r *http.Request, who actor) {
	if s.cfg.Rollouts == nil {
		s.fail(w, r, errRolloutsOff)
		return
	}
	cmd, err := hotswap.ParseRolloutCommand(r.PathValue("command"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if r.ContentLength > 0 {
		var in struct{}
		if err := decode(r, &in); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	ro, err := s.appRollout(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ro, err = s.cfg.Rollouts.Command(r.Context(), who.Name, ro.ID, cmd)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ro)
}
