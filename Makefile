# tokenguard: build, run and test.  See README.md.
#
#   make            build/ngx_http_tokenguard_module.so (NGINX_SRC=/path to
#                   build against a source tree instead of Debian's nginx)
#   make run        Redis, the stub provider and nginx on 127.0.0.1:8080
#   make test       unit tests and prove -r t/, ending "N passed, N failed"
#   make ctl        build/tokenguardctl, the ops CLI (tools/tokenguardctl/)
#   make prices     conf/prices.json from @pydantic/genai-prices (tools/prices/)
#   make test-asan  the tests against nginx built with ASan and UBSan
#   make test-tiny  the tests with tiny buffers (short reads everywhere)
#   make bench      side by side: plain nginx, tokenguard (defaults, tuned),
#                   PEERS=portkey; PROFILE=1 adds perf profiles
#   make bench-core the core/ parsers alone on the agentic bodies and the
#                   canned answers (MB/s); IR=1 adds instructions per byte
#                   of the response side (callgrind)
#
# TESTS="charge redteam_" limits test, test-asan, test-valgrind and
# test-tiny to the t/ files whose path matches one of the patterns
# (Perl regexes, as tools/run-tests.pl takes them)

CC ?= gcc
CORE := ngx_http_tokenguard_module/core
CORE_SRCS := $(wildcard $(CORE)/*.c)
CORE_HDRS := $(wildcard $(CORE)/*.h)
GLUE := $(wildcard ngx_http_tokenguard_module/*.c ngx_http_tokenguard_module/*.h)
UNIT_SRCS := $(wildcard t/unit/*.c)
CFLAGS_CORE := -g -O1 -Wall -Wextra -Werror -std=gnu99 -I$(CORE)
CTL_SRCS := $(wildcard tools/tokenguardctl/*.c)
CTL_HDRS := $(wildcard tools/tokenguardctl/*.h)
CFLAGS_CTL := -g -O2 -Wall -Wextra -Werror -std=gnu99 -I$(CORE)

.PHONY: all deps test-deps module ctl unit fuzz test test-valgrind test-asan \
        test-tiny run bench bench-core bench-core-build nginx-tests clean \
        prices

all: module ctl

deps:
	@tools/install-deps.sh

# the tests also render tokenguardctl's audit page in headless Chromium
# (t/ctl_report.t; Debian's package, about 120 MB, once), run a short
# libFuzzer smoke (t/fuzz.t: clang, and libFuzzer from libclang-rt-14-dev),
# check the alert rules with promtool (t/ops_prometheus.t: Debian's
# prometheus package) and the shadow-AI recipe in nginx's stream module
# (t/stream_shadow_ai.t: libnginx-mod-stream)
test-deps:
	@TG_EXTRA_PKGS="chromium clang libclang-rt-14-dev prometheus \
	    libnginx-mod-stream" tools/install-deps.sh

module: build/ngx_http_tokenguard_module.so

build/ngx_http_tokenguard_module.so: config $(CORE_SRCS) $(CORE_HDRS) $(GLUE)
	@tools/build.sh

build/unit_tests: $(UNIT_SRCS) $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p build
	$(CC) $(CFLAGS_CORE) -o $@ $(UNIT_SRCS) $(CORE_SRCS) -ljansson

unit: build/unit_tests

# libFuzzer runs of every core parser (t/fuzz/), FUZZ_SECONDS each;
# make fuzz FUZZ_SECONDS=600 for a long session
FUZZ_SECONDS ?= 10

fuzz:
	@TG_EXTRA_PKGS="clang libclang-rt-14-dev" tools/install-deps.sh
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tools/fuzz.sh

# the ops CLI; it compiles core/tg_keys.c for the key escaping and periods
build/tokenguardctl: $(CTL_SRCS) $(CTL_HDRS) $(CORE)/tg_keys.c \
                     $(CORE)/tg_keys.h
	@mkdir -p build
	$(CC) $(CFLAGS_CTL) -o $@ $(CTL_SRCS) $(CORE)/tg_keys.c \
	    -lhiredis -ljansson

ctl: build/tokenguardctl

# the official SDKs for t/clients.t, pinned by package-lock.json
t/clients/node_modules: t/clients/package.json t/clients/package-lock.json
	@cd t/clients && (npm ci --no-audit --no-fund --loglevel=error \
	    || echo "warning: npm ci failed: t/clients.t will be skipped")

# the agent CLIs for t/agents.t (Claude Code, Gemini CLI, Codex with its
# native binary; about 900 MB, under a minute), pinned the same way
t/agents/node_modules: t/agents/package.json t/agents/package-lock.json
	@cd t/agents && (npm ci --no-audit --no-fund --loglevel=error \
	    || echo "warning: npm ci failed: t/agents.t will be skipped")

# @pydantic/genai-prices, pinned by package-lock.json: the generator's
# source and t/prices_diff.t's independent calculator
tools/prices/node_modules: tools/prices/package.json \
                           tools/prices/package-lock.json
	@cd tools/prices && (npm ci --no-audit --no-fund --loglevel=error \
	    || echo "warning: npm ci failed: t/prices_diff.t will be skipped")

# the price table, from a fresh install of the pinned version (the
# network is needed here only; the table is committed)
prices:
	@rm -rf tools/prices/node_modules
	@cd tools/prices && npm ci --no-audit --no-fund --loglevel=error
	@node tools/prices/generate.mjs conf/prices.json

# what the tests install from npm
NODE_DEPS := t/clients/node_modules t/agents/node_modules \
             tools/prices/node_modules

TESTS ?=

test: test-deps module ctl unit $(NODE_DEPS)
	@perl tools/run-tests.pl $(TESTS)

test-valgrind: test-deps module ctl unit $(NODE_DEPS)
	@TG_EXTRA_PKGS=valgrind tools/install-deps.sh
	@TG_VALGRIND=1 perl tools/run-tests.pl $(TESTS)

# nginx itself and the module built with AddressSanitizer and UBSan, in
# build/asan/ (tools/build-asan.sh); a report fails the test file that
# caused it (t/lib/TG.pm).  Leaks are checked in the running nginx, not in
# "nginx -t", which by design exits without freeing its configuration.
ASAN_ENV = TG_NGINX_BIN=$(CURDIR)/build/asan/nginx-bin \
    TG_MODULE=$(CURDIR)/build/asan/ngx_http_tokenguard_module.so \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_odr_violation=0 \
    LSAN_OPTIONS=suppressions=$(CURDIR)/t/lsan.supp:print_suppressions=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=0:suppressions=$(CURDIR)/t/ubsan.supp

# the core/ unit tests too (t/unit.t runs TG_UNIT_TESTS)
build/asan/unit_tests: $(UNIT_SRCS) $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p build/asan
	$(CC) $(CFLAGS_CORE) -fsanitize=address,undefined \
	    -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	    -o $@ $(UNIT_SRCS) $(CORE_SRCS) -ljansson

test-asan: test-deps ctl build/asan/unit_tests $(NODE_DEPS)
	@TG_EXTRA_PKGS="libssl-dev zlib1g-dev" tools/install-deps.sh
	@tools/build-asan.sh
	@$(ASAN_ENV) TG_UNIT_TESTS=$(CURDIR)/build/asan/unit_tests \
	    perl tools/run-tests.pl $(TESTS)

# tiny buffers: request headers and bodies, the provider's responses and
# Redis replies all arrive in short reads (t/lib/TG.pm, TG_TINY)
test-tiny: test-deps module ctl unit $(NODE_DEPS)
	@TG_TINY=1 perl tools/run-tests.pl $(TESTS)

run: deps module ctl
	@tools/run.sh

# side by side: plain nginx proxy against nginx + tokenguard (BENCHMARKS.md);
# PROFILE=1 needs perf (linux-perf)
bench: deps module
	@TG_EXTRA_PKGS="wrk $(if $(PROFILE),linux-perf)" tools/install-deps.sh
	@tools/bench/bench.sh

# the core/ micro-benchmark, compiled as the module is (tools/build.sh's
# flags and nginx's warnings), on the bodies tools/bench/agentic.pl writes
BENCH_CFLAGS := -g -O2 -fstack-protector-strong -Wformat \
    -Werror=format-security -Wextra -Wno-unused-parameter -Wno-sign-compare \
    -fPIC -D_FORTIFY_SOURCE=2 -W -Wall -Wpointer-arith -Werror

build/bench_core: tools/bench/core/bench_core.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p build
	$(CC) $(BENCH_CFLAGS) -DBENCH_CFLAGS='"$(BENCH_CFLAGS)"' -I$(CORE) \
	    -o $@ tools/bench/core/bench_core.c $(CORE_SRCS) -lpcre2-8 -ljansson

bench-core-build: build/bench_core

bench-core: deps build/bench_core
	@mkdir -p build/bench-core
	@perl tools/bench/agentic.pl build/bench-core >/dev/null
	@build/bench_core build/bench-core $(BENCH_SECONDS)
	@if [ -n "$(IR)" ]; then tools/bench/core/ir.sh build/bench-core; fi

# nginx's own proxy tests with the module loaded and "tokenguard off"
# (docs/reliability.md, "nginx's own tests"): NGINX_TESTS is a checkout of
# https://github.com/nginx/nginx-tests
nginx-tests: deps module
	@if [ -z "$(NGINX_TESTS)" ]; then \
	    echo "usage: make nginx-tests NGINX_TESTS=/path/to/nginx-tests" >&2; \
	    exit 2; \
	fi
	@tools/nginx-tests.sh "$(NGINX_TESTS)"

clean:
	rm -rf build
