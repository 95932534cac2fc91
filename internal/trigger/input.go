package trigger

import (
	"github.com/hotswap/hotswap/internal/binding"
	"github.com/hotswap/hotswap/internal/funcapp"
)

// checkInputs returns why fn's blob inputs cannot be read with the app
// settings (a connection or %setting% missing), or nil.
func checkInputs(fn *funcapp.Function, settings map[string]string) error {
	return binding.CheckInputs(fn, settings)
}
