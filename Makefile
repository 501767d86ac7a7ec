# ecg-dino: every target creates or reuses .venv by itself, so each works on a fresh clone.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ECG := $(VENV)/bin/ecg-dino
# On a CPU-only machine the pinned CPU wheel keeps CUDA packages out; on a GPU cluster use e.g. TORCH_SPEC="torch>=2.4".
TORCH_SPEC ?= torch==2.13.0

EXP ?= pretrain_debug_cpu
GPUS ?=
NODES ?= 1
RESUME ?=
CKPT ?= last
PTBXL ?= ../shared/data/ptbxl
MITDB ?= ../shared/data/mitdb
SOURCE ?=
RAW ?=
OUT ?=
ARGS ?=

last_ckpt = $(shell ls -td runs/*/version_*/checkpoints/last.ckpt 2>/dev/null | head -1)
# -d: a sharded checkpoint is a directory; last.ckpt.old is the complete previous one while a save swaps them in
exp_last_ckpt = $(shell ls -td runs/$(EXP)/version_*/checkpoints/last.ckpt runs/$(EXP)/version_*/checkpoints/last.ckpt.old 2>/dev/null | head -1)
CKPT_PATH = $(if $(filter last,$(CKPT)),$(last_ckpt),$(CKPT))
RESUME_PATH = $(if $(filter last,$(RESUME)),$(exp_last_ckpt),$(RESUME))

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

.PHONY: install
install: $(VENV)/.installed ## Create .venv and install ecg-dino with its dev tools

.PHONY: demo
demo: pretrain probe-ptbxl ## The main job: pretrain on the embedded dataset, then probe PTB-XL

# An experiment that holds only what differs from another names it in a "# parent: experiments/<name>.yaml" line
# (one level); its --config comes first.
exp_configs = $(foreach c,$(shell sed -n 's/^\# parent: *//p' experiments/$(EXP).yaml) experiments/$(EXP).yaml,--config $(c))

# More than one GPU in all: FSDP2 data parallel over GPUS x NODES ranks (STRATEGY=yaml keeps the experiment's own).
STRATEGY ?= fsdp2
WORLD = $(shell echo $$(( $(or $(GPUS),1) * $(NODES) )))
FSDP2_ARGS = --trainer.strategy=lightning.pytorch.strategies.ModelParallelStrategy \
  --trainer.strategy.data_parallel_size=$(WORLD) --trainer.strategy.tensor_parallel_size=1

.PHONY: pretrain
pretrain: $(VENV)/.installed ## Pretrain (EXP=pretrain_debug_cpu, GPUS=N, NODES=M, STRATEGY=fsdp2|yaml, RESUME=last|path, ARGS=...)
	$(ECG) fit $(exp_configs) \
	  $(if $(GPUS),--trainer.accelerator=gpu --trainer.devices=$(GPUS) --trainer.num_nodes=$(NODES),) \
	  $(if $(and $(filter fsdp2,$(STRATEGY)),$(filter-out 1,$(WORLD))),$(FSDP2_ARGS),) \
	  $(if $(RESUME),--ckpt_path=$(RESUME_PATH),) $(ARGS)

.PHONY: prepare
prepare: $(VENV)/.installed ## Convert a raw download to Parquet shards (SOURCE=ptbxl|mitdb|... RAW=dir OUT=dir)
	$(ECG) prepare --source $(SOURCE) --raw $(RAW) --out $(OUT) $(ARGS)

# The unlabelled real data of experiments/pretrain_cpu_real.yaml: MIT-BIH DS1 only (DS2 is the beat probe's test
# set), PTB-XL folds 1-8 only (9-10 are the probe's validation and test folds), CinC-2021 and CPSC-2021 samples.
# Record lists and folds come from ecg_dino/splits.py, the ones the probes hold out: $(call split,NAME) is NAME there
# as a comma-separated list.
split = $(shell $(PY) -c 'import ecg_dino.splits as s; print(",".join(map(str, s.$(1))))')
SHARED ?= ../shared/data
CPU_REAL_SHARDS ?= data_cache/cpu_real

.PHONY: prepare-cpu-real
prepare-cpu-real: $(VENV)/.installed ## Shards for the CPU real-data experiment (no DS2 record, no PTB-XL fold 9-10)
	$(ECG) prepare --source mitdb --raw $(SHARED)/mitdb --out $(CPU_REAL_SHARDS)/mitdb_ds1 --include-records $(call split,MITDB_DS1)
	$(ECG) prepare --source ptbxl --raw $(SHARED)/ptbxl --out $(CPU_REAL_SHARDS)/ptbxl_f1-8 --folds $(call split,PTBXL_TRAIN_FOLDS)
	$(ECG) prepare --source cinc2021 --raw $(SHARED)/cinc2021_samples --out $(CPU_REAL_SHARDS)/cinc2021
	$(ECG) prepare --source cpsc2021 --raw $(SHARED)/cpsc2021_samples --out $(CPU_REAL_SHARDS)/cpsc2021

# The data of experiments/pretrain_cpu_many.yaml: the cpu-real shards plus CinC-2017 train and validation
# (A00001-A05000; A05001-A06000 are probe-cinc2017's test records).
CPU_MANY_SHARDS ?= data_cache/cpu_many

.PHONY: prepare-cpu-many prepare-cinc2017-trainval prepare-cinc2017-records
prepare-cpu-many: prepare-cpu-real prepare-cinc2017-trainval ## Shards for the many-people CPU experiment

prepare-cinc2017-trainval: $(VENV)/.installed ## CinC-2017 train+val shards (never the probe's test records)
	$(ECG) prepare --source cinc2017 --raw $(SHARED)/cinc2017 --out $(CPU_MANY_SHARDS)/cinc2017_trainval --splits train,val

prepare-cinc2017-records: $(VENV)/.installed ## The same records whole, not cut into windows (ablations/record_views.yaml)
	$(ECG) prepare --source cinc2017 --raw $(SHARED)/cinc2017 --out $(CPU_MANY_SHARDS)/cinc2017_trainval_records \
		--splits train,val --window-seconds 0

.PHONY: cpu-many
cpu-many: $(VENV)/.installed ## Many-people CPU experiment: both pretrainings, all probes, comparison with curves
	SHARED=$(SHARED) experiments/run_cpu_many.sh

.PHONY: cpu-real
cpu-real: $(VENV)/.installed ## The CPU real-data experiment: pretrainings, probes, comparison (SEEDS="0 1": two seeds)
	SHARED=$(SHARED) experiments/run_cpu_real.sh

.PHONY: probe-ptbxl
probe-ptbxl: $(VENV)/.installed ## PTB-XL probes, linear and attentive heads (CKPT=last|path PTBXL=dir)
	$(ECG) probe-ptbxl --ckpt "$(CKPT_PATH)" --ptbxl $(PTBXL) $(ARGS)

CINC2017 ?= ../shared/data/cinc2017

.PHONY: probe-cinc2017
probe-cinc2017: $(VENV)/.installed ## CinC-2017 AF probe, linear and attentive heads; train/val/test A00001-4500/-5000/-6000 (CKPT=last|path)
	$(ECG) probe-cinc2017 --ckpt "$(CKPT_PATH)" --cinc2017 $(CINC2017) $(ARGS)

.PHONY: probe-mitbih
probe-mitbih: $(VENV)/.installed ## MIT-BIH beat probe, DS1 -> DS2 (CKPT=last|path MITDB=dir)
	$(ECG) probe-mitbih --ckpt "$(CKPT_PATH)" --mitdb $(MITDB) $(ARGS)

.PHONY: tensorboard
tensorboard: $(VENV)/.installed ## Open TensorBoard on runs/
	$(VENV)/bin/tensorboard --logdir runs

.PHONY: test
test: $(VENV)/.installed ## Run the test suite (the CI command)
	$(PY) -m pytest -n 2 -q

.PHONY: test-fast
test-fast: $(VENV)/.installed ## Tests without the slow (multi-process, real-data) ones
	$(PY) -m pytest -n 2 -q -m "not slow"

.PHONY: lint
lint: $(VENV)/.installed ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: bench bench-cpu-many
bench: $(VENV)/.installed ## Benchmarks: training step (MFU), its cost breakdown, attention kernels, data pipeline
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/step_breakdown.py
	$(PY) benchmarks/attention.py
	$(PY) benchmarks/data_pipeline.py

CPU_MANY_BENCH := --config experiments/pretrain_cpu_many.yaml --threads 1
bench-cpu-many: $(VENV)/.installed ## The many-people CPU experiment's step on its real batches (bf16, one thread): figures, breakdown, what each speed-up buys
	@[ -f $(CPU_MANY_SHARDS)/cinc2017_trainval/manifest.json ] || $(MAKE) prepare-cpu-many
	$(PY) benchmarks/train_step.py $(CPU_MANY_BENCH) --precisions bf16 --steps 10
	$(PY) benchmarks/step_breakdown.py $(CPU_MANY_BENCH) --precisions bf16
	$(PY) benchmarks/step_ablation.py $(CPU_MANY_BENCH)
