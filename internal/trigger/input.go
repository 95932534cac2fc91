package trigger

import (
	"context"
	"encoding/json"

	"github.com/hotswap/hotswap/internal/binding"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// readInputs reads fn's blob input bindings into data (binding.ReadInputs),
// each at most blobMaxSize. vals are the trigger's bound names, for the
// path's expressions ({name}, {queueTrigger}, {id} of a JSON message...).
func readInputs(ctx context.Context, fn *funcapp.Function, settings, vals map[string]string, data map[string]json.RawMessage) error {
	return binding.ReadInputs(ctx, fn, settings, vals, blobMaxSize, data)
}

// checkInputs returns why fn's blob inputs cannot be read with the app
// settings (a connection or %setting% missing), or nil.
func checkInputs(fn *funcapp.Function, settings map[string]string) error {
	return binding.CheckInputs(fn, settings)
}
