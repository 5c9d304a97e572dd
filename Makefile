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
#   make install    binary, example policies, systemd unit, man pages
#                   (PREFIX=/usr/local, DESTDIR for staging; see "Installing")
#   make uninstall  the same files again, except /etc/buildgate/policy.json

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

.PHONY: all unit fuzz interop test asan bench clean buildgate-asan install uninstall FORCE
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

# `buildgate version` names the commit it was built from.  The header is
# rewritten only when the revision changes, so an unchanged tree rebuilds
# nothing; outside a git checkout the revision is "unknown".
GIT_REV := $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
build/gen/bg_revision.h: FORCE
	@mkdir -p build/gen
	@printf '#define BG_GIT_REVISION "%s"\n' '$(GIT_REV)' >$@.$$$$; \
	 if cmp -s $@.$$$$ $@; then rm -f $@.$$$$; else mv -f $@.$$$$ $@; fi
$(B)/obj/gateway/version.o build/fuzz/obj/gateway/version.o: build/gen/bg_revision.h

$(B)/libbuildgate.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(B)/obj/gateway/main.o $(B)/libbuildgate.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Every unit binary also links tests/unit/unit_env.c, which moves it into
# this tree's tests/unit before main(), so it finds its fixtures when run by
# hand from anywhere; BG_SRCDIR tells it where the tree is.
$(B)/unit/%: tests/unit/%.c tests/unit/unit_env.c $(B)/libbuildgate.a $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DBG_SRCDIR='"$(CURDIR)"' $(CFLAGS) -o $@ $< tests/unit/unit_env.c $(B)/libbuildgate.a \
	  $(LDLIBS) $(shell pkg-config --libs cmocka)

# The binaries run from the repository root, and one of them once more from
# /, so a test that depends on the working directory fails here.
UNIT_ELSEWHERE := $(B)/unit/test_policy_call
unit: $(UNIT_BIN)
	@python3 tests/check-includes.py
	@python3 tests/check-calls.py $(B)/obj
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done
	@echo "== $(UNIT_ELSEWHERE), run from /"; cd / && $(abspath $(UNIT_ELSEWHERE))

# libFuzzer targets are built with clang against the library sources compiled
# with the same instrumentation; each runs on its seed corpus for FUZZ_SECONDS.
FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
build/fuzz/obj/%.o: %.c $(PROTO_H) $(wildcard */*.h)
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

oracle: buildgate ; tests/oracle/run.sh

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

# ---- installing
# PREFIX holds the binary, man pages, docs and the systemd unit; the policy
# lives in SYSCONFDIR/buildgate (/etc/buildgate whatever PREFIX is, because the
# unit and the docs name it there).  An existing policy.json is never replaced:
# it is the operator's; the examples beside it are refreshed.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/buildgate
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
CONFDIR    := $(SYSCONFDIR)/buildgate
UNITS      := $(wildcard deploy/*.service)
EXAMPLES   := $(wildcard deploy/policies/*.json)

install: $(BIN)
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CONFDIR)/examples
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/buildgate
	install -m 0644 docs/man/buildgate.8 $(DESTDIR)$(MANDIR)/man8/buildgate.8
	install -m 0644 docs/man/buildgate-policy.5 $(DESTDIR)$(MANDIR)/man5/buildgate-policy.5
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 docs/audit.md $(DESTDIR)$(DOCDIR)/audit.md
	install -m 0644 deploy/policies/README.md $(DESTDIR)$(DOCDIR)/policy.md
	install -m 0644 $(EXAMPLES) $(DESTDIR)$(CONFDIR)/examples/
	@if [ -e $(DESTDIR)$(CONFDIR)/policy.json ]; then \
	  echo "keeping the existing $(DESTDIR)$(CONFDIR)/policy.json"; \
	else \
	  echo "install -m 0644 deploy/policies/default.json $(DESTDIR)$(CONFDIR)/policy.json"; \
	  install -m 0644 deploy/policies/default.json $(DESTDIR)$(CONFDIR)/policy.json; \
	fi
	@for u in $(UNITS); do \
	  echo "install $$u -> $(DESTDIR)$(UNITDIR)/$$(basename $$u) (paths: $(BINDIR), $(CONFDIR))"; \
	  sed -e 's|/usr/local/bin/buildgate|$(BINDIR)/buildgate|g' -e 's|/etc/buildgate/|$(CONFDIR)/|g' $$u \
	    >$(DESTDIR)$(UNITDIR)/$$(basename $$u) && chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u) || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/buildgate $(DESTDIR)$(MANDIR)/man8/buildgate.8 \
	  $(DESTDIR)$(MANDIR)/man5/buildgate-policy.5 $(addprefix $(DESTDIR)$(UNITDIR)/,$(notdir $(UNITS))) \
	  $(addprefix $(DESTDIR)$(CONFDIR)/examples/,$(notdir $(EXAMPLES)))
	rm -rf $(DESTDIR)$(DOCDIR)
	-rmdir $(DESTDIR)$(CONFDIR)/examples 2>/dev/null
	@echo "kept $(DESTDIR)$(CONFDIR)/policy.json (remove it by hand if it is no longer wanted)"

clean:
	rm -rf build buildgate
