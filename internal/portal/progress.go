package portal

import (
	"context"
	"net/http"
	"time"

	"github.com/hotswap/hotswap/internal/ops"
)

// operationRecent is how long the app and slot pages still show an
// operation after it ended, so a viewer polling every 2s sees how it ended.
const operationRecent = time.Minute

// statusWithOperation is a page's live status with the app's operation
// that runs (or just ended): every viewer of the app sees its phases, not
// only the one who started it (portal.js shows it in a live region).
type statusWithOperation struct {
	statusJSON
	Operation *ops.OperationProgress `json:"operation,omitempty"`
}

// withOperation adds the app's operation to the status h answers; on a
// slot's page, only an operation that changes that slot.
func (p *Portal) withOperation(h func(r *http.Request) (any, error)) func(r *http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		v, err := h(r)
		st, ok := v.(statusJSON)
		if err != nil || !ok {
			return v, err
		}
		return statusWithOperation{statusJSON: st, Operation: p.operation(r.Context(), r.PathValue("app"), r.PathValue("slot"))}, nil
	}
}

func (p *Portal) operation(ctx context.Context, app, slot string) *ops.OperationProgress {
	op, ok := p.cfg.Ops.Progress(ctx, app, operationRecent)
	if !ok || (slot != "" && op.Slot != slot && !(op.Kind == "swap" && op.Target == slot)) {
		return nil
	}
	return &op
}
