# Every target creates .venv when it is missing and installs the project into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
WORKERS ?= 2
# Jupyter refuses to start as root unless told; containers and CI often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: install lab test lessons lint clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "NAS Lab needs Python 3.10 or newer; set PYTHON=python3.x")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lab: install
	$(VENV)/bin/jupyter lab --notebook-dir=lessons $(ALLOW_ROOT) $(LAB_ARGS)

# Notebooks dominate the run: WORKERS pytest processes (pytest-xdist) run them side by side. The
# browser test runs on its own afterwards, so its 5-minute budget is measured alone.
test: install
	$(VENV)/bin/ruff check nas_lab tests benchmarks
	$(VENV)/bin/ruff format --check nas_lab tests benchmarks
	$(VENV)/bin/nas-lab lessons check
	NAS_LAB_FAST=1 NAS_LAB_STRICT=1 $(PY) -m pytest -n $(WORKERS) tests solutions \
		--nbval-lax --nbval-current-env --ignore=tests/test_browser.py
	$(PY) -m pytest tests/test_browser.py

lessons: install
	$(VENV)/bin/nas-lab lessons build

lint: install
	$(VENV)/bin/ruff check nas_lab tests benchmarks
	$(VENV)/bin/ruff format --check nas_lab tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
