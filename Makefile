# The two entry points of the README. Both create .venv when missing and install the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := data/sample

.PHONY: demo test install

$(BIN)/leadready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/leadready

demo: install
	$(BIN)/leadready sample-data --out $(SAMPLE) --leads 20000 --seed 7
	$(BIN)/leadready train --data $(SAMPLE)

test: install
	$(BIN)/python -m pytest
