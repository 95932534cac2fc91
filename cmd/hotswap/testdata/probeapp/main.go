// Command probeapp is a test handler for hotswap's isolation tests: GET
// /api/probe tries what a hostile handler would (read the server's secrets,
// write its own or another app's package) and what any handler may (write
// in its home and temporary directory), and reports each outcome as "ok" or
// the error. The query parameter other names another app's package folder.
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	root := os.Getenv("FUNCTIONS_APP_ROOT_PATH") // <data>/packages/<digest>
	data := filepath.Dir(filepath.Dir(root))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("GET /api/probe", func(w http.ResponseWriter, r *http.Request) {
		res := map[string]string{}
		try := func(name string, err error) {
			if err != nil {
				res[name] = err.Error()
			} else {
				res[name] = "ok"
			}
		}
		read := func(p string) error { _, err := os.ReadFile(p); return err }
		write := func(p string) error { return os.WriteFile(p, []byte("probe"), 0o644) }
		try("read admin-token", read(filepath.Join(data, "admin-token")))
		try("read hotswap.db", read(filepath.Join(data, "hotswap.db")))
		try("read hotswap.db-wal", read(filepath.Join(data, "hotswap.db-wal")))
		try("read lock", read(filepath.Join(data, "lock")))
		try("list data", func() error { _, err := os.ReadDir(data); return err }())
		try("list packages", func() error { _, err := os.ReadDir(filepath.Dir(root)); return err }())
		try("write package", write(filepath.Join(root, "probe-written")))
		try("write package subfolder", write(filepath.Join(root, "probe", "probe-written")))
		try("change package file", func() error {
			f, err := os.OpenFile(filepath.Join(root, "host.json"), os.O_WRONLY|os.O_APPEND, 0)
			if err == nil {
				f.Close()
			}
			return err
		}())
		try("chmod package file", os.Chmod(filepath.Join(root, "host.json"), 0o666))
		try("write working directory", write("probe-cwd"))
		if other := r.URL.Query().Get("other"); other != "" {
			try("write other package", write(filepath.Join(other, "probe-written")))
			try("change other package file", os.Chmod(filepath.Join(other, "host.json"), 0o666))
		}
		try("write home", write(filepath.Join(os.Getenv("HOME"), "probe")))
		try("write tmpdir", func() error {
			f, err := os.CreateTemp("", "probe-*")
			if err == nil {
				f.Close()
			}
			return err
		}())
		wd, _ := os.Getwd()
		json.NewEncoder(w).Encode(map[string]any{
			"root": root, "wd": wd, "home": os.Getenv("HOME"), "tmpdir": os.TempDir(),
			"uid": strconv.Itoa(os.Getuid()), "results": res,
		})
	})
	http.ListenAndServe("127.0.0.1:"+os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT"), mux)
}
