package httpapi

import (
	"net/http"

	"github.com/hotswap/hotswap"
)

func (s *Server) nodeRoutes() {
	s.mux.HandleFunc("GET /api/v1/nodes", s.auth(read, s.listNodes))
	s.mux.HandleFunc("POST /api/v1/node/drain", s.auth(manage, s.drainNode))
}

// listNodes lists the nodes of the cluster (a single server lists itself)
// with their version, state and last heartbeat.
func (s *Server) listNodes(w http.ResponseWriter, r *http.Request, _ actor) {
	nodes, err := s.ops.Nodes(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes, "self": s.ops.NodeID()})
}

// drainNode drains the node that receives the request: its health check
// fails from now on, and once the load balancer had time to notice, it
// finishes the requests in flight and stops (Config.Drain).
func (s *Server) drainNode(w http.ResponseWriter, r *http.Request, who actor) {
	if s.cfg.Drain == nil {
		s.fail(w, r, hotswap.Errorf(hotswap.FailedPrecondition, "this server cannot be drained through the API"))
		return
	}
	s.log.Info("drain requested", "actor", who.Name)
	s.ops.Drain()
	s.cfg.Drain()
	writeJSON(w, http.StatusAccepted, map[string]any{"node": s.ops.NodeID(), "state": hotswap.NodeDraining})
}
