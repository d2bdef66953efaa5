# The entry points of the README and CI. Each creates .venv when missing and installs the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := data/sample

.PHONY: demo test check install

$(BIN)/leadready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/leadready

demo: install
	$(BIN)/leadready sample-data --out $(SAMPLE) --leads 20000 --seed 7
	$(BIN)/leadready train --data $(SAMPLE)
	@KEY=$$($(BIN)/python -c "import secrets; print(secrets.token_urlsafe(24))"); \
	echo "API key generated for this demo: $$KEY"; \
	echo "Try: curl -s -H 'Authorization: Bearer $$KEY' http://127.0.0.1:8000/v1/model"; \
	echo "OpenAPI schema with examples: http://127.0.0.1:8000/openapi.json (Ctrl-C stops the server)"; \
	LEADREADY_API_KEYS=$$KEY exec $(BIN)/leadready serve

test: install
	$(BIN)/python -m pytest

# Lint, formatting and the import contracts of pyproject.toml (serving -> features <- training).
check: install
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/lint-imports
