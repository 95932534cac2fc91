package httpapi

import (
	"net/http"

	"github.com/hotswap/hotswap"
)

// Traffic routing rules of an app's production slot: GET reads them, PUT
// replaces them ({"shares":[{"slot":"staging","percent":10}]}), DELETE
// clears them. Changing them needs the deploy role.
func (s *Server) trafficRoutes() {
	s.mux.HandleFunc("GET /api/v1/apps/{app}/traffic", s.auth(read, s.getTraffic))
	s.mux.HandleFunc("PUT /api/v1/apps/{app}/traffic", s.auth(deploy, s.putTraffic))
	s.mux.HandleFunc("DELETE /api/v1/apps/{app}/traffic", s.auth(deploy, s.deleteTraffic))
}

// trafficBody is the traffic resource; shares is [] rather than null when
// there are none.
type trafficBody struct {
	Shares []hotswap.TrafficShare `json:"shares"`
}

func (s *Server) writeTraffic(w http.ResponseWriter, r *http.Request) {
	shares, err := s.ops.Traffic(r.Context(), r.PathValue("app"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if shares == nil {
		shares = []hotswap.TrafficShare{}
	}
	writeJSON(w, http.StatusOK, trafficBody{Shares: shares})
}

func (s *Server) getTraffic(w http.ResponseWriter, r *http.Request, _ actor) {
	s.writeTraffic(w, r)
}

func (s *Server) putTraffic(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Shares *[]hotswap.TrafficShare `json:"shares"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if in.Shares == nil {
		s.fail(w, r, hotswap.Errorf(hotswap.Invalid, `the body needs "shares": a list of {"slot": NAME, "percent": 0..100} (an empty list clears the rules)`))
		return
	}
	if err := s.ops.SetTraffic(r.Context(), who.Name, r.PathValue("app"), *in.Shares); err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeTraffic(w, r)
}

func (s *Server) deleteTraffic(w http.ResponseWriter, r *http.Request, who actor) {
	if err := s.ops.ClearTraffic(r.Context(), who.Name, r.PathValue("app")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
