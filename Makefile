# tunplan build, test and lab targets. `make test` installs what it needs (apt packages, Debian's
SHELL := bash
# kernel for the lab) when missing, so it passes on a fresh Debian machine as root.
GO      ?= go
HELPER  := cmd/tunplan/helperbin/bin
LDFLAGS := -s -w
export CGO_ENABLED := 0

# What `tunplan version` reports: the tag (or commit) of this checkout, its commit, the build time.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
CLI     := github.com/tunplan/tunplan/cmd/tunplan/cli
CLIFLAGS := -s -w -X $(CLI).Version=$(VERSION) -X $(CLI).Commit=$(COMMIT) -X $(CLI).Date=$(DATE)
# The operator's machines the CLI is released for; the helper is Linux-only (amd64, arm64).
TARGETS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
PREFIX  ?= /usr/local

.PHONY: all build helper tunplan install release release-check tidy-check deps test unit labtest vagrant-test lab demo bench vet clean

all: build

build: tunplan

# Each helper is embedded gzip-compressed (uploaded so, unpacked on the host) with its SHA-256.
helper:
	for arch in amd64 arm64; do \
		h=$(HELPER)/tunplan-helper-linux-$$arch; \
		GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$h ./cmd/tunplan-helper && \
		sha256sum $$h | cut -d' ' -f1 > $$h.sha256 && gzip -9 -n -f $$h || exit 1; \
	done

tunplan: helper
	$(GO) build -trimpath -ldflags '$(CLIFLAGS)' -o bin/tunplan ./cmd/tunplan

install: tunplan
	install -D -m 0755 bin/tunplan $(DESTDIR)$(PREFIX)/bin/tunplan

# One archive per target in dist/ (tunplan, README, LICENSE-less for now), each CLI with both
# helpers embedded, and SHA256SUMS.
release: helper
	rm -rf dist && mkdir -p dist
	set -e; for t in $(TARGETS); do \
		os=$${t%/*}; arch=$${t#*/}; name=tunplan_$(VERSION)_$${os}_$${arch}; exe=tunplan; \
		[ $$os = windows ] && exe=tunplan.exe; \
		mkdir -p dist/$$name; \
		GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(CLIFLAGS)' -o dist/$$name/$$exe ./cmd/tunplan; \
		cp README.md dist/$$name/; \
		tar -C dist -czf dist/$$name.tar.gz $$name; rm -rf dist/$$name; \
	done
	cd dist && sha256sum *.tar.gz > SHA256SUMS

# The archive for this machine unpacks to a tunplan that reports this version and both helpers.
release-check: release
	set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	tar -C "$$d" -xzf dist/tunplan_$(VERSION)_linux_$$($(GO) env GOARCH).tar.gz; \
	out=$$("$$d"/tunplan_*/tunplan version); echo "$$out"; \
	echo "$$out" | grep -q '^tunplan $(VERSION) (commit ' && \
	echo "$$out" | grep -q '^helper linux/amd64 sha256:' && echo "$$out" | grep -q '^helper linux/arm64 sha256:' || \
	{ echo "release-check: unexpected tunplan version output" >&2; exit 1; }
	cd dist && sha256sum -c --quiet SHA256SUMS

# go.mod and go.sum must be what `go mod tidy` makes of them.
tidy-check:
	$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy" >&2; exit 1; }

deps:
	bash testinfra/deps.sh

# The CLI's packages are vetted for macOS and Windows too (the helper's are Linux-only).
vet: helper
	$(GO) vet ./...
	for os in darwin windows; do \
		GOOS=$$os $(GO) vet $$(GOOS=$$os $(GO) list -deps -test -f '{{if not .ForTest}}{{.ImportPath}}{{end}}' ./cmd/tunplan/... | grep '^github.com/tunplan/tunplan/' | grep -v '\.test$$') || exit 1; \
	done

# Unit tests (no kernel needed), then every lab test on a real kernel under qemu, one VM at a time.
test: deps tidy-check vet release-check
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /testinfra/)
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 30s -fuzzminimizetime 5s ./plans/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 15s -fuzzminimizetime 5s ./cmd/tunplan-helper/
	$(GO) test -count=1 -p 1 -timeout 40m -v ./testinfra/...

unit: helper
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /testinfra/)

labtest: deps helper
	$(GO) test -count=1 -p 1 -timeout 40m -v ./testinfra/...

# The Vagrant lab for real: build (or reuse) the box, vagrant-libvirt up of testinfra/Vagrantfile under
# qemu without KVM, tunplan apply, traffic checks, reboots (`make test` runs it with ./testinfra/...).
vagrant-test: deps
	$(GO) test -count=1 -timeout 40m -v ./testinfra/vagrant/

# Boot the lab, run the hand-written baseline, print what the client saw and the capture summary.
lab: deps
	$(GO) run ./testinfra/lab/cmd/lab

# The main job: build tunplan, boot the lab and let tunplan apply examples/two-region to it.
demo: deps tunplan
	$(GO) run ./testinfra/lab/cmd/lab -tunplan $(CURDIR)/bin/tunplan

# Benchmarks inside the lab VM against ipvsadm-restore, keepalived and Ansible; writes
# testinfra/bench/results.{json,md}. BENCH_ARGS='-runs 5 -only ipvs' narrows or deepens a run.
bench: deps helper
	$(GO) build -o bin/bench ./testinfra/bench
	bin/bench $(BENCH_ARGS)

clean:
	rm -rf bin dist $(HELPER)/tunplan-helper-*
