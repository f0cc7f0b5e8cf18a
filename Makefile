# The two commands of the README: `make book` builds the HTML book, `make test` runs every test.
# Each creates .venv from requirements.txt first (once; again when requirements.txt changes).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup book test lint exercises twins notebooks bench clean chromium bubblewrap postgresql

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python >= 3.11 is needed (nbgrader 0.9.6); run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

# The execution cache keys on a page's code, not on the data it reads: --sync-book-cache drops the build caches
# when the committed benchmark results changed, so that the Measurements page is executed again.
setup: $(STAMP)   # only the virtual environment (what students need to open the exercises)

book: $(STAMP)
	$(PY) -m autograder.measure.embedding_bench --sync-book-cache
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

test: $(STAMP) chromium bubblewrap postgresql lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Lint and format check (ruff, pinned in requirements.txt; configured in pyproject.toml); `make test` runs it first.
lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# The site tests open every page in headless Chromium and audit it with axe-core (npm installs it under _build/node/
# on first use). Install Debian's chromium and npm when missing and we are root with apt (as in CI); otherwise say
# how, and the browser test and the audit skip (outside CI) or fail (CI=true).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (Debian package) for the site tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "note: chromium not found and cannot be installed here (needs root and apt-get): the browser test will skip"; \
	fi
	@command -v npm >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing npm (Debian package) for the accessibility audit"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	else \
		echo "note: npm not found and cannot be installed here (needs root and apt-get): the accessibility audit will skip"; \
	fi

# Grading runs every kernel in a bubblewrap sandbox and refuses to grade without one. Debian's package (signed by
# the distribution, security-patched by apt, the same trust as the kernel it drives) is installed when we are root
# with apt (as in CI); otherwise say how, and the sandbox tests skip (outside CI) or fail (CI=true).
bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing bubblewrap (Debian package) for the grading sandbox"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	else \
		echo "note: bwrap not found and cannot be installed here: apt-get install bubblewrap (grading refuses to run without it)"; \
	fi

# The PostgreSQL gradebook test starts a private server with initdb/pg_ctl. Install Debian's package when they are
# missing and we are root with apt (as in CI); otherwise say how, and that test skips (outside CI) or fails (CI=true).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing postgresql (Debian package) for the PostgreSQL gradebook test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "note: PostgreSQL's initdb not found and cannot be installed here (needs root and apt-get): its test will skip"; \
	fi

exercises: $(STAMP)
	$(PY) -m autograder release

# the chapters' .ipynb twins (and their setup cells), then the assignments: run after editing a chapter, the
# repository URL in _config.yml or the version in pyproject.toml
twins: $(STAMP)
	$(PY) -m autograder twins

notebooks: twins exercises

bench: $(STAMP)
	$(PY) -m autograder.measure.embedding_bench $(BENCH_ARGS)   # e.g. make bench BENCH_ARGS="--threads 1"

clean:
	rm -rf _build .pytest_cache
