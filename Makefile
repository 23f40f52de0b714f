# mgenv: `make demo` (train + evaluate) and `make test` (lint, types, tests) each create
# .venv and install everything on a fresh machine with Python 3.11.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned to 2.13.0 and installed *before* the project, so that no resolver pulls a
# newer CUDA build. On a machine without a local CPU wheel, pass PyTorch's CPU index, e.g.
#   make demo TORCH_PIP_ARGS="--index-url <PyTorch CPU wheel index>"
# A user with a GPU installs the CUDA build of torch 2.13.0 the same way (its index instead).
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install --quiet -e ".[train,test,dev,bench]"
	$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mgenv demo

lint: $(STAMP)
	$(BIN)/ruff check mgenv baselines agents train tests benchmarks
	$(BIN)/ruff format --check mgenv baselines agents train tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/mgenv bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
