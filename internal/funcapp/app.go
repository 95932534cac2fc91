package funcapp

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"

	"github.com/hotswap/hotswap"
)

// App is a validated function app package.
type App struct {
	Host      *Host
	Functions []*Function // sorted by name
}

// Function returns the function called name, compared case-insensitively as
// on Azure, or nil.
func (a *App) Function(name string) *Function {
	for _, f := range a.Functions {
		if strings.EqualFold(f.Name, name) {
			return f
		}
	}
	return nil
}

// Load reads and validates the function app package in dir: dir/host.json
// and every dir/<name>/function.json one level deep (folders without
// function.json are ignored). The executable named by host.json must be a
// regular file in the package, under the working directory or the root and
// not escaping it, or, for a bare command name such as "node", be on PATH.
// No two runnable HTTP functions may serve the same route shape with
// overlapping methods. Validation errors are *hotswap.Error of kind Invalid
// naming the file at fault; failing to read dir is returned as is, wrapped.
func Load(dir string) (*App, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("load function app %s: %w", dir, err)
	}
	defer root.Close()
	fsys := root.FS()

	data, err := readFile(fsys, "host.json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, missingHost(fsys)
	}
	if err != nil {
		return nil, err
	}
	host, err := ParseHost(data)
	if err != nil {
		return nil, err
	}
	if err := checkExecutable(root, host); err != nil {
		return nil, err
	}

	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("load function app %s: %w", dir, err)
	}
	app := &App{Host: host}
	for _, e := range entries {
		name := e.Name()
		file := name + "/function.json"
		if fi, err := fs.Stat(fsys, name); err != nil || !fi.IsDir() {
			continue
		}
		data, err := readFile(fsys, file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		f, err := ParseFunction(name, data)
		if err != nil {
			return nil, err
		}
		if prev := app.Function(name); prev != nil {
			return nil, hotswap.Errorf(hotswap.Invalid, "%s: function names %q and %q differ only in case", file, prev.Name, name)
		}
		app.Functions = append(app.Functions, f)
	}
	slices.SortFunc(app.Functions, func(a, b *Function) int { return strings.Compare(a.Name, b.Name) })
	if _, err := NewRouter(host.RoutePrefix, app.Functions); err != nil {
		return nil, err
	}
	return app, nil
}

// missingHost is the error for a package without host.json at its root.
// A zip of the app's folder itself ("Compress" in Explorer or Finder) has
// the app one folder down: it says so, and what to do.
func missingHost(fsys fs.FS) error {
	entries, _ := fs.ReadDir(fsys, ".")
	var dirs []string
	for _, e := range entries {
		name := e.Name()
		if name == "__MACOSX" || strings.HasPrefix(name, ".") {
			continue // what Finder and the shell add
		}
		if !e.IsDir() {
			return hotswap.Errorf(hotswap.Invalid, "host.json is missing")
		}
		dirs = append(dirs, name)
	}
	if len(dirs) == 1 {
		if fi, err := fs.Stat(fsys, dirs[0]+"/host.json"); err == nil && fi.Mode().IsRegular() {
			return hotswap.Errorf(hotswap.Invalid, "host.json is missing at the root; the zip contains folder %s/ — zip its contents instead", dirs[0])
		}
	}
	return hotswap.Errorf(hotswap.Invalid, "host.json is missing")
}

// readFile reads a package file, bounded in size. It returns fs.ErrNotExist
// itself for a missing file.
func readFile(fsys fs.FS, name string) ([]byte, error) {
	fi, err := fs.Stat(fsys, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fs.ErrNotExist
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", name, err)
	case !fi.Mode().IsRegular():
		return nil, hotswap.Errorf(hotswap.Invalid, "%s is not a regular file", name)
	case fi.Size() > maxFileSize:
		return nil, hotswap.Errorf(hotswap.Invalid, "%s: file is larger than %d bytes", name, maxFileSize)
	}
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

func checkExecutable(root *os.Root, h *Host) error {
	const field = "host.json: customHandler.description"
	if h.WorkingDirectory != "" {
		fi, err := root.Stat(h.WorkingDirectory)
		if err != nil || !fi.IsDir() {
			return hotswap.Errorf(hotswap.Invalid, "%s.workingDirectory %q is not a directory in the package", field, h.WorkingDirectory)
		}
	}
	for _, p := range executableCandidates(h) {
		// os.Root refuses paths and symbolic links that leave the package.
		fi, err := root.Stat(p)
		if err != nil {
			continue
		}
		if !fi.Mode().IsRegular() {
			return hotswap.Errorf(hotswap.Invalid, "%s.defaultExecutablePath %q: %s is not a regular file", field, h.ExecutablePath, p)
		}
		return nil
	}
	exe := h.ExecutablePath
	if !strings.ContainsAny(exe, `/\`) {
		if _, err := exec.LookPath(exe); err == nil {
			return nil
		}
		return hotswap.Errorf(hotswap.Invalid, "%s.defaultExecutablePath %q is neither a file in the package nor a command on PATH", field, exe)
	}
	where := "the app root"
	if h.WorkingDirectory != "" {
		where = fmt.Sprintf("the working directory %q or the app root", h.WorkingDirectory)
	}
	return hotswap.Errorf(hotswap.Invalid, "%s.defaultExecutablePath %q is not a file in the package (looked under %s)", field, exe, where)
}

// routeLabel renders a route with its prefix for messages: "api/items/{id}".
func routeLabel(prefix, template string) string {
	return path.Join(prefix, strings.TrimPrefix(template, "/"))
}
