# Handoff's two everyday commands are `make dev` and `make test`.
GO ?= go

.PHONY: dev test go-test e2e build delayline build-production vet bench bench-short fuzz chaos

# The Go runtime settings the service runs with (docker-compose.yml gives the
# api and worker the same): the scheduler trace's side effect, one line on
# stderr an hour, keeps sysmon from deep sleep and its 20 µs polling after
# each wake (README, "Deploying").
RUNTIME_ENV = GODEBUG=schedtrace=3600000

## dev: run all of Handoff in one process (embedded Temporal + UI, API, worker, media, demo data)
dev:
	$(RUNTIME_ENV) $(GO) run ./cmd/handoff dev

## test: the whole test suite: Go (needs PostgreSQL at 127.0.0.1:5432, or HANDOFF_TEST_POSTGRES)
## and the browser suite (needs Debian's chromium and Node.js; .ci/run installs what is missing)
test: vet go-test e2e

# One package at a time: the fault tests kill processes on timers, and another
# package's CREATE/DROP DATABASE forces PostgreSQL checkpoints that stalled
# their transactions for seconds (two CI failures); serially the suite takes
# about 10 minutes. The first line builds every test binary in parallel.
go-test:
	$(GO) test -count=1 -run '^$$' ./... > /dev/null
	$(GO) test -p 1 -count=1 -timeout 45m ./...

## e2e: the pages in headless Chromium against a real `handoff dev`; screenshots in artifacts/browser
e2e: build delayline web/e2e/node_modules/.installed
	cd web/e2e && HANDOFF_BIN=$(CURDIR)/bin/handoff HANDOFF_DELAYLINE=$(CURDIR)/bin/delayline npm test

# delayline: the browser tests' delay line (a weak link's 80 ms: the kernel
# here has no netem)
delayline:
	$(GO) build -o bin/delayline ./internal/testkit/netlab/cmd/delayline

web/e2e/node_modules/.installed: web/e2e/package.json web/e2e/package-lock.json
	cd web/e2e && npm ci --no-audit --no-fund
	touch $@

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

## build: the handoff binary with `handoff dev` (links the Temporal server)
build:
	$(GO) build -o bin/handoff ./cmd/handoff

## build-production: the binary of the Docker image, without the Temporal server
build-production:
	CGO_ENABLED=0 $(GO) build -tags production -trimpath -o bin/handoff-production ./cmd/handoff

## bench: every figure of BENCHMARKS.md, each beside its floor (about 30 minutes; profiles in artifacts/bench)
bench:
	$(RUNTIME_ENV) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 120m -v ./bench/
	$(GO) test -run '^$$' -bench 'BenchmarkConnectTime|BenchmarkTimeToAdapt' -benchtime 1x -v ./media/
	$(GO) test -run '^$$' -bench 'BenchmarkTopologyScaling|BenchmarkCrossNodeTransfer' -benchtime 1x -v ./cmd/handoff/
	$(MAKE) build web/e2e/node_modules/.installed && cd web/e2e && HANDOFF_BIN=$(CURDIR)/bin/handoff node connect-time.bench.mjs

## bench-short: the same figures from fewer samples, heavier ones on SQLite only (under 10 minutes)
bench-short:
	$(RUNTIME_ENV) HANDOFF_BENCH=short $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m -v ./bench/
	$(GO) test -run '^$$' -bench 'BenchmarkConnectTime|BenchmarkTimeToAdapt' -benchtime 1x -v ./media/
	$(GO) test -run '^$$' -bench 'BenchmarkTopologyScaling|BenchmarkCrossNodeTransfer' -benchtime 1x -v ./cmd/handoff/
	$(MAKE) build web/e2e/node_modules/.installed && cd web/e2e && HANDOFF_BIN=$(CURDIR)/bin/handoff HANDOFF_BENCH=short node connect-time.bench.mjs

## fuzz: each fuzz target for a while (make test runs only their seed corpora)
fuzz:
	for f in FuzzDecodeTransfer FuzzDecodeCheckIn FuzzDecodeLogin FuzzDecodeOpenApp; do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 60s ./api || exit 1; done
	$(GO) test -run '^$$' -fuzz '^FuzzParseMessage$$' -fuzztime 60s ./media

## chaos: the long forms of the fault tests (see RELIABILITY.md)
chaos:
	HANDOFF_CHAOS=long $(GO) test -count=1 -v -timeout 30m ./chaos/
	HANDOFF_CHAOS=long $(GO) test -count=1 -v -run RandomInterleavings ./api/
