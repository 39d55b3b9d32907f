# Two commands do everything: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: install install-dev run setup serve test lint typecheck lock clean

install: $(RUNTIME_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Byte-compiled once here: where PYTHONDONTWRITEBYTECODE is set, every process would
# otherwise compile every import again (seconds at each server start).
COMPILE := $(BIN)/python -m compileall -q -j 0 $(VENV)/lib bot actions services_directory > /dev/null

$(RUNTIME_STAMP): requirements.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(COMPILE)
	touch $@

install-dev: $(DEV_STAMP)

$(DEV_STAMP): requirements-dev.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(COMPILE)
	touch $@ $(RUNTIME_STAMP)

setup: install
	$(BIN)/donghanh setup

run: setup
	$(BIN)/donghanh serve

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

# pytest exits 5 when it collected no tests: that is a failure here. Test files run on
# every core (pytest-xdist), each file in one worker so its server starts once.
test: lint typecheck
	$(BIN)/python -m pytest -n auto --dist loadfile; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$status

lock: | $(VENV)/bin/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements-dev.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
