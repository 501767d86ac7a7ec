#!/usr/bin/env bash
# issue 14: DS1 -> DS2 beat probes of the CinC-2017 experiment's latest checkpoint, one thread each
set -u
CKPT=runs/cost/cost_new3_s2/version_0/checkpoints/last.ckpt
kind=$1; norm=$2
start=$(date +%s)
OMP_NUM_THREADS=1 .venv/bin/ecg-dino probe-mitbih --ckpt $CKPT --mitdb ../shared/data/mitdb --features $kind \
  --beat-norm $norm --with-rr --no-robustness --out runs/beats/${kind}_${norm} > runs/beats/${kind}_${norm}.log 2>&1
echo "rc $? wall $(( $(date +%s) - start )) s" >> runs/beats/${kind}_${norm}.log
