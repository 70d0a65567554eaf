# tunplan build, test and lab targets. `make test` installs what it needs (apt packages, Debian's
SHELL := bash
# kernel for the lab) when missing, so it passes on a fresh Debian machine as root.
GO      ?= go
HELPER  := cmd/tunplan/helperbin/bin
LDFLAGS := -s -w
export CGO_ENABLED := 0

.PHONY: all build helper tunplan deps test unit labtest lab demo bench vet clean

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
	$(GO) build -trimpath -o bin/tunplan ./cmd/tunplan

deps:
	bash testinfra/deps.sh

vet: helper
	$(GO) vet ./...

# Unit tests (no kernel needed), then every lab test on a real kernel under qemu, one VM at a time.
test: deps vet
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /testinfra/)
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 30s -fuzzminimizetime 5s ./plans/
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 15s -fuzzminimizetime 5s ./cmd/tunplan-helper/
	$(GO) test -count=1 -p 1 -timeout 40m -v ./testinfra/...

unit: helper
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /testinfra/)

labtest: deps helper
	$(GO) test -count=1 -p 1 -timeout 40m -v ./testinfra/...

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
	rm -rf bin $(HELPER)/tunplan-helper-*
