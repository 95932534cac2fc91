# hotswap: build, test, fuzz and benchmark.
GO ?= go
# Fuzz budgets are execution counts, not durations: a duration -fuzztime
# races Go's fuzzing coordinator at the deadline and can fail with a bare
# "context deadline exceeded" when nothing was found. Each count is about
# ten seconds of fuzzing per target on a 2-core machine; artifact's target
# does real file I/O (fsync) per exec, hence its small count. Minimizing a
# new input is bounded the same way so it cannot eat the budget.
FUZZ ?= .:100000 internal/funcapp:150000 internal/artifact:10000 internal/pipeline:200000 internal/router:150000 internal/portal:150000 internal/azstorage:80000 internal/invoke:150000 internal/cli:150000
FUZZMINIMIZE ?= 200x

.PHONY: build run test deps vet fuzz bench

build:
	$(GO) build -o bin/hotswap ./cmd/hotswap

run: build
	./bin/hotswap serve

# deps installs what the tests need on a fresh Debian machine: Node.js for the
# Node example and for Azurite, Chromium for the portal's browser tests,
# PostgreSQL's server programs for the PostgreSQL store and cluster tests
# (internal/pgtest runs initdb and postgres from /usr/lib/postgresql/*/bin in a
# temp folder; the package's own cluster is not used), HAProxy as the load
# balancer in front of several nodes in the cluster tests, curl, jq and zip
# for the README walkthrough (cmd/hotswap/readme_test.go runs it), and Azurite
# (Microsoft's Azure Storage emulator, pinned) into .deps/azurite for the queue
# and blob tests (internal/azurite finds it there). Go modules come from the
# module proxy.
AZURITE_VERSION ?= 3.37.0
deps:
	@missing=""; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium fonts-dejavu-core"; \
	{ command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 || missing="$$missing postgresql"; \
	{ command -v haproxy || test -x /usr/sbin/haproxy; } >/dev/null 2>&1 || missing="$$missing haproxy"; \
	for tool in curl jq zip; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
	@test -x .deps/azurite/node_modules/.bin/azurite || \
		npm install --prefix .deps/azurite --no-audit --no-fund azurite@$(AZURITE_VERSION)
	$(GO) mod download

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

# test runs every test (with the race detector), then each fuzz target briefly.
# End-to-end tests mostly wait on handler processes, so four run at once on
# two cores (cmd/hotswap: about 270 s instead of 690 s serially).
test: deps vet
	$(GO) test -race -count=1 -parallel 4 -timeout 30m ./...
	$(MAKE) fuzz
	$(GO) run ./bench -smoke

fuzz:
	@set -e; for spec in $(FUZZ); do \
		pkg=./$${spec%%:*}; n=$${spec##*:}; \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$target ($${n} execs)"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $${n}x -fuzzminimizetime $(FUZZMINIMIZE) $$pkg; \
		done; \
	done

bench:
	$(GO) run ./bench
