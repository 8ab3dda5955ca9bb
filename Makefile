# convergo — see README.md. Targets run from a fresh Debian 12 machine with Go;
# `make test` installs the system packages the tests need when run as root.
SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
VERSION ?= $(shell git describe --dirty --always 2>/dev/null || echo dev)
STATICCHECK_VERSION ?= 2026.2.2
FUZZTIME ?= 30s
CONFIG ?=
# Debian packages the tests use: redis-server (store tests, with redis-cli for
# the cluster), sip-tester (SIPp scenarios), baresip-core (SRTP softphone
# calls through the relay).
APT_PACKAGES := redis-server sip-tester baresip-core

.PHONY: build run test deps bench bench-sip bench-media fuzz lint tidy-check sipp clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o bin/convergo ./cmd/convergo

# Direct mode, embedded store in ./data, SIP on 127.0.0.1:5060 (UDP+TCP), HTTP on 127.0.0.1:8080.
run: build
	./bin/convergo serve $(if $(CONFIG),-config $(CONFIG))

# Installs what the tests need and is missing (apt-get, as root only).
deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null || missing="$$missing redis-server"; \
	command -v sipp >/dev/null || missing="$$missing sip-tester"; \
	command -v baresip >/dev/null || missing="$$missing baresip-core"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing:$$missing (run make test as root, or apt-get install them)"; \
	  fi; \
	fi

# Zero-allocation tests also run without -race: the race detector makes sync.Pool drop items.
test: deps
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'Allocs' ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

# go test -fuzz takes one target per package, so loop over them all.
fuzz:
	@for p in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
	    echo "fuzz $$p $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
	  done; \
	done

lint:
	$(GO) vet ./...
	@test -x $(GOBIN)/staticcheck && $(GOBIN)/staticcheck -version | grep -q '$(STATICCHECK_VERSION)' || \
	  $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

tidy-check:
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum

# Starts a server with testdata/sipp/convergo.yaml and runs every SIPp scenario against it.
sipp: deps build
	./testdata/sipp/run.sh

# Call setups/s to a two-device callee at increasing rates (RATES="…", SECONDS_PER_STEP=10):
# prints failures, server CPU per call and RSS per step, then the highest clean rate.
# TARGET=kamailio runs the same steps against Kamailio (installed by hand: apt-get install kamailio).
bench-sip: deps build
	./testdata/sipp/bench.sh

# Media relay load: the relay's in-process forwarding benchmarks, then CALLS (default 1000)
# G.711 calls through a server (testdata/mediaload) for SECONDS (default 20) of media,
# plain RTP then SRTP<->RTP bridging: packets/s, loss, server CPU per packet, RSS.
bench-media: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./media/...
	CALLS=$(or $(CALLS),1000) MEDIA_SECONDS=$(or $(SECONDS),20) GO=$(GO) ./testdata/mediaload/bench.sh

clean:
	rm -rf bin
