# Sluice — make help lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := build/sluice
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS := ./...
# Built-in plugins: every plugins/<name> with a main.go, built for the Proxy-Wasm host.
PLUGIN_NAMES := $(patsubst plugins/%/main.go,%,$(wildcard plugins/*/main.go))
PLUGIN_JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.DEFAULT_GOAL := help

##@ Use

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*##"} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z_-]+:.*##/ {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build build/sluice
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sluice

.PHONY: plugins
plugins: ## Build every plugins/<name> to build/plugins/<name>.wasm (wasip1, in parallel; url: builtin://<name>)
	@mkdir -p build/plugins
	@$(if $(PLUGIN_NAMES),printf '%s\n' $(PLUGIN_NAMES) | xargs -P $(PLUGIN_JOBS) -I{} sh -c \
		'GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 $(GO) build -buildmode=c-shared -trimpath -ldflags="-s -w" -o build/plugins/{}.wasm ./plugins/{} && echo "built build/plugins/{}.wasm"',echo "no plugins/*/main.go")

.PHONY: run
run: build ## Run the gateway on examples/quickstart.yaml (offline, with the LLM stand-in)
	./scripts/quickstart.sh $(BIN)

##@ Test

.PHONY: deps
deps: ## Install what the tests need when missing (Debian packages)
	./scripts/test-deps.sh

.PHONY: test
test: deps ## Run the whole test suite (race detector on)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

.PHONY: check
check: ## gofmt, go vet, staticcheck, wasip1 build of every plugin, go mod tidy diff — fails on any finding
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool -modfile=tools/go.mod staticcheck $(PKGS)
	@$(MAKE) --no-print-directory plugins
	@cp go.mod /tmp/sluice.go.mod.bak; cp go.sum /tmp/sluice.go.sum.bak; \
	$(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then echo "go mod tidy changed go.mod/go.sum: commit the tidy result"; git diff -- go.mod go.sum | head -40; exit 1; fi

.PHONY: fuzz
fuzz: ## Fuzz the config decoder for 60s
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./internal/config

.PHONY: bench
bench: build plugins ## Load benchmarks: stand-in direct, plain reverse proxy, sluice, sluice + 1/5/10 no-op plugins, sluice + the six AI plugins (ratios)
	$(GO) run ./bench/cmd/benchrun -sluice $(BIN)

.PHONY: clean
clean: ## Remove build outputs
	rm -rf build
