# guard: build, demo, test, bench. `make demo` and `make test` are the two
# commands README.md promises work on a fresh machine.

GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

# Debian packages the tests drive as real peers.
TEST_DEBS := util-linux bsdutils procps prometheus prometheus-node-exporter python3-yaml systemd wget file dash iproute2 python3 prometheus-pushgateway moreutils

.PHONY: all build demo test deps check bench clean

all: build

# guard, and guard-etcd from its own module (etcd/): the plain binary never
# links etcd's client.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/guard ./cmd/guard
	cd etcd && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o ../$(BIN)/guard-etcd ./cmd/guard-etcd

demo: build
	./scripts/demo.sh $(BIN)/guard

# deps installs the peers the tests need, when they are missing.
deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	$(GO) mod download
	cd etcd && $(GO) mod download

check:
	test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	cd etcd && $(GO) vet ./...

test: deps check
	$(GO) test -race -count=1 -timeout 20m ./...
	cd etcd && $(GO) test -race -count=1 -timeout 20m ./...

bench: build
	./scripts/bench.sh $(BIN)/guard

clean:
	rm -rf $(BIN)
