# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv from pyproject.toml when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench report clean install

# PYTHONWARNINGS hides only setuptools' "Editable installation" notice (information about
# the flat layout, not a problem); any real build warning still shows.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/solr-policy demo

test: $(STAMP)
	$(BIN)/mypy solr_policy
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python scripts/bench.py

report: $(STAMP)
	$(BIN)/solr-policy spec report --out out/spec

clean:
	rm -rf $(VENV) build *.egg-info
