# The two commands (README): `make run` and `make test`. Both create .venv on first use and
# reuse it afterwards; `make setup` alone just installs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch first, pinned: on a CPU machine an unpinned torch pulls several GB of CUDA wheels.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup run test lint smoke
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

run: setup
	$(PY) pipelines/train_occlip.py

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q
