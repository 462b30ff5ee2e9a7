# Sluice — make help lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := build/sluice
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS := ./...

.DEFAULT_GOAL := help

##@ Use

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*##"} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z_-]+:.*##/ {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build build/sluice
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sluice

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
check: ## gofmt, go vet, staticcheck, go mod tidy diff — fails on any finding
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool -modfile=tools/go.mod staticcheck $(PKGS)
	@cp go.mod /tmp/sluice.go.mod.bak; cp go.sum /tmp/sluice.go.sum.bak; \
	$(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then echo "go mod tidy changed go.mod/go.sum: commit the tidy result"; git diff -- go.mod go.sum | head -40; exit 1; fi

.PHONY: fuzz
fuzz: ## Fuzz the config decoder for 60s
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 60s ./internal/config

.PHONY: bench
bench: build ## Load benchmarks: stand-in direct, plain reverse proxy, sluice, sluice + 1/5/10 Wasm plugins (ratios)
	$(GO) run ./bench/cmd/benchrun -sluice $(BIN)

.PHONY: clean
clean: ## Remove build outputs
	rm -rf build
