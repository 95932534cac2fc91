package ops

import (
	"testing"

	"github.com/hotswap/hotswap/internal/funcapp"
)

// AzureWebJobs.<name>.Disabled matches the function's name ignoring case,
// as Azure's app settings and the queue/blob listeners do: the HTTP route,
// the timer and the functions API see the same function disabled.
func TestDisabledIgnoresCase(t *testing.T) {
	pkg := &funcapp.App{Functions: []*funcapp.Function{{Name: "work"}, {Name: "Other"}}}
	for _, tc := range []struct {
		setting, value string
		want           map[string]bool
	}{
		{"AzureWebJobs.Work.Disabled", "true", map[string]bool{"work": true}},
		{"AzureWebJobs.work.Disabled", "1", map[string]bool{"work": true}},
		{"AzureWebJobs.OTHER.Disabled", "True", map[string]bool{"Other": true}},
		{"AzureWebJobs.Work.Disabled", "false", map[string]bool{}},
	} {
		got := disabled(setting(tc.setting, tc.value), pkg)
		for _, f := range pkg.Functions {
			if got[f.Name] != tc.want[f.Name] {
				t.Errorf("%s=%s: %s disabled = %v, want %v", tc.setting, tc.value, f.Name, got[f.Name], tc.want[f.Name])
			}
		}
	}
}
