# Inventory change-event pipeline. `make help` lists the targets.
GO        ?= go
BIN       := bin
PKGS      := ./...
PROTO     := $(wildcard proto/inventory/v1/*.proto)
TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: help demo run up test test-short proto lint fmt vet tidy vuln build deps \
        bench bench-core bench-emulator bench-stream bench-nightly clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

demo: ## run the whole system locally on the sample data, end to end, then stop
	$(GO) run ./cmd/inventory demo

run: demo ## the main job locally (same as demo)

up: ## run the local stack until Ctrl-C (emulator, streaming job, trigger, cron)
	$(GO) run ./cmd/inventory up

test: ## run every test (needs protoc: make deps)
	$(GO) test $(TEST_FLAGS) $(PKGS)

test-short: ## quick tests only
	$(GO) test -short -count=1 $(PKGS)

CMDS := ./cmd/inventory ./cmd/stream ./cmd/nightly ./cmd/trigger

build: ## build the binaries into bin/ (the images build the same commands, see deploy/README.md)
	$(GO) build -o $(BIN)/ $(CMDS)

deps: ## install what a fresh Debian machine lacks (protoc)
	@command -v protoc >/dev/null || { apt-get update -qq && apt-get install -y -qq protobuf-compiler; }

proto: $(PROTO) ## regenerate the Go code of the contracts
	$(GO) build -o $(BIN)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	protoc --plugin=protoc-gen-go=$(BIN)/protoc-gen-go --go_out=. --go_opt=paths=source_relative $(PROTO)

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

lint: vet ## gofmt, go vet and go mod tidy must be clean
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@cp go.mod /tmp/go.mod.lint && cp go.sum /tmp/go.sum.lint && $(GO) mod tidy && \
	  if ! cmp -s go.mod /tmp/go.mod.lint || ! cmp -s go.sum /tmp/go.sum.lint; then echo "go mod tidy changed go.mod/go.sum"; exit 1; fi

vet: ## go vet
	$(GO) vet $(PKGS)

tidy: ## go mod tidy
	$(GO) mod tidy

VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
vuln: ## govulncheck against a vulnerability DB built from golang.org/x/vulndb (no network to vuln.go.dev needed; heavy: ~8 GB, ~15 min)
	$(GO) mod download golang.org/x/vulndb@$(VULNDB_VERSION)
	rm -rf $(BIN)/vulndb && GOFLAGS=-mod=mod $(GO) run golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION) \
	  -vulns $$($(GO) env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv -out $(CURDIR)/$(BIN)/vulndb
	$(GO) run golang.org/x/vuln/cmd/govulncheck@v1.9.0 -db file://$(CURDIR)/$(BIN)/vulndb ./...

bench: bench-core bench-emulator bench-stream bench-nightly bench-restore ## every benchmark

bench-core: ## per-event core: decode, validate, dedup, stock
	$(GO) test -run XXX -bench . -benchmem ./internal/event ./internal/ledger

bench-emulator: ## local Pub/Sub vs pstest: 100k published, drained by Receive and by Pull
	$(GO) run ./internal/pubsubemu/cmd/emubench

bench-stream: ## streaming job on Prism vs a plain Go consumer
	$(GO) run ./pipelines/stream/cmd/streambench

bench-restore: ## the stream's restore at start: 100k stored adjustments replayed into ledgers
	$(GO) test -run '^$$' -bench BenchmarkRestore -benchtime 3x ./transforms

bench-nightly: ## nightly job on 1M events vs DuckDB
	$(GO) run ./pipelines/nightly/cmd/nightlybench

clean: ## remove build output and local data
	rm -rf $(BIN) warehouse reports-out
