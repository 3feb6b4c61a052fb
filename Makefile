# `make demo` and `make test` each work on a fresh machine: they create .venv and install on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint schema golden bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest

test-all: $(STAMP)
	$(BIN)/python -m pytest -m ''

lint: $(STAMP)
	$(BIN)/ruff check ssdd_cli tests examples
	$(BIN)/mypy

schema: $(STAMP)
	$(BIN)/python -m ssdd_cli.bundle.schema > formats/ssdd-v1.schema.json

golden: $(STAMP)
	$(BIN)/python formats/golden/generate.py

bench: $(STAMP)
	$(BIN)/ssdd bench --budget 100 --steps 3

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
