package funcapp

import "testing"

// TestLoadZippedFolder checks the hint for a package made by zipping the
// app's folder itself, as "Compress" in Explorer or Finder does.
func TestLoadZippedFolder(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"folder", map[string]string{"orders/host.json": hostHandler, "orders/handler": "x"},
			"host.json is missing at the root; the zip contains folder orders/ — zip its contents instead"},
		{"finder", map[string]string{"orders/host.json": hostHandler, "orders/handler": "x", "__MACOSX/orders/._host.json": "", ".DS_Store": ""},
			"host.json is missing at the root; the zip contains folder orders/ — zip its contents instead"},
		{"two folders", map[string]string{"a/host.json": hostHandler, "b/host.json": hostHandler}, "host.json is missing"},
		{"folder without host.json", map[string]string{"orders/handler": "x"}, "host.json is missing"},
		{"files beside", map[string]string{"orders/host.json": hostHandler, "readme.txt": "x"}, "host.json is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app, err := Load(writeApp(t, tc.files))
			checkInvalid(t, err, tc.want)
			if app != nil {
				t.Errorf("app = %+v, want nil", app)
			}
		})
	}
}
