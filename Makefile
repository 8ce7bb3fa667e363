# Two entry points: `make demo` and `make test`. Both work on a fresh Debian 12 machine as root.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
PY_DIRS := $(wildcard src tests scripts training bench)
SLURM_DIR ?= $(CURDIR)/.slurm
EXTRAS ?= data,train,eval,dev

.PHONY: venv system-deps test lint format demo demo-render slurm-up slurm-down clean-jobs nemo-venv nemo-check

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, got {sys.version.split()[0]}"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

system-deps:
	bash scripts/install_system_deps.sh

lint: venv
	$(VENV)/bin/ruff check $(PY_DIRS)
	$(VENV)/bin/ruff format --check $(PY_DIRS)

format: venv
	$(VENV)/bin/ruff format $(PY_DIRS)
	$(VENV)/bin/ruff check --fix $(PY_DIRS)

# pytest starts (and stops) its own local Slurm cluster; see tests/conftest.py.
test: system-deps venv lint
	$(VENV)/bin/pytest
	$(MAKE) nemo-check

# NeMo 2 (nemo-toolkit[llm], ~3 GB) in its own env: builds and checks the gemma3_1b recipe on CPU.
# The env is kept between runs (and pip's cache makes a rebuild cheaper).
NEMO_VENV ?= .venv-nemo
nemo-venv: $(NEMO_VENV)/.installed

$(NEMO_VENV)/.installed: constraints-nemo.txt pyproject.toml
	$(PYTHON) -m venv $(NEMO_VENV)
	$(NEMO_VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints-nemo.txt torch
	$(NEMO_VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints-nemo.txt \
	  'nemo-toolkit[llm]' nemo_run leptonai pyarrow
	$(NEMO_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	$(NEMO_VENV)/bin/pip install --quiet --disable-pip-version-check -c constraints-nemo.txt \
	  click jinja2 'pydantic>=2.6' pyyaml rich submitit pyahocorasick wordfreq pytest hypothesis
	touch $@

nemo-check: nemo-venv
	MORPHCPT_REQUIRE_NEMO=1 $(NEMO_VENV)/bin/pytest -p no:cacheprovider tests/test_nemo_recipe.py

# Until the end-to-end demo lands, the demo renders the experiment's jobs for every shipped profile
# and checks this machine's setup for the local profiles.
demo: venv
	$(VENV_PY) -m morphcpt verify-setup --profile local --experiment demo
	@for profile in local local-slurm pbs-a100 slurm-a100; do \
	  $(VENV_PY) -m morphcpt render --profile $$profile --experiment seapile-tl-cpt --out jobs/$$profile >/dev/null \
	    && echo "rendered jobs/$$profile/"; done
	$(VENV_PY) -m morphcpt render --profile pbs-a100 --experiment seapile-tl-cpt --out jobs/pbs-a100

slurm-up: system-deps
	bash tests/cluster/local_slurm.sh start $(SLURM_DIR)
	@echo "export SLURM_CONF=$(SLURM_DIR)/slurm.conf"

slurm-down:
	bash tests/cluster/local_slurm.sh stop $(SLURM_DIR)

clean-jobs:
	find jobs -mindepth 1 ! -name README.md -exec rm -rf {} +
