# The two commands of the quick start are `make run` and `make test`.
GO ?= go
# With no tag, the version is "dev" and the commit says which build it is.
VERSION ?= $(shell git describe --tags 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: run test check build bench load fuzz

## run: start the service in development mode against the local PostgreSQL.
## The built binary runs in the foreground (exec), so Ctrl-C and a SIGTERM
## reach the server itself and it drains as in production.
run: build
	./scripts/ensure-postgres.sh
	exec ./bin/server

## test: every test, against the real PostgreSQL, with the race detector;
## then the offline checks of the images' build contexts and of the
## Kubernetes manifests (modules of their own)
test:
	./scripts/test-deps.sh
	E2E_REQUIRED=1 $(GO) test -race -count=1 -timeout 30m ./...
	cd deploy/image/check && $(GO) test -count=1 ./...
	cd deploy/k8s/check && $(GO) test -count=1 ./...

## check: formatting and vet, as CI runs them
check:
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./... ./testdata/barelive
	cd deploy/image/check && $(GO) vet ./...
	cd deploy/k8s/check && $(GO) vet ./...
	@! git ls-files --eol | grep 'i/-text' || { echo "binary files are tracked (see above); build outputs belong in .gitignore"; exit 1; }

## build: the binary exactly as the Dockerfile builds it
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/server .

## bench: the Go benchmarks, with allocations, then the ratios against their
## baselines from the same run (BENCH=regexp to run some)
bench:
	./scripts/bench.sh

## load: wrk against a local server (see scripts/load.sh)
load:
	./scripts/load.sh

## fuzz: each fuzz target in turn for FUZZTIME (default 1m)
FUZZTIME ?= 1m
fuzz:
	for f in $$($(GO) test -list '^Fuzz' . | grep '^Fuzz'); do \
		$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) . || exit 1; \
	done
