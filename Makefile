# vaekit: `make demo` and `make test` set up everything they need from scratch.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: venv demo lint test docs docs-check clean

DOCS_STAMP := $(VENV)/.docs-installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# tutorials run in quick mode (small data, few epochs); VAEKIT_DOCS_QUICK=0 make docs runs the full-size settings
VAEKIT_DOCS_QUICK ?= 1
export VAEKIT_DOCS_QUICK

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vaekit train --data digits --latent-dim 2 --hidden 500 --epochs 100 --batch-size 50 --out runs/demo --overwrite
	$(VENV)/bin/vaekit evaluate runs/demo --split test --iw-samples 5000
	$(VENV)/bin/vaekit report runs/demo
	@echo "demo run folder: $(CURDIR)/runs/demo (open $(CURDIR)/runs/demo/report.html)"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pyright --level error  # errors fail the build; plain `pyright` also lists the warnings

test: lint
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) -m pytest -q -n auto --dist loadfile $(PYTEST_ARGS)

$(DOCS_STAMP): $(STAMP)
	$(PIP) install -q -e '.[test,docs]'
	rm -f $(VENV)/.docs-installed-*; touch $@

# the site: API reference from the docstrings, concepts, tutorials executed at build time -> site/
docs: $(DOCS_STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir site

# the built site in headless Chromium: home, an API page and a tutorial render, every image loads
docs-check: $(DOCS_STAMP)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PY) docs/check_site.py site

clean:
	rm -rf $(VENV) runs .pytest_cache site .cache
