SHELL := /bin/bash
# buildgate: one GNU Makefile, sources found by wildcard so a new file in
# gateway/, policy/ or proto/ needs no edit here.
#
#   make            build ./buildgate
#   make unit       build and run the cmocka unit tests
#   make fuzz       build the libFuzzer targets and run each for FUZZ_SECONDS
#   make interop    real client -> buildgate -> real dockerd (needs root)
#   make test       all of the above (what tests/run.sh runs after installing deps)
#   make asan       unit + interop with AddressSanitizer/LeakSanitizer
#   make bench      benchmarks (tests/bench)

CC       ?= cc
PKGS     := libevent libevent_openssl libnghttp2 libprotobuf-c jansson openssl libseccomp
CPPFLAGS += -I. -Ibuild/gen -D_GNU_SOURCE
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra -Wshadow -Wno-unused-parameter -Wno-missing-field-initializers \
            -fno-strict-aliasing $(shell pkg-config --cflags $(PKGS))
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -lz
B        ?= build
BIN      ?= buildgate

PROTOS    := $(wildcard proto/*.proto)
PROTO_C   := $(patsubst proto/%.proto,build/gen/proto/%.pb-c.c,$(PROTOS))
PROTO_H   := $(PROTO_C:.c=.h)
LIB_SRC   := $(wildcard policy/*.c proto/*.c) $(filter-out gateway/main.c,$(wildcard gateway/*.c))
LIB_OBJ   := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRC)) $(patsubst build/gen/%.c,$(B)/obj/gen/%.o,$(PROTO_C))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(B)/unit/%,$(UNIT_SRC))
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
FUZZ_SECONDS ?= 20

.PHONY: all unit fuzz interop test asan bench clean buildgate-asan
.SECONDARY:

all: $(BIN)

# Generated protobuf-c code lives in build/gen so the tree holds only our own .proto files.
build/gen/proto/%.pb-c.c build/gen/proto/%.pb-c.h: proto/%.proto
	@mkdir -p build/gen
	protoc-c --proto_path=. --c_out=build/gen $<

$(B)/obj/gen/%.o: build/gen/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-unused -c -o $@ $<

$(B)/obj/%.o: %.c $(PROTO_H) $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/libbuildgate.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(B)/obj/gateway/main.o $(B)/libbuildgate.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/unit/%: tests/unit/%.c $(B)/libbuildgate.a $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(B)/libbuildgate.a $(LDLIBS) $(shell pkg-config --libs cmocka)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; (cd tests/unit && ../../$$t); done

# libFuzzer targets are built with clang against the library sources compiled
# with the same instrumentation; each runs on its seed corpus for FUZZ_SECONDS.
FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
build/fuzz/obj/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 $(shell pkg-config --cflags $(PKGS)) $(FUZZ_CFLAGS) -c -o $@ $<
build/fuzz/obj/gen/%.o: build/gen/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=c11 $(FUZZ_CFLAGS) -c -o $@ $<
FUZZ_LIB_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRC)) $(patsubst build/gen/%.c,build/fuzz/obj/gen/%.o,$(PROTO_C))
build/fuzz/libbuildgate.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
build/fuzz/%: tests/fuzz/%.c build/fuzz/libbuildgate.a
	clang $(CPPFLAGS) -std=c11 $(shell pkg-config --cflags $(PKGS)) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); \
	  mkdir -p build/fuzz/corpus/$$n; \
	  echo "== $$n ($(FUZZ_SECONDS)s)"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	      build/fuzz/corpus/$$n tests/fuzz/seeds/$$n 2>&1 | tail -n 12; \
	  test $${PIPESTATUS[0]} -eq 0; done

interop: buildgate
	tests/interop/run.sh

test: unit fuzz interop

# ASan/LSan build of the daemon and the unit tests, then the same suites.
ASAN_MAKE := $(MAKE) B=build/asan BIN=build/asan/buildgate CC=clang \
	CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	LDFLAGS="-fsanitize=address,undefined"
buildgate-asan:
	$(ASAN_MAKE) build/asan/buildgate
asan: buildgate-asan
	$(ASAN_MAKE) unit
	BUILDGATE_BIN=$(CURDIR)/build/asan/buildgate tests/interop/run.sh

bench: buildgate
	tests/bench/run.sh

clean:
	rm -rf build buildgate
