# sitevault — two commands set everything up on a fresh machine:
#   make demo   the main job on embedded defaults
#   make test   installs what the tests need, then runs every test
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
GO ?= go
BIN := $(CURDIR)/bin/sitevault

.PHONY: all build test test-quick demo demo-stop demo-engine bench deps clean fmt vet connector

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

# A real WordPress site on a private MariaDB, backed up, wrecked and restored.
demo: build
	scripts/deps.sh demo
	scripts/demo.sh

demo-stop:
	scripts/demo.sh stop

# The repository engine alone, on a generated folder.
demo-engine: build
	scripts/engine-demo.sh

# The WordPress plugin (connector/), as an installable zip for Plugins → Add New → Upload.
connector:
	php connector/build.php bin/sitevault-connector.zip

bench: build
	scripts/deps.sh bench
	bench/run.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	-[ -d .demo ] && scripts/demo.sh stop
	rm -rf bin .demo .demo-engine
