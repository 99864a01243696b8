# dnnbook: `make book` builds the executed HTML book, `make test` runs every test.
# Both start from nothing: they create .venv, install the package and fetch the data.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= auto
BACKEND ?= tensorflow
# chapters executed (and validated) at once: `auto` for `make book` (every chapter at once when a
# GPU is visible, they share it; one at a time on a CPU), 2 for the tests on a 2-core machine
# (small models leave a core idle)
JOBS ?= auto
TEST_JOBS ?= 2
# The CPU build of PyTorch (a plain `torch` requirement pulls a multi-GB CUDA build).
TORCH_SPEC ?= torch==2.13.0
JAX_SPEC ?= jax>=0.4.30
# JAX's compiled programs, kept on disk for the runs that compile the same model again (tests,
# the nbval re-execution); in _build, so that a clean checkout starts without them
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/_build/jax-cache
APT_GET := $(shell command -v apt-get 2>/dev/null)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

.PHONY: disk-book disk-test lint book test install install-all data browser-deps unit pipeline backends browser colab-check colab-check-quick colab-env-background unit-pipeline checks benchmarks clean help

help:
	@echo "make book    PROFILE=quick|full|auto BACKEND=tensorflow|jax|torch JOBS=auto|N   build the executed book"
	@echo "make test    ruff, unit tests (3 backends) beside the quick pipeline, then browser tests, chapters 00-01 under JAX, PyTorch and Colab's versions"
	@echo "make colab-check   every chapter with Colab's package versions, dnnbook installed as in Colab"

$(VENV)/.base: pyproject.toml
	@echo "== creating $(VENV) and installing dnnbook"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

$(VENV)/.jax: $(VENV)/.base
	$(PY) -m pip install -q "$(JAX_SPEC)"
	touch $@

# after JAX's (order only): two pip installs into one environment at once could clash
$(VENV)/.torch: $(VENV)/.base | $(VENV)/.jax
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	touch $@

install: $(VENV)/.base $(VENV)/.mathjax $(if $(filter jax,$(BACKEND)),$(VENV)/.jax) $(if $(filter torch,$(BACKEND)),$(VENV)/.torch)

install-all: $(VENV)/.base $(VENV)/.jax $(VENV)/.torch

# Fashion-MNIST: a local copy if there is one, else Debian's package, else Keras's download.
data: $(VENV)/.base
	@if $(PY) -c "import sys; from dnnbook import data; sys.exit(0 if data.find_fashion_mnist() else 1)"; then \
	  echo "== Fashion-MNIST found"; \
	elif [ -n "$(APT_GET)" ] && { [ -z "$(SUDO)" ] || sudo -n true 2>/dev/null; }; then \
	  echo "== installing Debian's dataset-fashion-mnist"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq dataset-fashion-mnist >/dev/null \
	    || DNNBOOK_DOWNLOAD=1 $(PY) -m dnnbook data; \
	else \
	  echo "== downloading Fashion-MNIST with Keras"; DNNBOOK_DOWNLOAD=1 $(PY) -m dnnbook data; \
	fi

# Chromium for the browser tests, from Debian (no browser download at run time).
browser-deps: $(VENV)/.base
	@if [ -x /usr/bin/chromium ]; then echo "== chromium found"; \
	elif [ -n "$(APT_GET)" ]; then echo "== installing Debian's chromium"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium is needed for the browser tests: install it as /usr/bin/chromium" >&2; exit 1; fi

# MathJax 3 (npm's mathjax) in the virtual environment: the build copies it into the book, so
# formulas render offline (the build stops without it; DNNBOOK_MATHJAX=cdn loads a CDN's instead)
MATHJAX_SPEC ?= mathjax@3.2.2
$(VENV)/.mathjax: $(VENV)/.base
	@command -v npm >/dev/null || { echo "npm is needed to install MathJax for the book: install Node.js (apt-get install npm)" >&2; exit 1; }
	npm install --prefix $(VENV)/mathjax --no-audit --no-fund --loglevel=error "$(MATHJAX_SPEC)"
	touch $@

# Room on the disk first (GB, from nothing installed; figures in docs/results.md): one clear
# error before any install rather than "No space left on device" in the middle of one.
# DISK_GB=0 skips the check.
disk-book:
	@$(PYTHON) tools/disk_check.py $(or $(DISK_GB),$(if $(filter tensorflow,$(BACKEND)),4,5)) "make book"

disk-test:
	@$(PYTHON) tools/disk_check.py $(or $(DISK_GB),8) "make test"

book: disk-book install data
	$(PY) -m dnnbook all --profile $(PROFILE) --backend $(BACKEND) --jobs $(JOBS)

# PyTorch's unit tests on one OpenMP thread per test process: with two processes on two cores
# its spinning threads made them 2-3 times slower (35 s instead of 88-112 s)
unit: install-all data
	@for b in tensorflow jax torch; do \
	  echo "== unit tests, backend $$b"; \
	  env $$([ $$b = torch ] && echo OMP_NUM_THREADS=1) DNNBOOK_REQUIRE_ALL_BACKENDS=1 KERAS_BACKEND=$$b \
	    $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) -m "not pipeline and not browser" tests || exit 1; \
	done

pipeline: install data
	$(PY) -m dnnbook all --profile quick --backend tensorflow --jobs $(TEST_JOBS)

# chapters 00-01 under JAX and under PyTorch, the two side by side (PyTorch on one thread: its
# OpenMP threads spin while waiting and slow down tenfold when another process holds a core)
backends: install-all data
	@DNNBOOK_BUILD=_build/backend-jax $(PY) -m dnnbook execute --profile quick --backend jax --chapters 00,01 \
	  > >(sed -u 's/^/[jax] /') 2>&1 & jax=$$!; \
	OMP_NUM_THREADS=1 DNNBOOK_BUILD=_build/backend-torch $(PY) -m dnnbook execute --profile quick --backend torch --chapters 00,01 \
	  > >(sed -u 's/^/[torch] /') 2>&1 & torch=$$!; \
	wait $$jax; a=$$?; wait $$torch; b=$$?; \
	[ $$a = 0 ] || echo "chapters 00-01 FAILED under JAX" >&2; [ $$b = 0 ] || echo "chapters 00-01 FAILED under PyTorch" >&2; \
	[ $$a = 0 ] && [ $$b = 0 ]

browser: browser-deps
	$(PY) -m pytest -q -p no:cacheprovider -m "pipeline or browser" tests

# The chapters with Colab's package versions (../shared/colab/pip-freeze.txt or
# $DNNBOOK_COLAB_FREEZE) in _build/colab/env, dnnbook installed by the chapters' own install cell:
# fails if that install would change a package Colab ships, or if a claim does not hold.
# The environment is rebuilt only when the package list or pyproject.toml changes.
# COLAB_FLAGS: more options, e.g. --op-census (the TensorFlow ops each chapter runs, see docs/determinism.md)
colab-check: data
	$(PY) tools/colab_check.py $(COLAB_FLAGS)

colab-check-quick: data
	$(PY) tools/colab_check.py --chapters 00,01 $(COLAB_FLAGS)

# The Colab environment built in the background from the start of `make test`: installing it is
# mostly waiting on the network and the disk, so it overlaps the venv's install and the unit
# tests; colab-check-quick, at the end, waits for it (tools/colab_check.py holds a lock).
colab-env-background:
	@mkdir -p _build/colab
	@echo "== building the Colab environment in the background (log: _build/colab/prepare.log)"
	@nohup $(PYTHON) tools/colab_check.py --prepare < /dev/null > _build/colab/prepare.log 2>&1 &

# ruff: lint and formatting of the package, tests, benchmarks, tools and chapters (ruff.toml)
lint: $(VENV)/.base
	$(VENV)/bin/ruff check dnnbook tests benchmarks tools chapters
	$(VENV)/bin/ruff format --check dnnbook tests benchmarks tools chapters

# `make test` runs its steps two or three at once: one at a time, none kept both cores of a 2-core
# machine busy (figures in docs/results.md, from benchmarks/make_times.py); side by side they
# fill them. Lines of output interleave. The unit tests beside the quick pipeline:
unit-pipeline:
	@$(MAKE) --no-print-directory -j2 --output-sync=line unit pipeline

# then the browser tests (they need the pipeline's book), chapters 00-01 under JAX and PyTorch,
# and under Colab's versions, all three at once:
checks:
	@$(MAKE) --no-print-directory -j3 --output-sync=line browser backends colab-check-quick

test: disk-test colab-env-background lint unit-pipeline checks

benchmarks: install-all data
	$(PY) benchmarks/chapter_times.py
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/probe_overhead.py
	$(PY) benchmarks/engine_parts.py

clean:
	rm -rf _build
