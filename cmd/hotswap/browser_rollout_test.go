package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hotswap/hotswap"
)

// TestBrowserProgressiveSwap: in a real browser, a progressive swap started
// from the swap page shows on the app page with its step, share and
// limits, and the slot's and production's charts side by side with the
// step and the limits marked, within a phone's width; Pause, Resume and
// Abort (which asks first) steer it, and the stored rollout follows.
func TestBrowserProgressiveSwap(t *testing.T) {
	t.Parallel()
	s, b, prod, staged := screensServer(t)
	for range 5 {
		s.health("orders.localhost")
	}

	b.open("/apps/orders/swap")
	b.do("fill the progressive swap form",
		chromedp.SetValue(`form[action$="/swap/progressive"] [name="strategy"]`, "canary:10,30"),
		chromedp.SetValue(`form[action$="/swap/progressive"] [name="step"]`, "1h"),
		chromedp.SetValue(`form[action$="/swap/progressive"] [name="analysis"]`, "maxErrorRate=2%,maxP95=300ms"),
	)
	b.do("start it",
		chromedp.Evaluate[chromedp.Void](`window.__hotswapOldPage = true`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('form[action$="/swap/progressive"]').requestSubmit()`),
	)
	b.waitJS("the page after starting", `!window.__hotswapOldPage && document.readyState === "complete"`, 60*time.Second)

	var list struct{ Rollouts []hotswap.Rollout }
	s.must(http.StatusOK, "GET", "/api/v1/apps/orders/rollouts", nil, &list)
	if len(list.Rollouts) != 1 || list.Rollouts[0].Strategy.Name != "canary:10,30" || list.Rollouts[0].Analysis.MaxErrorRate != 0.02 {
		t.Fatalf("after the form: rollouts %+v", list.Rollouts)
	}
	id := list.Rollouts[0].ID

	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.open("/apps/orders")
	b.waitText("rollout-state", "running", 20*time.Second)
	if got := b.text("rollout-share"); got != "10%" {
		t.Errorf("share shown %q, want 10%%", got)
	}
	if got := b.text("rollout-analysis"); !strings.Contains(got, "2%") || !strings.Contains(got, "300 ms") {
		t.Errorf("analysis shown %q, want the limits", got)
	}
	// Six charts, the slot's beside production's; a step mark and the
	// limit lines drawn.
	if n := eval[int](b, `document.querySelectorAll('#rollout-charts svg').length`); n != 6 {
		t.Errorf("%d rollout charts, want 6", n)
	}
	svg := eval[string](b, `document.querySelector('#rollout-charts').innerHTML`)
	for _, want := range []string{"10%", "2%", "300 ms"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the rollout charts lack %q", want)
		}
	}
	if w := eval[int](b, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the app page is %dpx wide at phone width with a rollout, want at most 390", w)
	}
	b.screenshot("rollout-phone", true)

	stored := func() hotswap.Rollout {
		var ro hotswap.Rollout
		s.must(http.StatusOK, "GET", "/api/v1/apps/orders/rollouts/"+id, nil, &ro)
		return ro
	}
	b.submit("rollout-pause")
	b.waitText("rollout-state", "paused", 20*time.Second)
	if ro := stored(); ro.State != hotswap.RolloutPaused {
		t.Fatalf("after Pause the rollout is %s", ro.State)
	}
	b.submit("rollout-resume")
	b.waitText("rollout-state", "running", 20*time.Second)

	// Abort asks first; declined, nothing changes.
	b.do("decline", chromedp.Evaluate[chromedp.Void](`window.confirm = function(){ return false; }`), chromedp.Click(tid("rollout-abort")))
	time.Sleep(300 * time.Millisecond)
	if ro := stored(); ro.State != hotswap.RolloutRunning {
		t.Fatalf("after a declined Abort the rollout is %s", ro.State)
	}
	b.do("accept", chromedp.Evaluate[chromedp.Void](`window.confirm = function(){ return true; }`))
	b.submit("rollout-abort")
	b.waitText("rollout-state", "aborted", 20*time.Second)
	if got := b.text("rollout-reason"); !strings.Contains(got, "aborted by admin") {
		t.Errorf("reason shown %q", got)
	}
	if got := s.slotDeployment("orders", hotswap.ProductionSlot); got != prod {
		t.Errorf("production serves %s after the abort, want %s", got, prod)
	}
	if got := s.slotDeployment("orders", "staging"); got != staged {
		t.Errorf("staging serves %s after the abort, want %s", got, staged)
	}
}
