# gptoss-modal: every entry point a developer or CI needs. `make test` is the one CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
LOCK := requirements/dev.lock
UV_VERSION := 0.13.8
# Each supported vLLM gets its own venv (~11 GB each), in a cache outside the clone, built once
# from its hashed lock; the contract tests ask every one of them.
VLLM_VERSIONS := 0.13.0 0.33.0
# One version, for `make options` and `make lock-vllm` (default: the package's default).
VLLM_VERSION ?= 0.33.0
GPTOSS_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/gptoss-modal
export GPTOSS_CACHE_DIR

# pytest-xdist workers: two per core, because many tests wait (on a mock told a TTFT, on a
# subprocess or a vLLM oracle) and a waiting worker leaves its core to another. On this 2-core
# machine the suite took 74 s at 3 workers, 70-74 s at 4, 60-73 s at 5, 75 s at 6 (143 s at 2).
# Each vLLM oracle, and each costly shared fixture, runs in one worker only (xdist_group marks;
# tests/contract/conftest.py groups the oracle's tests). PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 4
PARALLEL := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadgroup)
# Bytecode for the test runs, kept outside the clone (and outside the read-only vLLM venvs,
# which are installed without any): without it every worker and every subprocess recompiles
# what it imports, and each vLLM oracle compiles vLLM and torch (~14 s of CPU per start), even
# where the environment says PYTHONDONTWRITEBYTECODE. Safe to delete; it is rebuilt on use.
PYCACHE := $(GPTOSS_CACHE_DIR)/pycache
PYTEST := env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(PYCACHE) $(PY) -m pytest

.PHONY: help install lock lock-vllm vllm-venv options test unit contract lint format bench e2e deploy demo demo-bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip sync --quiet --python $(PY) $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

install: $(VENV)/.installed ## create .venv from the pinned lock file

lock: ## re-pin every dependency (requirements/dev.lock, each vLLM venv lock, each image lock)
	$(VENV)/bin/uv pip compile --quiet --python-version 3.11 --universal --extra dev --extra plot \
		--generate-hashes pyproject.toml -o $(LOCK)
	for v in $(VLLM_VERSIONS); do $(MAKE) --no-print-directory lock-vllm VLLM_VERSION=$$v; done

lock-vllm: ## re-pin one vLLM: its venv lock (py3.11) and its Modal image lock (image's Python)
	echo "vllm==$(VLLM_VERSION)" | $(VENV)/bin/uv pip compile --quiet --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --generate-hashes - \
		-o requirements/vllm-$(VLLM_VERSION).lock
	$(PY) scripts/image-requirements.py $(VLLM_VERSION) | $(VENV)/bin/uv pip compile --quiet \
		--python-version $$($(PY) scripts/image-requirements.py --python $(VLLM_VERSION)) \
		--python-platform x86_64-manylinux_2_28 \
		--generate-hashes - -o requirements/image-vllm-$(VLLM_VERSION).lock

vllm-venv: $(VENV)/.installed ## build (once) the cached venv of every supported vLLM
	for v in $(VLLM_VERSIONS); do \
		VLLM_VERSION=$$v UV=$(UV) PYTHON=$(PYTHON) bash scripts/vllm-venv.sh; done

options: $(VENV)/.installed ## regenerate serve/options/v<VLLM_VERSION>.py from that vLLM's parser
	$(GPTOSS_CACHE_DIR)/vllm-$(VLLM_VERSION)/bin/python scripts/vllm-options.py \
		> src/gptoss_modal/serve/options/v$(subst .,_,$(VLLM_VERSION)).py

test: $(VENV)/.installed vllm-venv ## unit + contract tests (what CI runs); the vLLM checks are required here
	GPTOSS_REQUIRE_VLLM=1 $(PYTEST) tests/unit tests/contract -m "not e2e" -q $(PARALLEL)

unit: $(VENV)/.installed ## unit tests only (seconds)
	$(PYTEST) tests/unit -q

contract: $(VENV)/.installed vllm-venv ## contract tests only
	GPTOSS_REQUIRE_VLLM=1 $(PYTEST) tests/contract -m "not e2e" -q $(PARALLEL)

lint: $(VENV)/.installed ## ruff + mypy strict
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy

format: $(VENV)/.installed ## apply ruff's formatter and safe fixes
	$(VENV)/bin/ruff format src tests benchmarks scripts
	$(VENV)/bin/ruff check --fix src tests benchmarks scripts

bench: $(VENV)/.installed ## side-by-side benchmarks, printed as ratio tables
	$(PY) -m benchmarks

# tee-sys: the image build, vLLM's logs and the health wait's progress show as they happen (a
# healthy cold start would otherwise look hung for half an hour) and still land in reports.
E2E_PYTEST_OPTS := -m e2e -v --capture=tee-sys
e2e: $(VENV)/.installed ## deploy to Modal and check it for real (needs `modal token set`)
	$(PY) -m tests.e2e.preflight
	$(PY) -m pytest tests/e2e $(E2E_PYTEST_OPTS)

deploy: $(VENV)/.installed ## modal deploy the app with the config from GPTOSS_* / GPTOSS_CONFIG
	$(VENV)/bin/modal deploy -m gptoss_modal.app

demo: $(VENV)/.installed ## start the mock vLLM server and chat with it (no GPU, no account)
	$(PY) -m gptoss_modal.demo chat

demo-bench: $(VENV)/.installed ## start the mock and run the load benchmark against it
	$(PY) -m gptoss_modal.demo bench

clean: ## remove the project venv and build debris (not the vLLM cache)
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
