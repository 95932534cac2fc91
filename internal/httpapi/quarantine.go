package httpapi

import (
	"net/http"
)

// quarantine quarantines a deployment's content: POST
// /api/v1/apps/{app}/deployments/{id}/quarantine {"reason": "..."}; the
// body may be empty.
func (s *Server) quarantine(w http.ResponseWriter, r *http.Request, who actor) {
	var in struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	q, err := s.ops.QuarantineDeployment(r.Context(), who.Name, r.PathValue("app"), r.PathValue("id"), in.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"quarantine": q})
}

// liftQuarantine ends a deployment's quarantine: DELETE
// /api/v1/apps/{app}/deployments/{id}/quarantine.
func (s *Server) liftQuarantine(w http.ResponseWriter, r *http.Request, who actor) {
	if err := s.ops.LiftQuarantine(r.Context(), who.Name, r.PathValue("app"), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
