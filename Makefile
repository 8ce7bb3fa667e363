# Two entry points: `make demo` and `make test`. Both work on a fresh Debian 12 machine as root.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
PY_DIRS := $(wildcard src tests scripts training bench)
SLURM_DIR ?= $(CURDIR)/.slurm
EXTRAS ?= data,train,eval,dev

.PHONY: venv system-deps test lint format demo readme-results demo-readme demo-slurm demo-render slurm-up slurm-down clean-jobs nemo-venv nemo-check

venv: $(VENV)/.installed

# TORCH_CPU=1 takes PyTorch's CPU wheel from its own index (about 200 MB) instead of the CUDA build that the
# public index gives for torch==2.13.0 on Linux (several GB of nvidia-* packages). Off by default: only the
# public index is reachable from CI. Clusters never use this venv's torch: jobs run in the NeMo container.
TORCH_CPU ?= 0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_INDEX_ARGS := $(if $(filter 1,$(TORCH_CPU)),--index-url $(TORCH_CPU_INDEX) --extra-index-url https://pypi.org/simple,)

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, got {sys.version.split()[0]}"'
	@if [ "$(TORCH_CPU)" != 1 ] && ! command -v nvidia-smi >/dev/null && [ ! -e /proc/driver/nvidia ]; then \
	  echo "note: no NVIDIA GPU here; if pip starts a multi-GB CUDA download, stop it and run 'make $(MAKECMDGOALS) TORCH_CPU=1' for PyTorch's CPU wheel"; fi
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(TORCH_INDEX_ARGS) -c constraints.txt -e '.[$(EXTRAS)]'
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

# The whole experiment on a small offline Filipino corpus, through the controller on this machine:
# split -> preprocess x3 -> merge -> tiny CPU training x3 (each cut by its time budget and resumed) -> export ->
# benchmarks -> evaluate -> analyze. Rerunning reuses every completed stage. Report: results/report.md.
demo: venv
	$(VENV_PY) -m morphcpt demo-data --experiment demo
	$(VENV_PY) -m morphcpt submit demo --profile local --watch --interval 2

# The README's demo table and plot, from the last demo's results/ in this checkout.
readme-results: venv
	$(VENV_PY) scripts/update_readme_results.py

# The same from a fresh demo of HEAD: a clean clone (committed code only, so the README can name the commit
# that produced its figures) run with this checkout's .venv on the clone's own sources.
DEMO_README_DIR ?= build/demo-readme
demo-readme: venv
	rm -rf $(DEMO_README_DIR) && git clone --quiet . $(DEMO_README_DIR)
	ln -s $(CURDIR)/$(VENV) $(DEMO_README_DIR)/.venv
	cd $(DEMO_README_DIR) && PYTHONPATH=$$PWD/src .venv/bin/python -m morphcpt demo-data --experiment demo
	cd $(DEMO_README_DIR) && PYTHONPATH=$$PWD/src .venv/bin/python -m morphcpt submit demo --profile local --watch --interval 2
	$(VENV_PY) scripts/update_readme_results.py $(DEMO_README_DIR)/results --checkout $(DEMO_README_DIR)

# The same on the local real Slurm (started here if it is not running), with native afterok dependencies.
demo-slurm: venv
	@SLURM_CONF=$(SLURM_DIR)/slurm.conf sinfo -h >/dev/null 2>&1 || $(MAKE) slurm-up
	$(VENV_PY) -m morphcpt demo-data --experiment demo
	SLURM_CONF=$(SLURM_DIR)/slurm.conf $(VENV_PY) -m morphcpt submit demo --profile local-slurm --watch --interval 2

# Every shipped profile's hand-submittable scripts, in jobs/<profile>/.
demo-render: venv
	@for pair in demo:local demo:local-slurm seapile-tl-cpt:pbs-a100 seapile-tl-cpt:slurm-a100; do \
	  experiment=$${pair%%:*} profile=$${pair#*:}; \
	  $(VENV_PY) -m morphcpt render --profile $$profile --experiment $$experiment --out jobs/$$profile >/dev/null \
	    && echo "rendered jobs/$$profile/"; done

slurm-up: system-deps
	bash tests/cluster/local_slurm.sh start $(SLURM_DIR)
	@echo "export SLURM_CONF=$(SLURM_DIR)/slurm.conf"

slurm-down:
	bash tests/cluster/local_slurm.sh stop $(SLURM_DIR)

clean-jobs:
	find jobs -mindepth 1 ! -name README.md -exec rm -rf {} +
