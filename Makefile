# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck docs install clean browser-test wheel

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch pulls several GB of CUDA packages
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[all,dev,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/maskscope demo --out demo-out

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

# mypy over src/maskscope with the [tool.mypy] settings in pyproject.toml
typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck docs
	$(BIN)/python -m pytest -q

# the API reference site, built strictly (a broken docstring reference fails); `mkdocs serve` to browse
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -q -d site

# optional: opens the summary report in headless Chromium (installs Debian's chromium + playwright)
browser-test: $(STAMP)
	apt-get update -qq && apt-get install -y -qq chromium
	$(BIN)/pip install --quiet playwright
	$(BIN)/python -m pytest -q tests/cli/test_summarize_cli.py tests/app/test_browser.py -k browser

# a wheel for your own environment (no .venv needed): pip install 'dist/maskscope-<version>-py3-none-any.whl[all]'
wheel:
	$(PYTHON) -m pip wheel --no-deps --wheel-dir dist .

clean:
	rm -rf $(VENV) demo-out site
