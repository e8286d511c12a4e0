# One venv for serving, testing and benchmarking; created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	mkdir -p var
	DSCSA_STORE=$${DSCSA_STORE:-sqlite:///var/dscsa.sqlite3} DSCSA_DATA_DIR=$${DSCSA_DATA_DIR:-var} \
		$(BIN)/dscsa serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy epcis verification
	$(BIN)/lint-imports

test: lint
	.ci/install-browser
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
