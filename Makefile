# One command to run, one to test; both create the virtual environment they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= scenarios/baseline.yaml

.PHONY: run test venv test-venv bench schema clean

# The stamp files re-install only when pyproject.toml changes. The venv's own pip (Python 3.11 ships
# 23.x) installs the project editable from pyproject.toml: no upgrade first.
# --no-compile: a module is compiled to bytecode when first imported, not every installed module at
# install time (the engine imports a small part of what its dependencies install).
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test]'
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed
test-venv: $(VENV)/.installed-test

run: venv
	$(BIN)/retention validate $(SCENARIO)
	$(BIN)/retention run $(SCENARIO) --workers 2

test: test-venv
	$(BIN)/python -m pytest -n 2 --dist loadfile

schema: venv
	$(BIN)/retention schema --out scenarios/scenario.schema.json

bench: venv
	$(BIN)/python bench/simulator.py

clean:
	rm -rf $(VENV) build *.egg-info
