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
# reproduce-imagenet: PRESET defaults to imagenette there (unless given); the image folder (train/, val/) is
# DATA_DIR, as for every other target (DATA, the older name, still works); default: Imagenette here.
DATA     ?= $(if $(DATA_DIR),$(DATA_DIR),../shared/data/imagenette-224)
IMAGENET_PRESET := $(if $(filter file,$(origin PRESET)),imagenette,$(PRESET))
DATA_NAME = $(notdir $(abspath $(DATA)))
PART_MIB ?= 56
PACK_OUT ?= .carry
PACK_IN  ?= .carry
RUN      := $(PY) -m resnet_repro

.DEFAULT_GOAL := help
.PHONY: land budget gpu-plan gpu-lean gpu-restore gpu-batch gpu-status gpu-collect gpu-unpack weights bench-layouts precision-check campaign campaign-status campaign-stop campaign-pause campaign-resume
.PHONY: help setup test train grid analyze collect figures notebooks report reproduce-cifar reproduce-imagenet \
        pack-data unpack-data pack-runs unpack-runs bench models clean-smoke gradflow lesion landscape identity beyond

help: ## list the targets
	@echo "usage: make <target> [PRESET=paper|quarter|short|smoke] [DATA_DIR=...] [ARCH=resnet56 SEED=0]"
	@echo "       make reproduce-imagenet [PRESET=imagenette|imagenette-smoke|imagenet] [DATA=<folder with train/ val/>]"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP) ## create .venv with the pinned packages (idempotent)

test: setup ## run the test suite (pytest); a running campaign is paused meanwhile, so the two never share the cores
	$(RUN) campaign hold -- $(PY) -m pytest -q tests

models: setup ## list the registered nets and their parameter counts
	$(RUN) models

train: setup ## train one net: make train ARCH=resnet56 SEED=0 PRESET=short [DATA_DIR=...]
	$(RUN) train --arch $(ARCH) --seed $(SEED) --preset $(PRESET) $(DATA_ARG) $(ARGS)

grid: setup ## train the grid of PRESET, CIFAR or ImageNet-style (finished runs are skipped, interrupted ones resume)
	$(RUN) grid --preset $(PRESET) $(DATA_ARG) $(ARGS)

analyze: setup ## layer-response stds (Fig. 7), the images of their tail, the test images each finished run gets wrong; needs final weights
	$(RUN) analyze --preset $(PRESET) $(DATA_ARG)

collect: setup ## run folders -> results/PRESET/*.csv (FINISHED_ONLY=1: unfinished runs left out of status.csv too)
	$(RUN) collect --preset $(PRESET) $(if $(FINISHED_ONLY),--finished-only)

figures: collect ## every study's figures (png, pdf) and tables (md, tex) into figures/PRESET/, from the CSVs
	$(RUN) figures --preset $(PRESET)

notebooks: figures ## execute the notebooks of PRESET's studies into notebooks/PRESET/ (outputs included)
	$(RUN) notebooks --preset $(PRESET)

report: figures ## report/PRESET/report.md (and beyond.md), .html, from the CSVs; the README's headline results and weights table
	$(RUN) report --preset $(PRESET)
	$(if $(filter smoke imagenette-smoke,$(PRESET)),,$(RUN) readme)

# The background training campaign (campaign.py, experiments.CAMPAIGNS): outlives the command and the session's
# shell, resumes where it stopped. WORKERS x THREADS must not exceed the cores (default: one worker on all cores, so
# that each run finishes as early as it can: a machine stop loses the checkpoints of the runs in flight).
WORKERS ?=
THREADS ?=
# the CIFAR-10 copy: DATA_DIR if given, else this workplace's JPEG copy if present, else the torchvision download
CAMPAIGN_DATA ?= $(if $(DATA_DIR),$(DATA_DIR),$(wildcard ../shared/data/cifar10-jpeg))
# the image folder of the ImageNet-style runs (train/, val/): DATA if given on the command line, else Imagenette here
CAMPAIGN_IMAGENET ?= $(if $(filter command line,$(origin DATA)),$(DATA),$(wildcard ../shared/data/imagenette-224))

campaign: setup ## start the training campaign PRESET (default quarter) in the background; UNTIL=HH:MM stops it then
	$(RUN) campaign start --name $(if $(filter file,$(origin PRESET)),quarter,$(PRESET)) $(if $(UNTIL),--until $(UNTIL),) $(if $(SLOW_BF16),--slow-bf16,) \
	  $(if $(WORKERS),--workers $(WORKERS),) $(if $(THREADS),--threads $(THREADS),) $(if $(CAMPAIGN_DATA),--data-dir $(CAMPAIGN_DATA),) \
	  $(if $(CAMPAIGN_IMAGENET),--imagenet-dir $(CAMPAIGN_IMAGENET),)

campaign-status: setup ## each queued run: done, iteration k of n, or waiting; speed and ETA
	$(RUN) campaign status

campaign-stop: setup ## stop the campaign (runs resume from their last checkpoint at the next `make campaign`)
	$(RUN) campaign stop

campaign-pause: setup ## freeze the campaign (SIGSTOP) to free the cores; campaign-resume continues it
	$(RUN) campaign pause

campaign-resume: setup ## continue a paused campaign
	$(RUN) campaign resume

land: setup ## after campaign runs finish: regenerate PRESET's outputs and the budget (campaign paused), git add its analysed runs and outputs, print their numbers
	$(if $(filter command line,$(origin PRESET)),,$(error make land needs PRESET=<the preset of the finished runs>))
	$(RUN) campaign hold -- $(MAKE) --no-print-directory analyze collect figures notebooks report budget PRESET=$(PRESET) FINISHED_ONLY=1
	$(RUN) campaign stage --preset $(PRESET)

# A GPU lease (gpu.py, issue 17). Here: gpu-plan, gpu-lean; there: the printed calls, gpu-status, gpu-collect OUT=$OUT;
# here again: gpu-unpack PACK_IN=<the files>. On the GPU machine the packages are preinstalled (no setup).
LANES ?= 4
STAGE_DIR ?= /root/gpu-stage
GPY ?= $(if $(wildcard $(PY)),$(PY),python3)

gpu-plan: setup ## pack the CIFAR-10 copy into parts that fit a call beside the tree, and print the lease's calls
	$(RUN) gpu plan --preset $(PRESET) --lanes $(LANES) $(if $(DATA_DIR),--data $(DATA_DIR),)

gpu-lean: ## before a lease's calls: switch to a branch without figures, notebooks, reports and weights
	$(RUN) gpu lean

gpu-restore: ## after a lease: back to the branch gpu-lean left (the files return)
	$(RUN) gpu restore

gpu-batch: ## (on the GPU machine) unpack the staged data, benchmark, start LANES background training lanes
	PYTHONPATH=src $(GPY) -m resnet_repro gpu batch --preset $(PRESET) --lanes $(LANES) --stage-dir $(STAGE_DIR) $(ARGS)

gpu-status: ## (on the GPU machine) the batch's runs: done, iteration k, waiting
	PYTHONPATH=src $(GPY) -m resnet_repro gpu status

gpu-collect: ## (on the GPU machine) finished runs + unfinished checkpoints -> <= 8 files of <= 16 MiB in OUT
	PYTHONPATH=src $(GPY) -m resnet_repro gpu collect --preset $(PRESET) --out $(OUT)

gpu-unpack: setup ## check and unpack gpu-collect's files from PACK_IN into results/
	$(RUN) gpu unpack --pack-in $(PACK_IN)

weights: setup ## publish the final weights of finished CIFAR runs (weights.safetensors, sha256 in final.json) + README table
	$(RUN) weights

bench-layouts: setup ## CPU: 1 process x all threads vs 1 per core, fp32/bf16, oversubscribed (campaign paused meanwhile)
	$(RUN) campaign hold -- $(RUN) bench-layouts

budget: setup ## final error vs budget (short 1/16, quarter 1/4, paper 1), the smallest budget per claim; notebooks/budget.ipynb
	$(RUN) budget --notebook

precision-check: setup ## bf16 vs fp32: short against short-bf16 -> results|figures|report/short-bf16/precision_check.*
	$(RUN) precision-check

# Issue 8, beyond the paper (src/resnet_repro/studies/{gradflow,lesions,landscapes,identity}.py): the measurements
# are not part of reproduce-cifar; collect, figures, notebooks and report include whatever they have written.
LANDSCAPE_ARCHS  ?= resnet56,plain56
LANDSCAPE_GRID   ?= 51
LANDSCAPE_SUBSET ?= 2000

gradflow: setup ## gradient norms per block/layer: at init (plain/ResNet 20/56/110) and at finished runs' final weights
	$(RUN) gradflow --preset $(PRESET) $(DATA_ARG)

lesion: setup ## test error with one block removed at a time (Veit et al.), per finished run with a checkpoint
	$(RUN) lesion --preset $(PRESET) $(DATA_ARG)

landscape: setup ## loss landscape (Li et al.) around final LANDSCAPE_ARCHS, LANDSCAPE_GRID^2 points, 1-D and 2-D
	$(RUN) landscape --preset $(PRESET) --archs $(LANDSCAPE_ARCHS) --grid $(LANDSCAPE_GRID) \
	  --subset $(LANDSCAPE_SUBSET) $(DATA_ARG)

identity: setup ## issue 8: train the ResNet-110 block variants (ECCV 2016) of IDENTITY_GRID[PRESET]; paper: 5 seeds each, GPU
	$(RUN) grid --experiment identity --preset $(PRESET) $(DATA_ARG) $(ARGS)

beyond: setup ## issue 8: gradflow -> lesion -> landscape, then figures, notebook 05 and report/PRESET/beyond.md
	$(MAKE) gradflow lesion landscape PRESET=$(PRESET) DATA_DIR=$(DATA_DIR)
	$(RUN) beyond --preset $(PRESET) --notebook

reproduce-cifar: setup ## the whole CIFAR chain: grid -> analyze -> collect -> figures -> notebooks -> report
	$(MAKE) grid analyze PRESET=$(PRESET) DATA_DIR=$(DATA_DIR)
	$(MAKE) notebooks report PRESET=$(PRESET) DATA_DIR=$(DATA_DIR)

reproduce-imagenet: setup ## ImageNet-style 18 vs 34 layers (Fig. 4, Tables 2-3): grid -> collect -> figures -> notebooks -> report
	$(MAKE) grid PRESET=$(IMAGENET_PRESET) DATA_DIR=$(DATA)
	$(MAKE) notebooks report PRESET=$(IMAGENET_PRESET)

pack-data: ## split the image folder DATA (train/ + val/ or test/) into tar parts of PART_MIB MiB in .carry/ (to copy it to a GPU machine)
	test -d $(DATA)/train && { test -d $(DATA)/val || test -d $(DATA)/test; }
	mkdir -p .carry && rm -f .carry/$(DATA_NAME).tar.part-* .carry/$(DATA_NAME).sha256
	tar -C $(dir $(abspath $(DATA))) -cf - $(DATA_NAME) | split -b $(PART_MIB)M -d -a 2 - .carry/$(DATA_NAME).tar.part-
	cd .carry && sha256sum $(DATA_NAME).tar.part-* > $(DATA_NAME).sha256 && ls -l $(DATA_NAME).*

unpack-data: ## check the parts of pack-data in .carry/ and join them into data/<name>/ (then: DATA=data/<name>)
	cd .carry && sha256sum -c $(DATA_NAME).sha256
	mkdir -p data && cat .carry/$(DATA_NAME).tar.part-* | tar -C data -xf -
	test -d data/$(DATA_NAME)/train && { test -d data/$(DATA_NAME)/val || test -d data/$(DATA_NAME)/test; } && echo "unpacked: use DATA=data/$(DATA_NAME)"

pack-runs: ## tar results/PRESET/runs without checkpoints into PACK_OUT (default .carry/) in 15 MiB parts + sha256 (to bring runs back from a GPU machine)
	mkdir -p $(PACK_OUT) && rm -f $(PACK_OUT)/runs-$(PRESET).tar.part-* $(PACK_OUT)/runs-$(PRESET).sha256
	tar -C results --exclude=checkpoints --exclude='*.ckpt' --exclude=lightning_logs -cf - $(PRESET)/runs \
	  | split -b 15M -d -a 2 - $(PACK_OUT)/runs-$(PRESET).tar.part-
	cd $(PACK_OUT) && sha256sum runs-$(PRESET).tar.part-* > runs-$(PRESET).sha256 && ls -l runs-$(PRESET).*

unpack-runs: ## check the parts of pack-runs in PACK_IN and unpack them into results/PRESET/runs (then collect/figures/report)
	cd $(PACK_IN) && sha256sum -c runs-$(PRESET).sha256
	cat $(PACK_IN)/runs-$(PRESET).tar.part-* | tar -C results -xf -
	@echo "unpacked into results/$(PRESET)/runs: every run folder keeps its own config.json/final.json provenance"

bench: setup ## time this project's training path against the conventional pipeline -> results/bench/
	$(RUN) bench $(DATA_ARG) $(ARGS)

clean-smoke: ## delete the smoke presets' outputs
	rm -rf results/smoke figures/smoke report/smoke notebooks/smoke
	rm -rf results/imagenette-smoke figures/imagenette-smoke report/imagenette-smoke notebooks/imagenette-smoke
