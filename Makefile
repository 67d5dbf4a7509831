# Two entry points for a fresh machine: `make run` opens the app, `make test` runs the whole suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ganvas-installed

.PHONY: run test lint clean fuzz
FUZZ_INPUTS ?= 100000

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ganvas

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check desktop engine models tests
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# The long fuzz run (docs/reliability.md): >= 100k inputs per target, coverage-guided with atheris when it
# installs (otherwise a seeded mutation loop); crash and hang inputs and report.json land in fuzz-findings/.
fuzz: $(STAMP)
	-$(BIN)/python -m pip install --quiet -e '.[fuzz]' || echo "atheris did not install: using the mutation loop"
	nice -n 19 $(BIN)/python -m tests.fuzz.driver --inputs $(FUZZ_INPUTS) --out fuzz-findings

clean:
	rm -rf $(VENV) build *.egg-info
