package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// nginxWorkers is nginx's worker_processes. "auto" starts one worker per
// core (2 here): hotswap's Go runtime may use every core (GOMAXPROCS = 2),
// so a single-worker nginx would be held to half the CPU hotswap may take
// and the throughput comparison would flatter hotswap.
const nginxWorkers = "auto"

// nginxConf is nginx in front of the direct handler, tuned the way a proxy
// for a trivial backend is run in production: upstream keep-alive, no access
// log, keep-alive with clients that does not end after 1000 requests (the
// default, which would make the load generator reconnect), and buffers large
// enough that a 64 KiB body never goes to a temp file (hotswap never touches
// the disk either). Every path is in the temp directory, so it runs as root
// without touching /etc or /var.
const nginxConf = `worker_processes %[1]s;
daemon off;
master_process on;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
%[5]s
events {
	worker_connections 4096;
}

http {
	access_log off;
	client_body_temp_path %[2]s/client_body;
	proxy_temp_path %[2]s/proxy;
%[6]s
	client_body_buffer_size 128k;
	client_max_body_size 1m;
	proxy_buffer_size 16k;
	proxy_buffers 8 16k;
	keepalive_timeout 120s;
	keepalive_requests 100000000;

	upstream handler {
		server %[3]s;
		keepalive 64;
		keepalive_requests 100000000;
	}

	server {
		listen %[4]s;
		location / {
			proxy_pass http://handler;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
`

// startNginx starts nginx in front of the direct handler, installing it
// from the distribution's packages where missing. It never fails the run:
// without nginx it returns "" and the reason, which the report prints.
func (e *env) startNginx(ctx context.Context, logf func(string, ...any)) (addr, note string) {
	bin, err := findNginx(ctx, logf)
	if err != nil {
		logf("NOTE: no nginx, its column is skipped: %v", err)
		return "", "nginx not measured: " + err.Error()
	}
	version, _ := exec.CommandContext(ctx, bin, "-v").CombinedOutput()
	build, _ := exec.CommandContext(ctx, bin, "-V").CombinedOutput()

	dir := filepath.Join(e.tmp, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "nginx not measured: " + err.Error()
	}
	listen, err := freePort()
	if err != nil {
		return "", "nginx not measured: " + err.Error()
	}
	// Workers of a root master run as "nobody" unless told otherwise and
	// could not write to the private temp directory.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	// Temp paths only for the modules this build has, or the directive is
	// unknown; a module that is built in but left at its default would
	// create its directory under /var.
	var extra strings.Builder
	for _, m := range []string{"fastcgi", "uwsgi", "scgi"} {
		if bytes.Contains(build, []byte("--http-"+m+"-temp-path")) && !bytes.Contains(build, []byte("--without-http_"+m+"_module")) {
			fmt.Fprintf(&extra, "\t%s_temp_path %s/%s;\n", m, dir, m)
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	text := fmt.Sprintf(nginxConf, nginxWorkers, dir, e.direct, listen, user, extra.String())
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return "", "nginx not measured: " + err.Error()
	}
	args := []string{"-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")}
	if out, err := exec.CommandContext(ctx, bin, append([]string{"-t", "-q"}, args...)...).CombinedOutput(); err != nil {
		logf("NOTE: nginx refused the config, its column is skipped: %v\n%s", err, out)
		return "", fmt.Sprintf("nginx not measured: it refused the config: %s", bytes.TrimSpace(out))
	}
	if _, err := e.start("nginx", bin, dir, nil, args...); err != nil {
		return "", "nginx not measured: " + err.Error()
	}
	if err := waitHTTP(ctx, "http://"+listen+"/api/small", "", ""); err != nil {
		logf("NOTE: nginx does not answer, its column is skipped: %v", err)
		return "", "nginx not measured: it did not answer: " + err.Error()
	}
	return listen, fmt.Sprintf("%s (`%s`), worker_processes %s (one per core, as hotswap may use every core), upstream keepalive 64, proxy_http_version 1.1, access_log off",
		strings.TrimSpace(strings.TrimPrefix(string(version), "nginx version: ")), bin, nginxWorkers)
}

// findNginx returns nginx's path, installing nginx-light (or nginx) with
// apt-get when it is not on PATH. apt-get update runs only when an install
// fails, as the package lists may be stale.
func findNginx(ctx context.Context, logf func(string, ...any)) (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("nginx is not installed and there is no apt-get to install it")
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("nginx is not installed and installing it needs root")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	apt := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w: %s", strings.Join(args, " "), err, lastLines(out, 3))
		}
		return nil
	}
	install := func() error {
		var err error
		for _, pkg := range []string{"nginx-light", "nginx"} {
			if err = apt("install", "-y", "-q", "--no-install-recommends", pkg); err == nil {
				return nil
			}
		}
		return err
	}
	logf("installing nginx-light with apt-get")
	if err := install(); err != nil {
		logf("  %v; running apt-get update and trying again", err)
		if err := apt("update", "-q"); err != nil {
			return "", err
		}
		if err := install(); err != nil {
			return "", err
		}
	}
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if p, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("apt-get installed nginx but no nginx binary was found")
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}
