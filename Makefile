# The entry points of the README and CI. Each creates .venv when missing and installs the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := data/sample

.PHONY: demo test install check typecheck

$(BIN)/leadready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
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

# Two test files at a time (each file in one process, so its module fixtures are built once):
# much of the suite waits on servers, subprocesses and databases, and one process left one of
# the two cores idle most of the time (25 -> 16 minutes).
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

# mypy cannot derive the module names from this tree (features/ is leadready.features) and does
# not follow the editable install, so it checks a view of links named as the package is; its
# messages are given back with the repository's own paths. One part only:
# `make typecheck MYPY_TARGETS="-p leadready.features"`.
TYPECHECK := build/typecheck
MYPY_TARGETS ?= -p leadready
typecheck: install
	@rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/leadready
	@for part in features training serving cli.py; do ln -s "$(CURDIR)/$$part" $(TYPECHECK)/leadready/; done
	@MYPYPATH=$(TYPECHECK) $(BIN)/python -m mypy $(MYPY_TARGETS) > $(TYPECHECK)/mypy.txt; \
	status=$$?; sed 's#$(TYPECHECK)/leadready/##g' $(TYPECHECK)/mypy.txt; exit $$status
# Lint, formatting, the import contracts of pyproject.toml (serving -> features <- training) and
# the types (typecheck above).
check: install
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/lint-imports
	@$(MAKE) --no-print-directory typecheck
