# SPDX-License-Identifier: GPL-3.0-or-later
# Reliability targets (issue 8): fuzzing, stress, valgrind, soak, sanitized
# Python. Included by the Makefile; docs/reliability.md records the figures.
#
#   make fuzz-short       every fuzz target for FUZZ_SHORT_SECONDS (in make test)
#   make fuzz             every target for FUZZ_RUNS executions, niced, one at a time
#   make stress           tests/c/test_stress at full size under ThreadSanitizer
#   make valgrind         every C test under memcheck, leaks are errors
#   make soak             tests/soak: 4-process soak and the SIGKILL crash loop
#   make sanitize-python  pytest with the extension built with ASan+UBSan
#                         (in make test)

REL_DIR ?= $(CURDIR)/build-rel
FUZZ_CC ?= clang
FUZZ_SHORT_SECONDS ?= 25
FUZZ_RUNS ?= 10000000
# Longest input: short inputs keep the slow targets fast; the store target
# patches a template, so its inputs stay small anyway. fuzz_config_json
# needs more: a whole trip_config struct (about 400 bytes) or a config's
# JSON (about 1.5 kB) does not fit in 256, which would leave the struct's
# tail always at its defaults.
FUZZ_MAX_LEN ?= 256
FUZZ_JSON_MAX_LEN ?= 4096
FUZZ_MAX_TIME ?= 0
FUZZ_TARGETS ?= $(basename $(notdir $(wildcard fuzz/fuzz_*.c)))
# Extra C sources linked into the fuzzers (none once the store is listed in
# sources.txt; during development, a stub).
TRIP_EXTRA_SRCS ?=
TRIP_STRESS_SCALE ?= 1
# Under memcheck (about 30-50x slower than native): test_stress at 2% of its
# full size; the week-long simulations of test_adaptive_behaviour and
# test_calibrate shortened to 2% of their simulated time (at least half a
# day each, so every rule, incident and traffic profile still runs:
# TRIP_SIM_SCALE in tests/c/test_util.h); and the multi-process tests'
# real-time waits (store lock wait, time before a kill) stretched 30x
# (TRIP_TEST_SLOWDOWN).
VALGRIND_STRESS_SCALE ?= 0.02
VALGRIND_SIM_SCALE ?= 0.02
VALGRIND_SLOWDOWN ?= 30
REL_NICE ?= nice -n 10
# Defaults when this file is used alone (make -f mk/reliability.mk).
JOBS ?= 2
TSAN_ENV ?= TSAN_OPTIONS=halt_on_error=1
TSAN_RUN ?=

REL_SOURCES := $(shell grep -v '^\s*\#' sources.txt | grep -v '^\s*$$')
REL_INCLUDES := -Iinclude -Ilibcore -Iadaptive -I.
REL_LIBS := $(shell pkg-config --libs sqlite3 gsl) -lm -lpthread
# The sanitizers of the fuzz build. make fuzz-short (in make test) keeps
# address,undefined; a long run may use FUZZ_SANITIZE=undefined, 2-2.5x
# more executions per second for the store targets (ASan's allocator and
# fresh pages for SQLite's many small allocations), at the price of
# ASan's checks: docs/reliability.md says when that is a fair trade. Give
# each setting its own REL_DIR (objects are not rebuilt when flags change).
FUZZ_SANITIZE ?= address,undefined
FUZZ_CFLAGS ?= -g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L \
	-fsanitize=$(FUZZ_SANITIZE) -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_LIB := $(REL_DIR)/fuzz/libtripsense_fuzz.a
FUZZ_BINS := $(addprefix $(REL_DIR)/fuzz/,$(FUZZ_TARGETS))
FUZZ_OBJS := $(patsubst %.c,$(REL_DIR)/fuzz/obj/%.o,$(REL_SOURCES)) \
	$(patsubst /%.c,$(REL_DIR)/fuzz/obj/abs/%.o,$(TRIP_EXTRA_SRCS))

.PHONY: fuzz fuzz-short fuzz-build stress valgrind soak sanitize-python \
	reliability-clean

# -MMD: headers change under us (shared checkout), so track them.
$(REL_DIR)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(REL_INCLUDES) \
		-MMD -MP -c $< -o $@

# Extra sources are given by absolute path.
$(REL_DIR)/fuzz/obj/abs/%.o: /%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(REL_INCLUDES) \
		-MMD -MP -c $< -o $@

-include $(FUZZ_OBJS:.o=.d)

$(FUZZ_LIB): $(FUZZ_OBJS)
	rm -f $@
	ar rcs $@ $^

$(REL_DIR)/fuzz/%: fuzz/%.c fuzz/fuzz_util.h fuzz/fuzz_store.h $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(REL_INCLUDES) -MMD -MP \
		$< $(FUZZ_LIB) $(REL_LIBS) -o $@

-include $(FUZZ_BINS:=.d)

fuzz-build: $(FUZZ_BINS)

# Shell: the -max_len of target $$t into $$ml.
FUZZ_LEN_OF_T = case $$t in fuzz_config_json) ml=$(FUZZ_JSON_MAX_LEN);; \
	  *) ml=$(FUZZ_MAX_LEN);; esac;

# New inputs go to a scratch corpus; the seeds in fuzz/corpus stay as they
# are (add an interesting one by hand with its reason in the commit).
fuzz-short: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(REL_DIR)/corpus/$$t fuzz/corpus/$$t; \
	  echo "fuzz-short: $$t for $(FUZZ_SHORT_SECONDS) s"; \
	  $(FUZZ_LEN_OF_T) \
	  $(REL_DIR)/fuzz/$$t -max_total_time=$(FUZZ_SHORT_SECONDS) \
	    -max_len=$$ml \
	    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(REL_DIR)/$$t- \
	    $(REL_DIR)/corpus/$$t fuzz/corpus/$$t \
	    > $(REL_DIR)/fuzz-short-$$t.log 2>&1 \
	  || { tail -n 60 $(REL_DIR)/fuzz-short-$$t.log; exit 1; }; \
	  grep -E '^stat::number_of_executed_units' \
	    $(REL_DIR)/fuzz-short-$$t.log; \
	done

# Long runs: one target at a time, niced, logs in $(REL_DIR)/fuzz-<t>.log;
# FUZZ_MAX_TIME (seconds, 0 = none) caps each target's run.
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(REL_DIR)/corpus/$$t fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_RUNS) executions"; \
	  $(FUZZ_LEN_OF_T) \
	  /usr/bin/time -f "$$t: %e s wall" $(REL_NICE) \
	    $(REL_DIR)/fuzz/$$t -runs=$(FUZZ_RUNS) -timeout=10 \
	    -max_len=$$ml -max_total_time=$(FUZZ_MAX_TIME) \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(REL_DIR)/$$t- \
	    $(REL_DIR)/corpus/$$t fuzz/corpus/$$t \
	    > $(REL_DIR)/fuzz-$$t.log 2>&1 \
	  || { tail -n 60 $(REL_DIR)/fuzz-$$t.log; exit 1; }; \
	  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' \
	    $(REL_DIR)/fuzz-$$t.log; \
	  grep -E ': [0-9.]+ s wall$$' $(REL_DIR)/fuzz-$$t.log; \
	done

# The C tests, built by CMake in $(REL_DIR), under TSan / memcheck.
$(REL_DIR)/tsan/Makefile:
	cmake -S . -B $(REL_DIR)/tsan -DTRIP_SANITIZE=thread \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRIP_BUILD_BENCH=OFF

stress: $(REL_DIR)/tsan/Makefile
	cmake --build $(REL_DIR)/tsan -j$(JOBS) --target test_stress
	TRIP_STRESS_SCALE=$(TRIP_STRESS_SCALE) $(TSAN_ENV) $(TSAN_RUN) \
		$(REL_NICE) $(REL_DIR)/tsan/test_stress

# Tests not to run under memcheck (names); none by default.
VALGRIND_SKIP ?=
# Only these tests (names), if set.
VALGRIND_TESTS ?=

$(REL_DIR)/memcheck/Makefile:
	cmake -S . -B $(REL_DIR)/memcheck -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DTRIP_BUILD_BENCH=OFF

valgrind: $(REL_DIR)/memcheck/Makefile
	cmake --build $(REL_DIR)/memcheck -j$(JOBS)
	@fail=0; for t in $(or $(addprefix $(REL_DIR)/memcheck/,\
	    $(VALGRIND_TESTS)),$(REL_DIR)/memcheck/test_*); do \
	  [ -x "$$t" ] || continue; \
	  case " $(VALGRIND_SKIP) " in *" $$(basename $$t) "*) \
	    echo "valgrind: $$(basename $$t) skipped"; continue;; esac; \
	  log=$(REL_DIR)/valgrind-$$(basename $$t).log; t0=$$(date +%s); \
	  TRIP_STRESS_SCALE=$(VALGRIND_STRESS_SCALE) \
	  TRIP_SIM_SCALE=$(VALGRIND_SIM_SCALE) \
	  TRIP_TEST_SLOWDOWN=$(VALGRIND_SLOWDOWN) $(REL_NICE) valgrind -q \
	    --leak-check=full --show-leak-kinds=definite,indirect,possible \
	    --errors-for-leak-kinds=definite,indirect,possible \
	    --error-exitcode=1 $$t > $$log 2>&1 \
	    || { fail=1; tail -n 40 $$log; }; \
	  echo "valgrind: $$(basename $$t): $$(grep -E '^\[  (PASSED|FAILED)' \
	    $$log | tr -s ' ' | tr '\n' ' ')in $$(( $$(date +%s) - t0 )) s"; \
	done; exit $$fail

# Soak: 4 processes x SOAK_HOURS simulated hours on one history file, then
# SOAK_KILLS SIGKILLs of a writer; figures in docs/reliability.md.
SOAK_HOURS ?= 48
SOAK_PROCS ?= 4
SOAK_KILLS ?= 100
SOAK_CC ?= cc
SOAK_PROC := $(REL_DIR)/soak/soak_proc

$(SOAK_PROC): tests/soak/soak_proc.c $(REL_SOURCES)
	@mkdir -p $(dir $@)
	$(SOAK_CC) -O2 -g -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra \
		$(REL_INCLUDES) $^ $(REL_LIBS) -o $@

soak: $(SOAK_PROC)
	$(REL_NICE) sh tests/soak/soak.sh $(SOAK_PROC) $(REL_DIR)/soak/work \
		$(SOAK_HOURS) $(SOAK_PROCS)
	$(REL_NICE) bash tests/soak/crash_loop.sh $(SOAK_PROC) \
		$(REL_DIR)/soak/crash $(SOAK_KILLS)

# pytest against the extension built with ASan+UBSan (gcc), libasan
# preloaded into Python with libstdc++ (else ASan's __cxa_throw hook fails
# when matplotlib's C++ code throws). Leak checking is off: CPython itself
# leaks at exit; the C tests check leaks (sanitize, valgrind). The sources
# are copied out so that setuptools' build/ stays out of the checkout.
PYASAN_VENV := $(REL_DIR)/pyasan
PYASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -g -O1
PYASAN_ENV := ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) \
	$$(gcc -print-file-name=libstdc++.so)"

sanitize-python:
	[ -x $(PYASAN_VENV)/bin/python ] || python3 -m venv $(PYASAN_VENV)
	$(PYASAN_VENV)/bin/pip install -q cffi numpy pytest hypothesis pandas wheel \
		matplotlib setuptools
	rm -rf $(REL_DIR)/pysrc && mkdir -p $(REL_DIR)/pysrc
	tar -c --exclude=.git --exclude='./build*' --exclude=.venv \
		--exclude='*.db*' . | tar -x -C $(REL_DIR)/pysrc
	cd $(REL_DIR)/pysrc && CC=gcc CFLAGS="$(PYASAN_FLAGS)" \
		LDFLAGS="-fsanitize=address,undefined" \
		$(PYASAN_VENV)/bin/pip install -q --no-build-isolation --no-deps \
		--force-reinstall .
	$(PYASAN_ENV) $(PYASAN_VENV)/bin/python -m pytest -q -p no:cacheprovider \
		tests/python

reliability-clean:
	rm -rf $(REL_DIR)

# About 7 minutes on 2 cores: fuzz-short ~3 (5 targets x 25 s, and the
# build), sanitize-python ~4.
test-extra:: fuzz-short sanitize-python
