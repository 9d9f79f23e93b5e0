# normlab — plain Makefile. `make` builds bin/normlab (and, later, bin/normlabd); `make test` runs
# every test, each in its own process with a timeout; `make asan` runs the same tests under
# AddressSanitizer + UBSan. The engine compiles twice: float for use, double (-DNL_DOUBLE) for the
# finite-difference gradient checks.

CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2
WARN    := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror
BLAS_INC := -I/usr/include/x86_64-linux-gnu/openblas-pthread
CPPFLAGS := -D_POSIX_C_SOURCE=200809L -Iengine $(BLAS_INC)
CFLAGS  ?= $(OPT) -g $(WARN)
SAN     ?=
LDLIBS  := -lcjson -lopenblas -lm -lpthread

ENGINE_SRC := $(wildcard engine/*.c)
ENGINE32 := $(patsubst %.c,$(BUILD)/f32/%.o,$(ENGINE_SRC))
ENGINE64 := $(patsubst %.c,$(BUILD)/f64/%.o,$(ENGINE_SRC))
LIB32 := $(BUILD)/libnlengine.a
LIB64 := $(BUILD)/libnlengine64.a

TEST32_SRC := $(wildcard tests/unit/test_*.c)
TEST64_SRC := $(wildcard tests/unit/f64_*.c)
TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST32_SRC) $(TEST64_SRC))

BINS := bin/normlab

.PHONY: all test asan ubsan bench data deps clean check-banned run
all: $(BINS) data

$(BUILD)/f32/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) -MMD -MP -c $< -o $@

$(BUILD)/f64/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DNL_DOUBLE $(CFLAGS) $(SAN) -MMD -MP -c $< -o $@

$(LIB32): $(ENGINE32)
	@rm -f $@
	ar rcs $@ $^

$(LIB64): $(ENGINE64)
	@rm -f $@
	ar rcs $@ $^

bin/normlab: $(BUILD)/f32/engine/cli/normlab.o $(LIB32)
	@mkdir -p bin
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: $(BUILD)/f32/tests/unit/test_%.o $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/f64_%: $(BUILD)/f64/tests/unit/f64_%.o $(LIB64)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

# The default corpus: the King James Bible as Debian's bible-kjv prints it.
data: var/data/kjv.txt
var/data/kjv.txt:
	@mkdir -p var/data
	@command -v bible >/dev/null || { echo "bible not found: run 'make deps' (needs bible-kjv)"; exit 1; }
	bible "Gen1:1-Rev22:21" > $@.tmp && mv $@.tmp $@

# Debian packages the build, the tests and the daemon need.
DEPS := gcc make pkg-config libopenblas-dev libcjson-dev libmicrohttpd-dev libuv1-dev \
	libsqlite3-dev sqlite3 bible-kjv curl
deps:
	@if dpkg -s $(DEPS) >/dev/null 2>&1; then echo "deps: all installed"; else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(DEPS); fi

check-banned:
	@! grep -nE '\b(sprintf|strcpy|strcat|strtok|atoi|gets)\s*\(' $$(find engine server store tests bench -name '*.c' -o -name '*.h') \
	  || { echo "banned function used (see STYLE.md)"; exit 1; }

test: check-banned $(BINS) $(TESTS) data
	@BUILD=$(BUILD) bash tests/run.sh

asan:
	$(MAKE) BUILD=build/asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  NORMLAB_SAN=1 test

ubsan:
	$(MAKE) BUILD=build/ubsan OPT=-O1 SAN="-fsanitize=undefined -fno-sanitize-recover=undefined" test

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
