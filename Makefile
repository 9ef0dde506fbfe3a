# refreshd — developer entry points. `make help` lists them.

GO      ?= go
BIN     ?= bin/refreshd
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: help build deb test test-short check install-stack install-demo-stack demo demo-down pristine fuzz bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build bin/refreshd
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/refreshd

deb: ## Debian package refreshd_VERSION_amd64.deb (scripts/build-deb.sh; version from git describe; DEB_OUT=dir)
	bash scripts/build-deb.sh $(DEB_OUT)

check: ## gofmt, go vet, staticcheck (make install-stack installs it) and go generate leaving no diff
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || { echo "staticcheck not found: make install-stack installs it"; exit 1; }
	staticcheck ./...
	@before=$$(git diff | sha256sum); $(GO) generate ./...; after=$$(git diff | sha256sum); \
	  if [ "$$before" != "$$after" ]; then echo "go generate changed files: commit what it wrote (git diff)"; exit 1; fi

test: install-stack check ## all tests: unit, integration and end-to-end on the real stack
	REFRESHD_REQUIRE_STACK=1 $(GO) test -count=1 -timeout 40m ./...

test-short: ## the fast tier: every test that needs no program from outside the tree (no stack)
	$(GO) test -short -count=1 ./...

install-stack: ## install the real stack and the test tooling (install-stack.sh test); seconds once built
	bash scripts/install-stack.sh test

install-demo-stack: ## install only what make demo runs on (buildkitd, buildx, registry, git, ...)
	bash scripts/install-stack.sh demo

demo: install-demo-stack build ## the main job: a real refresh of the sample project on a local stack
	bash scripts/demo.sh

pristine: ## the README's two commands on a fresh Debian 12 root under systemd-nspawn (as CI does)
	bash scripts/pristine.sh

fuzz: ## fuzz the plan loader for 2 minutes
	$(GO) test ./plan -run '^$$' -fuzz FuzzLoad -fuzztime 2m

bench: build ## benchmarks (numbers in docs/development.md)
	$(GO) test ./plan -run '^$$' -bench BenchmarkLoad -benchmem
	bash bench/overhead.sh
	bash bench/fanout.sh
	bash bench/parallel-platforms.sh
	bash bench/idle.sh
	bash bench/latency.sh

clean:
	rm -rf bin refreshd_*.deb
