# Handoff's two everyday commands are `make dev` and `make test`.
GO ?= go

.PHONY: dev test build build-production vet bench

## dev: run all of Handoff in one process (embedded Temporal + UI, API, worker, media, demo data)
dev:
	$(GO) run ./cmd/handoff dev

## test: the whole test suite (needs PostgreSQL at 127.0.0.1:5432, or HANDOFF_TEST_POSTGRES)
test: vet
	$(GO) test -count=1 -timeout 45m ./...

vet:
	$(GO) vet ./...

## build: the handoff binary with `handoff dev` (links the Temporal server)
build:
	$(GO) build -o bin/handoff ./cmd/handoff

## build-production: the binary of the Docker image, without the Temporal server
build-production:
	CGO_ENABLED=0 $(GO) build -tags production -trimpath -o bin/handoff-production ./cmd/handoff

## bench: latency of a transfer beside a bare Temporal update on the same server (see BENCHMARKS.md)
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench/
