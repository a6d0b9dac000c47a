# resnet-repro: every step of the study is a make target. `make` lists them.
# Expensive steps (train, grid, analyze) write run folders; cheap steps (collect, figures, notebooks,
# report) only read results/ and can be rerun at any time.

PRESET   ?= paper
ARCH     ?= resnet20
SEED     ?= 0
DATA_DIR ?=
ARGS     ?=
PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
DATA_ARG := $(if $(DATA_DIR),--data-dir $(DATA_DIR),)
RUN      := $(PY) -m resnet_repro

.DEFAULT_GOAL := help
.PHONY: help setup test train grid analyze collect figures notebooks report reproduce-cifar bench models clean-smoke

help: ## list the targets
	@echo "usage: make <target> [PRESET=paper|short|smoke] [DATA_DIR=...] [ARCH=resnet56 SEED=0]"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP) ## create .venv with the pinned packages (idempotent)

test: setup ## run the test suite (pytest)
	$(PY) -m pytest -q tests

models: setup ## list the registered nets and their parameter counts
	$(RUN) models

train: setup ## train one net: make train ARCH=resnet56 SEED=0 PRESET=short [DATA_DIR=...]
	$(RUN) train --arch $(ARCH) --seed $(SEED) --preset $(PRESET) $(DATA_ARG) $(ARGS)

grid: setup ## train the CIFAR grid of PRESET (finished runs are skipped, interrupted ones resume)
	$(RUN) grid --preset $(PRESET) $(DATA_ARG) $(ARGS)

analyze: setup ## layer-response stds (Fig. 7) of finished runs; needs their checkpoints
	$(RUN) analyze --preset $(PRESET) $(DATA_ARG)

collect: setup ## run folders -> results/PRESET/*.csv
	$(RUN) collect --preset $(PRESET)

figures: collect ## figures/PRESET/*.png|pdf and Table 6 (md, tex) from the CSVs
	$(RUN) figures --preset $(PRESET)

notebooks: figures ## execute the notebooks for PRESET into notebooks/PRESET/
	$(RUN) notebooks --preset $(PRESET)

report: figures ## report/PRESET/report.md and report.html from the CSVs
	$(RUN) report --preset $(PRESET)

reproduce-cifar: setup ## the whole CIFAR chain: grid -> analyze -> collect -> figures -> notebooks -> report
	$(MAKE) grid analyze PRESET=$(PRESET) DATA_DIR=$(DATA_DIR)
	$(MAKE) notebooks report PRESET=$(PRESET) DATA_DIR=$(DATA_DIR)

bench: setup ## time this project's training path against the conventional pipeline -> results/bench/
	$(RUN) bench $(DATA_ARG) $(ARGS)

clean-smoke: ## delete the smoke preset's outputs
	rm -rf results/smoke figures/smoke report/smoke notebooks/smoke
