package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/ops"
	"github.com/hotswap/hotswap/internal/release"
)

// mayReadKeys reports whether who may read function keys: the roles that
// may list them (admin and deployer). Everyone else gets invoke URLs
// without their ?code=.
func mayReadKeys(who actor) bool { return allowed(who, deploy) }

// withoutKeys returns v with the keys cut from its functions' invoke URLs.
func withoutKeys(v ops.SlotView) ops.SlotView {
	fns := make([]ops.FunctionView, len(v.Functions))
	for i, f := range v.Functions {
		f.InvokeURL = stripCode(f.InvokeURL)
		fns[i] = f
	}
	if v.Functions != nil {
		v.Functions = fns
	}
	return v
}

// stripCode removes the query (which holds ?code=<key>) from an invoke URL.
func stripCode(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}

// force reads the ?force= parameter: true deploys, swaps, rolls back,
// completes or cancels a swap preview, changes settings or deletes past a
// release's hold on the slot, abandoning that release.
func force(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("force")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, hotswap.Errorf(hotswap.Invalid, "force must be true or false, not %q", v)
	}
	return b, nil
}

// mayReadWebhooks reports whether who sees pipelines' webhook URLs whole:
// they usually carry a secret, so only admins do.
func mayReadWebhooks(who actor) bool { return who.Role == "admin" }

func redactPipeline(who actor, p hotswap.Pipeline) hotswap.Pipeline {
	if !mayReadWebhooks(who) {
		p.Definition = release.RedactDefinition(p.Definition)
	}
	return p
}

func redactRelease(who actor, r *release.Release) *release.Release {
	if r != nil && !mayReadWebhooks(who) {
		r.Definition = release.RedactDefinition(r.Definition)
	}
	return r
}
