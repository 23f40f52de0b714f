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
# RLlib: ray[rllib] 2.60 pins gymnasium 1.2.2, so it gets its own venv (torch first, as above)
RLLIB_VENV ?= .venv-rllib
RLLIB_BIN := $(RLLIB_VENV)/bin
RLLIB_STAMP := $(RLLIB_VENV)/.installed
RLLIB_TESTS := tests/test_rllib.py tests/test_env_api.py tests/test_single_agent.py \
	tests/test_bad_input.py tests/test_examples.py

.PHONY: demo test lint typecheck pytest bench install clean venv-rllib test-rllib

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(BIN)/python -m pip install --quiet -e ".[train,test,dev,bench,torchrl]"
	$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mgenv demo

lint: $(STAMP)
	$(BIN)/ruff check mgenv baselines agents train tests benchmarks examples
	$(BIN)/ruff format --check mgenv baselines agents train tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

test: lint typecheck pytest test-rllib

bench: $(STAMP)
	$(BIN)/mgenv bench

$(RLLIB_STAMP): pyproject.toml
	test -x $(RLLIB_BIN)/python || $(PYTHON) -m venv $(RLLIB_VENV)
	$(RLLIB_BIN)/python -m pip install --quiet --upgrade pip
	$(RLLIB_BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(RLLIB_BIN)/python -m pip install --quiet -e ".[rllib,test]"
	$(RLLIB_BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(RLLIB_STAMP)

venv-rllib: $(RLLIB_STAMP)

# The RLlib tests, and the env's API tests under ray's gymnasium pin (1.2.2); SB3 is not in
# this venv, so its env checker test skips there.
test-rllib: $(RLLIB_STAMP)
	$(RLLIB_BIN)/python -c "import gymnasium, ray; print('gymnasium', gymnasium.__version__, 'ray', ray.__version__)"
	OMP_NUM_THREADS=1 $(RLLIB_BIN)/python -m pytest -q $(RLLIB_TESTS)

clean:
	rm -rf $(VENV) $(RLLIB_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
