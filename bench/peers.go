package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// The data-plane scenario (issue 14) puts HAProxy and Caddy in front of the
// direct handler beside nginx, each tuned the way it is run in production
// for a trivial backend: keep-alive to the upstream, every core used, no
// access log. Both run from Debian's packages; the full run installs what
// is missing with apt-get, as the bench does for nginx.

// haproxyConf is HAProxy in front of the direct handler: one thread per
// core (nbthread), upstream connections shared across clients and kept open
// (http-reuse always), client keep-alive long enough that the load
// generator never reconnects, no logging. HAProxy 2.6 would pick one thread
// per core by itself; the config says so explicitly.
const haproxyConf = `global
	nbthread %[1]d
	maxconn 8192
	pidfile %[2]s/haproxy.pid

defaults
	mode http
	option http-keep-alive
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	timeout http-request 10s
	timeout http-keep-alive 120s

frontend fe
	bind %[3]s
	default_backend be

backend be
	http-reuse always
	server handler %[4]s
`

// caddyfile is Caddy's reverse_proxy in front of the direct handler: plain
// HTTP on the loopback listener only (no automatic HTTPS, no certificates),
// the admin endpoint off (Caddy 2.6's `caddy run` still saves its
// config, under XDG_CONFIG_HOME in the temp directory), logging at ERROR (no access log), and upstream
// keep-alive with as many idle connections per host as the load generator
// has clients (Caddy's default keeps 32). buffer_requests reads a request
// body whole before it goes upstream, as nginx does by default: Caddy 2.6
// runs Go's HTTP/1.1 server without full duplex, which stops reading a
// request body once the response starts, so streaming the 64 KiB echo
// broke requests mid-body (EOF at the client, "use of closed network
// connection" in Caddy's log); a GET has no body to buffer. The site matches any Host header,
// since the load generator sends hotswap's (bench.localhost) to every peer.
const caddyfile = `{
	admin off
	auto_https off
	log {
		level ERROR
	}
}

http://:%[1]s {
	bind 127.0.0.1
	reverse_proxy %[2]s {
		buffer_requests
		transport http {
			keepalive 120s
			keepalive_idle_conns %[3]d
			keepalive_idle_conns_per_host %[3]d
		}
	}
}
`

// peer is a proxy in front of the direct handler: its listener and how it
// was set up, for the report.
type peer struct {
	addr string
	note string
	pid  int
}

// startHAProxy starts HAProxy in front of the direct handler. install says
// whether a missing haproxy may be installed with apt-get.
func (e *env) startHAProxy(ctx context.Context, install bool, logf func(string, ...any)) (peer, error) {
	bin, err := findOrInstall(ctx, install, "haproxy", "haproxy", logf)
	if err != nil {
		return peer{}, err
	}
	version, _ := exec.CommandContext(ctx, bin, "-v").CombinedOutput()
	dir := filepath.Join(e.tmp, "haproxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return peer{}, err
	}
	listen, err := freePort()
	if err != nil {
		return peer{}, err
	}
	threads := runtime.NumCPU()
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(haproxyConf, threads, dir, listen, e.direct)), 0o644); err != nil {
		return peer{}, err
	}
	if out, err := exec.CommandContext(ctx, bin, "-c", "-q", "-f", conf).CombinedOutput(); err != nil {
		return peer{}, fmt.Errorf("haproxy refused its config: %w: %s", err, strings.TrimSpace(string(out)))
	}
	pr, err := e.start("haproxy", bin, dir, nil, "-db", "-f", conf)
	if err != nil {
		return peer{}, err
	}
	if err := waitHTTP(ctx, "http://"+listen+"/api/small", "", ""); err != nil {
		return peer{}, fmt.Errorf("haproxy does not answer: %w", err)
	}
	v := firstLine(version)
	return peer{listen, fmt.Sprintf("%s (`%s`), nbthread %d (one per core), http-reuse always, client and server keep-alive, no logging", v, bin, threads), pr.cmd.Process.Pid}, nil
}

// startCaddy starts Caddy's reverse_proxy in front of the direct handler.
// install says whether a missing caddy may be installed with apt-get.
func (e *env) startCaddy(ctx context.Context, install bool, conns int, logf func(string, ...any)) (peer, error) {
	bin, err := findOrInstall(ctx, install, "caddy", "caddy", logf)
	if err != nil {
		return peer{}, err
	}
	version, _ := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	dir := filepath.Join(e.tmp, "caddy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return peer{}, err
	}
	listen, err := freePort()
	if err != nil {
		return peer{}, err
	}
	_, port, _ := strings.Cut(listen, "127.0.0.1:")
	conf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(caddyfile, port, e.direct, max(conns, 64))), 0o644); err != nil {
		return peer{}, err
	}
	// Caddy keeps its state under XDG_DATA_HOME and XDG_CONFIG_HOME (HOME
	// otherwise); keep it in the temp directory.
	envs := []string{"XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "HOME=" + dir}
	validate := exec.CommandContext(ctx, bin, "validate", "--adapter", "caddyfile", "--config", conf)
	validate.Env = append(os.Environ(), envs...)
	if out, err := validate.CombinedOutput(); err != nil {
		return peer{}, fmt.Errorf("caddy refused its config: %w: %s", err, lastLines(out, 3))
	}
	pr, err := e.start("caddy", bin, dir, envs, "run", "--adapter", "caddyfile", "--config", conf)
	if err != nil {
		return peer{}, err
	}
	if err := waitHTTP(ctx, "http://"+listen+"/api/small", "", ""); err != nil {
		return peer{}, fmt.Errorf("caddy does not answer: %w", err)
	}
	return peer{listen, fmt.Sprintf("Caddy %s (`%s`), reverse_proxy with upstream keep-alive (%d idle connections per host), buffer_requests (request bodies read whole first, as nginx does; streamed, Caddy 2.6 cut 64 KiB echoes short), GOMAXPROCS = cores, admin off, auto_https off, no access log",
		firstLine(version), bin, max(conns, 64)), pr.cmd.Process.Pid}, nil
}

// findOrInstall returns the path of bin, from PATH or /usr/sbin, installing
// Debian package pkg with apt-get when it is missing and install is set.
// apt-get update runs only when the install fails, as the package lists
// may be stale.
func findOrInstall(ctx context.Context, install bool, bin, pkg string, logf func(string, ...any)) (string, error) {
	find := func() string {
		if p, err := exec.LookPath(bin); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
			p := filepath.Join(dir, bin)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
		return ""
	}
	if p := find(); p != "" {
		return p, nil
	}
	if !install {
		return "", fmt.Errorf("%s is not installed", bin)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("%s is not installed and there is no apt-get to install it", bin)
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%s is not installed and installing it needs root", bin)
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
	logf("installing %s with apt-get", pkg)
	if err := apt("install", "-y", "-q", "--no-install-recommends", pkg); err != nil {
		logf("  %v; running apt-get update and trying again", err)
		if err := apt("update", "-q"); err != nil {
			return "", err
		}
		if err := apt("install", "-y", "-q", "--no-install-recommends", pkg); err != nil {
			return "", err
		}
	}
	if p := find(); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("apt-get installed %s but no %s binary was found", pkg, bin)
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(line)
}
