# hearth — one entry point for build, test, bench, package and run.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X github.com/guardianai/hearth/daemon.Version=$(VERSION)
RUN_DIR   ?= $(CURDIR)/.run
CMDS      := hearthd hearth-central hearth-load

.PHONY: build test race lint bench run package package-check cross-test clean fuzz

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

## test: everything CI checks — formatting, vet, and all tests with the race detector.
test: lint
	$(GO) test -race -count=1 -timeout 15m ./...

race:
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fuzz: run each decoder fuzzer for FUZZTIME (default 30s); every Fuzz
## function of the repository is listed here (fuzz_targets_test.go checks).
FUZZTIME ?= 30s
FUZZERS = \
	.:FuzzCheck .:FuzzOnePassCheck .:FuzzSplitObject .:FuzzAppendLocation \
	.:FuzzParseFloat .:FuzzJSONString \
	./ingest/:FuzzDecodeFrame ./ingest/:FuzzDecodeFrameFast ./ingest/:FuzzDecodeBody \
	./central/:FuzzDecodeBatch ./central/:FuzzScanBatch ./central/:FuzzEdgeAckedCentralKeeps \
	./outbox/:FuzzDecodeRecord ./outbox/:FuzzFragment
fuzz:
	@set -e; for f in $(FUZZERS); do \
		echo "== $${f#*:} ($${f%%:*})"; \
		$(GO) test -run x -fuzz "^$${f#*:}\$$" -fuzztime $(FUZZTIME) $${f%%:*}; \
	done

## bench: Go benchmarks plus the load scenarios of bench/RESULTS.md.
bench: build
	bench/run.sh

## run: central on SQLite plus an edge, ready for phones (Ctrl-C stops both).
run: build
	@mkdir -p $(RUN_DIR)
	scripts/run.sh $(RUN_DIR)

## package: hearth and hearth-central .deb and .rpm for amd64, arm64 and armhf
## (armv7), and hearth .ipk for OpenWrt (mipsel, mips, arm, aarch64) into
## dist/; see packaging/README.md.
## nfpm is built once from tools/go.mod unless NFPM names one.
NFPM      ?=
package: build
	GO='$(GO)' NFPM='$(NFPM)' VERSION='$(VERSION)' HOST_BIN='$(BIN)' packaging/package.sh

## package-check: lintian, rpm -qp, the OpenWrt .ipk contents and an
## install/upgrade/remove/purge cycle of the amd64 .debs on this machine
## (root; packaging/check.sh).
package-check: package
	packaging/check.sh

## cross-test: the domain, ingest, outbox, forwarder and daemon tests on
## arm64, armv7, mipsle and mips under qemu-user, and the kill -9 crash test against
## an armv7 hearthd (scripts/cross-test.sh; CROSS_ARCHES=armv7 for one).
CROSS_ARCHES ?= arm64 armv7 mipsle mips
cross-test:
	GO='$(GO)' scripts/cross-test.sh $(CROSS_ARCHES)

clean:
	rm -rf $(BIN) dist .run
