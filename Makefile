# The two commands of the quick start are `make run` and `make test`.
GO ?= go
VERSION ?= $(shell git describe --tags --always 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: run test check build bench load

## run: start the service in development mode against the local PostgreSQL
run:
	./scripts/ensure-postgres.sh
	$(GO) run -ldflags "$(LDFLAGS)" .

## test: every test, against the real PostgreSQL, with the race detector
test:
	./scripts/test-deps.sh
	E2E_REQUIRED=1 $(GO) test -race -count=1 -timeout 30m ./...

## check: formatting and vet, as CI runs them
check:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

## build: the binary exactly as the Dockerfile builds it
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/server .

## bench: the Go benchmarks, with allocations
bench:
	./scripts/ensure-postgres.sh
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

## load: wrk against a local server (see scripts/load.sh)
load:
	./scripts/load.sh
