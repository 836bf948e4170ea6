# Inventory change-event pipeline. `make help` lists the targets.

# Every go command here runs on Go 1.27.3, which the go command fetches once
# from the module proxy (~76 MB): go1.26.8 has standard-library
# vulnerabilities fixed in go1.26.9/go1.26.10 that govulncheck reports. go.mod
# still says go 1.26.0, so plain `go` commands on 1.26 work too; override with
# `make GOTOOLCHAIN=local ...`.
export GOTOOLCHAIN := go1.27.3

GO        ?= go
BIN       := bin
PKGS      := ./...
PROTO     := $(wildcard proto/inventory/v1/*.proto)
TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: help demo run up test test-year-ahead test-short test-browser deploy-check game-day proto lint fmt vet tidy vuln vuln-db build deps \
        bench bench-core bench-emulator bench-stream bench-stream-keys bench-stream-hotkey bench-stream-latency bench-nightly soak bench-plots clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

# Build first, then run: the first build compiles Beam and DuckDB for minutes
# and `go run` would print nothing meanwhile.
demo: ## run the whole system locally on the sample data, end to end, then stop
	@echo "building $(BIN)/inventory (the first build compiles Beam and DuckDB: 3-4 minutes on 2 cores; later ones take seconds) ..."
	@$(GO) build -o $(BIN)/inventory ./cmd/inventory
	$(BIN)/inventory demo

run: demo ## the main job locally (same as demo)

up: ## run the local stack until Ctrl-C (emulator, streaming job, trigger, cron)
	$(GO) run ./cmd/inventory up

test: ## run every test
	$(GO) test $(TEST_FLAGS) $(PKGS)

# No test may depend on today's date: the same suite with the clock a year
# ahead (internal/clock) finds a fixture whose fixed date will age out.
test-year-ahead: ## every test with the clock a year ahead (INVENTORY_CLOCK_SHIFT=8760h)
	INVENTORY_CLOCK_SHIFT=8760h $(GO) test $(TEST_FLAGS) $(PKGS)

# The browser tier: the operations page of a real `inventory up` in headless
# Chromium from the OS packages (apt-get install -y chromium; $$CHROMIUM
# names another binary). Without Chromium it skips, or fails when CI=true.
# OPSPAGE_SCREENSHOTS=docs/img saves the page at 1280 and 390 px wide.
test-browser: ## the operations page in headless Chromium (needs chromium)
	$(GO) test -tags browser $(TEST_FLAGS) -run 'InBrowser' ./internal/app/cli/

test-short: ## the unit tier: skips tests that run Prism jobs, child processes or long timers (internal/testkit/slowtest)
	$(GO) test -short -count=1 $(PKGS)

CMDS := ./cmd/inventory ./cmd/stream ./cmd/nightly ./cmd/trigger

deploy-check: ## rehearse the production launch offline: static builds, Dataflow launches against fake APIs, trigger, deploy/ checks
	$(GO) run ./cmd/tools/deploycheck

# A production fortnight, offline: the deploy files' configuration, the jobs
# on Prism against local stand-ins of Pub/Sub, BigQuery, GCS, Dataflow and
# Google's ID tokens (cmd/tools/gameday). One line per day, then a summary.
game-day: ## play a production fortnight offline with the configuration as deployed (cmd/tools/gameday)
	$(GO) run ./cmd/tools/gameday

build: ## build the binaries into bin/ (the images build the same commands, see deploy/README.md)
	$(GO) build -o $(BIN)/ $(CMDS)

deps: ## download what the build needs (Go 1.27.3, the modules) ahead, e.g. before going offline; nothing else to install
	$(GO) mod download

# Pure Go (protocompile + the protoc-gen-go pinned in go.mod), byte-identical
# to protoc + protoc-gen-go: see proto/codegen.
proto: $(PROTO) ## regenerate the Go code of the contracts
	$(GO) run ./cmd/tools/protogen $(PROTO)

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

lint: vet ## gofmt, go vet and go mod tidy must be clean
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@cp go.mod /tmp/go.mod.lint && cp go.sum /tmp/go.sum.lint && $(GO) mod tidy && \
	  if ! cmp -s go.mod /tmp/go.mod.lint || ! cmp -s go.sum /tmp/go.sum.lint; then echo "go mod tidy changed go.mod/go.sum"; exit 1; fi

vet: ## go vet, the browser tier's build-tagged files included
	$(GO) vet $(PKGS)
	$(GO) vet -tags browser ./internal/app/cli/

tidy: ## go mod tidy
	$(GO) mod tidy

# Vulnerability check, offline: the OSV files of a pinned golang.org/x/vulndb
# (a module like any other, so the module proxy serves it) become a small
# database of the entries that affect our build list, stdlib and toolchain
# (cmd/tools/mkvulndb, about a second), which govulncheck reads with -db file://.
# The database is only as new as VULNDB_VERSION: to refresh it, see
# docs/security.md. VULN_SCAN=symbol gives call traces: ~1 min and 2 GB while the
# package scan is clean, ~23 min and 9 GB when it is not (call graph of Beam).
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
GOVULNCHECK    := golang.org/x/vuln/cmd/govulncheck@v1.9.0
VULNDB         := $(BIN)/vulndb
VULN_SCAN      ?= package

vuln-db: ## build the vulnerability DB bin/vulndb from the pinned golang.org/x/vulndb, for the build list
	$(GO) mod download golang.org/x/vulndb@$(VULNDB_VERSION)
	@mkdir -p $(BIN)
	$(GO) list -m all > $(BIN)/vulndb-modules.txt
	$(GO) run ./cmd/tools/mkvulndb -modules $(BIN)/vulndb-modules.txt \
	  -osv "$$($(GO) env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv" -out $(VULNDB)

vuln: vuln-db ## govulncheck (package level, tests included) against bin/vulndb; fails on findings
	$(GO) run $(GOVULNCHECK) -db file://$(CURDIR)/$(VULNDB) -scan $(VULN_SCAN) -test ./...

bench: bench-core bench-emulator bench-stream bench-stream-hotkey bench-nightly bench-restore ## every benchmark

bench-core: ## per-event core: decode, validate, dedup, stock
	$(GO) test -run XXX -bench . -benchmem ./internal/event ./internal/ledger

bench-emulator: ## local Pub/Sub vs pstest: 100k published, drained by Receive and by Pull
	$(GO) run ./cmd/tools/emubench

bench-stream: ## streaming job on Prism vs a plain Go consumer
	$(GO) run ./cmd/tools/streambench

bench-restore: ## the stream's restore at start: 100k stored adjustments replayed into ledgers
	$(GO) test -run '^$$' -bench BenchmarkRestore -benchtime 3x ./transforms/stock

bench-nightly: ## nightly job on 1M events vs DuckDB
	$(GO) run ./cmd/tools/nightlybench

# Not part of `make bench`: it takes --duration (30 minutes) plus the build.
# Event time runs 4000x (--time_scale), so the 8-day dedup horizon is reached
# at minute 2.9 and memory is at its steady state well before minute 5.
SOAK_CSV   ?= soak.csv
SOAK_FLAGS ?=
soak: ## inventory up fed 2,000 ev/s for 30 min: RSS and goroutines sampled to $(SOAK_CSV), every event checked (SOAK_FLAGS="--duration 2m --rate 500")
	$(GO) run ./cmd/tools/soak --out $(SOAK_CSV) --time_scale 4000 $(SOAK_FLAGS)

# The key-count series behind docs/benchmarks.md and its plot: 1k keys
# (with the latency phase), 10k, 100k (200k events) and 1M keys touched once
# each (1M events, --spread), appended to $(STREAM_CSV).
bench-stream-keys: ## streambench at 1k, 10k, 100k and 1M keys, appended to $(STREAM_CSV)
	$(GO) build -o $(BIN)/streambench ./cmd/tools/streambench
	$(BIN)/streambench --results $(STREAM_CSV)
	$(BIN)/streambench --latency_for=0 --skus 200 --locations 50 --results $(STREAM_CSV)
	$(BIN)/streambench --latency_for=0 --skus 1000 --locations 100 --events 200000 --results $(STREAM_CSV)
	$(BIN)/streambench --latency_for=0 --skus 1000 --locations 1000 --events 1000000 --spread --results $(STREAM_CSV)

# A hot key against the same events over 1,000 keys, in both state layouts
# (shards on Prism, per key as on Dataflow), on Prism: events/s and bytes of
# Beam state per event (transforms/stock BenchmarkHotKey).
HOTKEY_CSV ?= hotkey-results.csv
bench-stream-hotkey: ## one key vs 1,000 keys taking 100k events over 7 days, both state layouts, appended to $(HOTKEY_CSV)
	$(GO) test -run '^$$' -bench BenchmarkHotKey -benchtime 1x ./transforms/stock -args -hotkey_results=$(abspath $(HOTKEY_CSV))

# Publish-to-alert latency at 20,000 events/s: the job against its floor
# (the job's stages with none of its work, cmd/tools/streambench/floor.go),
# alternated three times in one sitting; docs/benchmarks.md, "The floor at
# 20,000 events/s", says what the two tell apart.
LATENCY_RATE ?= 20000
bench-stream-latency: ## the job against its floor at 20,000 events/s, alternated 3 times: p50/p99 publish-to-alert
	$(GO) build -o $(BIN)/streambench ./cmd/tools/streambench
	for i in 1 2 3; do \
	  $(BIN)/streambench --skip_baseline --events 20000 --rate $(LATENCY_RATE) --latency_for 15s || exit 1; \
	  $(BIN)/streambench --skip_baseline --floor --events 20000 --rate $(LATENCY_RATE) --latency_for 15s || exit 1; \
	done

# The CSVs are what the benchmarks wrote: streambench --results $(STREAM_CSV)
# and `make soak`; a missing one skips its plot.
STREAM_CSV ?= stream-results.csv
bench-plots: ## render docs/img/stream-keys.svg and docs/img/soak-rss.svg from $(STREAM_CSV) and $(SOAK_CSV)
	$(GO) run ./cmd/tools/benchplot --outdir docs/img \
	  $(if $(wildcard $(STREAM_CSV)),--stream $(STREAM_CSV)) $(if $(wildcard $(SOAK_CSV)),--soak $(SOAK_CSV))

clean: ## remove build output and local data
	rm -rf $(BIN) warehouse reports-out
