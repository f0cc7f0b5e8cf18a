# The two commands of the README: `make book` builds the HTML book, `make test` runs every test.
# Each creates .venv from requirements.txt first (once; again when requirements.txt changes).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: book test exercises bench clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python >= 3.11 is needed (nbgrader 0.9.6); run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

test: $(STAMP)
	$(PY) -m pytest

exercises: $(STAMP)
	$(PY) -m autograder release

bench: $(STAMP)
	$(PY) -m autograder.bench

clean:
	rm -rf _build .pytest_cache
