# resil-init — see README.md. `make`, `make test`, `make static`, `make demo`.
CC      ?= cc
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

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

.PHONY: all static test unit integration test-static test-asan demo install lint format bench clean examples \
        fuzz fuzz-build fuzz-run soak

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
fuzz:
	$(MAKE) FUZZ=1 fuzz-run

fuzz-build:
	$(MAKE) FUZZ=1 $(FUZZ_BINS)

fuzz-run: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do sh tests/fuzz/run.sh $$t $(FUZZ_SECONDS); done

# The static musl binary: the same steps as the Dockerfile's build stage.
static: build/resil-init-static

build/resil-init-static: $(SRCS) $(wildcard include/resil/*.h) scripts/build-static.sh
	sh scripts/build-static.sh

# The init-core and supervision suites against the static binary.
test-static: build/resil-init-static examples
	RESIL_INIT_BIN=$(abspath build/resil-init-static) RESIL_EXAMPLES=$(abspath build/examples) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

demo: $(BIN) examples
	$(PYTHON) examples/demo.py

bench: $(BIN) build/resil-init-static examples
	sh bench/run.sh

# 10,000 restarts and 100,000 health checks, descriptors and RSS checked flat
# (not part of `make test`; about 10 minutes on 2 busy cores).
soak: $(BIN) examples
	RESIL_INIT_BIN=$(abspath $(BIN)) $(PYTHON) bench/soak.py $(SOAK_ARGS)

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
