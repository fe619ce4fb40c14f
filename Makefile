# The two commands of the quick start, and a few for developers. Each target sets up what it
# needs in .venv first, so a fresh clone with Python 3.11+ (and Java 17 for the Spark tests) is enough.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The suite runs on two workers (pytest-xdist), each test file whole on one of them, so that a file's
# shared fixtures (a simulated org, a Spark session, a server) are made once; `make test PARALLEL=`
# runs it in one process, `PARALLEL="-n 4 --dist loadfile"` on four. The speed guards (marked guard)
# time the product against a calibration loop, so they run alone, after the others.
PARALLEL ?= -n 2 --dist loadfile
# Each worker's OpenMP threads (scikit-learn's gradient boosting): with one worker a core, more
# threads only fight over the cores; the suite's figures do not depend on it.
TEST_THREADS ?= 1

.PHONY: demo test test-fast lint bench docs clean

# Ralph (ralph-malph), the LRS the sync tests pull from, lives in a virtual environment of its own:
# its pinned dependencies are not the product's.
RALPH := .venv-ralph/bin/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.base: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,spark]"
	# ChannelAttribution, an independent Markov attribution the tests compare with, builds from
	# source (a C++ compiler, about a minute); without it that one comparison is skipped, saying why.
	$(BIN)/pip install --quiet "channelattribution>=2.2.5" "matplotlib>=3.8" \
		|| echo "ChannelAttribution could not be built here: its cross-check will be skipped"
	touch $@ $(VENV)/.base

$(RALPH):
	$(PYTHON) -m venv .venv-ralph
	.venv-ralph/bin/pip install --quiet "ralph-malph[cli,lrs]==5.1.0" "requests>=2"

## .venv-ralph: Ralph's LRS for the sync tests (tests marked lrs)
.venv-ralph: $(RALPH)

## demo: simulate a sales org, ingest it into demo/roi.duckdb, print the data-quality summary
demo: $(VENV)/.base
	$(BIN)/training-roi demo

## test: lint, type-check and run every test (Spark parity tests start PySpark in local mode themselves)
test: $(VENV)/.dev $(RALPH)
	$(BIN)/ruff check src tests benchmarks validation
	$(BIN)/mypy
	OMP_NUM_THREADS=$(TEST_THREADS) $(BIN)/pytest $(PARALLEL) -m "not guard"
	$(BIN)/pytest -m guard

## test-fast: the tests that need neither Java, LibreOffice, Chromium, Ralph's LRS nor a larger simulated org
test-fast: $(VENV)/.dev
	OMP_NUM_THREADS=$(TEST_THREADS) $(BIN)/pytest $(PARALLEL) -m "not spark and not slow and not libreoffice and not browser and not lrs and not guard"
	$(BIN)/pytest -m guard

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks validation
	$(BIN)/mypy

## bench: ingest benchmark at 1k, 5k and 20k reps (minutes; writes benchmarks/results.json)
bench: $(VENV)/.dev
	$(BIN)/python benchmarks/ingest.py

## docs: regenerate docs/warehouse.md from the schema
docs: $(VENV)/.base
	$(BIN)/training-roi schema > docs/warehouse.md

clean:
	rm -rf $(VENV) .venv-ralph demo .pytest_cache .ruff_cache .hypothesis
