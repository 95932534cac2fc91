# hotswap: build, test, fuzz and benchmark.
GO ?= go
FUZZTIME ?= 10s

.PHONY: build run test deps vet fuzz bench

build:
	$(GO) build -o bin/hotswap ./cmd/hotswap

run: build
	./bin/hotswap serve

# deps installs what the tests need on a fresh Debian machine: Node.js for the
# Node example, Chromium for the portal's browser tests. Go modules come from
# the module proxy.
deps:
	@missing=""; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
	$(GO) mod download

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

# test runs every test (with the race detector), then each fuzz target briefly.
test: deps vet
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz
	$(GO) run ./bench -smoke

fuzz:
	@set -e; for pkg in ./internal/funcapp ./internal/artifact ./internal/pipeline ./internal/router; do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

bench:
	$(GO) run ./bench
