# The two commands of the README: `make demo` and `make test`. Both set up a fresh machine first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup test lint demo bench-keda chaos

setup:
	@bash scripts/setup.sh

# The whole test suite against the real servers (they start and stop inside pytest), on
# TEST_WORKERS processes, each given whole test files (a file's fixtures stay in one process, each
# worker starts its own servers); the slowest tests are listed at the end. Most of a test's time is
# spent waiting on servers and timers, so two workers fit two cores.
TEST_WORKERS ?= 2
PYTEST_ARGS ?= -n $(TEST_WORKERS) --dist loadfile --durations=25
test: setup
	@start=$$SECONDS; $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  printf '[test] %-28s %4ss\n' "pytest" "$$((SECONDS - start))"; exit $$rc

# Static checks: ruff (lint + format), mypy strict, import-linter contracts.
lint: setup
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports

demo: setup
	@PYTHONPATH=scripts $(PY) -m testground.demo $(DEMO_ARGS)

# KEDA beside autozero on one test ground (benchmarks/README.md); builds KEDA's operator on first
# use (~7 min), which `make test` never does. KEDA_ARGS="--size 1 100 1000".
bench-keda: setup
	@$(PY) benchmarks/keda_compare.py $(KEDA_ARGS)

# The long chaos campaign (benchmarks/chaos.py): seeded, bounded, self-stopping; CHAOS_ARGS to
# change it, e.g. CHAOS_ARGS="--seed 7 --faults 30". Exit 1 when an invariant was broken.
chaos: setup
	@$(PY) benchmarks/chaos.py $(CHAOS_ARGS)
