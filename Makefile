# attn_jax: every target bootstraps its own .venv from setup.cfg when it is
# missing or older than setup.cfg, so a fresh clone needs only Python 3.11.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# XLA:CPU hands its large temporaries back to the OS after each step with glibc's
# default malloc and faults them in again; these tunables keep them (see
# shared/PERFORMANCE.md: 1.2-1.5x tokens/s). Must be set before the process starts.
export GLIBC_TUNABLES ?= glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736:glibc.malloc.arena_max=1:glibc.malloc.top_pad=1073741824
DATA_DIR ?= .data
PYTEST_FLAGS ?=
# Both cores: most of the suite's time is XLA compiling small graphs, one core each.
PYTEST_WORKERS ?= 2

.PHONY: all venv test test-all lint format demo bench data browser clean

all: test

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP) data
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_FLAGS)

# The slow tests add Ray (the sweep's cluster executor), the Austen corpus and
# headless Chromium (the attention viewer's click test).
# The notebook extra: nbclient + ipykernel run notebooks/attn_jax_colab.ipynb headless.
test-all: $(STAMP) data browser
	$(BIN)/pip install -q -e '.[test,ray,hf-test,notebook]'
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_FLAGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

data: $(STAMP)
	$(BIN)/python -m attn_jax.data.fetch --data_dir $(DATA_DIR)

# Headless Chromium (Debian, unpacked under $(DATA_DIR)/debian/) for the viewer's slow test.
browser: $(STAMP)
	$(BIN)/python -m attn_jax.interp.browser --data_dir $(DATA_DIR)

DEMO_OUT ?= runs/demo
demo: $(STAMP)
	$(BIN)/python -m attn_jax.sweep run sweeps/demo.py --out $(DEMO_OUT) --executor local --workers 2
	$(BIN)/python -m attn_jax.sweep results $(DEMO_OUT)
	$(BIN)/python analysis/fit.py $(DEMO_OUT)

bench: $(STAMP)
	$(BIN)/python benchmarks/train_lm.py
	$(BIN)/python benchmarks/attention.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
