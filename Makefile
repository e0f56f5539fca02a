# sitevault — two commands set everything up on a fresh machine:
#   make demo   the main job on embedded defaults
#   make test   installs what the tests need, then runs every test
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
GO ?= go
BIN := $(CURDIR)/bin/sitevault

.PHONY: all build test test-quick demo bench deps clean fmt vet

all: build

build:
	$(GO) build -o $(BIN) ./cmd/sitevault

deps:
	scripts/deps.sh test

# Every test, against real servers the tests start themselves.
# SITEVAULT_REQUIRE_SERVERS makes a missing server a failure, never a skip.
test: deps
	$(GO) vet ./...
	SITEVAULT_REQUIRE_SERVERS=1 $(GO) test -timeout 40m -count=1 ./...

# Unit tests only, no servers (see README).
test-quick:
	$(GO) test -short ./...

demo: build
	scripts/deps.sh demo
	scripts/demo.sh

bench: build
	scripts/deps.sh bench
	bench/run.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin .demo
