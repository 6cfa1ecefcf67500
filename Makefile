# Quickstart: `make run` (Chime on an embedded Redis at http://localhost:8080) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-busy lint typecheck pytest fmt bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/chime dev

test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/python -m pytest

# the suite three times in a row while two busy loops keep two cores at 100%
test-busy: install
	@$(BIN)/python -c 'while True: pass' & a=$$!; \
	$(BIN)/python -c 'while True: pass' & b=$$!; \
	trap 'kill $$a $$b' EXIT; \
	for n in 1 2 3; do echo "== busy run $$n"; $(BIN)/python -m pytest -q -p no:cacheprovider || exit 1; done

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
