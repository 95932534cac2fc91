package ops

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/metrics"
)

// MetricsPublisher is what a cluster store offers to share this node's
// request counts with the node that analyses progressive swaps and metric
// gates (internal/rollout's ClusterMetrics reads them). *postgres.DB
// implements it; a Cluster without it publishes nothing.
type MetricsPublisher interface {
	PublishNodeMetrics(ctx context.Context, node string, totals []hotswap.SlotTotals) error
}

// metricsPublished is what the heartbeat loop last published: the counts,
// and whether the last try failed (to log a failure once, not every second).
type metricsPublished struct {
	totals map[metrics.SlotKey]metrics.Totals
	failed bool
}

// publishMetrics publishes the registry's lifetime counts of every slot,
// at a heartbeat, when they changed since the last publish. The heartbeat
// loop calls it, and only it: last is the loop's own.
func (s *Service) publishMetrics(ctx context.Context, last *metricsPublished) {
	p, ok := s.cfg.Cluster.(MetricsPublisher)
	if !ok || s.cfg.Metrics == nil {
		return
	}
	all := s.cfg.Metrics.AllTotals()
	if last.totals != nil && maps.Equal(all, last.totals) {
		return
	}
	rows := make([]hotswap.SlotTotals, 0, len(all))
	for k, t := range all {
		rows = append(rows, hotswap.SlotTotals{App: k.App, Slot: k.Slot, Hist: slices.Clone(t.Hist[:]), Errors: t.Errors})
	}
	slices.SortFunc(rows, func(a, b hotswap.SlotTotals) int {
		return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Slot, b.Slot))
	})
	if err := p.PublishNodeMetrics(ctx, s.node.self.ID, rows); err != nil {
		if !last.failed && s.ctx.Err() == nil {
			s.log.Warn("publish this node's request counts: the analyses of progressive swaps and metric gates miss its requests until it works again", "err", err)
		}
		last.failed = true
		return
	}
	if last.failed {
		s.log.Info("this node's request counts are published again")
	}
	*last = metricsPublished{totals: all}
}
