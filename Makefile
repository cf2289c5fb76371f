# SPDX-License-Identifier: GPL-3.0-or-later
# The single entry point for users and CI: a thin layer over CMake and pip.
#
#   make demo       install what is missing, build, run the demo
#   make test       deps, build, C tests, Python tests, notebooks, sanitizers,
#                   then every test-extra recipe that mk/*.mk adds
#   make bench      Release build, run every bench/bench_* binary
#   make sanitize   C tests under ASan+UBSan, threaded ones under TSan
#   make lint       clang-format --dry-run --Werror over the C sources
#   make install    cmake --install build --prefix $(PREFIX)
#
# Other makefiles in mk/*.mk extend this one (for example by adding recipes
# to the double-colon rule test-extra::).

SHELL := /bin/bash
.DEFAULT_GOAL := build

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PREFIX ?= /usr/local
PYTHON ?= python3
VENV ?= .venv
PIP_EXTRAS ?= analysis,test,notebooks

ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
BENCH_DIR ?= build-bench

# Debian packages that the build, the tests and the sanitizers need.
DEB_PACKAGES := cmake gcc make pkg-config libgsl-dev libsqlite3-dev \
    libcmocka-dev python3-venv python3-dev python3-pip clang llvm valgrind

# The sanitizers stop at the first report and fail the test that made it.
ASAN_ENV := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# die_after_fork=0: the multi-process store tests fork and the children
# start a store writer thread, which TSan otherwise refuses.
TSAN_ENV := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:die_after_fork=0
# TSan runs the tests labelled `threads` (CMakeLists.txt: those that start
# threads or a store writer): a single-threaded test cannot race, and under
# TSan the statistics tests take over ten minutes each. TSAN_CTEST_ARGS=
# (empty) runs them all.
TSAN_CTEST_ARGS ?= -L threads
# The sanitizer runtimes map their shadow memory at fixed addresses; where
# the kernel randomises mmap with more bits than they support (about 30 on
# x86-64; vm.mmap_rnd_bits=32 on some recent distributions), TSan dies with
# "unexpected memory mapping" and gcc's ASan with DEADLYSIGNAL
# (google/sanitizers#1716, #1614). Running the tests without address
# randomisation avoids it, wherever setarch is allowed.
TSAN_RUN := $(shell setarch $$(uname -m) -R true >/dev/null 2>&1 && \
    echo "setarch $$(uname -m) -R")
ASAN_RUN := $(TSAN_RUN)

SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
SUB_MAKE := $(MAKE) --no-print-directory

.PHONY: help deps build venv test test-c test-python test-notebooks test-extra \
    sanitize sanitize-address sanitize-thread bench demo demo-c lint \
    install clean distclean

help:
	@sed -n '3,13p' Makefile | sed 's/^# \{0,1\}//'

# --- dependencies ------------------------------------------------------------

deps:
	@if ! command -v dpkg >/dev/null 2>&1; then \
	    echo "deps: no dpkg (not Debian?); install these yourself:" \
	         "$(DEB_PACKAGES)"; exit 0; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
	    dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' \
	        || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing$$missing"; \
	    $(SUDO) apt-get update && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y $$missing; \
	fi

# --- C build -----------------------------------------------------------------

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)
	cmake --build $(BUILD_DIR) -j$(JOBS)

# --- Python environment --------------------------------------------------------

# pip reinstalls the package only when something it is built from changes.
VENV_STAMP := $(VENV)/.tripsense-installed
VENV_INPUTS := $(wildcard setup.py setup.cfg pyproject.toml MANIFEST.in \
        docs/python.md) \
    sources.txt $(shell find include libcore adaptive bindings -type f \
        ! -name '*.pyc' ! -name '*.so' ! -name '*.o' \
        ! -name '_tripsense*.c' ! -path '*/__pycache__/*' \
        ! -path '*.egg-info/*' 2>/dev/null)

venv: $(VENV_STAMP)

$(VENV_STAMP): $(VENV_INPUTS) | deps
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install '.[$(PIP_EXTRAS)]'
	@touch $@

# --- tests ---------------------------------------------------------------------

# Each step runs in its own make so that the order holds even under make -j,
# and the first failure stops the rest.
test:
	@$(SUB_MAKE) deps
	@$(SUB_MAKE) build
	@$(SUB_MAKE) test-c
	@$(SUB_MAKE) test-python
	@$(SUB_MAKE) test-notebooks
	@$(SUB_MAKE) sanitize
	@$(SUB_MAKE) test-extra
	@echo "make test: all passed"

test-c: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)

# pytest exits 5 when it collects no tests: that fails here too.
test-python: venv
	$(VENV)/bin/python -m pytest -q tests/python

test-notebooks: venv
	@if find notebooks -name '*.ipynb' ! -path '*/.ipynb_checkpoints/*' \
	        2>/dev/null | grep -q .; then \
	    echo "$(VENV)/bin/python -m pytest -q --nbmake notebooks/"; \
	    $(VENV)/bin/python -m pytest -q --nbmake notebooks/; \
	else \
	    echo "test-notebooks: no notebooks in notebooks/, nothing to run"; \
	fi

# Extended by mk/*.mk (fuzz-short, stress, ...) with more `test-extra::` rules.
test-extra::
	@:

sanitize:
	@$(SUB_MAKE) sanitize-address
	@$(SUB_MAKE) sanitize-thread

sanitize-address: deps
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DTRIP_SANITIZE=address -DTRIP_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j$(JOBS)
	cd $(ASAN_DIR) && $(ASAN_ENV) $(ASAN_RUN) ctest --output-on-failure \
	    -j$(JOBS)

sanitize-thread: deps
	cmake -S . -B $(TSAN_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DTRIP_SANITIZE=thread -DTRIP_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(TSAN_DIR) -j$(JOBS)
	cd $(TSAN_DIR) && $(TSAN_ENV) $(TSAN_RUN) ctest --output-on-failure \
	    -j$(JOBS) $(TSAN_CTEST_ARGS)

# --- benchmarks ----------------------------------------------------------------

# bench_core's two-thread case and bench_python's four threads mean something
# only when the threads hold the cores at once: on a busy machine they run at
# a real-time priority where that is allowed (root or CAP_SYS_NICE; the
# kernel's RT throttling still leaves others 5% of each second). BENCH_RT=
# turns it off.
BENCH_RT ?= $(shell chrt -f 50 true 2>/dev/null && echo chrt -f 50)

bench: deps
	cmake -S . -B $(BENCH_DIR) -DCMAKE_BUILD_TYPE=Release \
	    -DTRIP_BUILD_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build $(BENCH_DIR) -j$(JOBS)
	@set -e; for b in $(BENCH_DIR)/bench_*; do \
	    [ -f "$$b" ] && [ -x "$$b" ] || continue; \
	    case "$$b" in *bench_core) rt="$(BENCH_RT)";; *) rt="";; esac; \
	    echo "== $$rt $$b"; $$rt "$$b"; echo; \
	done
	@$(SUB_MAKE) venv
	@# pybreaker is the peer measured in the same run, for the bench only
	$(VENV)/bin/pip install -q pybreaker
	$(BENCH_RT) $(VENV)/bin/python bench/bench_python.py

# --- demo ----------------------------------------------------------------------

# The Python demo once it exists, else the C one.
demo: deps
	@if [ -f bindings/tripsense/demo.py ]; then \
	    $(SUB_MAKE) venv && $(VENV)/bin/python -m tripsense.demo; \
	else \
	    $(SUB_MAKE) demo-c; \
	fi

demo-c: build
	./$(BUILD_DIR)/demo_outage

# --- housekeeping --------------------------------------------------------------

# bindings/ holds the cffi cdef, which is cffi's syntax, not compiled C.
C_SOURCES = $(shell git ls-files '*.c' '*.h' ':!:bindings/*' 2>/dev/null || \
    find include libcore adaptive tests bench examples -name '*.[ch]' \
        2>/dev/null)

lint:
	@if command -v clang-format >/dev/null 2>&1; then \
	    echo "clang-format --dry-run --Werror <$(words $(C_SOURCES)) files>"; \
	    clang-format --dry-run --Werror $(C_SOURCES); \
	else \
	    echo "lint: clang-format not found (apt-get install clang-format);" \
	         "nothing checked"; \
	fi

install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR) $(BENCH_DIR) demo-output \
	    bindings/tripsense/_tripsense*.c *.egg-info bindings/*.egg-info

distclean: clean
	rm -rf $(VENV) .pytest_cache .hypothesis

-include $(sort $(wildcard mk/*.mk))
