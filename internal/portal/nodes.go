package portal

import (
	"net/http"
	"time"

	"github.com/hotswap/hotswap"
)

// nodeRow is one node of the cluster on the nodes page.
type nodeRow struct {
	hotswap.Node
	Self bool
	Seen string // since the last heartbeat, as people write it
}

// nodesPage lists the nodes of the cluster sharing this server's store
// (a single server lists itself) with version, state and last heartbeat.
func (p *Portal) nodesPage(w http.ResponseWriter, r *http.Request) {
	nodes, err := p.cfg.Ops.Nodes(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	self := p.cfg.Ops.NodeID()
	rows := make([]nodeRow, 0, len(nodes))
	for _, n := range nodes {
		rows = append(rows, nodeRow{Node: n, Self: n.ID == self, Seen: n.Age.Round(100*time.Millisecond).String() + " ago"})
	}
	p.render(w, r, http.StatusOK, "nodes", &view{Title: "Nodes", Nav: "nodes", Data: struct {
		Nodes   []nodeRow
		Cluster bool
	}{rows, self != ""}})
}
