# One command to run, one to test; both create the virtual environment they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= scenarios/baseline.yaml

.PHONY: run test venv test-venv bench schema clean

# The stamp files re-install only when pyproject.toml changes. The venv's own pip (Python 3.11 ships
# 23.x) installs the project editable from pyproject.toml: no upgrade first.
# Bytecode: pip compiles one file at a time (46 s of a 66 s install); compileall on both cores, leaving
# out the packages' own test folders, takes 8 s. Compiled now, not on first import: with
# PYTHONDONTWRITEBYTECODE set, as on many CI machines, every process (each worker, each command)
# would compile pandas and numba from source again, some 2 s apiece.
COMPILE := $(BIN)/python -m compileall -q -j 0 -x '/tests?/'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e .
	$(COMPILE) $(VENV)/lib sim optimize >/dev/null
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test]'
	$(COMPILE) $(VENV)/lib sim optimize >/dev/null
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
