package portal

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hotswap/hotswap"
)

// trafficShare says what share of production's requests slot gets under
// shares: production serves what the other slots leave.
func trafficShare(shares []hotswap.TrafficShare, slot string) string {
	if slot == hotswap.ProductionSlot {
		rest := 100.0
		for _, s := range shares {
			rest -= s.Percent
		}
		return hotswap.FormatPercent(max(rest, 0)) + "%"
	}
	for _, s := range shares {
		if s.Slot == slot {
			return hotswap.FormatPercent(s.Percent) + "%"
		}
	}
	return "0%"
}

// trafficValue is the value of a slot's share field: its percent, or ""
// when it has no rule.
func trafficValue(shares []hotswap.TrafficShare, slot string) string {
	for _, s := range shares {
		if s.Slot == slot {
			return hotswap.FormatPercent(s.Percent)
		}
	}
	return ""
}

// setTraffic sets one slot's share of production's requests (form fields
// slot and percent; an empty percent removes the slot's rule), keeping
// the other slots' shares.
func (p *Portal) setTraffic(w http.ResponseWriter, r *http.Request) {
	app, slot := r.PathValue("app"), r.PostFormValue("slot")
	formID := "traffic-" + slot
	raw := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(r.PostFormValue("percent")), "%"))
	shares, err := p.cfg.Ops.Traffic(r.Context(), app)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	shares = slices.DeleteFunc(shares, func(s hotswap.TrafficShare) bool { return s.Slot == slot })
	msg := "Traffic rule of " + slot + " removed: production serves its share"
	if raw != "" {
		pct, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			p.renderApp(w, r, http.StatusBadRequest, failForm(r, formID, "percent", hotswap.Errorf(hotswap.Invalid, "%q is not a percent from 0 to 100", raw)))
			return
		}
		shares = append(shares, hotswap.TrafficShare{Slot: slot, Percent: pct})
		msg = slot + " now gets " + hotswap.FormatPercent(pct) + "% of production's requests"
	}
	if err := p.cfg.Ops.SetTraffic(r.Context(), actor(r).Name, app, shares); err != nil {
		p.renderApp(w, r, statusOf(err), failForm(r, formID, "percent", err))
		return
	}
	p.done(w, r, appURL(app), msg)
}
