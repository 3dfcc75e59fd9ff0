# resil-init — see README.md. `make`, `make test`, `make static`, `make demo`.
CC      ?= cc
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

# The static binary's architecture (Debian's names): this machine's by default
# (make's own MAKE_HOST, e.g. x86_64-pc-linux-gnu: no process to ask).
ARCH    ?= $(firstword $(subst -, ,$(MAKE_HOST)))
override ARCH := $(patsubst x86_64,amd64,$(patsubst aarch64,arm64,$(ARCH)))
static_bin = build/resil-init-static$(if $(filter amd64,$(1)),,-$(1))

# --- packages ----------------------------------------------------------------
# Before anything below asks pkg-config or the compiler, scripts/deps.sh makes
# sure the Debian packages the goals need are there: it installs the missing
# ones as root, otherwise it names the command to run and make stops. One
# dpkg-query when all is present; sub-makes skip what was checked already.
# RESIL_SKIP_DEPS=1 skips it (e.g. not Debian, packages installed by hand).
DEPS_all          := build
DEPS_test         := test
DEPS_unit         := test
DEPS_integration  := test
DEPS_test-asan    := test
DEPS_demo         := demo
DEPS_lint         := lint
DEPS_fuzz         := fuzz
DEPS_fuzz-build   := fuzz
DEPS_fuzz-run     := fuzz
DEPS_soak         := test
DEPS_format       := lint
DEPS_static       := static-$(ARCH)
DEPS_test-static  := static-amd64 test
DEPS_test-arm64   := test-arm64
DEPS_bench        := bench
DEPS_dist         := static-amd64 static-arm64
NO_DEPS_GOALS     := clean deps-check
DEPS_TARGETS := $(sort $(foreach g,$(or $(MAKECMDGOALS),all),\
  $(if $(filter $(g),$(NO_DEPS_GOALS)),,$(or $(DEPS_$(g)),build))))
DEPS_TODO := $(filter-out $(RESIL_DEPS_DONE),$(DEPS_TARGETS))
ifneq ($(RESIL_SKIP_DEPS),1)
ifneq ($(DEPS_TODO),)
# its output goes to the terminal; its last words (stderr) become make's error
DEPS_ERROR := $(shell sh scripts/deps.sh $(if $(findstring n,$(firstword -$(MAKEFLAGS))),--dry-run) \
  $(DEPS_TODO) 3>&1 1>&2 2>&3)
ifneq ($(.SHELLSTATUS),0)
$(error $(or $(DEPS_ERROR),scripts/deps.sh $(DEPS_TODO) failed))
endif
endif
endif
export RESIL_DEPS_DONE := $(sort $(RESIL_DEPS_DONE) $(DEPS_TARGETS))

PKGS        := libcurl libcjson
PKG_CFLAGS  := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -lcjson)

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) -Iinclude $(PKG_CFLAGS) -DRESIL_VERSION='"$(VERSION)"'
LDLIBS  := $(PKG_LIBS)

SRCS      := $(wildcard src/*.c)
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
EXAMPLE_SRCS := $(wildcard examples/*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
# Harnesses of parsers that come with branch sockets are built once their
# module is in the tree.
FUZZ_NEEDS_fuzz_listen_addr := include/resil/listen.h include/resil/metrics_http.h
FUZZ_NEEDS_fuzz_metrics_request := include/resil/metrics_http.h
FUZZ_NEEDS_fuzz_control_request := include/resil/control.h
FUZZ_TARGETS := $(foreach t,$(FUZZ_SRCS:tests/fuzz/%.c=%),$(if $(filter-out $(wildcard \
                  $(FUZZ_NEEDS_$(t))),$(FUZZ_NEEDS_$(t))),,$(t)))

# Each flavour builds into its own directory: plain, with sanitizers (SAN=1),
# or instrumented for libFuzzer with clang (FUZZ=1, see `make fuzz`).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
ifeq ($(SAN),1)
  BUILD      := build/asan
  ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS    += -fsanitize=address,undefined
else ifeq ($(FUZZ),1)
  CC         := $(FUZZ_CC)
  BUILD      := build/fuzz
  ALL_CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=all
else
  BUILD      := build
endif

BIN       := $(BUILD)/resil-init
LIB_OBJS  := $(LIB_SRCS:src/%.c=$(BUILD)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)
FUZZ_BINS := $(FUZZ_TARGETS:%=build/fuzz/bin/%)

.PHONY: all static test unit integration test-static test-arm64 test-asan demo install lint format bench \
  clean examples dist deps-check fuzz fuzz-build fuzz-run soak

all: $(BIN) examples

examples: $(EXAMPLE_BINS)

$(BUILD)/obj/%.o: src/%.c $(wildcard include/resil/*.h) | $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BIN): $(BUILD)/obj/main.o $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(LIB_OBJS) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS) -lcmocka

$(BUILD)/examples/%: examples/%.c | $(BUILD)/examples
	$(CC) -std=gnu11 $(WARN) $(CFLAGS) $(LDFLAGS) -o $@ $<

build/fuzz/bin/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(LIB_OBJS) | build/fuzz/bin
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_OBJS) $(LDLIBS)

$(BUILD)/obj $(BUILD)/tests $(BUILD)/examples build/fuzz/bin:
	mkdir -p $@

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: $(BIN) examples
	RESIL_INIT_BIN=$(abspath $(BIN)) RESIL_EXAMPLES=$(abspath $(BUILD)/examples) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

test: unit integration

# The sanitizer build runs the same unit and integration suites.
test-asan:
	$(MAKE) SAN=1 test

# libFuzzer harnesses (tests/fuzz/fuzz_*.c) over every parser of outside input,
# each run for FUZZ_SECONDS from its seeds in tests/fuzz/corpus/; any crash,
# leak, undefined behaviour or slow input (over 10 s) fails the target.
# FUZZ_JOBS harnesses run side by side (CI: 2, so eleven take six minutes).
FUZZ_JOBS ?= 1
fuzz:
	$(MAKE) FUZZ=1 fuzz-build
	$(MAKE) FUZZ=1 -j$(FUZZ_JOBS) fuzz-run

fuzz-build:
	$(MAKE) FUZZ=1 $(FUZZ_BINS)

fuzz-run: $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-run-%: build/fuzz/bin/%
	@sh tests/fuzz/run.sh $* $(FUZZ_SECONDS)

# The static musl binary: the same steps as the Dockerfile's build stage.
# ARCH=arm64 builds build/resil-init-static-arm64 (cross-compiled on amd64).
static: $(call static_bin,$(ARCH))

build/resil-init-static build/resil-init-static-arm64: $(SRCS) $(wildcard include/resil/*.h) \
  scripts/build-static.sh
	sh scripts/build-static.sh --arch $(if $(findstring -arm64,$@),arm64,amd64)

# The init-core and supervision suites against the static binary.
test-static: build/resil-init-static examples
	RESIL_INIT_BIN=$(abspath build/resil-init-static) RESIL_EXAMPLES=$(abspath build/examples) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# resil-init under a real Docker engine: the Dockerfile built and its image run
# (as root; installs docker.io itself, ~10 minutes the first time). tests/docker/run.sh
.PHONY: test-docker
test-docker:
	bash tests/docker/run.sh

# The aarch64 binary under qemu-user: init-core and supervision suites, the demo.
test-arm64: build/resil-init-static-arm64 examples
	sh scripts/test-arm64.sh

# Release tarballs for each architecture, with the man page and SHA-256 sums.
dist: build/resil-init-static build/resil-init-static-arm64
	sh scripts/dist.sh build/resil-init-static build/resil-init-static-arm64

# What scripts/deps.sh would install for the goals given in DEPS (no install).
deps-check:
	sh scripts/deps.sh --dry-run $(or $(DEPS),build)

demo: $(BIN) examples
	$(PYTHON) examples/demo.py

bench: $(BIN) build/resil-init-static examples
	sh bench/run.sh

# 10,000 restarts and 100,000 health checks, descriptors and RSS checked flat
# (not part of `make test`; about 10 minutes on 2 busy cores).
soak: $(BIN) examples
	RESIL_INIT_BIN=$(abspath $(BIN)) $(PYTHON) bench/soak.py $(SOAK_ARGS)

# docker stop latency and start overhead under a real Docker engine: resil-init
# vs `docker run --init` vs no init (as root, like test-docker). bench/docker.sh
.PHONY: bench-docker
bench-docker:
	bash bench/docker.sh

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/resil-init
	install -D -m 0644 docs/resil-init.1 $(DESTDIR)$(PREFIX)/share/man/man1/resil-init.1

lint:
	clang-format --dry-run --Werror src/*.c include/resil/*.h tests/unit/*.c tests/unit/*.h examples/*.c \
	  tests/fuzz/*.c tests/fuzz/*.h
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -Iinclude src
	clang-tidy --quiet $(SRCS) -- -std=gnu11 -Iinclude $(PKG_CFLAGS) -DRESIL_VERSION='"lint"'

format:
	clang-format -i src/*.c include/resil/*.h tests/unit/*.c tests/unit/*.h examples/*.c \
	  tests/fuzz/*.c tests/fuzz/*.h

clean:
	rm -rf build

# resil-init's memory handling on a real cgroup v2 kernel: Debian's kernel under
# qemu, a busybox initramfs, a list of scenarios (tests/cgroup2/).
.PHONY: test-cgroup2
test-cgroup2: build/resil-init-static
	sh tests/cgroup2/run.sh
