# normlab — plain Makefile. `make` builds bin/normlab (and, later, bin/normlabd); `make test` runs
# every test, each in its own process with a timeout; `make asan` runs the same tests under
# AddressSanitizer + UBSan. The engine compiles twice: float for use, double (-DNL_DOUBLE) for the
# finite-difference gradient checks.

CC      ?= gcc
BUILD   ?= build
ARCH    ?= -march=native
OPT     ?= -O3 $(ARCH)
WARN    := -std=c11 -fopenmp-simd -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror
# -std=c11 turns off gcc's default a*b+c → fma contraction; the polynomial kernels (exp, tanh,
# erf, GELU) need it to use the FMA units. -fno-math-errno lets sqrt be one instruction (nothing
# here reads errno; with it, AdamW's loop ran scalar). Not -ffast-math: NaN, inf and the order
# of sums stay as written, so divergence is still detected and results are reproducible.
FP      := -ffp-contract=fast -fno-math-errno
BLAS_INC := -I/usr/include/x86_64-linux-gnu/openblas-pthread
CPPFLAGS := -D_POSIX_C_SOURCE=200809L -Iengine $(BLAS_INC)
CFLAGS  ?= $(OPT) $(FP) -g $(WARN)
SAN     ?=
LDLIBS  := -lcjson -lopenblas -lz -lm -lpthread

ENGINE_SRC := $(wildcard engine/*.c)
# The CLI: engine/cli/ plus the daemon's sweep expander, recipe checks and report builder (pure
# logic, no I/O), so `normlab sweep` and `normlab report` run a recipe without the daemon.
CLI_SRC := $(wildcard engine/cli/*.c) server/sweep.c server/recipe.c server/recipe_expr.c server/report.c server/report_figures.c
ENGINE32 := $(patsubst %.c,$(BUILD)/f32/%.o,$(ENGINE_SRC))
ENGINE64 := $(patsubst %.c,$(BUILD)/f64/%.o,$(ENGINE_SRC))
LIB32 := $(BUILD)/libnlengine.a
LIB64 := $(BUILD)/libnlengine64.a

TEST32_SRC := $(wildcard tests/unit/test_*.c)
TEST64_SRC := $(wildcard tests/unit/f64_*.c)
TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST32_SRC) $(TEST64_SRC))

BINDIR ?= bin
BINS := $(BINDIR)/normlab $(BINDIR)/normlabd

# An AddressSanitizer + UBSan build of the CLI: `make test` runs the bad-input cases through it.
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SAN_CLI := $(BUILD)/san/bin/normlab
SAN_OBJ := $(patsubst %.c,$(BUILD)/san/%.o,$(ENGINE_SRC) $(CLI_SRC))

.PHONY: all setup run web test test-run asan ubsan bench data deps clean check-banned
all: $(BINS) data web

# Set-up on a fresh Debian 12 machine: packages, build, default corpus.
setup: deps
	$(MAKE) all

# Build everything and start the daemon on its embedded defaults (var/normlab.db,
# 127.0.0.1:8080, var/runs, the KJV corpus). The first run writes var/tokens with one admin token
# for $$USER; curl examples in the README read it from there.
run: deps
	$(MAKE) all
	@test -s var/tokens || { mkdir -p var; \
	  printf '%s %s admin\n' "$$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" \
	    "$${USER:-researcher}" > var/tokens; chmod 600 var/tokens; \
	  echo "normlab: wrote var/tokens (your admin token: $$(cut -d' ' -f1 var/tokens))"; }
	$(BINDIR)/normlabd --tokens var/tokens

$(BUILD)/f32/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN) -MMD -MP -c $< -o $@

$(BUILD)/f64/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DNL_DOUBLE $(CFLAGS) $(SAN) -MMD -MP -c $< -o $@

$(BUILD)/san/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(SANFLAGS) $(WARN) -MMD -MP -c $< -o $@

$(SAN_CLI): $(SAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS)

$(LIB32): $(ENGINE32)
	@rm -f $@
	ar rcs $@ $^

$(LIB64): $(ENGINE64)
	@rm -f $@
	ar rcs $@ $^

$(BINDIR)/normlab: $(patsubst %.c,$(BUILD)/f32/%.o,$(CLI_SRC)) $(LIB32)
	@mkdir -p $(BINDIR)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

# tests/lib: harnesses the tests share (dtest: the real daemon on loopback and an HTTP client).
TESTLIB := $(BUILD)/libnltest.a
$(TESTLIB): $(patsubst %.c,$(BUILD)/f32/%.o,$(wildcard tests/lib/*.c))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/test_%: $(BUILD)/f32/tests/unit/test_%.o $(TESTLIB) $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

# The CLI on the double-precision engine: reference gradients (`grads --ckpt` at a float run's
# parameters) for test_reference.
CLI64 := $(BUILD)/f64/bin/normlab
$(CLI64): $(patsubst %.c,$(BUILD)/f64/%.o,$(CLI_SRC)) $(LIB64)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/f64_%: $(BUILD)/f64/tests/unit/f64_%.o $(LIB64)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

# server libs: the daemon's config, log and auth modules (server/), archived into one library.
# Their tests link only this library, so the explicit rules below override test_% above.
SERVER_LIB_SRC := server/config.c server/log.c server/auth.c server/lines.c
SERVER_LIB_OBJ := $(patsubst %.c,$(BUILD)/f32/%.o,$(SERVER_LIB_SRC))
SERVER_LIB := $(BUILD)/libnlserver.a
CPPFLAGS += -Iserver

$(SERVER_LIB): $(SERVER_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/test_config: $(BUILD)/f32/tests/unit/test_config.o $(SERVER_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_auth: $(BUILD)/f32/tests/unit/test_auth.o $(SERVER_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

# Regenerates config/normlabd.conf from the option table (test_config checks it is current).
.PHONY: config-default
config-default: $(BUILD)/tests/test_config
	$(BUILD)/tests/test_config --write-default > config/normlabd.conf.tmp
	mv config/normlabd.conf.tmp config/normlabd.conf
# end server libs

# The default corpus: the King James Bible as Debian's bible-kjv prints it.
data: var/data/kjv.txt
var/data/kjv.txt:
	@mkdir -p var/data
	@command -v bible >/dev/null || { echo "bible not found: run 'make deps' (needs bible-kjv)"; exit 1; }
	bible "Gen1:1-Rev22:21" > $@.tmp && mv $@.tmp $@

# Debian packages the build, the tests and the daemon need (chromium: the dashboard's browser
# test; clang and its libFuzzer/sanitizer runtimes: the fuzz harnesses). Node.js and npm come from Debian too, unless a node with npm is already installed (some
# images ship NodeSource's build, which conflicts with Debian's npm package).
DEPS := gcc make pkg-config libopenblas-dev libcjson-dev libmicrohttpd-dev libuv1-dev \
	libsqlite3-dev sqlite3 bible-kjv curl chromium zlib1g-dev dataset-fashion-mnist clang \
	libclang-rt-dev
deps:
	@NODE=$$(command -v npm >/dev/null && command -v node >/dev/null || echo "nodejs npm"); \
	if dpkg -s $(DEPS) >/dev/null 2>&1 && [ -z "$$NODE" ]; then echo "deps: all installed"; else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(DEPS) $$NODE; fi

# The dashboard's packages (uPlot; playwright-core for the browser test), exactly as the lockfile
# pins them. normlabd serves web/ (node_modules included) at /.
web: web/node_modules/.package-lock.json
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

check-banned:
	@! grep -nE '\b(sprintf|strcpy|strcat|strtok|atoi|gets)\s*\(' $$(find engine server store tests bench -name '*.c' -o -name '*.h') \
	  || { echo "banned function used (see STYLE.md)"; exit 1; }

test: deps
	$(MAKE) test-run

test-run: check-banned $(BINS) $(TESTS) $(SAN_CLI) $(CLI64) fuzz-build data web
	@BUILD=$(BUILD) NORMLAB_BIN=$(BINDIR) NORMLAB_SAN_BIN=$(SAN_CLI) bash tests/run.sh

asan:
	$(MAKE) BUILD=build/asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  BINDIR=build/asan/bin test-run

ubsan:
	$(MAKE) BUILD=build/ubsan OPT=-O1 SAN="-fsanitize=undefined -fno-sanitize-recover=undefined" \
	  BINDIR=build/ubsan/bin test-run

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# store: its own archive, so only what uses SQLite links -lsqlite3.
CPPFLAGS += -Istore
LIBSTORE := $(BUILD)/libnlstore.a

$(LIBSTORE): $(patsubst %.c,$(BUILD)/f32/%.o,$(wildcard store/*.c))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/test_store: $(BUILD)/f32/tests/unit/test_store.o $(LIBSTORE) $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS) -lsqlite3

# storage faults: drives the daemon, and also the store itself with the I/O fault hook.
$(BUILD)/tests/test_storage_faults: $(BUILD)/f32/tests/unit/test_storage_faults.o $(TESTLIB) $(LIBSTORE) $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS) -lsqlite3

# quotas: the daemon on loopback, plus the store's fair-share queries on a real file.
$(BUILD)/tests/test_quotas: $(BUILD)/f32/tests/unit/test_quotas.o $(TESTLIB) $(LIBSTORE) $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS) -lsqlite3

$(BUILD)/bench/bench_store: $(BUILD)/f32/bench/bench_store.o $(LIBSTORE) $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lsqlite3

# Benchmarks print figures and ratios against peers measured in the same run; they assert nothing.
$(BUILD)/bench/bench_train: $(BUILD)/f32/bench/bench_train.o $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/bench_norms: $(BUILD)/f32/bench/bench_norms.o $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Pre-LN vs Pre-RMSNorm vs Pre-CRMSNorm on one converted model (NORMS.md §7).
$(BUILD)/bench/bench_crms: $(BUILD)/f32/bench/bench_crms.o $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bench: $(BUILD)/bench/bench_train $(BUILD)/bench/bench_norms $(BUILD)/bench/bench_crms $(BUILD)/bench/bench_store $(BINS) data
	$(BUILD)/bench/bench_train
	$(BUILD)/bench/bench_norms
	$(BUILD)/bench/bench_crms
	$(BUILD)/bench/bench_store
	NORMLAB_BIN=$(BINDIR) bash bench/bench_daemon.sh

# normlabd: the daemon (server/ + store + engine).
DAEMON_SRC := $(filter-out $(SERVER_LIB_SRC),$(wildcard server/*.c))
DAEMON_OBJ := $(patsubst %.c,$(BUILD)/f32/%.o,$(DAEMON_SRC))
$(BINDIR)/normlabd: $(DAEMON_OBJ) $(SERVER_LIB) $(LIBSTORE) $(LIB32)
	@mkdir -p $(BINDIR)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ -lmicrohttpd -luv -lsqlite3 $(LDLIBS)

$(BUILD)/tests/test_http: $(BUILD)/f32/tests/unit/test_http.o $(BUILD)/f32/server/http.o $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ -lmicrohttpd $(LDLIBS)

$(BUILD)/tests/test_sweep: $(BUILD)/f32/tests/unit/test_sweep.o $(BUILD)/f32/server/sweep.o $(BUILD)/f32/server/recipe.o $(BUILD)/f32/server/recipe_expr.o $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_recipe: $(BUILD)/f32/tests/unit/test_recipe.o $(BUILD)/f32/server/sweep.o $(BUILD)/f32/server/recipe.o $(BUILD)/f32/server/recipe_expr.o $(BUILD)/f32/server/report.o $(BUILD)/f32/server/report_figures.o $(LIB32)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDLIBS)

# normlab against a plain PyTorch reference (bench/peer_torch.py) on the same thread count; prints
# tokens/s for each and the ratio. Installs Debian's python3-torch when no python3 imports torch.
.PHONY: bench-peer
bench-peer: $(BINDIR)/normlab $(BUILD)/bench/bench_train data
	@python3 -c 'import torch' 2>/dev/null || /usr/bin/python3 -c 'import torch' 2>/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-torch; }
	NORMLAB_BIN=$(BINDIR) BENCH_TRAIN=$(BUILD)/bench/bench_train bash bench/bench_peer.sh

# fuzz: libFuzzer harnesses (tests/fuzz/fuzz_*.c), built by clang under ASan + UBSan against the
# engine, store and server sources compiled the same way into $(FUZZ_BUILD) (coverage-instrumented
# with -fsanitize=fuzzer-no-link). `make fuzz` runs each harness for FUZZ_SECONDS; `make test`
# runs each for a short time through tests/cli/test_fuzz.sh. Inputs found along the way go to
# $(FUZZ_BUILD)/corpus/<target>; the checked-in seeds in tests/fuzz/corpus/<target> are only read.
FUZZ_CC := clang
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
# clang cannot vectorize the kernels' `omp simd` loops under the sanitizers and says so as a
# warning; speed is not what this build is for.
FUZZ_WARN := $(WARN) -Wno-pass-failed
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_SECONDS ?= 300
FUZZ_ENGINE := $(FUZZ_BUILD)/libnlengine.a
FUZZ_SERVER := $(FUZZ_BUILD)/libnlserver.a
FUZZ_SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c)) $(wildcard store/*.c)

$(FUZZ_BUILD)/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(FUZZ_WARN) -MMD -MP -c $< -o $@

$(FUZZ_ENGINE): $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(ENGINE_SRC))
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_SERVER): $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(FUZZ_SERVER_SRC))
	@rm -f $@
	ar rcs $@ $^

# Every harness links the same archives; each takes only the objects it uses.
$(FUZZ_BINS): $(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_SERVER) $(FUZZ_ENGINE)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ -lmicrohttpd -luv -lsqlite3 $(LDLIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)
fuzz: $(FUZZ_BINS)
	FUZZ_BUILD=$(FUZZ_BUILD) bash tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
